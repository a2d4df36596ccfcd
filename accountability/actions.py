"""What a unit (or the centre's staff) can do with a complaint: acknowledge it, resolve it with an
outcome, forward it to another unit. Shared by the units' page and `favad complaints ...`.

Each action appends one event (and its typed details) and moves the complaint's status with a
conditional UPDATE, so two clicks, two tabs or a unit and the staff at once record it once.
The status and outcome columns are a cache for the IVR; figures are computed from the events.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from accountability.models import UnitAction
from config.checks import NAME
from db.models import Complaint, ComplaintEvent
from dispatch.outbox import queue, unit_calendar
from dispatch.models import ComplaintRoute, InspectionUnit, OutboxMessage

OUTCOMES = ("fixed_on_spot", "written_warning", "manager_dismissed", "commendation", "not_confirmed")
OPEN = ("received", "forwarded")  # not yet taken up
NOTE_MAX, REASON_MAX = 1000, 500


class ActionError(Exception):
    """The action cannot be done; ``code`` says why (for the page), the message for the CLI."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Actor:
    """Who acts: a unit, or the centre's staff. Never a citizen."""

    label: str  # "unit hq-101" | "staff zahra (os favad)" | "unit hq-101, staff zahra (os favad)"
    unit_id: int | None = None

    @classmethod
    def unit(cls, unit: InspectionUnit, by: "Actor | None" = None) -> "Actor":
        """A unit on its page; or, ``by`` a member of staff, for it from the command line."""
        return cls((f"unit {unit.code}" + (f", {by.label}" if by else ""))[:80], unit.id)  # the column's size

    @classmethod
    def staff(cls, name: str, os_user: str | None = None) -> "Actor":
        """A member of the centre's staff, and the OS account they act from (the OS's word,
        not theirs). Both are user names (``config.checks.NAME``), or ValueError."""
        os_user = name if os_user is None else os_user
        for value in (name, os_user):
            if not NAME.fullmatch(value):
                raise ValueError(f"{value!r} is not a user name (letters, digits, . _ -; at most 32)")
        return cls(f"staff {name} (os {os_user})")

    @classmethod
    def staff_web(cls, name: str) -> "Actor":
        """A member of staff signed in on the staff web pages, by their account's name (at most
        64 characters, no spaces: ``accountability.accounts.add`` holds it to that)."""
        if not name or len(name) > 64 or any(ch.isspace() for ch in name):
            raise ValueError(f"{name!r} is not an account name")
        return cls(f"staff {name} (web)")


def find(s: Session, case_number: str) -> Complaint:
    c = s.scalar(select(Complaint).where(Complaint.case_number == case_number.strip().upper()))
    if c is None:
        raise ActionError("not_found", f"no complaint with case number {case_number!r}")
    return c


def responsible_units(s: Session, complaint_id: int) -> set[int]:
    """The units that may act on a complaint: the one it is routed to, and the escalation
    office once it was escalated there."""
    route = s.get(ComplaintRoute, complaint_id)
    if route is None:
        return set()
    units = {route.unit_id} if route.unit_id else set()
    if route.escalated_at is not None and route.escalation_unit_id:
        units.add(route.escalation_unit_id)
    return units


def _event(s: Session, c: Complaint, actor: Actor, kind: str, status: str, now: dt.datetime,
           note: str | None = None, outcome: str | None = None, to_unit_id: int | None = None) -> None:
    e = ComplaintEvent(complaint_id=c.id, at=now, kind=kind, status=status, actor=actor.label,
                       note=note or None)
    s.add(e)
    s.flush()
    s.add(UnitAction(event_id=e.id, complaint_id=c.id, unit_id=actor.unit_id, outcome=outcome,
                     to_unit_id=to_unit_id))


def _move(s: Session, c: Complaint, allowed: tuple[str, ...], **values) -> bool:
    """Change the complaint's row only if its status is still one of ``allowed``."""
    n = s.execute(update(Complaint).where(Complaint.id == c.id, Complaint.status.in_(allowed))
                  .values(**values), execution_options={"synchronize_session": False}).rowcount
    s.refresh(c)
    return n == 1


def _refuse_resolved(c: Complaint) -> None:
    if c.status == "resolved":
        raise ActionError("resolved", f"complaint {c.case_number} is resolved already")


def acknowledge(s: Session, c: Complaint, actor: Actor, now: dt.datetime) -> bool:
    """The unit is on it: status 'under_review', no escalation. False if it was taken up
    already (nothing recorded). No commit."""
    _refuse_resolved(c)
    if not _move(s, c, OPEN, status="under_review"):
        _refuse_resolved(c)
        return False
    _event(s, c, actor, "acknowledged", "under_review", now)
    route = s.get(ComplaintRoute, c.id)
    if route is not None and route.acknowledged_at is None:
        route.acknowledged_at = now
    return True


def resolve(s: Session, c: Complaint, actor: Actor, outcome: str, note: str | None,
            now: dt.datetime) -> None:
    """Close the complaint with an outcome the caller will hear. No commit."""
    if outcome not in OUTCOMES:
        raise ActionError("bad_outcome", f"outcome must be one of {', '.join(OUTCOMES)}")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ActionError("too_long", f"the note is longer than {NOTE_MAX} characters")
    _refuse_resolved(c)
    if not _move(s, c, OPEN + ("under_review",), status="resolved", outcome=outcome):
        _refuse_resolved(c)
        raise ActionError("conflict", f"complaint {c.case_number} changed meanwhile; try again")
    _event(s, c, actor, "resolved", "resolved", now, note=note, outcome=outcome)
    route = s.get(ComplaintRoute, c.id)
    if route is not None and route.acknowledged_at is None:
        route.acknowledged_at = now  # a resolution is taken up too: no escalation after it


def reassign(s: Session, c: Complaint, actor: Actor, to: InspectionUnit, reason: str,
             now: dt.datetime, calendar=None) -> None:
    """Forward the complaint to another unit with a reason; that unit gets the messages (and
    its own link) and the escalation clock starts again at its opening (``calendar``: the
    office calendar whose holidays count; default the packaged one). No commit."""
    reason = (reason or "").strip()
    if not reason:
        raise ActionError("no_reason", "say why the complaint goes to another unit")
    if len(reason) > REASON_MAX:
        raise ActionError("too_long", f"the reason is longer than {REASON_MAX} characters")
    if not to.active:
        raise ActionError("unknown_unit", f"unit {to.code} is not active")
    route = s.get(ComplaintRoute, c.id) or ComplaintRoute(complaint_id=c.id)
    if route.unit_id == to.id:
        raise ActionError("same_unit", f"complaint {c.case_number} is with unit {to.code} already")
    _refuse_resolved(c)
    if not _move(s, c, OPEN + ("under_review",), status="forwarded"):
        _refuse_resolved(c)
        raise ActionError("conflict", f"complaint {c.case_number} changed meanwhile; try again")
    _event(s, c, actor, "reassigned", "forwarded", now, note=reason, to_unit_id=to.id)
    route.unit_id, route.acknowledged_at = to.id, None
    if route.escalation_unit_id and route.escalation_unit_id != to.id and route.escalated_at is None:
        route.clock_from = unit_calendar(to, calendar).next_open(now)
    else:  # nothing further to escalate to
        route.clock_from = None
    route.escalate_at = None  # the dispatcher sets the new deadline
    s.add(route)
    _queue(s, c.id, to, now, calendar)


def from_form(s: Session, c: Complaint, unit: InspectionUnit, form: Mapping[str, str], now: dt.datetime,
              calendar=None, by: Actor | None = None) -> str:
    """Do what a unit's form asks (``action``: ack, resolve with ``outcome`` and ``note``,
    reassign ``to`` a unit code with a ``reason``) as ``unit`` (``by``: the person, when known);
    what was done, for the page's notice: ack | ack_again | resolve | reassign. The units' page
    and the unit's inbox both act through here. No commit."""
    who = Actor.unit(unit, by)
    action = form.get("action")
    if action == "ack":
        return "ack" if acknowledge(s, c, who, now) else "ack_again"
    if action == "resolve":
        resolve(s, c, who, form.get("outcome", ""), form.get("note", ""), now)
        return "resolve"
    if action == "reassign":
        to = s.scalar(select(InspectionUnit).where(InspectionUnit.code == form.get("to", "")))
        if to is None:
            raise ActionError("unknown_unit", "no such unit")
        reassign(s, c, who, to, form.get("reason", ""), now, calendar)
        return "reassign"
    raise ActionError("conflict", f"unknown action {action!r}")


def _queue(s: Session, complaint_id: int, unit: InspectionUnit, now: dt.datetime, calendar=None) -> None:
    """The 'reassigned' messages to each contact of ``unit`` (as ``dispatch.outbox.queue``);
    a unit that had the complaint forwarded to it before gets its messages again."""
    sms_at = unit_calendar(unit, calendar).next_open(now)
    have = {(m.channel, m.recipient): m for m in s.scalars(
        select(OutboxMessage).where(OutboxMessage.complaint_id == complaint_id,
                                    OutboxMessage.kind == "reassigned"))}
    for contact in unit.contacts:
        due = sms_at if contact.channel == "sms" else now
        m = have.get((contact.channel, contact.address))
        if m is None:
            s.add(OutboxMessage(complaint_id=complaint_id, unit_id=unit.id, kind="reassigned",
                                channel=contact.channel, recipient=contact.address, status="pending",
                                tries=0, created_at=now, next_attempt_at=due))
        else:
            m.unit_id, m.status, m.tries, m.next_attempt_at = unit.id, "pending", 0, due
            m.claimed_by = m.lease_until = m.sent_at = m.last_error = None


def escalate(s: Session, c: Complaint, actor: Actor, reason: str, now: dt.datetime,
             calendar=None) -> InspectionUnit:
    """Send the complaint to its escalation office now, ahead of its clock, with a reason: the
    office gets the 'escalation' messages the dispatcher would have queued (``dispatch.outbox``),
    once. The escalation office, or ActionError. No commit."""
    reason = (reason or "").strip()
    if not reason:
        raise ActionError("no_reason", "say why the complaint is escalated")
    if len(reason) > REASON_MAX:
        raise ActionError("too_long", f"the reason is longer than {REASON_MAX} characters")
    _refuse_resolved(c)
    route = s.get(ComplaintRoute, c.id)
    if route is None or not route.escalation_unit_id or route.escalation_unit_id == route.unit_id:
        raise ActionError("no_escalation", f"complaint {c.case_number} has no escalation office to go to")
    done = s.execute(update(ComplaintRoute).where(ComplaintRoute.complaint_id == c.id,
                                                  ComplaintRoute.escalated_at.is_(None))
                     .values(escalated_at=now), execution_options={"synchronize_session": False}).rowcount
    s.refresh(route)
    if done != 1:
        raise ActionError("escalated", f"complaint {c.case_number} was escalated already")
    unit = s.get(InspectionUnit, route.escalation_unit_id)
    queue(s, c.id, unit, "escalation", now, calendar)
    _event(s, c, actor, "escalated", c.status, now, note=reason, to_unit_id=unit.id)
    return unit
