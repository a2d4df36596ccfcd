"""`favad dispatch`, `favad outbox ...` and `favad units ...`: thin shells over dispatch/."""
from __future__ import annotations

import datetime as dt
import json
import signal
import sys
import threading
from pathlib import Path

import click
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from clock import utcnow as _now
from config import ConfigError
from config.cli import fail, load_settings, setup_logging
from db.cli import emit as _emit, guard as _guard, session as _session
from db.models import Agency, Complaint, Province
from presentation import jalali


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


@click.command()
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.pass_context
@_guard
def dispatch(ctx, once):
    """Deliver the outbox to the inspection units (email, SMS) until SIGTERM."""
    from dispatch.runner import Dispatcher

    settings = load_settings(ctx)
    setup_logging(settings)
    try:
        dispatcher = Dispatcher(settings)
    except ConfigError as e:
        fail(str(e), 2)
    if once:
        n = dispatcher.drain()
        dispatcher.close()
        click.echo(f"dispatched {n} messages: {dispatcher.sent} sent, {dispatcher.failed} failed tries")
        return
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"favad: dispatcher {dispatcher.worker} on {settings.db_url.split('://')[0]}, "
               f"email via {type(dispatcher.channels['email']).__name__}, SMS via "
               f"{type(dispatcher.channels['sms']).__name__}; Ctrl-C or SIGTERM to stop", err=True)
    dispatcher.run(stop)


# ---- the outbox -------------------------------------------------------------------------
@click.group()
def outbox():
    """Messages to the inspection units and report cards to the agencies: what waits, what failed."""


def _messages(ctx, status: str | None, limit: int) -> list[dict]:
    from dispatch.models import Document, InspectionUnit, OutboxMessage as M

    # a report card has no case number nor unit: its document's key stands in the case column
    q = (select(M, func.coalesce(Complaint.case_number, Document.key), InspectionUnit.code)
         .outerjoin(Complaint, M.complaint_id == Complaint.id)
         .outerjoin(Document, M.document_id == Document.id)
         .outerjoin(InspectionUnit, M.unit_id == InspectionUnit.id)
         .order_by(M.id.desc()).limit(limit))
    if status:
        q = q.where(M.status == status)
    with _session(ctx) as s:
        return [{"id": m.id, "case_number": code, "kind": m.kind, "channel": m.channel,
                 "unit": unit, "recipient": m.recipient, "status": m.status, "tries": m.tries,
                 "created_at": _iso(m.created_at), "next_attempt_at": _iso(m.next_attempt_at),
                 "sent_at": _iso(m.sent_at), "error": m.last_error}
                for m, code, unit in s.execute(q)]


def _show(rows: list[dict], as_json: bool, columns: list[str]) -> None:
    if not as_json:
        rows = [{**r, **{k: jalali(v) for k, v in r.items() if k.endswith("_at")}} for r in rows]
    _emit(rows, as_json, columns)


@outbox.command("list")
@click.option("--status", type=click.Choice(["pending", "sent", "dead"]))
@click.option("--limit", type=click.IntRange(1, 100000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@_guard
def outbox_list(ctx, status, limit, as_json):
    """List messages, newest first, with a count per status."""
    from dispatch.outbox import counts

    rows = _messages(ctx, status, limit)
    if not as_json:
        with _session(ctx) as s:
            click.echo("  ".join(f"{k}: {v}" for k, v in sorted(counts(s).items())) or "outbox empty")
    _show(rows, as_json, ["id", "case_number", "kind", "channel", "unit", "status", "tries",
                          "next_attempt_at", "sent_at"])


@outbox.command("dead")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@_guard
def outbox_dead(ctx, as_json):
    """Dead letters: messages that will not be tried again until `favad outbox retry`."""
    _show(_messages(ctx, "dead", 100000), as_json,
          ["id", "case_number", "channel", "unit", "recipient", "tries", "error"])


@outbox.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.pass_context
@_guard
def outbox_retry(ctx, ids):
    """Send dead letters again (all of them, or the IDS given), with a fresh count of tries."""
    from dispatch.outbox import retry_dead

    with _session(ctx) as s:
        n = retry_dead(s, _now(), list(ids) or None)
    click.echo(f"{n} dead letters back in the queue")


@outbox.command("flagged")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@_guard
def outbox_flagged(ctx, as_json):
    """Complaints whose agency has no inspection unit: for the admin to look at."""
    from dispatch.models import ComplaintRoute, InspectionUnit

    U = aliased(InspectionUnit)
    q = (select(Complaint, ComplaintRoute.flag, Agency.code, Province.area_code, U.code)
         .join(ComplaintRoute, ComplaintRoute.complaint_id == Complaint.id)
         .join(Agency, Complaint.agency_id == Agency.id).join(Province, Complaint.province_id == Province.id)
         .outerjoin(U, ComplaintRoute.unit_id == U.id)
         .where(ComplaintRoute.flag.is_not(None)).order_by(Complaint.created_at.desc()))
    with _session(ctx) as s:
        rows = [{"case_number": c.case_number, "created_at": _iso(c.created_at), "flag": flag,
                 "agency": agency, "province": province, "sent_to": unit, "status": c.status}
                for c, flag, agency, province, unit in s.execute(q)]
    _show(rows, as_json, ["case_number", "created_at", "flag", "agency", "province", "sent_to", "status"])


# ---- the inspection units -----------------------------------------------------------------
@click.group()
def units():
    """Inspection units: who receives each complaint."""


def _read_file(path: str, fmt: str | None):
    from dispatch.units import UnitsError, fmt_of, read

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        return read(text, fmt_of(path, fmt))
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")
    except UnitsError as e:
        fail(f"{path}: " + "\n  ".join(["cannot be used:"] + e.problems))


_FORMAT = click.option("--format", "fmt", type=click.Choice(["yaml", "csv"]),
                       help="File format (default: from the file name, else YAML).")


@units.command("import")
@click.argument("path")
@_FORMAT
@click.option("--prune", is_flag=True, help="Deactivate the units the file does not list.")
@click.option("--dry-run", is_flag=True, help="Check and count, change nothing.")
@click.pass_context
@_guard
def units_import(ctx, path, fmt, prune, dry_run):
    """Add or update units from a YAML or CSV file ('-' for stdin), all or nothing."""
    from clock.calendar import CalendarError, load
    from dispatch.outbox import reroute_unrouted
    from dispatch.units import UnitsError, apply

    try:
        calendar = load(load_settings(ctx).office_calendar or None)
    except CalendarError as e:
        fail(str(e), 2)
    specs = _read_file(path, fmt)
    with _session(ctx) as s:
        try:
            c = apply(s, specs, prune)
        except UnitsError as e:
            fail("\n  ".join([f"{path}: nothing imported:"] + e.problems))
        routed = reroute_unrouted(s, _now(), calendar)
        if dry_run:
            s.rollback()
        else:
            s.commit()
    click.echo(f"{'would import' if dry_run else 'imported'}: {c['added']} added, {c['updated']} "
               f"updated, {c['deactivated']} deactivated; {routed} waiting complaints routed")


@units.command("export")
@click.argument("path", default="-")
@_FORMAT
@click.pass_context
@_guard
def units_export(ctx, path, fmt):
    """Write every unit to a YAML or CSV file ('-' for stdout), ready to edit and import."""
    from dispatch.units import current, fmt_of, write

    with _session(ctx) as s:
        text = write(current(s), fmt_of(path, fmt))
    if path == "-":
        click.echo(text, nl=False)
    else:
        Path(path).write_text(text, encoding="utf-8")
        click.echo(f"units written to {path}", err=True)


@units.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@_guard
def units_list(ctx, as_json):
    """List units with their place, hours and contacts."""
    from dataclasses import asdict

    from dispatch.units import current

    with _session(ctx) as s:
        rows = [asdict(u) for u in current(s)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        r["contacts"] = " ".join(r["emails"] + r["mobiles"])
        r["active"] = "yes" if r["active"] else "no"
    _emit(rows, False, ["code", "kind", "name_fa", "agency", "province", "hours", "contacts", "active"])


@units.command("validate")
@click.argument("path", required=False)
@_FORMAT
@click.pass_context
@_guard
def units_validate(ctx, path, fmt):
    """Check a file (or the units in the database) and warn about gaps in coverage."""
    from dispatch.units import coverage, current, reference, validate

    with _session(ctx) as s:
        agencies, provinces, live = reference(s)
        specs = _read_file(path, fmt) if path else current(s)
    problems = validate(specs, agencies, provinces)
    for w in coverage(specs, agencies, live):
        click.echo(f"warning: {w}", err=True)
    if problems:
        fail("\n  ".join([f"{path or 'database'}: {len(problems)} problems:"] + problems))
    click.echo(f"{path or 'database'}: ok, {len(specs)} units")


@units.command("ack")
@click.argument("case_number")
@click.option("--unit", "unit_code", required=True, help="Code of the unit that took it up.")
@click.pass_context
@_guard
def units_ack(ctx, case_number, unit_code):
    """Record that a unit has taken a complaint up: `favad complaints ack CODE --unit UNIT`."""
    from accountability.commands import complaints_ack

    ctx.invoke(complaints_ack, code=case_number, unit_code=unit_code, as_name=None)
