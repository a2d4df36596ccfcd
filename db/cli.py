"""What every command that works on the database shares: a session on the configured database,
a clear message and exit code for a database that is down or not upgraded, rows as a table or
JSON. (The commands of each part live in its own ``commands.py``.)"""
from __future__ import annotations

import json

import click

from config.cli import fail, load_settings
from presentation import table


def session(ctx):
    """A session on the configured database."""
    from db.engine import make_engine, make_sessionmaker

    settings = load_settings(ctx)
    return make_sessionmaker(make_engine(settings.db_url))()


def guard(fn):
    """Turn a database that is down or not upgraded into a clear message and exit code 1."""
    from functools import wraps

    from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

    @wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except (OperationalError, ProgrammingError) as e:
            fail(f"database error ({type(e.orig).__name__}): is it running, and was "
                 f"`favad db upgrade` run? (during a failover, run it again in a minute)")
        except DBAPIError as e:
            if not e.connection_invalidated:  # not "the server is not the primary": a bug
                raise
            fail(f"database error ({type(e.orig).__name__}): the server reached does not take "
                 f"writes (a standby, or a failover under way); run it again in a minute, and "
                 f"check that database_url has target_session_attrs=read-write")
    return wrapper


def emit(rows: list[dict], as_json: bool, columns: list[str]) -> None:
    """Rows as a terminal table, or as JSON."""
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        table(rows, columns)
