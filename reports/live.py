"""The supervisors' live figures: pure functions of a Session, a Scope and "now".

Every statement passes through ``Scope.complaints`` or ``Scope.calls`` (here or in
``reports.data.month``), so a figure cannot be drawn from outside a user's scope. The month's
handling figures per agency and per office are the monthly report's own (``reports.monthly``
over ``reports.data``), for the month so far; "open" and "past deadline" are read now, whatever
month a complaint was filed in. Nothing here selects a code hash or a recording.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

import jdatetime
import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from accountability.actions import OPEN
from accountability.scope import Scope
from clock import TEHRAN
from db.models import CallRecord, Complaint, Province
from dispatch.models import ComplaintRoute, InspectionUnit
from reports import data as db
from reports import monthly
from reports.data import MISSING
from reports.months import Month

WEEKS = 12  # the trend's length
NOT_RESOLVED = OPEN + ("under_review",)


def today_start(now: dt.datetime) -> dt.datetime:
    """Tehran midnight of ``now``'s day, in UTC."""
    return dt.datetime.combine(now.astimezone(TEHRAN).date(), dt.time(), TEHRAN).astimezone(dt.timezone.utc)


def this_month(now: dt.datetime) -> Month:
    """The Jalali month ``now`` is in (Tehran)."""
    d = jdatetime.date.fromgregorian(date=now.astimezone(TEHRAN).date())
    return Month(d.year, d.month, True)


def week_start(day: dt.date) -> dt.date:
    """The Saturday that opens ``day``'s week (the Iranian week)."""
    return day - dt.timedelta(days=(day.weekday() + 2) % 7)


@dataclass
class LateUnit:
    code: str
    name_fa: str
    waiting: int  # open, not acknowledged, past its escalation deadline now
    late_this_month: int  # acknowledged this month after the deadline


@dataclass
class Line:
    """One row of the per-agency or per-office table."""

    key: str  # agency code or office code
    name_fa: str
    city_fa: str = ""
    open: int = 0
    overdue: int = 0
    month: monthly.Row | None = None  # the month so far, as the monthly report counts it


@dataclass
class Figures:
    now: dt.datetime
    month: Month
    calls_today: dict[str, int]
    calls_month: dict[str, int]
    complaints_today: int
    complaints_month: int
    open: int
    overdue: int
    late_units: list[LateUnit]
    agencies: list[Line]
    offices: list[Line]
    provinces: list[tuple[Province, int, float | None]]  # this month: complaints, per 100,000
    hotspots: list[monthly.Hotspot]
    weeks: list[tuple[dt.date, int, int]]  # week's Saturday, complaints filed, of them resolved
    total: monthly.Row | None = field(default=None)


def _calls(s: Session, scope: Scope, since: dt.datetime) -> dict[str, int]:
    return dict(s.execute(scope.calls(select(CallRecord.outcome, func.count())
                                      .where(CallRecord.started_at >= since))
                          .group_by(CallRecord.outcome)).tuples().all())


def _count(s: Session, scope: Scope, *where) -> int:
    return s.scalar(scope.complaints(select(func.count()).select_from(Complaint).where(*where))) or 0


def _open_by(s: Session, scope: Scope, column, now: dt.datetime) -> dict[int, tuple[int, int]]:
    """``column`` value -> (open complaints, of them past their deadline), now."""
    late = func.sum(case((Complaint.sla_due_at < now, 1), else_=0))
    rows = s.execute(scope.complaints(select(column, func.count(), late).select_from(Complaint)
                                      .where(Complaint.status.in_(NOT_RESOLVED))).group_by(column))
    return {k: (n, int(m or 0)) for k, n, m in rows}


def late_units(s: Session, scope: Scope, now: dt.datetime, since: dt.datetime) -> list[LateUnit]:
    """Units with complaints waiting past their escalation deadline, or acknowledged after it
    since ``since``: the escalation clock of ``dispatch.outbox`` (acknowledged_at vs escalate_at)."""
    R, U = ComplaintRoute, InspectionUnit
    waiting = (R.acknowledged_at.is_(None) & Complaint.status.in_(OPEN)
               & ((R.escalate_at < now) | R.escalated_at.is_not(None)))
    late = (R.acknowledged_at > R.escalate_at) & (R.acknowledged_at >= since)
    stmt = (select(R.unit_id, func.sum(case((waiting, 1), else_=0)), func.sum(case((late, 1), else_=0)))
            .select_from(Complaint).join(R, R.complaint_id == Complaint.id)
            .where(R.unit_id.is_not(None), waiting | late).group_by(R.unit_id))
    counts = {u: (int(w or 0), int(k or 0)) for u, w, k in s.execute(scope.complaints(stmt))}
    units = {u.id: u for u in s.scalars(select(U).where(U.id.in_(counts)))} if counts else {}
    out = [LateUnit(units[u].code, units[u].name_fa, w, k) for u, (w, k) in counts.items()]
    return sorted(out, key=lambda x: (-x.waiting, -x.late_this_month, x.code))


def weeks(s: Session, scope: Scope, now: dt.datetime, n: int = WEEKS) -> list[tuple[dt.date, int, int]]:
    """Complaints filed per week (Saturday to Friday, Tehran) over the last ``n`` weeks, and how
    many of them are resolved by now."""
    first = week_start(now.astimezone(TEHRAN).date()) - dt.timedelta(weeks=n - 1)
    since = dt.datetime.combine(first, dt.time(), TEHRAN).astimezone(dt.timezone.utc)
    rows = db._ints(s, scope.complaints(
        select(db.epoch_us(Complaint.created_at), case((Complaint.status == "resolved", 1), else_=0))
        .where(Complaint.created_at >= since)), 2)
    filed, resolved = Counter(), Counter()
    for us, done in rows.tolist():
        w = week_start(dt.datetime.fromtimestamp(us / 1e6, TEHRAN).date())
        filed[w] += 1
        resolved[w] += done
    return [(w, filed[w], resolved[w]) for w in (first + dt.timedelta(weeks=i) for i in range(n))]


def figures(s: Session, scope: Scope, now: dt.datetime, params: monthly.Params, top: int = 10) -> Figures:
    """Everything the dashboard shows, for ``scope`` at ``now``."""
    month, today = this_month(now), today_start(now)
    ref = db.reference(s)
    data = db.month(s, month.start, month.end, scope=scope)
    ids = data.complaints.office_id
    ref.offices = db.offices(s, set(np.unique(ids[ids != MISSING]).tolist()))
    measured = monthly.measure(data.complaints, params, now)
    indicators = {i.id: i.code for i in ref.indicators}
    total = monthly.fill(monthly.Row("all", ""), measured, indicators)

    by_agency = _open_by(s, scope, Complaint.agency_id, now)
    agencies = []
    for a in ref.agencies:
        mine = measured.where(measured.agency_id == a.id)
        if len(mine) or a.id in by_agency:
            row = monthly.fill(monthly.Row(a.code, a.name_fa), mine, indicators)
            agencies.append(Line(a.code, a.name_fa, "", *by_agency.get(a.id, (0, 0)), row))
    agencies.sort(key=lambda x: (-x.month.complaints, -x.open, x.key))

    by_office = _open_by(s, scope, Complaint.office_id, now)
    ref.offices |= db.offices(s, {k for k in by_office if k is not None} - set(ref.offices))
    offices = []
    for oid, o in ref.offices.items():
        row = monthly.fill(monthly.Row(o.code, o.name_fa), measured.where(measured.office_id == oid), indicators)
        offices.append(Line(o.code, o.name_fa, o.city_fa, *by_office.get(oid, (0, 0)), row))
    offices.sort(key=lambda x: (-x.month.complaints, -x.open, x.key))

    per_province = Counter(data.complaints.province_id.tolist())
    provinces = []
    for p in ref.provinces:
        n = per_province.get(p.id, 0)
        pop = ref.population.get(p.area_code)
        provinces.append((p, n, 1e5 * n / pop if pop else None))

    return Figures(
        now=now, month=month, calls_today=_calls(s, scope, today), calls_month=_calls(s, scope, month.start),
        complaints_today=_count(s, scope, Complaint.created_at >= today),
        complaints_month=len(data.complaints),
        open=_count(s, scope, Complaint.status.in_(NOT_RESOLVED)),
        overdue=_count(s, scope, Complaint.status.in_(NOT_RESOLVED), Complaint.sla_due_at < now),
        late_units=late_units(s, scope, now, month.start), agencies=agencies, offices=offices,
        provinces=provinces, hotspots=monthly.hotspots(data, ref, top), weeks=weeks(s, scope, now),
        total=total)


def live_provinces(s: Session, scope: Scope) -> set[int]:
    """The provinces a scope's map colours: its own, or every one where 128 is live."""
    if scope.province_id is not None:
        return {scope.province_id}
    return set(s.scalars(select(Province.id).where(Province.activated_on.is_not(None))))

