"""Figures from events: each complaint's clocks, and honest statistics over many complaints.

A complaint's acknowledgement is its first 'acknowledged' or 'resolved' event (a unit that
resolves at once has taken it up too); its resolution is its first 'resolved' event. Times are
office minutes of the calendar. Pure: the queries live in ``reports.data``.
"""
from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass

from clock.calendar import OfficeCalendar

MIN_N = 5  # below this many, no percentage, median, p90 or mean is shown: only the count

MET, MISSED, PENDING = "met", "missed", "pending"


@dataclass(frozen=True)
class Timeline:
    complaint_id: int
    filed_at: dt.datetime
    acknowledged_at: dt.datetime | None
    resolved_at: dt.datetime | None
    outcome: str | None


def timeline(complaint_id: int, filed_at: dt.datetime, events) -> Timeline:
    """``events``: (at, kind, outcome) of one complaint, in any order."""
    events = sorted(events, key=lambda e: e[0])
    ack = next((at for at, kind, _ in events if kind in ("acknowledged", "resolved")), None)
    res = next(((at, outcome) for at, kind, outcome in events if kind == "resolved"), (None, None))
    return Timeline(complaint_id, filed_at, ack, res[0], res[1])


@dataclass(frozen=True)
class Clocks:
    """One complaint measured: office minutes to acknowledgement and to resolution (None while
    it has not happened), and where it stands against the SLA and the acknowledgement target."""

    ack_minutes: float | None
    resolve_minutes: float | None
    sla: str  # met | missed | pending
    ack_target: str  # met | missed | pending


def clocks(t: Timeline, cal: OfficeCalendar, sla_minutes: float, ack_minutes: float,
           as_of: dt.datetime) -> Clocks:
    ack = cal.minutes(t.filed_at, t.acknowledged_at) if t.acknowledged_at else None
    res = cal.minutes(t.filed_at, t.resolved_at) if t.resolved_at else None

    def judge(took: float | None, limit: float) -> str:
        if took is not None:
            return MET if took <= limit else MISSED
        # still open: late once the deadline has passed (add() stops there, however long ago)
        return MISSED if cal.add(t.filed_at, limit) < as_of else PENDING

    return Clocks(ack, res, judge(res, sla_minutes), judge(ack, ack_minutes))


# ---- statistics that refuse to say more than the data can -----------------------------------
def median(values: list[float]) -> float | None:
    return statistics.median(values) if len(values) >= MIN_N else None


def p90(values: list[float]) -> float | None:
    """The 90th percentile, linear between the ranks (numpy's default, 'inclusive')."""
    if len(values) < MIN_N:
        return None
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def share(part: int, whole: int) -> float | None:
    """``part / whole`` as a percentage, or None below ``MIN_N``."""
    return 100.0 * part / whole if whole >= MIN_N else None


def mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if len(values) >= MIN_N else None
