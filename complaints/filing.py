"""The rows one complaint becomes (the complaint, its first event, its route, its outbox
messages) and the one function that writes them.

Two ways in, one write: the IVR's group writer hands a batch of fresh complaints straight to
``write``; a journal replay, a batch that hit a taken code, and the tests take ``file_one``,
which first looks up whether the complaint is stored already (exactly once) and then calls the
same ``write``. Route and messages come from a ``Plan`` (dispatch/outbox.py) that the caller
looks up once per agency and province.
"""
from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from clock.calendar import OfficeCalendar, load as load_calendar
from db import store
from db.models import Complaint, ComplaintEvent
from dispatch.models import ComplaintRoute, OutboxMessage
from dispatch.outbox import Plan, message_rows, plan_for, route_row
from common.tracking import new_case_number

C = Complaint.__table__
PlanFor = Callable[[int, int], Plan]  # (agency id, province id) -> the route of its complaints


class Draft(Protocol):
    """What the caller chose (``ivr.events.ComplaintDraft``)."""

    province_code: str
    agency_code: str
    office_code: str | None
    indicator_code: str
    recording: str | None


@dataclass
class NewComplaint:
    """A complaint ready to write: its row and the note of its first event."""

    row: dict
    note: str | None = None


def sla_due(calendar: OfficeCalendar, created: dt.datetime, hours: float) -> dt.datetime:
    """The unit's deadline: ``hours`` office hours on the office calendar, as the figures count them."""
    return calendar.add(created, hours * 60)


def new_complaint(draft: Draft, now: dt.datetime, sla_due_at: dt.datetime, code_hash: str,
                  case_number: str, ids: dict[tuple[str, str], int],
                  office_gone_ok: bool = False) -> NewComplaint:
    """The complaint for a draft (``ids``: ``store.reference_ids``). LookupError if it names
    reference data that is not there; with ``office_gone_ok`` (``ids`` fresh from the database)
    an office that no longer exists is dropped and the complaint filed against its agency and
    province, the change noted on its first event."""
    keys = [("province", draft.province_code), ("agency", draft.agency_code),
            ("indicator", draft.indicator_code)]
    if missing := [f"{kind} {code}" for kind, code in keys if (kind, code) not in ids]:
        raise LookupError(f"no such {', '.join(missing)} (any more)")
    office_id, note = None, None
    if draft.office_code:
        office_id = ids.get(("office", draft.office_code))
        if office_id is None and not office_gone_ok:
            raise LookupError(f"no such office {draft.office_code} (any more)")
        if office_id is None:
            note = f"office {draft.office_code} no longer exists: filed against its agency and province"
    return NewComplaint({
        "case_number": case_number, "code_hash": code_hash, "created_at": now,
        "province_id": ids[keys[0]], "agency_id": ids[keys[1]], "indicator_id": ids[keys[2]],
        "office_id": office_id, "status": "received", "outcome": None,
        "recording_path": draft.recording, "sla_due_at": sla_due_at}, note)


def write(s: Session, complaints: list[NewComplaint], plan: PlanFor) -> list[int]:
    """Write complaints with their first event, route and messages in four multi-row Core
    INSERTs, no lookups; their ids. No commit. A code hash or case number stored already
    raises IntegrityError: ``file_one`` tells a replay from a collision."""
    if not complaints:
        return []
    conn = s.connection()
    ids = conn.execute(insert(C).returning(C.c.id, sort_by_parameter_order=True),
                       [c.row for c in complaints]).scalars().all()
    events, routes, messages = [], [], []
    for complaint_id, c in zip(ids, complaints):
        p, now = plan(c.row["agency_id"], c.row["province_id"]), c.row["created_at"]
        events.append({"complaint_id": complaint_id, "at": now, "kind": "filed", "status": "received",
                       "actor": "ivr", "note": c.note})
        routes.append(route_row(p, complaint_id, now))
        messages += message_rows(p, complaint_id, "complaint", now)
    conn.execute(insert(ComplaintEvent.__table__), events)
    conn.execute(insert(ComplaintRoute.__table__), routes)
    if messages:
        conn.execute(insert(OutboxMessage.__table__), messages)
    return list(ids)


def file_one(s: Session, c: NewComplaint, plan: PlanFor,
             redraw: Callable[[], str] | None = None) -> tuple[int, str]:
    """``write`` one complaint unless it is stored already; (its id, its code hash). No commit.

    The same code hash, time, indicator and agency is the same complaint (a replay): found, not
    written twice. A code hash another complaint holds is drawn again with ``redraw`` (which
    gives the caller on the line a new code) or, for a replay nobody waits for, at random: the
    complaint is kept and forwarded, only its follow-up by phone is lost."""
    row = c.row
    while (same := s.execute(select(C.c.id, C.c.created_at, C.c.indicator_id, C.c.agency_id)
                             .where(C.c.code_hash == row["code_hash"])).first()) is not None:
        if (same.created_at, same.indicator_id, same.agency_id) == \
                (row["created_at"], row["indicator_id"], row["agency_id"]):
            return same.id, row["code_hash"]
        row["code_hash"] = redraw() if redraw else secrets.token_hex(32)
    while s.scalar(select(C.c.id).where(C.c.case_number == row["case_number"])) is not None:
        row["case_number"] = new_case_number()
    (complaint_id,) = write(s, [c], plan)
    return complaint_id, row["code_hash"]


def file_complaint(s: Session, draft: Draft, now: dt.datetime, sla_hours: float = 3.0,
                   code_hash: str | None = None, calendar: OfficeCalendar | None = None) -> Complaint:
    """File one complaint through ``file_one`` and commit, its hours counted on ``calendar``
    (the packaged office calendar by default), for tests, benchmarks and tools. ``code_hash``:
    the keyed hash of a caller's code (``common.keyring.code_hash``); none: a complaint nobody
    follows up by phone."""
    calendar = calendar or load_calendar()
    c = new_complaint(draft, now, sla_due(calendar, now, sla_hours),
                      code_hash or secrets.token_hex(32), new_case_number(), store.reference_ids(s),
                      office_gone_ok=True)
    complaint_id, _ = file_one(s, c, lambda agency_id, province_id: plan_for(s, agency_id, province_id, calendar))
    s.commit()
    return s.get(Complaint, complaint_id)
