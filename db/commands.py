"""`favad db ...`, `favad complaints ...` and the reference-data listings."""
from __future__ import annotations

import json
from pathlib import Path

import click
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from config.cli import fail, load_settings
from db.cli import emit as _emit, guard as _guard, session as _session
from db.models import Agency, Complaint, Office, Province
from presentation import jalali, table


@click.group()
def db():
    """Database schema and data."""


@db.command("upgrade")
@click.pass_context
@_guard
def db_upgrade(ctx):
    """Migrate the schema to the latest version and load the reference data."""
    from migrations.run import upgrade
    from db.store import load_reference
    from ivr.reference import refresh_after_change

    settings = load_settings(ctx)
    upgrade(settings.db_url, keyring=settings.keyring())
    old_key = Path(settings.data_dir, "caller-hash.key")  # the unrotated key of caller_activity (0005)
    if old_key.exists():
        old_key.unlink()
    with _session(ctx) as s:
        load_reference(s)
    refresh_after_change(settings)  # the snapshot classic AGI starts from (ivr/snapshot.py)
    click.echo(f"database is up to date ({settings.db_url.split('://')[0]})")


@db.command("demo")
@click.pass_context
@_guard
def db_demo(ctx):
    """Load the demo agencies, offices and inspection units (idempotent)."""
    from db.store import load_demo
    from dispatch.units import load_demo_units
    from ivr.reference import refresh_after_change

    with _session(ctx) as s:
        agencies, offices = load_demo(s)
        units = load_demo_units(s)
    refresh_after_change(load_settings(ctx))
    click.echo(f"demo data loaded: {agencies} agencies, {offices} offices and {units} inspection "
               f"units added")


def complaint_dict(c: Complaint) -> dict:
    return {
        "case_number": c.case_number,
        "created_at": c.created_at.isoformat().replace("+00:00", "Z"),
        "province": c.province.area_code,
        "province_name": c.province.name_fa,
        "agency": c.agency.code,
        "agency_name": c.agency.name_fa,
        "office": c.office.code if c.office else None,
        "office_name": c.office.name_fa if c.office else None,
        "indicator": c.indicator.code,
        "indicator_name": c.indicator.name_fa,
        "status": c.status,
        "outcome": c.outcome,
        "has_recording": bool(c.recording_path),
        "sla_due_at": c.sla_due_at.isoformat().replace("+00:00", "Z"),
    }


def _complaints_query():
    return select(Complaint).options(
        joinedload(Complaint.province), joinedload(Complaint.agency),
        joinedload(Complaint.office), joinedload(Complaint.indicator))


@click.group()
def complaints():
    """Complaints filed through 128."""


@complaints.command("list")
@click.option("--status", type=click.Choice(["received", "forwarded", "under_review", "resolved"]))
@click.option("--province", help="Area code, e.g. 28.")
@click.option("--agency", help="Agency code, e.g. 101.")
@click.option("--limit", type=click.IntRange(1, 100000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@_guard
def complaints_list(ctx, status, province, agency, limit, as_json):
    """List complaints, newest first."""
    q = _complaints_query().order_by(Complaint.created_at.desc(), Complaint.id.desc()).limit(limit)
    if status:
        q = q.where(Complaint.status == status)
    if province:
        q = q.join(Complaint.province).where(Province.area_code == province)
    if agency:
        q = q.join(Complaint.agency).where(Agency.code == agency)
    with _session(ctx) as s:
        rows = [complaint_dict(c) for c in s.scalars(q).unique()]
    if not as_json:
        for r in rows:
            r["created"] = jalali(r["created_at"])
            r["sla_due"] = jalali(r["sla_due_at"])
    _emit(rows, as_json, ["case_number", "created", "province_name", "agency_name",
                          "indicator_name", "status", "sla_due"])


@complaints.command("show")
@click.argument("code")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@_guard
def complaints_show(ctx, code, as_json):
    """One complaint and its history."""
    with _session(ctx) as s:
        c = s.scalars(_complaints_query().options(joinedload(Complaint.events))
                      .where(Complaint.case_number == code.strip().upper())).unique().first()
        if c is None:
            fail(f"no complaint with case number {code!r}", 1)
        row = complaint_dict(c)
        row["history"] = [{"at": e.at.isoformat().replace("+00:00", "Z"), "event": e.kind,
                           "status": e.status, "actor": e.actor, "note": e.note} for e in c.events]
    if as_json:
        click.echo(json.dumps(row, ensure_ascii=False, indent=2))
        return
    for key, value in row.items():
        if key != "history":
            click.echo(f"{key:>15}: {jalali(value) if key.endswith('_at') else value}")
    table([{**h, "at": jalali(h["at"])} for h in row["history"]], ["at", "event", "status", "actor"])


@click.group()
def provinces():
    """The 31 provinces and where 128 is live."""


@provinces.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_guard
def provinces_list(ctx, as_json):
    """List provinces with their area code and activation date."""
    from clock import today as tehran_today

    today = tehran_today()
    with _session(ctx) as s:
        rows = [{"area_code": p.area_code, "name_fa": p.name_fa, "name_en": p.name_en,
                 "activated_on": p.activated_on.isoformat() if p.activated_on else None,
                 "active": p.activated_on is not None and p.activated_on <= today}
                for p in s.scalars(select(Province).order_by(Province.activated_on.is_(None),
                                                             Province.activated_on, Province.area_code))]
    _emit(rows, as_json, ["area_code", "name_fa", "name_en", "activated_on"])


@click.group()
def agencies():
    """Agencies (ministries and organizations)."""


@agencies.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_guard
def agencies_list(ctx, as_json):
    """List agencies with the code a caller can dial."""
    with _session(ctx) as s:
        rows = [{"code": a.code, "name_fa": a.name_fa, "name_en": a.name_en}
                for a in s.scalars(select(Agency).order_by(Agency.code))]
    _emit(rows, as_json, ["code", "name_fa", "name_en"])


@click.group()
def offices():
    """Offices, by the code displayed at each one."""


@offices.command("list")
@click.option("--province", help="Area code, e.g. 28.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_guard
def offices_list(ctx, province, as_json):
    """List offices with their agency and province."""
    q = select(Office).options(joinedload(Office.agency), joinedload(Office.province)).order_by(Office.code)
    if province:
        q = q.join(Office.province).where(Province.area_code == province)
    with _session(ctx) as s:
        rows = [{"code": o.code, "name_fa": o.name_fa, "city_fa": o.city_fa,
                 "agency": o.agency.code, "agency_name": o.agency.name_fa,
                 "province": o.province.area_code, "province_name": o.province.name_fa}
                for o in s.scalars(q)]
    _emit(rows, as_json, ["code", "name_fa", "city_fa", "agency", "province"])
