"""The writes and reads the call flow and the CLI need; each takes a Session, none commits
unless its docstring says so."""
from __future__ import annotations

import datetime as dt
import logging
import secrets
import tomllib
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import (
    Agency,
    CallRecord,
    Complaint,
    ComplaintEvent,
    ComplaintRating,
    Indicator,
    Office,
    Province,
)
from dispatch.models import ComplaintRoute, OutboxMessage
from dispatch.outbox import Plan, enqueue_complaint, message_rows, route_row
from ivr.directory import Directory, OfficeInfo
from ivr.events import ComplaintDraft
from ivr.tracking import new_case_number

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


def complaint_row(draft: ComplaintDraft, now: dt.datetime, sla_due_at: dt.datetime, code_hash: str,
                  case_number: str, ids: dict[tuple[str, str], int]) -> dict:
    """The complaints row for a draft (ids: ``reference_ids``); LookupError if it refers to
    reference data that is not (or no longer) there."""
    keys = [("province", draft.province_code), ("agency", draft.agency_code),
            ("indicator", draft.indicator_code)] + ([("office", draft.office_code)] if draft.office_code else [])
    if any(k not in ids for k in keys):
        raise LookupError("complaint refers to reference data that no longer exists")
    return {"case_number": case_number, "code_hash": code_hash, "created_at": now,
            "province_id": ids[keys[0]], "agency_id": ids[keys[1]], "indicator_id": ids[keys[2]],
            "office_id": ids[keys[3]] if draft.office_code else None, "status": "received",
            "outcome": None, "recording_path": draft.recording, "sla_due_at": sla_due_at}


def _filed_event(at: dt.datetime) -> dict:
    """A complaint's first event (the same through both paths)."""
    return {"at": at, "kind": "filed", "status": "received", "actor": "ivr", "note": None}


def add_complaint(s: Session, draft: ComplaintDraft, now: dt.datetime, sla_due_at: dt.datetime,
                  code_hash: str, case_number: str | None = None, ids: dict | None = None,
                  redraw: Callable[[], str] | None = None) -> Complaint:
    """Add a complaint, its first event and its outgoing messages to the session (no commit).

    ``code_hash``: the keyed hash of the code the caller hears (drawn before storing, so a
    journaled copy carries the same one). Adding the same complaint twice returns the first
    (exactly-once replay). A hash taken by another complaint is drawn again with ``redraw``
    (which gives the caller a new code), or, for a replay nobody waits for, at random: the
    complaint is kept and forwarded, only its follow-up by phone is lost. The careful path:
    ``insert_complaints`` is the fast one.
    """
    case_number = case_number or new_case_number()
    try:
        row = complaint_row(draft, now, sla_due_at, code_hash, case_number, ids or {})
    except LookupError:  # no cache, or added since it was taken
        row = complaint_row(draft, now, sla_due_at, code_hash, case_number, reference_ids(s))
    while (same := s.scalar(select(Complaint).where(Complaint.code_hash == row["code_hash"]))) is not None:
        if (same.created_at, same.indicator_id, same.agency_id) == (now, row["indicator_id"], row["agency_id"]):
            return same  # stored before: exactly once
        row["code_hash"] = redraw() if redraw else secrets.token_hex(32)
    while s.scalar(select(Complaint.id).where(Complaint.case_number == row["case_number"])) is not None:
        row["case_number"] = new_case_number()
    complaint = Complaint(**row)
    complaint.events.append(ComplaintEvent(**_filed_event(now)))
    s.add(complaint)
    enqueue_complaint(s, complaint, now)  # same transaction: the transactional outbox
    s.flush()
    return complaint


def insert_complaints(s: Session, rows: list[dict], plan: Callable[[int, int], Plan]) -> list[str]:
    """Store new complaints (``complaint_row``s) with their first event, route and messages:
    a handful of multi-row Core INSERTs for the whole batch, no lookups (``plan`` gives the
    route of an (agency id, province id), usually from a cache). No commit.

    The fast path for fresh codes: a code hash or case number already stored raises
    IntegrityError, and the caller then takes ``add_complaint`` one by one, which tells a
    replay from a collision. Returns the stored code hashes."""
    if not rows:
        return []
    conn = s.connection()
    C = Complaint.__table__
    ids = conn.execute(insert(C).returning(C.c.id, sort_by_parameter_order=True), rows).scalars().all()
    events, routes, messages = [], [], []
    for complaint_id, row in zip(ids, rows):
        p, now = plan(row["agency_id"], row["province_id"]), row["created_at"]
        events.append({"complaint_id": complaint_id, **_filed_event(now)})
        routes.append(route_row(p, complaint_id, now))
        messages += message_rows(p, complaint_id, "complaint", now)
    conn.execute(insert(ComplaintEvent.__table__), events)
    conn.execute(insert(ComplaintRoute.__table__), routes)
    if messages:
        conn.execute(insert(OutboxMessage.__table__), messages)
    return [row["code_hash"] for row in rows]


def file_complaint(s: Session, draft: ComplaintDraft, now: dt.datetime, sla_hours: float = 3.0,
                   code_hash: str | None = None, calendar=None) -> Complaint:
    """``add_complaint`` and commit, its hours counted as office hours on ``calendar`` (the
    packaged one by default), as the IVR counts them. ``code_hash``: the keyed hash of a
    caller's code (``ivr.keyring.code_hash``); none: a complaint nobody follows up by phone."""
    from accountability.calendar import load

    due = (calendar or load()).add(now, sla_hours * 60)
    for _ in range(5):
        try:
            complaint = add_complaint(s, draft, now, due, code_hash or secrets.token_hex(32))
            s.commit()
            return complaint
        except IntegrityError:
            s.rollback()
    raise RuntimeError("could not store the complaint under a unique code")


def undisguised_recordings(s: Session) -> frozenset[str]:
    """Recordings of complaints filed before voices were disguised (ivr/voice.py)."""
    return frozenset(s.scalars(select(Complaint.recording_path).where(
        Complaint.recording_path.is_not(None), Complaint.recording_path.not_like("%.v.wav"))))


def complaint_status(s: Session, code_hash: str) -> tuple[str, str | None, bool] | None:
    """(status, outcome, rated already) of the complaint a caller's code hash names, or None."""
    row = s.execute(select(Complaint.status, Complaint.outcome, ComplaintRating.id)
                    .outerjoin(ComplaintRating, ComplaintRating.complaint_id == Complaint.id)
                    .where(Complaint.code_hash == code_hash)).first()
    return (row[0], row[1], row[2] is not None) if row else None


def add_rating(s: Session, code_hash: str, rating: int, now: dt.datetime) -> bool:
    """Keep the first rating of a complaint; False if it was rated already. No commit."""
    complaint_id = s.scalar(select(Complaint.id).where(Complaint.code_hash == code_hash))
    if complaint_id is None or s.scalar(select(ComplaintRating.id)
                                        .where(ComplaintRating.complaint_id == complaint_id)):
        return False
    s.add(ComplaintRating(complaint_id=complaint_id, rating=rating, at=now))
    s.flush()
    return True


def add_call_record(s: Session, started_at: dt.datetime, province_code: str | None, outcome: str,
                    duration_s: int, ids: dict | None = None) -> None:
    """The call's anonymous record; no commit."""
    add_call_records(s, [{"started_at": started_at, "province_code": province_code, "outcome": outcome,
                          "duration_s": duration_s}], reference_ids(s) if ids is None else ids)


def add_call_records(s: Session, calls: list[dict], ids: dict) -> None:
    """Many calls' records in one statement (Core; runs for every call, on the writer thread).
    The start is kept to the minute: the complaint keeps its exact time, and a call record must
    not single out which call of its minute filed it."""
    if not calls:
        return
    s.connection().execute(insert(CallRecord.__table__), [
        {"started_at": c["started_at"].replace(second=0, microsecond=0), "outcome": c["outcome"],
         "duration_s": c["duration_s"], "province_id": ids.get(("province", c["province_code"]))}
        for c in calls])


def record_call(s: Session, *args) -> None:
    """``add_call_record`` and commit."""
    add_call_record(s, *args)
    s.commit()
