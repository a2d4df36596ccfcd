"""What a report reads from the database for one month: a handful of queries, no per-row ones.

Complaints are taken by the month they were filed in (Tehran time); their events, whenever
they happened, say how they were handled. Calls are taken by the month they started in.
"""
from __future__ import annotations

import datetime as dt
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accountability.figures import Timeline, timeline
from accountability.models import UnitAction
from db.models import (Agency, CallRecord, Complaint, ComplaintEvent, ComplaintRating, Indicator,
                       Office, Province)

POPULATION = Path(__file__).with_name("data") / "population.toml"


@dataclass(frozen=True)
class Filed:
    """One complaint of the month, as the figures need it."""

    id: int
    agency_id: int
    province_id: int
    office_id: int | None
    indicator_id: int
    timeline: Timeline
    rating: int | None


@dataclass
class Reference:
    agencies: list  # Agency rows, by code
    provinces: list  # Province rows, by name
    indicators: list  # Indicator rows, by id
    offices: dict = field(default_factory=dict)  # id -> Office, the month's only
    population: dict = field(default_factory=dict)  # area code -> inhabitants
    population_source: str = ""


@dataclass
class MonthData:
    start: dt.datetime
    end: dt.datetime
    complaints: list[Filed]
    calls: dict[int | None, dict[str, int]]  # province id (None: unknown) -> outcome -> count


def reference(s: Session) -> Reference:
    pop = tomllib.loads(POPULATION.read_text(encoding="utf-8"))
    return Reference(
        agencies=list(s.scalars(select(Agency).order_by(Agency.code))),
        provinces=list(s.scalars(select(Province).order_by(Province.name_fa))),
        indicators=list(s.scalars(select(Indicator).order_by(Indicator.id))),
        population={str(k): int(v) for k, v in pop["population"].items()},
        population_source=pop["source"],
    )


def month(s: Session, start: dt.datetime, end: dt.datetime) -> MonthData:
    C, E, A, R = Complaint, ComplaintEvent, UnitAction, ComplaintRating
    in_month = (C.created_at >= start, C.created_at < end)
    rows = s.execute(select(C.id, C.agency_id, C.province_id, C.office_id, C.indicator_id, C.created_at)
                     .where(*in_month).order_by(C.id)).all()
    events: dict[int, list] = defaultdict(list)
    for cid, at, kind, outcome in s.execute(
            select(E.complaint_id, E.at, E.kind, A.outcome).join(C, C.id == E.complaint_id)
            .outerjoin(A, A.event_id == E.id)
            .where(*in_month, E.kind.in_(("acknowledged", "resolved")))):
        events[cid].append((at, kind, outcome))
    ratings = dict(s.execute(select(R.complaint_id, R.rating).join(C, C.id == R.complaint_id)
                             .where(*in_month)).tuples().all())
    complaints = [Filed(cid, ag, pr, off, ind, timeline(cid, at, events.get(cid, ())), ratings.get(cid))
                  for cid, ag, pr, off, ind, at in rows]
    calls: dict = defaultdict(lambda: defaultdict(int))
    for province_id, outcome, n in s.execute(
            select(CallRecord.province_id, CallRecord.outcome, func.count())
            .where(CallRecord.started_at >= start, CallRecord.started_at < end)
            .group_by(CallRecord.province_id, CallRecord.outcome)):
        calls[province_id][outcome] += n
    return MonthData(start, end, complaints, {k: dict(v) for k, v in calls.items()})


def offices(s: Session, ids: set[int]) -> dict[int, Office]:
    if not ids:
        return {}
    return {o.id: o for o in s.scalars(select(Office).where(Office.id.in_(ids)))}
