"""What every command shares: settings from the context, clean failures, anonymity-safe logs."""
from __future__ import annotations

import logging
import sys

import click

from config import ConfigError, Settings, load
from common.jsonlog import JsonLines
from common.redact import RedactNumbers


def fail(message: str, code: int = 1):
    """Print a clear message (each of its lines prefixed) and exit with ``code``; never a traceback."""
    for line in message.splitlines() or [""]:
        click.echo(f"favad: {line}", err=True)
    sys.exit(code)


def load_settings(ctx: click.Context) -> Settings:
    root = ctx.find_root()
    if root.obj is None:
        try:
            root.obj = load(root.params.get("config"))
        except ConfigError as e:
            fail(str(e), 2)
        for warning in root.obj.warnings:
            click.echo(f"favad: warning: {warning}", err=True)
    return root.obj


def setup_logging(settings: Settings, stream=sys.stderr) -> None:
    """Log lines (text, or JSON objects) to stderr (or nowhere), each passed through the number
    redactor."""
    handler = logging.StreamHandler(stream) if stream else logging.NullHandler()
    handler.addFilter(RedactNumbers())
    handler.setFormatter(JsonLines() if settings.log_format == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
