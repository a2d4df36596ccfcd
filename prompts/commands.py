"""`favad prompts build|check`."""
from __future__ import annotations

import click

from config.cli import fail, load_settings


def _needed(ctx):
    """Every prompt a call can play, with its text."""
    from db.engine import make_engine, make_sessionmaker
    from ivr.catalog import full_catalog
    from ivr.menu import load_menu

    settings = load_settings(ctx)
    menu = load_menu(settings.menu_file or None)
    with make_sessionmaker(make_engine(settings.db_url))() as s:
        texts = full_catalog(s)
    ids = sorted(menu.prompt_ids() | set(texts))
    return settings, texts, ids


@click.group()
def prompts():
    """The audio prompts callers hear."""


@prompts.command("build")
@click.option("--engine", type=click.Choice(["auto", "espeak", "tone"]), default="auto",
              show_default=True, help="espeak: Persian speech with espeak-ng; tone: placeholder tones.")
@click.option("--force", is_flag=True, help="Rebuild prompts that already exist.")
@click.pass_context
def prompts_build(ctx, engine, force):
    """Write every prompt the menu needs into the Asterisk sounds directory (language fa)."""
    from prompts.build import build, prompt_dir

    settings, texts, ids = _needed(ctx)
    with click.progressbar(length=len(ids), label="building prompts", file=click.get_text_stream("stderr")) as bar:
        written, used = build(texts, ids, settings.sounds_path, engine, force, lambda _p: bar.update(1))
    click.echo(f"{written} prompt(s) written with {used} to {prompt_dir(settings.sounds_path)}")


@prompts.command("check")
@click.pass_context
def prompts_check(ctx):
    """Fail if any prompt the menu can play has no audio file."""
    from prompts.build import missing

    settings, _texts, ids = _needed(ctx)
    gone = missing(ids, settings.sounds_path)
    if gone:
        fail(f"{len(gone)} prompt(s) have no audio file: {', '.join(gone)}")
    click.echo(f"all {len(ids)} prompts present")
