"""`favad web serve|link|rotate-key|inbox-link|inbox-revoke`: the units' page, a unit's inbox
and their signed links."""
from __future__ import annotations

import datetime as dt
import signal
import threading

import click
from sqlalchemy import select

from config.cli import fail, load_settings, setup_logging
from db.cli import guard as _guard, session as _session


@click.group()
def web():
    """The inspection units' page and its signed links."""


@web.command("serve")
@click.option("--host", help="Address to listen on (default: the web_host setting).")
@click.option("--port", type=int, help="Port to listen on (default: the web_port setting).")
@click.pass_context
def web_serve(ctx, host, port):
    """Serve the units' page and /staff until SIGTERM (`favad serve` runs them too, unless web_in_serve = 0)."""
    from clock.calendar import CalendarError
    from web.server import WebServer

    settings = load_settings(ctx)
    setup_logging(settings)
    try:
        server = WebServer(settings, host, port)
    except CalendarError as e:
        fail(str(e), 2)
    except OSError as e:
        fail(f"cannot listen on {host or settings.web_host}:{port or settings.web_port}: {e.strerror}")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    click.echo(f"favad: units' page on http://{server.host}:{server.port}, staff pages under /staff/ (links point to "
               f"{_base(settings)}); Ctrl-C or SIGTERM to stop", err=True)
    stop.wait()
    server.stop()


def _base(settings) -> str:
    from common.links import base_url

    return base_url(settings)


@web.command("link")
@click.argument("code")
@click.option("--unit", "unit_code", required=True, help="The inspection unit the link is for.")
@click.pass_context
@_guard
def web_link(ctx, code, unit_code):
    """Print a fresh link for a unit to a complaint (when its link expired, say)."""
    from accountability.actions import ActionError, find, responsible_units
    from accountability.commands import may_act
    from dispatch.models import InspectionUnit
    from common.links import url

    settings = load_settings(ctx)
    refused = may_act(settings)  # a link acts for its unit: only staff may make one
    if refused:
        fail(refused)
    with _session(ctx) as s:
        try:
            c = find(s, code)
        except ActionError as e:
            fail(str(e))
        unit = s.scalar(select(InspectionUnit).where(InspectionUnit.code == unit_code))
        if unit is None:
            fail(f"no inspection unit with code {unit_code!r}")
        if unit.id not in responsible_units(s, c.id):
            click.echo(f"favad: note: unit {unit.code} is not responsible for {c.case_number} "
                       f"now; the link will say so", err=True)
        click.echo(url(settings, c.id, unit.id, dt.datetime.now(dt.timezone.utc)))


@web.command("rotate-key")
@click.pass_context
def web_rotate_key(ctx):
    """Sign new links with a new key; links signed with the last older keys keep working."""
    from common.links import key_file, rotate

    settings = load_settings(ctx)
    try:
        n = rotate(settings)
    except ValueError as e:
        fail(str(e))
    click.echo(f"new signing key in {key_file(settings)}; {n} keys accepted (no restart needed: "
               f"the file is read for every link)")


def _unit(s, code: str):
    from dispatch.models import InspectionUnit

    unit = s.scalar(select(InspectionUnit).where(InspectionUnit.code == code.strip()))
    if unit is None:
        fail(f"no inspection unit with code {code!r} (`favad units list` shows them)")
    return unit


@web.command("inbox-link")
@click.option("--unit", "unit_code", required=True, help="The inspection unit whose inbox the link opens.")
@click.pass_context
@_guard
def web_inbox_link(ctx, unit_code):
    """Print a link to a unit's inbox (valid 180 days; earlier links keep working until revoked)."""
    from accountability.commands import may_act
    from accountability.inbox import issue
    from common.links import INBOX_TTL_DAYS

    settings = load_settings(ctx)
    refused = may_act(settings)  # the link acts for its unit on every complaint it has
    if refused:
        fail(refused)
    with _session(ctx) as s:
        unit = _unit(s, unit_code)
        if not unit.active:
            fail(f"unit {unit.code} is not active: its inbox link would not open")
        link = issue(s, settings, unit, dt.datetime.now(dt.timezone.utc))
        s.commit()
    click.echo(f"favad: inbox of unit {unit.code}, valid {INBOX_TTL_DAYS} days; send it to the unit "
               f"only (it acts for the unit; `favad web inbox-revoke --unit {unit.code}` stops it)", err=True)
    click.echo(link)


@web.command("inbox-revoke")
@click.option("--unit", "unit_code", required=True, help="The inspection unit whose inbox links stop.")
@click.pass_context
@_guard
def web_inbox_revoke(ctx, unit_code):
    """Stop every inbox link a unit was given (a lost phone, a member who left)."""
    from accountability.commands import may_act
    from accountability.inbox import revoke

    settings = load_settings(ctx)
    refused = may_act(settings)
    if refused:
        fail(refused)
    with _session(ctx) as s:
        unit = _unit(s, unit_code)
        revoke(s, unit, dt.datetime.now(dt.timezone.utc))
        s.commit()
    click.echo(f"every inbox link of unit {unit.code} is revoked; `favad web inbox-link --unit "
               f"{unit.code}` makes a new one")
