"""`favad report monthly|cards|heatmap|send|simulate`: thin shells over reports/."""
from __future__ import annotations

import datetime as dt
import functools
import time
from pathlib import Path

import click

from clock import utcnow as _now
from config.cli import fail, load_settings
from presentation import fa_digits


# db.commands' helpers, imported when a command runs rather than when the command line starts:
# it imports SQLAlchemy (0.3 s), and `report monthly` starts its drawing process before that
def _session(ctx):
    from db.cli import session as _session

    return _session(ctx)


def _guard(fn):
    """``db.commands._guard``: a database that is down or not upgraded, a clear message."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        from db.cli import guard as _guard

        return _guard(fn)(*a, **kw)
    return wrapper


def _month(value: str | None):
    from reports import months

    try:
        return months.parse(value) if value else months.last_complete(_now())
    except months.MonthError as e:
        fail(str(e), 2)


def _params(settings):
    from clock.calendar import CalendarError, load
    from reports.monthly import Params

    try:
        cal = load(settings.office_calendar or None)
    except CalendarError as e:
        fail(str(e), 2)
    return Params(cal, settings.sla_hours, settings.ack_target_hours)


def _build(ctx, month, as_of: dt.datetime):
    from reports.monthly import from_db

    settings = load_settings(ctx)
    with _session(ctx) as s:
        return from_db(s, month, _params(settings), as_of)


def _out_dir(ctx, out: str | None, month) -> Path:
    settings = load_settings(ctx)
    path = Path(out) if out else Path(settings.reports_dir or Path(settings.data_dir, "reports"), month.key)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        click.echo(str(folder / name))


_MONTH = click.option("--month", help="Jalali 1404-07 or Gregorian 2025-10 (default: the last complete month).")
def _as_of(value: str | None) -> dt.datetime:
    if not value:
        return _now()
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        fail(f"--as-of {value!r}: write an ISO time, e.g. 2025-10-23T00:00+03:30", 2)
    return at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)


_AS_OF = click.option("--as-of", "as_of", help="Measure handling as it stood then (ISO time; default now).")
_OUT = click.option("--out", type=click.Path(file_okay=False), help="Folder (default: reports_dir/<month>).")


@click.group()
def report():
    """Monthly reports, agency report cards and the heat map."""


@report.command("monthly")
@_MONTH
@_AS_OF
@_OUT
@click.option("--format", "formats", default="html,pdf,csv", show_default=True,
              help="Comma-separated: html, pdf, csv (the heat maps always come along).")
@click.pass_context
def report_monthly(ctx, month, as_of, out, formats):
    """The month's report per agency and province: HTML, PDF and CSV."""
    from reports import drawing

    m = _month(month)
    wanted = tuple(f.strip() for f in formats.split(",") if f.strip())
    if bad := set(wanted) - {"html", "pdf", "csv"}:
        fail(f"unknown format(s): {', '.join(sorted(bad))}", 2)
    at = _as_of(as_of)
    started = time.monotonic()
    now = _now()
    # the heat maps' process first: forked before a connection is open and before SQLAlchemy and
    # the report's modules are imported here, so that it imports matplotlib meanwhile
    with drawing.start() as pool:
        rep, files = _guard(_monthly)(ctx, m, at, now, wanted, pool)
    _write(_out_dir(ctx, out, m), files)
    click.echo(f"{m.key}: {rep.total.complaints} complaints, {rep.total.calls} calls "
               f"({time.monotonic() - started:.1f} s)", err=True)


def _monthly(ctx, month, as_of, now, wanted, pool):
    from reports import publish

    rep = _build(ctx, month, as_of)
    return rep, publish.monthly(rep, now, wanted, pool)


@report.command("heatmap")
@_MONTH
@_AS_OF
@_OUT
@click.pass_context
@_guard
def report_heatmap(ctx, month, as_of, out):
    """Where complaints concentrate: province map, agency × indicator, the top offices."""
    from presentation import table
    from reports import publish

    m = _month(month)
    rep = _build(ctx, m, _as_of(as_of))
    _write(_out_dir(ctx, out, m), publish.images(rep))
    table([{"complaints": h.complaints, "office": f"{h.office_fa} ({h.office_code})", "city": h.city_fa,
            "leading indicator": h.indicator_fa,
            "share": f"{h.indicator_share:.0f}%" if h.indicator_share is not None else f"{h.indicator_count} of {h.complaints}"}
           for h in rep.hotspots], ["complaints", "office", "city", "leading indicator", "share"])


@report.command("cards")
@_MONTH
@_AS_OF
@_OUT
@click.option("--agency", "only", multiple=True, help="Only this agency's card (repeat for more).")
@click.option("--send", is_flag=True, help="Email each card to its agency's recipients through the outbox.")
@click.pass_context
@_guard
def report_cards(ctx, month, as_of, out, only, send):
    """One report card per agency (HTML and PDF); with --send, emailed to the agency."""
    from reports import cards, mail

    settings = load_settings(ctx)
    m = _month(month)
    now = _now()
    rep = _build(ctx, m, _as_of(as_of))
    try:
        recipients = cards.recipients(settings.report_recipients or None)
    except cards.RecipientsError as e:
        fail(str(e), 2)
    if unknown := set(only) - {a.key for a in rep.agencies}:
        fail(f"no agency with code {', '.join(sorted(unknown))}", 2)
    made = cards.make(rep, now, set(only) or None)
    folder = _out_dir(ctx, out, m) / "cards"
    _write(folder, {f"{c.agency_code}.{ext}": data for c in made for ext, data in
                    (("html", c.html.encode()), ("pdf", c.pdf))})
    if not send:
        return
    with _session(ctx) as s:
        queued, missing = mail.queue_cards(s, m.key, made, recipients, now)
        s.commit()
    for code in missing:
        click.echo(f"favad: warning: agency {code} has no recipients in the report recipients "
                   f"file; its card was not sent", err=True)
    sent, failed, _ = _deliver(settings)
    click.echo(f"{queued} messages queued; {sent} sent, {failed} to retry (the dispatcher retries them)")


def _deliver(settings) -> tuple[int, int, dict]:
    """Send the report cards due now through the outbox; (sent, failed tries, counts)."""
    from config import ConfigError
    from dispatch.runner import Dispatcher
    from reports import mail

    try:
        dispatcher = Dispatcher(settings)
    except ConfigError as e:
        fail(str(e), 2)
    try:
        dispatcher.drain(kinds=(mail.KIND,))
        with dispatcher.Session() as s:
            counts = mail.counts(s)
    finally:
        dispatcher.close()
    return dispatcher.sent, dispatcher.failed, counts


@report.command("send")
@click.pass_context
@_guard
def report_send(ctx):
    """Send the report cards due now (the dispatcher also sends them, with the other messages)."""
    sent, failed, counts = _deliver(load_settings(ctx))
    click.echo(f"{sent} sent, {failed} to retry; report cards in the outbox: "
               + ("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "none"))


@report.command("simulate")
@_MONTH
@click.option("--complaints", type=click.IntRange(0, 1_000_000), default=2000, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--yes", is_flag=True, help="Do it without asking (it adds rows to the database).")
@click.pass_context
@_guard
def report_simulate(ctx, month, complaints, seed, yes):
    """Fill a month with simulated calls, complaints and unit actions (demos, measurements)."""
    from reports.simulate import simulate

    settings = load_settings(ctx)
    m = _month(month)
    if not yes:
        click.confirm(f"add {complaints} simulated complaints to {settings.db_url.split('://')[0]} "
                      f"for {m.key}?", abort=True)
    with _session(ctx) as s:
        n = simulate(s, m, complaints, _params(settings).calendar, seed)
    click.echo(f"{n} simulated complaints added to {m.key} ({fa_digits(m.name_fa)})")
