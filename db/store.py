"""The writes and reads the call flow and the CLI need; each takes a Session, none commits
unless its docstring says so."""
from __future__ import annotations

import datetime as dt
import logging
import tomllib
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import (
    Agency,
    CallerActivity,
    CallRecord,
    Complaint,
    ComplaintEvent,
    ComplaintRating,
    Indicator,
    Office,
    Province,
)
from dispatch.outbox import enqueue_complaint
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


def reference_ids(s: Session) -> dict[tuple[str, str], int]:
    """(kind, code) -> id for provinces, agencies, offices and indicators: looked up once,
    not in every call's transaction."""
    ids: dict[tuple[str, str], int] = {}
    for kind, model, col in (("province", Province, Province.area_code), ("agency", Agency, Agency.code),
                             ("office", Office, Office.code), ("indicator", Indicator, Indicator.code)):
        ids.update({(kind, code): id_ for id_, code in s.execute(select(model.id, col))})
    return ids


def add_complaint(s: Session, draft: ComplaintDraft, now: dt.datetime, sla_hours: float,
                  code: str | None = None, ids: dict | None = None,
                  sla_due_at: dt.datetime | None = None) -> Complaint:
    """Add a complaint, its first event and its outgoing messages to the session (no commit).

    ``code``: the code the caller hears (drawn before storing, so a journaled copy carries the
    same one). Adding the same complaint twice returns the first (exactly-once replay); a code
    taken by another complaint is drawn again.
    """
    keys = [("province", draft.province_code), ("agency", draft.agency_code),
            ("indicator", draft.indicator_code)] + ([("office", draft.office_code)] if draft.office_code else [])
    if ids is None or any(k not in ids for k in keys):  # no cache, or added since it was taken
        ids = reference_ids(s)
    if any(k not in ids for k in keys):
        raise LookupError("complaint refers to reference data that no longer exists")
    province_id, agency_id, indicator_id = (ids[k] for k in keys[:3])
    office_id = ids[keys[3]] if draft.office_code else None
    code = code or new_code()
    while (same := s.scalar(select(Complaint).where(Complaint.tracking_code == code))) is not None:
        if (same.created_at, same.indicator_id, same.agency_id) == (now, indicator_id, agency_id):
            return same  # stored before: exactly once
        code = new_code()  # taken by another complaint (or, replaying, meanwhile): draw again
    complaint = Complaint(
        tracking_code=code, created_at=now, province_id=province_id, agency_id=agency_id,
        office_id=office_id, indicator_id=indicator_id, status="received",
        recording_path=draft.recording,
        sla_due_at=sla_due_at or now + dt.timedelta(hours=sla_hours),
    )
    complaint.events.append(ComplaintEvent(at=now, kind="filed", status="received", actor="ivr"))
    s.add(complaint)
    enqueue_complaint(s, complaint, now)  # same transaction: the transactional outbox
    s.flush()
    return complaint


def file_complaint(s: Session, draft: ComplaintDraft, now: dt.datetime, sla_hours: float,
                   code: str | None = None) -> Complaint:
    """``add_complaint`` and commit; a race on the tracking code with another server retries."""
    for _ in range(5):
        try:
            complaint = add_complaint(s, draft, now, sla_hours, code)
            s.commit()
            return complaint
        except IntegrityError:
            s.rollback()
    raise RuntimeError("could not store the complaint under a unique tracking code")


def complaint_status(s: Session, code: str) -> tuple[str, str | None, bool] | None:
    """(status, outcome, rated already) of a complaint, or None."""
    row = s.execute(select(Complaint.status, Complaint.outcome, ComplaintRating.id)
                    .outerjoin(ComplaintRating, ComplaintRating.complaint_id == Complaint.id)
                    .where(Complaint.tracking_code == code)).first()
    return (row[0], row[1], row[2] is not None) if row else None


def add_rating(s: Session, code: str, rating: int, now: dt.datetime) -> bool:
    """Keep the first rating of a complaint; False if it was rated already. No commit."""
    complaint_id = s.scalar(select(Complaint.id).where(Complaint.tracking_code == code))
    if complaint_id is None or s.scalar(select(ComplaintRating.id)
                                        .where(ComplaintRating.complaint_id == complaint_id)):
        return False
    s.add(ComplaintRating(complaint_id=complaint_id, rating=rating, at=now))
    s.flush()
    return True


def add_call_record(s: Session, started_at: dt.datetime, province_code: str | None, outcome: str,
                    duration_s: int, caller_hash: str | None, period: str,
                    ids: dict | None = None) -> None:
    """The call's anonymous record, and the caller-hash counters (unlinked to it); no commit.

    Core statements and one upsert: this runs for every call, on the writer thread."""
    ids = reference_ids(s) if ids is None else ids
    s.execute(insert(CallRecord).values(started_at=started_at, outcome=outcome, duration_s=duration_s,
                                        province_id=ids.get(("province", province_code))))
    if caller_hash:
        filed = 1 if outcome == "complaint_filed" else 0
        dialect_insert = pg_insert if s.bind.dialect.name == "postgresql" else sqlite_insert
        A = CallerActivity
        stmt = dialect_insert(A).values(period=period, caller_hash=caller_hash, calls=1, complaints=filed)
        s.execute(stmt.on_conflict_do_update(
            index_elements=[A.period, A.caller_hash],
            set_={"calls": A.calls + 1, "complaints": A.complaints + filed}))


def record_call(s: Session, *args) -> None:
    """``add_call_record`` and commit (another call of the same caller may race the counter)."""
    for _ in range(3):
        try:
            add_call_record(s, *args)
            s.commit()
            return
        except IntegrityError:
            s.rollback()
    raise RuntimeError("could not record the call")
