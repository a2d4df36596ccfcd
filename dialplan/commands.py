"""`favad dialplan render|check|diff|deploy|rollback`."""
from __future__ import annotations

import asyncio
import json

import click

from config.cli import fail, load_settings, setup_logging


def _rendered(settings) -> str:
    from db.engine import make_engine, make_sessionmaker
    from dialplan.render import DialplanError, render, trunks
    from clock import today as today_in_tehran

    engine = make_engine(settings.db_url)
    try:
        with make_sessionmaker(engine)() as s:
            trunk_list = trunks(s, today_in_tehran())
    except Exception as e:
        fail(f"cannot read the provinces ({type(e).__name__}): is the database up, and was "
             f"`favad db upgrade` run?")
    finally:
        engine.dispose()
    try:
        return render(settings, trunk_list)
    except DialplanError as e:
        fail(str(e), 2)


def _problems(settings, text: str):
    import dataclasses
    import re

    from dialplan.check import check
    from ivr.catalog import needed
    from prompts.formats import PromptError, configured

    try:
        formats = configured(settings)
    except PromptError as e:
        fail(str(e), 2)
    _texts, ids = needed(settings, lambda msg: click.echo(f"favad: warning: {msg}", err=True))
    problems = check(text, settings.sounds_path, formats, set(ids))
    # every language a province starts in needs the same sounds in its own folder
    for language in sorted(set(re.findall(r"CHANNEL\(language\)=([A-Za-z_]+)", text)) - {"fa"}):
        problems += [dataclasses.replace(p, message=f"[{language}] {p.message}")
                     for p in check(text, settings.sounds_path, formats, set(ids), language)
                     if p.kind == "prompt"]
    return problems


def _needs(settings, text: str):
    from dialplan.modules import needed
    from prompts.formats import PromptError, configured

    try:
        return needed(text, configured(settings))
    except PromptError as e:
        fail(str(e), 2)


def _ami_session(settings, job):
    """Run ``job(ami)`` with a logged-in AMI client; AmiError when Asterisk cannot be used."""
    from ami import AmiClient

    async def go():
        ami = AmiClient.from_settings(settings, events=False)
        try:
            return await job(ami)
        finally:
            await ami.logoff()

    return asyncio.run(go())


def _ami_run(settings, job):
    """Run ``job(ami)`` with a logged-in AMI client; AMI trouble is a clean failure."""
    from ami import AmiError

    try:
        return _ami_session(settings, job)
    except AmiError as e:
        fail(f"Asterisk AMI at {settings.ami_host}:{settings.ami_port}: {e}")


def _absent_modules(settings, needs):
    """(the needs Asterisk has no module for, None), or (None, why it could not be asked)."""
    from ami import AmiError
    from dialplan.modules import ModulesUnknown, missing

    if not settings.ami_secret:
        return None, "AMI is not configured (ami_secret is empty)"
    try:
        return _ami_session(settings, lambda ami: missing(ami, needs)), None
    except (AmiError, ModulesUnknown) as e:
        where = f"{settings.ami_host}:{settings.ami_port}"
        return None, str(e) if where in str(e) else f"Asterisk AMI at {where}: {e}"


def _where(problem) -> str:
    if problem.line:
        return f"line {problem.line}"
    return "modules" if problem.kind == "module" else "prompts"


@click.group()
def dialplan():
    """The 128 dialplan Asterisk runs (generated, never hand-edited)."""


@dialplan.command("render")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@click.pass_context
def dialplan_render(ctx, output):
    """Print the extensions include file made from the templates and the database."""
    settings = load_settings(ctx)
    text = _rendered(settings)
    if output:
        from pathlib import Path

        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"written to {output}", err=True)
    else:
        click.echo(text, nl=False)


@dialplan.command("check")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False),
              help="Check this file instead of what would be rendered now.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--offline", is_flag=True, help="The file only: do not ask Asterisk which modules are loaded.")
@click.pass_context
def dialplan_check(ctx, path, as_json, offline):
    """Syntax, jumps, prompts, and Asterisk's modules over AMI; exit 1 on a problem, 3 unasked."""
    from pathlib import Path

    from dialplan.check import Problem

    settings = load_settings(ctx)
    text = Path(path).read_text(encoding="utf-8") if path else _rendered(settings)
    problems = _problems(settings, text)
    needs = _needs(settings, text)
    absent, unasked = (None, "--offline") if offline else _absent_modules(settings, needs)
    problems += [Problem("module", 0, n.advice()) for n in absent or ()]
    if as_json:
        click.echo(json.dumps([p.__dict__ for p in problems], ensure_ascii=False, indent=2))
    else:
        for p in problems:
            click.echo(f"{_where(p)}: {p.kind}: {p.message}")
    if problems:
        fail(f"{len(problems)} problem(s): nothing would be deployed")
    if unasked:
        # the file may be fine and still fail on a call: that is the case this check exists for
        names = ", ".join(n.name for n in needs)
        click.echo(f"favad: Asterisk's modules not checked ({unasked}); the dialplan needs {names}",
                   err=True)
        if not as_json:
            click.echo("dialplan file ok: syntax, jumps and prompts; modules NOT checked")
        ctx.exit(0 if offline else 3)
    if not as_json:
        click.echo("dialplan ok: syntax, jumps, prompts, and Asterisk has "
                   + ", ".join(n.name for n in needs) + " loaded")


@dialplan.command("diff")
@click.pass_context
def dialplan_diff(ctx):
    """Show what a deploy would change in the deployed file (exit 1 when it would change)."""
    from dialplan.deploy import read, unified_diff
    from dialplan.render import default_path

    settings = load_settings(ctx)
    path = default_path(settings)
    text = _rendered(settings)
    old = read(path)
    if old == text:
        click.echo(f"{path} is up to date")
        return
    click.echo(unified_diff(old, text, path), nl=False)
    ctx.exit(1)


@dialplan.command("deploy")
@click.pass_context
def dialplan_deploy(ctx):
    """Check (modules too), write with a backup, reload over AMI, confirm it is live; roll back on failure."""
    from dialplan.deploy import DeployError, deploy
    from dialplan.render import default_path, version_of

    settings = load_settings(ctx)
    setup_logging(settings)
    path = default_path(settings)
    text = _rendered(settings)
    problems = _problems(settings, text)
    if problems:
        for p in problems:
            click.echo(f"{_where(p)}: {p.kind}: {p.message}", err=True)
        fail(f"{len(problems)} problem(s) found by `favad dialplan check`: nothing deployed")
    needs = _needs(settings, text)
    try:
        outcome = _ami_run(settings, lambda ami: deploy(ami, path, text, needs))
    except DeployError as e:
        fail(f"deploy failed: {e}")
    if not outcome.changed:
        click.echo(f"{path} was already deployed and is live (version {version_of(text)})")
        return
    kept = f"; previous version kept as {outcome.backup}" if outcome.backup else ""
    click.echo(f"deployed {path} (version {version_of(text)}): Asterisk reloaded and runs it{kept}")


@dialplan.command("rollback")
@click.pass_context
def dialplan_rollback(ctx):
    """Put the previous deployed dialplan back, reload it and confirm it is live."""
    from dialplan.deploy import DeployError, rollback
    from dialplan.render import default_path

    settings = load_settings(ctx)
    setup_logging(settings)
    path = default_path(settings)
    try:
        used = _ami_run(settings, lambda ami: rollback(ami, path))
    except DeployError as e:
        fail(f"rollback failed: {e}")
    click.echo(f"rolled back {path} to the backup of {used.stem}: Asterisk reloaded and runs it")
