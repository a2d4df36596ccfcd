"""The transactional outbox: messages are queued in the transaction that stores the complaint,
claimed with a lease, and their end (sent, retried later, dead letter) recorded.

Several dispatchers may share one PostgreSQL: a claim is one UPDATE over a ``FOR UPDATE SKIP
LOCKED`` subquery, so two never take the same row; on SQLite the same UPDATE is atomic because
SQLite has one writer at a time. A dispatcher that dies leaves its rows to be claimed again
once their lease runs out, and every later write is fenced on ``claimed_by``.
"""
from __future__ import annotations

import datetime as dt
import logging
import random
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, or_, select, update
from sqlalchemy.orm import Session

from db.models import Complaint, ComplaintEvent
from clock import calendar as office
from dispatch import routing
from dispatch.models import ComplaintRoute, InspectionUnit, OutboxMessage

log = logging.getLogger(__name__)
M = OutboxMessage
T = OutboxMessage.__table__  # Core statements on the hot path: the ORM's bulk UPDATE costs ms
OPEN_STATUSES = ("received", "forwarded")  # not yet taken up by a unit: escalation applies


def backoff(tries: int, base: float, cap: float, rand=random.random) -> float:
    """Seconds before try ``tries + 1``: doubling from ``base`` up to ``cap``, with jitter so
    that messages failed together (a mail server restart) do not come back together."""
    return min(cap, base * 2 ** max(tries - 1, 0)) * (0.5 + rand() / 2)


# ---- queueing (inside the caller's transaction) ---------------------------------------------
@dataclass(frozen=True)
class Plan:
    """A route reduced to plain data: what storing a complaint's route and messages needs.

    The IVR's writer keeps one per (agency, province) for a while, so filing a complaint costs
    no routing query; complaints/filing.py writes its rows with ``route_row`` and
    ``message_rows``, as ``_apply`` does for a route found later."""

    unit_id: int | None
    escalation_id: int | None
    flag: str | None
    calendar: office.OfficeCalendar  # the unit's hours and the holidays: SMS waits, the clock starts
    escalates: bool
    contacts: tuple[tuple[str, str], ...]  # (channel, address) of the unit's contacts


def plan(r: routing.Route, calendar: office.OfficeCalendar | None = None) -> Plan:
    """``calendar``: the office calendar whose holidays count (default: the packaged one)."""
    # escalating to the office that already has it would only repeat the message
    escalates = r.unit is not None and r.escalation is not None and r.escalation.id != r.unit.id
    return Plan(unit_id=r.unit.id if r.unit else None,
                escalation_id=r.escalation.id if r.escalation else None, flag=r.flag,
                calendar=unit_calendar(r.unit, calendar), escalates=escalates,
                contacts=tuple((c.channel, c.address) for c in r.unit.contacts) if r.unit else ())


def unit_calendar(unit: InspectionUnit | None, calendar: office.OfficeCalendar | None = None):
    """The unit's working hours on the office holidays (no unit, or no hours: always open)."""
    return (calendar or _default_calendar()).for_hours(unit.hours if unit else "")


_DEFAULT: list[office.OfficeCalendar] = []


def _default_calendar() -> office.OfficeCalendar:
    if not _DEFAULT:  # read once: filing a complaint must not read a file
        _DEFAULT.append(office.load())
    return _DEFAULT[0]


def plan_for(s: Session, agency_id: int, province_id: int,
             calendar: office.OfficeCalendar | None = None) -> Plan:
    r = routing.route(routing.candidates(s, agency_id, province_id), agency_id, province_id)
    return plan(r, calendar)


def route_row(p: Plan, complaint_id: int, now: dt.datetime) -> dict:
    """The complaint_routes row (a flag is for `favad outbox flagged`); the escalation clock
    starts when the unit next opens, and its deadline is set by the dispatcher."""
    return {"complaint_id": complaint_id, "unit_id": p.unit_id, "escalation_unit_id": p.escalation_id,
            "flag": p.flag, "clock_from": p.calendar.next_open(now) if p.escalates else None}


def message_rows(p: Plan, complaint_id: int, kind: str, now: dt.datetime) -> list[dict]:
    """One outbox row per contact of the plan's unit; SMS waits for the unit's next working
    hour, holidays counted."""
    if p.unit_id is None:
        return []
    sms_at = p.calendar.next_open(now)
    return [{"complaint_id": complaint_id, "unit_id": p.unit_id, "kind": kind, "channel": channel,
             "recipient": address, "status": "pending", "tries": 0, "created_at": now,
             "next_attempt_at": sms_at if channel == "sms" else now}
            for channel, address in p.contacts]


def _apply(s: Session, route: ComplaintRoute, p: Plan, now: dt.datetime) -> None:
    """Record the route and queue the unit's messages."""
    for key, value in route_row(p, route.complaint_id, now).items():
        setattr(route, key, value)
    for row in message_rows(p, route.complaint_id, "complaint", now):
        s.add(M(**row))


def queue(s: Session, complaint_id: int, unit: InspectionUnit, kind: str, now: dt.datetime,
          calendar: office.OfficeCalendar | None = None) -> int:
    """One message per contact of ``unit``; SMS waits for the unit's working hours."""
    rows = message_rows(plan(routing.Route(unit, None, None), calendar), complaint_id, kind, now)
    s.add_all(M(**row) for row in rows)
    return len(rows)


def reroute_unrouted(s: Session, now: dt.datetime, calendar: office.OfficeCalendar | None = None) -> int:
    """Route the complaints that found no unit, now that units exist; how many. No commit."""
    done = 0
    for route in list(s.scalars(select(ComplaintRoute).where(ComplaintRoute.flag == routing.UNROUTED))):
        c = s.get(Complaint, route.complaint_id)
        p = plan_for(s, c.agency_id, c.province_id, calendar)
        if p.unit_id is not None:
            _apply(s, route, p, now)
            done += 1
    s.flush()
    return done


# ---- claiming and recording -----------------------------------------------------------------
def _claimable(now: dt.datetime, due_by: dt.datetime, kinds: tuple[str, ...] | None):
    where = [T.c.status == "pending", T.c.next_attempt_at <= due_by,
             or_(T.c.lease_until.is_(None), T.c.lease_until < now)]
    return (*where, T.c.kind.in_(kinds)) if kinds else tuple(where)


def claim(s: Session | Connection, worker: str, now: dt.datetime, lease: float, limit: int,
          due_by: dt.datetime | None = None, max_tries: int | None = None,
          kinds: tuple[str, ...] | None = None) -> list[int]:
    """Take up to ``limit`` messages (of ``kinds``, default all) due by ``due_by`` (default
    now) for ``worker`` until ``now + lease``, each try counted. Commits.

    A message whose last allowed try never reported (its dispatcher died or lost the claim)
    is not tried past ``max_tries``: it becomes a dead letter that says so."""
    due_by = due_by or now
    if max_tries is not None:
        s.execute(update(T).where(*_claimable(now, due_by, kinds), T.c.tries >= max_tries)
                  .values(status="dead", lease_until=None, next_attempt_at=now,
                          last_error="the last try's outcome is unknown: its dispatcher stopped or "
                                     "lost the claim before recording it (the server may have it)"))
    due = (select(T.c.id).where(*_claimable(now, due_by, kinds)).order_by(T.c.next_attempt_at, T.c.id)
           .limit(limit).with_for_update(skip_locked=True))
    ids = s.scalars(
        update(T).where(T.c.id.in_(due), *_claimable(now, due_by, kinds))
        .values(claimed_by=worker, lease_until=now + dt.timedelta(seconds=lease), tries=T.c.tries + 1)
        .returning(T.c.id)).all()
    s.commit()
    return sorted(ids)


def renew(db: Session | Connection, ids: list[int], worker: str, now: dt.datetime,
          lease: float) -> list[int]:
    """Extend ``worker``'s claims on ``ids`` to ``now + lease``; the ids still its own. Commits."""
    kept = db.scalars(update(T).where(T.c.id.in_(ids), T.c.claimed_by == worker, T.c.status == "pending")
                      .values(lease_until=now + dt.timedelta(seconds=lease)).returning(T.c.id)).all()
    db.commit()
    return list(kept)


def mark_sent(db: Session | Connection, sent: dict[int, str | None], worker: str,
              now: dt.datetime) -> list[int]:
    """Record accepted messages (id -> forward note) in one transaction; the ids recorded.

    A note means the complaint was still 'received' when its message was claimed: the complaint
    becomes 'forwarded' with a 'forwarded' event, once, whichever message gets there first.
    A server's acceptance is never thrown away: a message whose claim ran out meanwhile (another
    dispatcher has it, or gave up on it) is recorded as sent all the same, and fenced from the
    other dispatcher's later writes by ``claimed_by`` and its status."""
    if not sent:
        return []
    done = dict(sent_at=now, lease_until=None, last_error=None)
    rows = db.execute(
        update(T).where(T.c.id.in_(list(sent)), T.c.claimed_by == worker, T.c.status == "pending")
        .values(status="sent", **done).returning(T.c.id, T.c.complaint_id)).all()
    if late := set(sent) - {mid for mid, _ in rows}:
        more = db.execute(
            update(T).where(T.c.id.in_(list(late)), T.c.status.in_(("pending", "dead")))
            .values(status="sent", claimed_by=worker, **done).returning(T.c.id, T.c.complaint_id)).all()
        for mid, _ in more:
            log.warning("message %d was accepted after its claim had run out; recorded as sent "
                        "(another dispatcher may have sent it too)", mid)
        rows = [*rows, *more]
    notes = {cid: sent[mid] for mid, cid in rows if sent[mid] and cid is not None}
    if notes:
        C, E = Complaint.__table__, ComplaintEvent.__table__
        # concurrent first messages: the row lock makes the later UPDATE match nothing
        forwarded = db.scalars(update(C).where(C.c.id.in_(list(notes)), C.c.status == "received")
                               .values(status="forwarded").returning(C.c.id)).all()
        if forwarded:
            db.execute(insert(E), [{"complaint_id": cid, "at": now, "kind": "forwarded",
                                    "status": "forwarded", "actor": "dispatcher", "note": notes[cid]}
                                   for cid in forwarded])
    db.commit()
    return [mid for mid, _ in rows]


def mark_failed(s: Session | Connection, msg_id: int, worker: str, now: dt.datetime, permanent: bool,
                error: str, max_tries: int, base: float, cap: float) -> str | None:
    """Schedule the next try, or dead-letter the message; its new status. Commits."""
    tries = s.scalar(select(T.c.tries).where(T.c.id == msg_id, T.c.claimed_by == worker,
                                             T.c.status == "pending"))
    if tries is None:
        s.rollback()
        return None
    dead = permanent or tries >= max_tries
    later = now + dt.timedelta(seconds=0 if dead else backoff(tries, base, cap))
    s.execute(update(T).where(T.c.id == msg_id, T.c.claimed_by == worker)
              .values(status="dead" if dead else "pending", lease_until=None, next_attempt_at=later,
                      last_error=error[:500]))
    s.commit()
    return "dead" if dead else "pending"


def release(s: Session | Connection, msg_id: int, worker: str) -> None:
    """Give a claimed message back untried (the dispatcher is stopping). Commits; a repeat
    (its commit went unheard in a failover) changes nothing."""
    s.execute(update(T).where(T.c.id == msg_id, T.c.claimed_by == worker, T.c.status == "pending",
                              T.c.lease_until.is_not(None))
              .values(lease_until=None, tries=T.c.tries - 1))
    s.commit()


def release_orphans(s: Session | Connection, worker: str, now: dt.datetime, keep=()) -> int:
    """Give back ``worker``'s live claims (but ``keep``) when none of its sends is in flight:
    a claim whose commit went unheard (the database failed over as it answered) would otherwise
    wait out its lease. The try it counted stays counted. Commits; how many."""
    where = [T.c.claimed_by == worker, T.c.status == "pending", T.c.lease_until >= now]
    if keep:
        where.append(T.c.id.not_in(list(keep)))
    n = s.execute(update(T).where(*where).values(lease_until=None)).rowcount
    s.commit()
    return n


def retry_dead(s: Session, now: dt.datetime, ids: list[int] | None = None) -> int:
    """Put dead letters (all, or ``ids``) back in the queue with a fresh count. Commits."""
    q = update(M).where(M.status == "dead")
    if ids:
        q = q.where(M.id.in_(ids))
    n = s.execute(q.values(status="pending", tries=0, next_attempt_at=now, lease_until=None),
                  execution_options={"synchronize_session": False}).rowcount
    s.commit()
    return n


# ---- escalation and acknowledgement ---------------------------------------------------------
def set_deadlines(s: Session, after: dt.timedelta, calendar: office.OfficeCalendar | None = None,
                  limit: int = 500) -> int:
    """Give each open escalation clock its deadline: ``after`` of the unit's working time
    (its hours, the office holidays) from ``clock_from``; how many. Commits."""
    R, U = ComplaintRoute, InspectionUnit
    rows = s.execute(
        select(R.complaint_id, R.clock_from, U.hours).join(U, U.id == R.unit_id)
        .where(R.escalate_at.is_(None), R.clock_from.is_not(None), R.escalated_at.is_(None),
               R.acknowledged_at.is_(None), R.escalation_unit_id.is_not(None))
        .limit(limit).with_for_update(skip_locked=True, of=R)).all()
    minutes = after.total_seconds() / 60
    cal = calendar or _default_calendar()
    for cid, clock_from, unit_hours in rows:
        s.execute(update(R).where(R.complaint_id == cid, R.clock_from == clock_from)
                  .values(escalate_at=cal.for_hours(unit_hours).add(clock_from, minutes)),
                  execution_options={"synchronize_session": False})
    s.commit()
    return len(rows)


def escalate_due(s: Session, now: dt.datetime, after: dt.timedelta, limit: int = 50,
                 calendar: office.OfficeCalendar | None = None) -> int:
    """Queue the escalation of complaints not taken up within ``after`` of working time; each
    once. Commits."""
    R = ComplaintRoute
    set_deadlines(s, after, calendar)
    due = (select(R.complaint_id).join(Complaint, Complaint.id == R.complaint_id)
           .where(R.escalated_at.is_(None), R.acknowledged_at.is_(None),
                  R.escalate_at <= now, R.escalation_unit_id.is_not(None),
                  Complaint.status.in_(OPEN_STATUSES))
           .limit(limit).with_for_update(skip_locked=True, of=R))
    ids = s.scalars(update(R).where(R.complaint_id.in_(due), R.escalated_at.is_(None))
                    .values(escalated_at=now).returning(R.complaint_id),
                    execution_options={"synchronize_session": False}).all()
    for cid in ids:
        route = s.get(R, cid)
        unit = s.get(InspectionUnit, route.escalation_unit_id)
        queue(s, cid, unit, "escalation", now, calendar)
        status = s.scalar(select(Complaint.status).where(Complaint.id == cid))
        s.add(ComplaintEvent(complaint_id=cid, at=now, kind="escalated", status=status,
                             actor="dispatcher", note=f"not taken up in time: unit {unit.code}"))
    s.commit()
    return len(ids)


def counts(s: Session) -> dict[str, int]:
    return dict(s.execute(select(M.status, func.count()).group_by(M.status)).tuples().all())
