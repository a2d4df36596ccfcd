"""`favad dialplan render|check|diff|deploy|rollback`."""
from __future__ import annotations

import asyncio
import json

import click

from config.cli import fail, load_settings, setup_logging


def _rendered(settings) -> str:
    from db.engine import make_engine, make_sessionmaker
    from dialplan.render import DialplanError, render, trunks
    from rollout.dates import today_in_tehran

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
    from dialplan.check import check
    from prompts.catalog import needed
    from prompts.formats import PromptError, configured

    try:
        formats = configured(settings)
    except PromptError as e:
        fail(str(e), 2)
    _texts, ids = needed(settings, lambda msg: click.echo(f"favad: warning: {msg}", err=True))
    return check(text, settings.sounds_path, formats, set(ids))


def _ami_run(settings, job):
    """Run ``job(ami)`` with a logged-in AMI client; AMI trouble is a clean failure."""
    from ami import AmiClient, AmiError

    async def go():
        ami = AmiClient.from_settings(settings, events=False)
        try:
            return await job(ami)
        finally:
            await ami.logoff()

    try:
        return asyncio.run(go())
    except AmiError as e:
        fail(f"Asterisk AMI at {settings.ami_host}:{settings.ami_port}: {e}")


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
@click.pass_context
def dialplan_check(ctx, path, as_json):
    """Syntax, jumps to contexts that exist, every prompt in every format; exit 1 on a problem."""
    from pathlib import Path

    settings = load_settings(ctx)
    text = Path(path).read_text(encoding="utf-8") if path else _rendered(settings)
    problems = _problems(settings, text)
    if as_json:
        click.echo(json.dumps([p.__dict__ for p in problems], ensure_ascii=False, indent=2))
    else:
        for p in problems:
            click.echo(f"{'line ' + str(p.line) if p.line else 'prompts'}: {p.kind}: {p.message}")
    if problems:
        fail(f"{len(problems)} problem(s): nothing would be deployed")
    if not as_json:
        click.echo("dialplan ok: syntax, jumps and prompts")


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
    """Check, write with a backup, reload over AMI, confirm it is live; roll back on failure."""
    from dialplan.deploy import DeployError, deploy
    from dialplan.render import default_path, version_of

    settings = load_settings(ctx)
    setup_logging(settings)
    path = default_path(settings)
    text = _rendered(settings)
    problems = _problems(settings, text)
    if problems:
        for p in problems:
            click.echo(f"{'line ' + str(p.line) if p.line else 'prompts'}: {p.kind}: {p.message}", err=True)
        fail(f"{len(problems)} problem(s) found by `favad dialplan check`: nothing deployed")
    try:
        outcome = _ami_run(settings, lambda ami: deploy(ami, path, text))
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
