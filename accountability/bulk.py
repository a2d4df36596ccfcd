"""The clocks of many complaints at once: ``figures.clocks`` over numpy columns, for the reports.

Times are integer microseconds since the Unix epoch (UTC), as the reports' queries return them
(``NONE``: it has not happened), so nothing is rounded on the way in. Office minutes are summed
window by window in the order ``OfficeCalendar.minutes`` sums them, and deadlines are counted in
whole microseconds as ``OfficeCalendar.add`` counts them: every figure is the very float the
one-complaint functions give (tests/test_accountability.py compares them).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from accountability import figures as fg
from clock import TEHRAN
from clock.calendar import CalendarError, OfficeCalendar

NONE = np.iinfo(np.int64).min
MET, MISSED, PENDING = 0, 1, 2  # the codes of fg.MET, fg.MISSED, fg.PENDING in ``Clocks``
JUDGEMENTS = (fg.MET, fg.MISSED, fg.PENDING)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_US = dt.timedelta(microseconds=1)
_MARGIN = dt.timedelta(days=31)  # past the latest moment, for deadlines that fall after it
_NEVER = 3660  # days: OfficeCalendar.add gives up after as many


def micros(at: dt.datetime) -> int:
    """An aware datetime as microseconds since the epoch."""
    return (at - EPOCH) // _US


def moment(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=int(us))


def _local_day(us: int) -> dt.date:
    return moment(us).astimezone(TEHRAN).date()


@dataclass(frozen=True)
class Clocks:
    """Many complaints measured, one entry each: as ``figures.Clocks``, in columns."""

    ack_minutes: np.ndarray  # float; NaN while not acknowledged
    resolve_minutes: np.ndarray  # float; NaN while not resolved
    sla: np.ndarray  # MET | MISSED | PENDING
    ack_target: np.ndarray


class _Windows:
    """The calendar's open windows over a span of local days: sorted microsecond arrays, and the
    open time before each window (so a deadline is a search, not a walk)."""

    def __init__(self, cal: OfficeCalendar, first: dt.date, last: dt.date):
        pairs = list(cal.open_windows(first, last))
        self.first, self.last = first, last
        self.open = np.array([micros(o) for o, _ in pairs], dtype=np.int64)
        self.close = np.array([micros(c) for _, c in pairs], dtype=np.int64)
        length = self.close - self.open
        self.open_end = np.cumsum(length)  # open time from the first window to each one's end
        self.open_before = self.open_end - length
        # the search is exact for windows in order, apart, and as long on the wall clock as in UTC
        # (no clock change inside one); otherwise the one-complaint functions are used
        self.exact = (bool(np.all(length > 0)) and bool(np.all(self.open[1:] >= self.close[:-1]))
                      and all((c - o) // _US == micros(c) - micros(o) for o, c in pairs))

    def minutes(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Office minutes from each start to its end (0 if the end is not after the start)."""
        out = np.zeros(len(start))
        first = np.searchsorted(self.close, start, side="right")  # the first window closing after start
        last = np.searchsorted(self.open, end, side="left") - 1  # the last window opening before end
        rows = np.flatnonzero((end > start) & (first <= last))
        k = first[rows]
        while rows.size:  # window by window, in order, as OfficeCalendar.minutes adds them up
            lo = np.maximum(self.open[k], start[rows])
            hi = np.minimum(self.close[k], end[rows])
            out[rows] += (hi - lo) / 1e6 / 60
            more = k < last[rows]
            rows, k = rows[more], k[more] + 1
        return out

    def add(self, start: np.ndarray, left: int) -> np.ndarray | None:
        """The moment ``left`` office microseconds after each start; None if past the span."""
        n = len(self.open)
        k = np.searchsorted(self.close, start, side="right")  # the first window closing after start
        if n == 0 or np.any(k >= n):
            return None
        target = self.open_before[k] + np.maximum(start - self.open[k], 0) + left
        j = np.maximum(np.searchsorted(self.open_end, target, side="left"), k)
        if np.any(j >= n):
            return None
        return self.open[j] + (target - self.open_before[j])


def _span(cal: OfficeCalendar, times: list[np.ndarray]) -> _Windows:
    known = [t[t != NONE] for t in times]
    known = [t for t in known if t.size]
    lo = min(int(t.min()) for t in known)
    hi = max(int(t.max()) for t in known)
    return _Windows(cal, _local_day(lo), _local_day(hi) + _MARGIN)


def _deadlines(cal: OfficeCalendar, w: _Windows, start: np.ndarray, minutes: float) -> np.ndarray:
    """``cal.add(start, minutes)`` of each start, in microseconds."""
    left = dt.timedelta(minutes=minutes) // _US
    if cal.hours.always:
        return start + left
    latest = _local_day(int(start.max()))
    while (found := w.add(start, left)) is None:  # the span ends too soon: make it longer
        if (w.last - latest).days > _NEVER:
            raise CalendarError("the office calendar never opens")
        w = _Windows(cal, w.first, w.last + (w.last - w.first) + dt.timedelta(days=1))
    return found


def clocks(filed: np.ndarray, acked: np.ndarray, resolved: np.ndarray, cal: OfficeCalendar,
           sla_minutes: float, ack_minutes: float, as_of: dt.datetime) -> Clocks:
    """``figures.clocks`` of each complaint: filed, first acknowledged and first resolved times."""
    n = len(filed)
    if n == 0:
        empty = np.zeros(0)
        return Clocks(empty, empty, np.zeros(0, np.int8), np.zeros(0, np.int8))
    as_of_us = micros(as_of)
    w = None if cal.hours.always else _span(cal, [filed, acked, resolved, np.array([as_of_us])])
    if w is not None and not w.exact:
        return _one_by_one(filed, acked, resolved, cal, sla_minutes, ack_minutes, as_of)

    def minutes(end: np.ndarray) -> np.ndarray:
        out = np.full(n, np.nan)
        has = end != NONE
        if cal.hours.always:
            took = np.where(end[has] > filed[has], end[has] - filed[has], 0)
            out[has] = took / 1e6 / 60
        else:
            out[has] = w.minutes(filed[has], end[has])
        return out

    def judge(took: np.ndarray, limit: float) -> np.ndarray:
        out = np.where(took <= limit, MET, MISSED).astype(np.int8)
        still_open = np.isnan(took)
        if still_open.any():
            late = _deadlines(cal, w, filed[still_open], limit) < as_of_us
            out[still_open] = np.where(late, MISSED, PENDING)
        return out

    ack, res = minutes(acked), minutes(resolved)
    return Clocks(ack, res, judge(res, sla_minutes), judge(ack, ack_minutes))


def _one_by_one(filed, acked, resolved, cal, sla_minutes, ack_minutes, as_of) -> Clocks:
    """The same, complaint by complaint, for calendars the search cannot take (see _Windows)."""
    code = {j: i for i, j in enumerate(JUDGEMENTS)}
    out = []
    for f, a, r in zip(filed.tolist(), acked.tolist(), resolved.tolist()):
        t = fg.Timeline(0, moment(f), moment(a) if a != NONE else None, moment(r) if r != NONE else None, None)
        c = fg.clocks(t, cal, sla_minutes, ack_minutes, as_of)
        out.append((c.ack_minutes if c.ack_minutes is not None else np.nan,
                    c.resolve_minutes if c.resolve_minutes is not None else np.nan,
                    code[c.sla], code[c.ack_target]))
    ack, res, sla, ack_target = (np.array(col) for col in zip(*out))
    return Clocks(ack.astype(float), res.astype(float), sla.astype(np.int8), ack_target.astype(np.int8))
