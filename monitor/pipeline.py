"""The database half of the monitor: complaints by status, the SLA board (open complaints
nearest to or past their three-hour deadline, by agency and by province), today's calls, and
the outbox of the forwarding module when it is installed."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import joinedload

from db.models import STATUSES, Agency, CallRecord, Complaint, Province
from clock import TEHRAN

DUE_SOON = dt.timedelta(hours=1)
OPEN = Complaint.status != "resolved"


def _iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def complaints(s, now: dt.datetime, limit: int = 10) -> dict:
    by_status = dict.fromkeys(STATUSES, 0)
    by_status.update(dict(s.execute(select(Complaint.status, func.count()).group_by(Complaint.status)).all()))
    nearest = []
    for c in s.scalars(select(Complaint).options(joinedload(Complaint.agency), joinedload(Complaint.province))
                       .where(OPEN).order_by(Complaint.sla_due_at, Complaint.id).limit(limit)):
        nearest.append({"case_number": c.case_number, "agency": c.agency.code,
                        "agency_name": c.agency.name_fa, "province": c.province.area_code,
                        "province_name": c.province.name_fa, "status": c.status,
                        "sla_due_at": _iso(c.sla_due_at),
                        "minutes_left": int((c.sla_due_at - now).total_seconds() // 60)})
    return {"by_status": by_status, "nearest": nearest,
            "by_agency": _groups(s, now, Agency, Complaint.agency_id),
            "by_province": _groups(s, now, Province, Complaint.province_id)}


def _groups(s, now: dt.datetime, model, column) -> list[dict]:
    overdue = func.sum(case((Complaint.sla_due_at < now, 1), else_=0))
    soon = func.sum(case(((Complaint.sla_due_at >= now) & (Complaint.sla_due_at < now + DUE_SOON), 1),
                         else_=0))
    key = model.code if model is Agency else model.area_code
    rows = s.execute(select(key, model.name_fa, func.count(), overdue, soon)
                     .join(model, column == model.id).where(OPEN)
                     .group_by(key, model.name_fa)
                     .order_by(overdue.desc(), soon.desc(), func.count().desc(), key))
    return [{"code": k, "name": n, "open": o, "overdue": int(od or 0), "due_within_1h": int(sn or 0)}
            for k, n, o, od, sn in rows]


def calls_today(s, now: dt.datetime) -> dict:
    midnight = now.astimezone(TEHRAN).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = s.execute(select(CallRecord.outcome, func.count()).where(CallRecord.started_at >= midnight)
                     .group_by(CallRecord.outcome))
    return dict(rows.all())


def outbox(s, now: dt.datetime) -> dict:
    """Health of the forwarding outbox; ``{"status": "n/a"}`` without the dispatch module."""
    try:
        from dispatch.models import OutboxMessage
    except ImportError:
        return {"status": "n/a"}
    try:
        counts = dict(s.execute(select(OutboxMessage.status, func.count())
                                .group_by(OutboxMessage.status)).all())
        retrying = s.scalar(select(func.count()).where(OutboxMessage.status == "pending",
                                                       OutboxMessage.tries > 0))
        oldest = s.scalar(select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status == "pending"))
    except SQLAlchemyError:  # the module is there, its tables are not (`favad db upgrade`)
        s.rollback()
        return {"status": "n/a"}
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.timezone.utc)
    return {"status": "ok", "pending": counts.get("pending", 0), "retrying": retrying or 0,
            "dead": counts.get("dead", 0), "sent": counts.get("sent", 0),
            "other": sum(v for k, v in counts.items() if k not in ("pending", "dead", "sent")),
            "oldest_pending_s": int((now - oldest).total_seconds()) if oldest else None}


def snapshot(session_factory, now: dt.datetime, limit: int = 10) -> dict:
    """Everything from the database, or the reason it could not be read."""
    try:
        with session_factory() as s:
            part = complaints(s, now, limit)
            part["calls_today"] = calls_today(s, now)
        with session_factory() as s:
            part["outbox"] = outbox(s, now)
        return {"status": "ok", **part}
    except SQLAlchemyError as e:
        return {"status": "unavailable", "error": f"database error ({type(e.orig if hasattr(e, 'orig') else e).__name__})"}
