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


def _offered(settings) -> list[str]:
    """The languages the provinces offer (none known without a database)."""
    from sqlalchemy import select

    from db.engine import make_engine, make_sessionmaker
    from db.models import Province

    try:
        engine = make_engine(settings.db_url)
        try:
            with make_sessionmaker(engine)() as s:
                lists = list(s.scalars(select(Province.languages)))
        finally:
            engine.dispose()
    except Exception:
        return []
    return [c.strip() for langs in lists for c in (langs or "").split(",") if c.strip()]


def _languages(settings, chosen) -> list[str]:
    """--lang, else Persian, every language with a catalog and every one a province offers."""
    from ivr.catalog import languages, with_catalog

    wanted = list(dict.fromkeys(chosen or with_catalog() + _offered(settings)))
    unknown = [c for c in wanted if c not in languages()]
    if unknown:
        fail(f"unknown language(s) {', '.join(unknown)}: add them to ivr/languages.toml", 2)
    return wanted


def _in(language: str, texts: dict[str, str]):
    """(what to synthesise, the voice, the prompts said in Persian) for ``language``'s folder."""
    from ivr.catalog import PERSIAN, languages, spoken

    said, voices, persian = {}, {}, set()
    for pid, e in spoken(language, texts).items():
        voice = languages()[e.language].voice
        if not voice:  # words espeak-ng cannot say: the Persian stand-in, until a recording
            e = spoken(PERSIAN, texts).get(pid) or e
            voice = "fa"
        said[pid], voices[pid] = e.say, voice
        if e.language != language and not pid.startswith("language-"):
            persian.add(pid)
    return said, voices, persian


LANG = click.option("--lang", "langs", multiple=True, metavar="CODE",
                    help="Only this language (repeatable); default: Persian, every language with "
                         "a catalog and every language a province offers.")


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
@LANG
@click.option("--engine", type=click.Choice(["auto", "espeak", "tone"]), default="auto",
              show_default=True, help="Stand-ins for prompts without a recording: espeak speaks "
                                      "the Persian text; tone is a placeholder beep.")
@click.option("--recordings", type=click.Path(file_okay=False),
              help="Studio recordings <prompt-id>.<mp3|ogg|flac|wav|...> (default: "
                   "prompt_recordings_dir, else data_dir/studio).")
@click.option("--force", is_flag=True, help="Rebuild prompts that are up to date.")
@click.pass_context
def prompts_build(ctx, engine, recordings, force, langs):
    """Convert recordings and synthesize the rest into the sounds directory, per language, 8 kHz mono."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from prompts.build import build, prompt_dir
    from prompts.formats import PromptError, studio_dir

    settings, texts, ids = _needed(ctx)
    formats = _formats(settings)
    for language in _languages(settings, langs):
        said, voices, persian = _in(language, texts)
        ids_here = sorted(set(ids) | set(said))
        progress = Progress(TextColumn(f"building prompts ({language})"), BarColumn(),
                            MofNCompleteColumn(), TextColumn("{task.description}"),
                            console=Console(stderr=True), transient=True)
        try:
            with progress:
                task = progress.add_task("", total=len(ids_here))
                written, used = build(said, ids_here, settings.sounds_path, engine, force,
                                      lambda p: progress.update(task, advance=1, description=p),
                                      formats, recordings or studio_dir(settings), language, voices)
        except PromptError as e:
            fail(str(e))
        click.echo(f"{language}: {written} file(s) written ({', '.join(formats)}; stand-ins by "
                   f"{used}) to {prompt_dir(settings.sounds_path, language)}"
                   + (f"; {len(persian)} said in Persian (`favad prompts check`)" if persian else ""))


@prompts.command("check")
@LANG
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def prompts_check(ctx, as_json, langs):
    """List prompts missing in a configured format or stale, and those said in Persian for want
    of words in their language, per language; exit 1 if any is missing or stale."""
    from presentation import table
    from prompts.formats import studio_dir
    from prompts.status import survey

    settings, texts, ids = _needed(ctx)
    bad, total = [], 0
    for language in _languages(settings, langs):
        said, voices, persian = _in(language, texts)
        ids_here = sorted(set(ids) | set(said))
        total += len(ids_here)
        bad += [s for s in survey(said, ids_here, settings.sounds_path, _formats(settings),
                                  studio_dir(settings), language, voices, persian) if s.state != "ok"]
    if as_json:
        click.echo(json.dumps([s.__dict__ for s in bad], ensure_ascii=False, indent=2))
    elif bad:
        table([s.__dict__ for s in bad], ["language", "prompt", "state", "detail", "source"])
    failing = [s for s in bad if s.state in ("missing", "stale")]
    if failing:
        fail(f"{sum(s.state == 'missing' for s in bad)} prompt(s) missing, "
             f"{sum(s.state == 'stale' for s in bad)} stale: run `favad prompts build`")
    if not as_json:
        borrowed = sum(s.state == "persian" for s in bad)
        click.echo(f"all {total} prompts present and up to date"
                   + (f"; {borrowed} said in Persian for want of words in their language" if borrowed else ""))
