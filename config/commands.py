"""`favad config show`."""
from __future__ import annotations

import json

import click

from config.cli import load_settings


@click.group()
def config():
    """The configuration in force."""


@config.command("show")
@click.pass_context
def config_show(ctx):
    """Print the settings in force, secrets masked."""
    settings = load_settings(ctx)
    click.echo(json.dumps({**settings.public(), "database": settings.db_url.split("://")[0]},
                          ensure_ascii=False, indent=2))
