"""`favad prompts list|build|check`."""
from __future__ import annotations

import json

import click

from config.cli import fail, load_settings


def _needed(ctx):
    from ivr.catalog import needed

    settings = load_settings(ctx)
    texts, ids = needed(settings, lambda msg: click.echo(f"favad: warning: {msg}", err=True))
    return settings, texts, ids


def _formats(settings):
    from prompts.formats import PromptError, configured

    try:
        return configured(settings)
    except PromptError as e:
        fail(str(e), 2)


@click.group()
def prompts():
    """The audio prompts callers hear."""


@prompts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def prompts_list(ctx, as_json):
    """Every prompt id with its Persian text and where its audio comes from."""
    from presentation import table
    from prompts.formats import studio_dir
    from prompts.status import survey

    settings, texts, ids = _needed(ctx)
    states = {s.prompt: s for s in survey(texts, ids, settings.sounds_path, _formats(settings),
                                          studio_dir(settings))}
    rows = [{"id": i, "text": texts.get(i, ""), "audio": states[i].source, "state": states[i].state}
            for i in ids]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        table(rows, ["id", "text", "audio", "state"])


@prompts.command("build")
@click.option("--engine", type=click.Choice(["auto", "espeak", "tone"]), default="auto",
              show_default=True, help="Stand-ins for prompts without a recording: espeak speaks "
                                      "the Persian text; tone is a placeholder beep.")
@click.option("--recordings", type=click.Path(file_okay=False),
              help="Studio recordings <prompt-id>.<mp3|ogg|flac|wav|...> (default: "
                   "prompt_recordings_dir, else data_dir/studio).")
@click.option("--force", is_flag=True, help="Rebuild prompts that are up to date.")
@click.pass_context
def prompts_build(ctx, engine, recordings, force):
    """Convert recordings and synthesize the rest into the sounds directory (fa), 8 kHz mono."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from prompts.build import build, prompt_dir
    from prompts.formats import PromptError, studio_dir

    settings, texts, ids = _needed(ctx)
    formats = _formats(settings)
    progress = Progress(TextColumn("building prompts"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.description}"), console=Console(stderr=True), transient=True)
    try:
        with progress:
            task = progress.add_task("", total=len(ids))
            written, used = build(texts, ids, settings.sounds_path, engine, force,
                                  lambda p: progress.update(task, advance=1, description=p), formats,
                                  recordings or studio_dir(settings))
    except PromptError as e:
        fail(str(e))
    click.echo(f"{written} file(s) written ({', '.join(formats)}; stand-ins by {used}) to "
               f"{prompt_dir(settings.sounds_path)}")


@prompts.command("check")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def prompts_check(ctx, as_json):
    """List prompts missing in a configured format or stale; exit 1 if there are any."""
    from presentation import table
    from prompts.formats import studio_dir
    from prompts.status import survey

    settings, texts, ids = _needed(ctx)
    bad = [s for s in survey(texts, ids, settings.sounds_path, _formats(settings), studio_dir(settings))
           if s.state != "ok"]
    if as_json:
        click.echo(json.dumps([s.__dict__ for s in bad], ensure_ascii=False, indent=2))
    elif bad:
        table([s.__dict__ for s in bad], ["prompt", "state", "detail", "source"])
    if bad:
        fail(f"{sum(s.state == 'missing' for s in bad)} prompt(s) missing, "
             f"{sum(s.state == 'stale' for s in bad)} stale: run `favad prompts build`")
    if not as_json:
        click.echo(f"all {len(ids)} prompts present and up to date")
