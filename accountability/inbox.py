"""A unit's inbox, as data: its open complaints nearest deadline first with the time left on the
office clock, each complaint's history, the ones it resolved lately; and the links that open
it (long-lived, signed with the link keys, revoked by a step of the unit's generation).

Pure queries over a session; the pages are ``web/staff/inbox.py``. A unit sees what
``Scope(unit_id=...)`` gives it (routed to it, or escalated to it) and nothing of the caller:
the case number, never the tracking code or its hash.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accountability.models import UnitInbox
from accountability.scope import Scope
from clock.calendar import OfficeCalendar
from common import links
from db.models import Agency, Complaint, ComplaintEvent, Indicator, Office, Province
from dispatch.models import ComplaintRoute, InspectionUnit

RESOLVED_MONTHS = 3  # how far back the inbox lists what the unit resolved
RESOLVED_LIMIT = 200  # a busy unit's quarter; the rest is in the reports


@dataclass(frozen=True)
class Entry:
    """One complaint as a unit's inbox lists it."""

    complaint_id: int
    case_number: str
    status: str
    indicator_fa: str
    agency_fa: str
    province_fa: str
    office_fa: str | None
    filed_at: dt.datetime
    due_at: dt.datetime  # the SLA deadline stored when it was filed (sla_hours of office time)
    minutes_left: float  # office minutes to the deadline; negative: how late, in office minutes
    escalates_at: dt.datetime | None  # when it goes to the escalation office if not taken up
    escalated_here: bool  # it came to this unit as the escalation office
    escalated: bool  # it went to the escalation office (this unit's or, for the unit it is routed to, up)
    outcome: str | None = None
    resolved_at: dt.datetime | None = None

    @property
    def late(self) -> bool:
        return self.minutes_left < 0


# ---- the clock -------------------------------------------------------------------------------
def minutes_left(calendar: OfficeCalendar, due: dt.datetime, now: dt.datetime) -> float:
    """Office minutes from ``now`` to ``due``; past it, minus the office minutes since (a
    deadline passed at closing time is late by 0 until the office opens: then negative)."""
    if now < due:
        return calendar.minutes(now, due)
    return -max(calendar.minutes(due, now), 1 / 60)  # late from the first second


def clock_running(calendar: OfficeCalendar, now: dt.datetime) -> bool:
    """Whether office time passes now (the three hours stand still at night and on holidays)."""
    return calendar.next_open(now) <= now


# ---- the lists -------------------------------------------------------------------------------
def _entries(s: Session, unit_id: int, stmt, calendar: OfficeCalendar, now: dt.datetime,
             resolved_at=None) -> list[Entry]:
    """``stmt`` selects complaints; ``resolved_at``: a column with each one's resolution."""
    R = ComplaintRoute
    extra = () if resolved_at is None else (resolved_at,)
    stmt = (stmt.add_columns(Indicator.name_fa, Agency.name_fa, Province.name_fa, Office.name_fa,
                             R.unit_id, R.escalation_unit_id, R.escalate_at, R.acknowledged_at,
                             R.escalated_at, *extra)
            .join(Indicator, Indicator.id == Complaint.indicator_id)
            .join(Agency, Agency.id == Complaint.agency_id)
            .join(Province, Province.id == Complaint.province_id)
            .outerjoin(Office, Office.id == Complaint.office_id)
            .join(R, R.complaint_id == Complaint.id))
    out = []
    for row in s.execute(Scope(unit_id=unit_id).complaints(stmt)):
        c, ind, ag, pr, off, routed_to, esc_to, esc_at, acked, escalated, *more = row
        waiting = c.status != "resolved" and acked is None and escalated is None and routed_to == unit_id
        out.append(Entry(
            c.id, c.case_number, c.status, ind, ag, pr, off, c.created_at, c.sla_due_at,
            minutes_left(calendar, c.sla_due_at, now),
            esc_at if waiting and esc_to and esc_to != unit_id else None,
            escalated is not None and esc_to == unit_id and routed_to != unit_id, escalated is not None,
            c.outcome, more[0] if more else None))
    return out


def waiting(s: Session, unit_id: int, calendar: OfficeCalendar, now: dt.datetime) -> list[Entry]:
    """The unit's open complaints, nearest deadline first (the late ones, then the rest)."""
    stmt = (select(Complaint).where(Complaint.status != "resolved")
            .order_by(Complaint.sla_due_at, Complaint.created_at, Complaint.id))
    return _entries(s, unit_id, stmt, calendar, now)


def resolved(s: Session, unit_id: int, calendar: OfficeCalendar, now: dt.datetime,
             months: int = RESOLVED_MONTHS, limit: int = RESOLVED_LIMIT) -> list[Entry]:
    """The unit's complaints resolved in the last ``months`` (30.5 days each), latest first."""
    E = ComplaintEvent
    done = (select(E.complaint_id, func.max(E.at).label("at")).where(E.kind == "resolved")
            .group_by(E.complaint_id).subquery())
    since = now - dt.timedelta(days=30.5 * months)
    stmt = (select(Complaint).join(done, done.c.complaint_id == Complaint.id)
            .where(Complaint.status == "resolved", done.c.at >= since)
            .order_by(done.c.at.desc(), Complaint.id.desc()).limit(limit))
    return _entries(s, unit_id, stmt, calendar, now, done.c.at)


def find(s: Session, unit_id: int, case_number: str) -> Complaint | None:
    """One complaint of the unit's inbox by its case number; None outside it."""
    stmt = select(Complaint).where(Complaint.case_number == case_number.strip().upper())
    return s.scalar(Scope(unit_id=unit_id).complaints(stmt))


def history(s: Session, complaint_id: int) -> list[ComplaintEvent]:
    return list(s.scalars(select(ComplaintEvent).where(ComplaintEvent.complaint_id == complaint_id)
                          .order_by(ComplaintEvent.at, ComplaintEvent.id)))


# ---- the links -------------------------------------------------------------------------------
def issue(s: Session, settings, unit: InspectionUnit, now: dt.datetime) -> str:
    """A fresh inbox link for ``unit`` (its URL), of the unit's current generation. No commit."""
    row = s.get(UnitInbox, unit.id)
    if row is None:
        row = UnitInbox(unit_id=unit.id, generation=1)
        s.add(row)
    row.issued_at = now
    s.flush()
    return links.inbox_url(settings, unit.id, row.generation, now)


def revoke(s: Session, unit: InspectionUnit, now: dt.datetime) -> int:
    """Make every inbox link ``unit`` was given stop working; the new generation. No commit."""
    row = s.get(UnitInbox, unit.id)
    if row is None:
        row = UnitInbox(unit_id=unit.id, generation=1)
        s.add(row)
    row.generation, row.revoked_at = row.generation + 1, now
    s.flush()
    return row.generation


def open_link(s: Session, accepted: list[bytes], token: str, now: dt.datetime) -> InspectionUnit:
    """The unit whose inbox ``token`` opens; links.LinkError: 'tampered' (not an inbox link
    signed by an accepted key: a complaint's link, a retired key), 'expired', or 'revoked'
    (an older generation, or a unit no longer active)."""
    link = links.verify_inbox(accepted, token, now)
    row, unit = s.get(UnitInbox, link.unit_id), s.get(InspectionUnit, link.unit_id)
    if row is None or unit is None or row.generation != link.generation or not unit.active:
        raise links.LinkError("revoked")
    return unit
