"""What a report reads from the database for one month: a handful of queries, no per-row ones.

Complaints are taken by the month they were filed in (Tehran time); their events, whenever
they happened, say how they were handled. Calls are taken by the month they started in.

A month can hold a hundred thousand complaints, so they are read as numpy columns, not objects:
every query returns integers only (times as microseconds since the epoch, computed by the
database, so no datetime is built per row) and is read straight from the driver's cursor.
"""
from __future__ import annotations

import datetime as dt
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from sqlalchemy import BigInteger, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from accountability.actions import OUTCOMES
from accountability.bulk import NONE
from accountability.models import UnitAction
from accountability.scope import Scope
from db.models import (Agency, CallRecord, Complaint, ComplaintEvent, ComplaintRating, Indicator,
                       Office, Province)

POPULATION = Path(__file__).with_name("data") / "population.toml"
NATIONAL = Scope.national()
MISSING = -1  # no office, no outcome, no rating (ids and ratings are positive)


class epoch_us(FunctionElement):
    """A timestamp column as whole microseconds since the Unix epoch, computed by the database."""

    type = BigInteger()
    inherit_cache = True


@compiles(epoch_us, "postgresql")
def _epoch_us_postgresql(element, compiler, **kw):
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) * 1000000 AS BIGINT)"


@compiles(epoch_us, "sqlite")
def _epoch_us_sqlite(element, compiler, **kw):
    # stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC: the whole seconds, then the microseconds
    at = compiler.process(element.clauses, **kw)
    return f"(CAST(strftime('%s', {at}) AS INTEGER) * 1000000 + CAST(substr({at}, 21, 6) AS INTEGER))"


@dataclass
class Columns:
    """Equal-length numpy columns, one entry per complaint."""

    def __len__(self) -> int:
        return len(getattr(self, fields(self)[0].name))

    def where(self, mask: np.ndarray):
        """The entries where ``mask`` holds, in the same order."""
        return type(self)(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})


@dataclass
class Complaints(Columns):
    """The month's complaints by id. Times in microseconds since the epoch (UTC), ``NONE`` where it
    has not happened; ``MISSING`` for no office, no outcome, no rating."""

    id: np.ndarray
    agency_id: np.ndarray
    province_id: np.ndarray
    office_id: np.ndarray
    indicator_id: np.ndarray
    filed: np.ndarray
    acked: np.ndarray  # the first 'acknowledged' or 'resolved' event (taking it up)
    resolved: np.ndarray  # the first 'resolved' event
    outcome: np.ndarray  # of the first resolution: an index into OUTCOMES
    rating: np.ndarray


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
    complaints: Complaints
    calls: dict[int | None, dict[str, int]]  # province id (None: unknown) -> outcome -> count
    # province id -> language ("" before it was recorded) -> [calls, complaints filed]: how much
    # each language is used where, never who used it
    languages: dict[int | None, dict[str, list[int]]] = field(default_factory=dict)


def reference(s: Session) -> Reference:
    pop = tomllib.loads(POPULATION.read_text(encoding="utf-8"))
    return Reference(
        agencies=list(s.scalars(select(Agency).order_by(Agency.code))),
        provinces=list(s.scalars(select(Province).order_by(Province.name_fa))),
        indicators=list(s.scalars(select(Indicator).order_by(Indicator.id))),
        population={str(k): int(v) for k, v in pop["population"].items()},
        population_source=pop["source"],
    )


def _ints(s: Session, stmt, width: int) -> np.ndarray:
    """An all-integer query as an (n, width) array, read from the driver's cursor (no Row objects)."""
    result = s.connection().execute(stmt)
    try:
        rows = result.cursor.fetchall()
    finally:
        result.close()
    return np.array(rows, dtype=np.int64).reshape(len(rows), width)


def _first(pos: np.ndarray, at: np.ndarray, tiebreak: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of events (complaint position, time, id): the index of each complaint's earliest, and the
    positions they belong to."""
    order = np.lexsort((tiebreak, at, pos))
    p = pos[order]
    first = np.ones(len(p), dtype=bool)
    first[1:] = p[1:] != p[:-1]
    return order[first], p[first]


def _positions(ids: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows whose first column is one of ``ids`` (sorted), and where in ``ids`` each is."""
    if not len(ids):
        return rows[:0], np.zeros(0, np.int64)
    pos = np.minimum(np.searchsorted(ids, rows[:, 0]), len(ids) - 1)
    mine = ids[pos] == rows[:, 0]
    return rows[mine], pos[mine]


def month(s: Session, start: dt.datetime, end: dt.datetime, sla_only: bool = False,
          scope: Scope = NATIONAL) -> MonthData:
    """The month's complaints, their handling and its calls. ``sla_only``: what the SLA needs and
    no more (no acknowledgements, outcomes or ratings), for the month a report compares with.
    ``scope``: a member of staff's (the live dashboard); the reports are national.

    Events, actions and ratings are read by the range of the month's complaint ids, then kept
    for the month's complaints only: ids follow filing time, so that range is about the month's
    rows, found by the complaint_id indexes however large the tables grow (a join with the
    month's complaints makes PostgreSQL scan every event instead)."""
    C, E, A, R = Complaint, ComplaintEvent, UnitAction, ComplaintRating
    rows = _ints(s, scope.complaints(select(C.id, C.agency_id, C.province_id, func.coalesce(C.office_id, MISSING),
                                            C.indicator_id, epoch_us(C.created_at))
                                     .where(C.created_at >= start, C.created_at < end)), 6)
    rows = rows[np.argsort(rows[:, 0])]  # by id: sorted here, not by the server
    ids = rows[:, 0]
    n = len(ids)
    acked, resolved = np.full(n, NONE), np.full(n, NONE)
    outcome, rating = np.full(n, MISSING), np.full(n, MISSING)
    lo, hi = (int(ids[0]), int(ids[-1])) if n else (0, -1)
    kinds = ("resolved",) if sla_only else ("acknowledged", "resolved")
    events, pos = _positions(ids, _ints(s, select(E.complaint_id, E.id, epoch_us(E.at),
                                                  case((E.kind == "resolved", 1), else_=0))
                                        .where(E.complaint_id.between(lo, hi), E.kind.in_(kinds)), 4))
    _, eid, at, is_resolved = events.T
    if not sla_only:
        i, p = _first(pos, at, eid)  # taken up: the first acknowledgement or resolution
        acked[p] = at[i]
        rated, p = _positions(ids, _ints(s, select(R.complaint_id, R.rating)
                                         .where(R.complaint_id.between(lo, hi)), 2))
        rating[p] = rated[:, 1]
    res = np.flatnonzero(is_resolved == 1)
    i, p = _first(pos[res], at[res], eid[res])
    resolved[p] = at[res][i]
    if not sla_only and len(p):  # the outcome of each first resolution, from its unit action
        index = case({name: k for k, name in enumerate(OUTCOMES)}, value=A.outcome, else_=MISSING)
        how = _ints(s, select(A.event_id, index).where(A.complaint_id.between(lo, hi), A.outcome.is_not(None)), 2)
        first = eid[res][i]
        by_event = np.argsort(first)
        how, k = _positions(first[by_event], how)
        outcome[p[by_event[k]]] = how[:, 1]
    complaints = Complaints(ids, rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5], acked,
                            resolved, outcome, rating)
    calls: dict = defaultdict(lambda: defaultdict(int))
    for province_id, outcome_, k in s.execute(scope.calls(
            select(CallRecord.province_id, CallRecord.outcome, func.count())
            .where(CallRecord.started_at >= start, CallRecord.started_at < end))
            .group_by(CallRecord.province_id, CallRecord.outcome)):
        calls[province_id][outcome_] += k
    languages: dict = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for province_id, language, outcome_, k in s.execute(scope.calls(
            select(CallRecord.province_id, CallRecord.language, CallRecord.outcome, func.count())
            .where(CallRecord.started_at >= start, CallRecord.started_at < end))
            .group_by(CallRecord.province_id, CallRecord.language, CallRecord.outcome)):
        counts = languages[province_id][language or ""]
        counts[0] += k
        counts[1] += k if outcome_ == "complaint_filed" else 0
    return MonthData(start, end, complaints, {k: dict(v) for k, v in calls.items()},
                     {k: dict(v) for k, v in languages.items()})


def offices(s: Session, ids: set[int]) -> dict[int, Office]:
    if not ids:
        return {}
    return {o.id: o for o in s.scalars(select(Office).where(Office.id.in_(ids)))}
