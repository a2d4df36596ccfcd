"""`favad retention run [--dry-run]`: a thin shell over retention/sweep.py, for cron or a timer."""
from __future__ import annotations

import datetime as dt
import json

import click

from config.cli import fail, load_settings, setup_logging
from db.cli import guard as _guard, session as _session


@click.group()
def retention():
    """Delete what is kept no longer than needed: recordings, caller counts and keys, leftovers."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="List what is due; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="The summary as JSON.")
@click.pass_context
@_guard
def run(ctx, dry_run, as_json):
    """Delete what is due now (recordings, caller counts and keys, journal leftovers)."""
    from retention import sweep

    settings = load_settings(ctx)
    setup_logging(settings)
    now = dt.datetime.now(dt.timezone.utc)
    try:
        with _session(ctx) as s:
            due = sweep.plan(settings, s, now)
            done = due if dry_run else sweep.apply(settings, s, due, now)
    except OSError as e:  # the keys folder or the journal out of reach (permissions, a mount)
        fail(f"cannot reach {e.filename or 'a file'}: {e.strerror}")
    summary = done.summary()
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, **summary}, ensure_ascii=False, indent=2))
    else:
        _print(summary, "would delete" if dry_run else "deleted")
    if done.summary() != due.summary():
        fail("some of what was due could not be deleted (see the warnings above); run again later")


def _print(summary: dict, verb: str) -> None:
    cases = ", ".join(summary["recording_cases"])
    months = ", ".join(summary["caller_months"])
    click.echo(f"{verb}:")
    click.echo(f"  recordings of resolved complaints: {summary['recordings']}" + (f" ({cases})" if cases else ""))
    click.echo(f"  caller counts: {summary['caller_counts']} rows, caller keys: {summary['caller_keys']}"
               + (f" (months {months})" if months else ""))
    click.echo(f"  journal temp files: {summary['journal_temp_files']}")
