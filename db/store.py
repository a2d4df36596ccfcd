"""The writes and reads the call flow and the CLI need; each takes a Session, none commits
unless its docstring says so."""
from __future__ import annotations

import datetime as dt
import logging
import tomllib
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import (
    Agency,
    CallerActivity,
    CallRecord,
    Complaint,
    ComplaintEvent,
    Indicator,
    Office,
    Province,
)
from ivr.directory import Directory, OfficeInfo
from ivr.events import ComplaintDraft
from ivr.tracking import new_code

HERE = Path(__file__).parent
log = logging.getLogger(__name__)


def _toml(name: str) -> dict:
    return tomllib.loads((HERE / name).read_text(encoding="utf-8"))


def load_reference(s: Session) -> None:
    """Insert missing provinces and indicators; existing activation dates are kept. Commits."""
    data = _toml("reference.toml")
    have = {p.area_code: p for p in s.scalars(select(Province))}
    for row in data["province"]:
        if row["area_code"] not in have:
            s.add(Province(**row))
    have_ind = {i.id: i for i in s.scalars(select(Indicator))}
    for row in data["indicator"]:
        if row["id"] in have_ind:
            for k, v in row.items():
                setattr(have_ind[row["id"]], k, v)
        else:
            s.add(Indicator(**row))
    s.commit()


def load_demo(s: Session) -> tuple[int, int]:
    """Insert the demo agencies and offices that are missing; (agencies, offices) added. Commits."""
    load_reference(s)
    data = _toml("demo.toml")
    agencies = {a.code: a for a in s.scalars(select(Agency))}
    added_a = added_o = 0
    for row in data["agency"]:
        if row["code"] not in agencies:
            agencies[row["code"]] = Agency(**row)
            s.add(agencies[row["code"]])
            added_a += 1
    s.flush()
    provinces = {p.area_code: p for p in s.scalars(select(Province))}
    offices = set(s.scalars(select(Office.code)))
    for row in data["office"]:
        if row["code"] in offices:
            continue
        s.add(Office(code=row["code"], name_fa=row["name_fa"], city_fa=row["city_fa"],
                     agency=agencies[row["agency"]], province=provinces[row["province"]]))
        added_o += 1
    s.commit()
    return added_a, added_o


def directory(s: Session, today: dt.date) -> Directory:
    """The snapshot of reference data a call needs."""
    provinces = list(s.scalars(select(Province)))
    offices = s.execute(
        select(Office.code, Agency.code, Province.area_code)
        .join(Agency, Office.agency_id == Agency.id)
        .join(Province, Office.province_id == Province.id)
    )
    return Directory(
        active_provinces=frozenset(p.area_code for p in provinces
                                   if p.activated_on is not None and p.activated_on <= today),
        known_provinces=frozenset(p.area_code for p in provinces),
        agencies=frozenset(s.scalars(select(Agency.code))),
        offices={o: OfficeInfo(o, a, pr) for o, a, pr in offices},
        indicators=frozenset(s.scalars(select(Indicator.code))),
    )


def file_complaint(s: Session, draft: ComplaintDraft, now: dt.datetime, sla_hours: float,
                   code: str | None = None) -> Complaint:
    """Store a complaint with its first event under a fresh tracking code. Commits.

    ``code``: the code the caller already heard (a journal replay). Storing the same journaled
    complaint twice returns the first; a code taken by another complaint is drawn again.
    """
    province_id = s.scalar(select(Province.id).where(Province.area_code == draft.province_code))
    agency_id = s.scalar(select(Agency.id).where(Agency.code == draft.agency_code))
    office_id = (s.scalar(select(Office.id).where(Office.code == draft.office_code))
                 if draft.office_code else None)
    indicator_id = s.scalar(select(Indicator.id).where(Indicator.code == draft.indicator_code))
    if None in (province_id, agency_id, indicator_id) or (draft.office_code and office_id is None):
        raise LookupError("complaint refers to reference data that no longer exists")
    if code is not None:
        same = s.scalar(select(Complaint).where(Complaint.tracking_code == code))
        if same is not None:
            if (same.created_at, same.indicator_id, same.agency_id) == (now, indicator_id, agency_id):
                return same  # replayed before: exactly once
            log.error("a journaled tracking code was taken meanwhile; a new one is drawn")
            code = None
    for _ in range(5):
        complaint = Complaint(
            tracking_code=code or new_code(), created_at=now, province_id=province_id,
            agency_id=agency_id, office_id=office_id, indicator_id=indicator_id,
            status="received", recording_path=draft.recording,
            sla_due_at=now + dt.timedelta(hours=sla_hours),
        )
        complaint.events.append(ComplaintEvent(at=now, kind="filed", status="received", actor="ivr"))
        s.add(complaint)
        try:
            s.commit()
            return complaint
        except IntegrityError:  # a tracking code collided: draw again
            s.rollback()
            if code is not None:  # or another replayer stored this very entry just now
                same = s.scalar(select(Complaint).where(Complaint.tracking_code == code))
                if same is not None and same.created_at == now and same.agency_id == agency_id:
                    return same
            code = None
    raise RuntimeError("could not draw a unique tracking code")


def complaint_status(s: Session, code: str) -> tuple[str, str | None] | None:
    row = s.execute(select(Complaint.status, Complaint.outcome)
                    .where(Complaint.tracking_code == code)).first()
    return (row[0], row[1]) if row else None


def record_call(s: Session, started_at: dt.datetime, province_code: str | None, outcome: str,
                duration_s: int, caller_hash: str | None, period: str) -> None:
    """The call's anonymous record, and the caller-hash counters (unlinked to it). Commits."""
    province_id = (s.scalar(select(Province.id).where(Province.area_code == province_code))
                   if province_code else None)
    s.add(CallRecord(started_at=started_at, province_id=province_id, outcome=outcome,
                     duration_s=duration_s))
    if caller_hash:
        filed = 1 if outcome == "complaint_filed" else 0
        done = s.execute(
            update(CallerActivity)
            .where(CallerActivity.period == period, CallerActivity.caller_hash == caller_hash)
            .values(calls=CallerActivity.calls + 1, complaints=CallerActivity.complaints + filed)
        ).rowcount
        if not done:
            s.add(CallerActivity(period=period, caller_hash=caller_hash, calls=1, complaints=filed))
    try:
        s.commit()
    except IntegrityError:  # another call of the same caller inserted the counter first
        s.rollback()
        record_call(s, started_at, province_code, outcome, duration_s, caller_hash, period)
