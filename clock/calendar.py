"""Office time: the clock the three-hour deadline, the acknowledgement target and escalation are
counted in, and the hours an SMS to a unit waits for.

Hours use the notation of ``clock.hours``; holidays are dates in a data file (``calendar.toml``)
and count for every unit: a unit's calendar is its own hours with the office holidays
(``for_hours``). Pure functions over aware datetimes; storage stays UTC.
"""
from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path

import jdatetime

from clock import TEHRAN
from clock import hours as wh

DEFAULT = Path(__file__).with_name("calendar.toml")


class CalendarError(ValueError):
    """The calendar file cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class OfficeCalendar:
    hours: wh.Hours
    holidays: frozenset[dt.date]  # Gregorian dates, in Tehran
    spec: str = ""  # the hours as written, for the reports' notes

    def for_hours(self, spec: str | None) -> "OfficeCalendar":
        """The calendar of a unit that works ``spec`` (empty: always open), on these holidays."""
        return OfficeCalendar(wh.parse(spec), self.holidays, spec or "")

    def _windows(self, day: dt.date):
        """The open (start, end) of one local day, as aware datetimes."""
        if day in self.holidays:
            return
        midnight = dt.datetime.combine(day, dt.time(), TEHRAN)
        for weekday, start, end in self.hours.windows:
            if weekday == day.weekday():
                yield midnight + dt.timedelta(minutes=start), midnight + dt.timedelta(minutes=end)

    def open_windows(self, first: dt.date, last: dt.date):
        """The open (start, end) of every local day from ``first`` to ``last``, in order."""
        day = first
        while day <= last:
            yield from self._windows(day)
            day += dt.timedelta(days=1)

    def minutes(self, start: dt.datetime, end: dt.datetime) -> float:
        """Office minutes between two moments (0 if ``end`` is not after ``start``)."""
        if end <= start:
            return 0.0
        if self.hours.always:
            return (end - start).total_seconds() / 60
        total = 0.0
        day, last = start.astimezone(TEHRAN).date(), end.astimezone(TEHRAN).date()
        while day <= last:
            for opens, closes in self._windows(day):
                lo, hi = max(opens, start), min(closes, end)
                if hi > lo:
                    total += (hi - lo).total_seconds() / 60
            day += dt.timedelta(days=1)
        return total

    def next_open(self, at: dt.datetime) -> dt.datetime:
        """``at`` if open then, else the start of the next working window, holidays skipped (UTC)."""
        return self.add(at, 0)

    def add(self, start: dt.datetime, minutes: float) -> dt.datetime:
        """The moment ``minutes`` office minutes after ``start`` (UTC): a deadline."""
        if self.hours.always:
            return start + dt.timedelta(minutes=minutes)
        left = dt.timedelta(minutes=minutes)
        day = start.astimezone(TEHRAN).date()
        for _ in range(3660):  # ten years of days; only a calendar of holidays gets past them
            for opens, closes in self._windows(day):
                lo = max(opens, start)
                if closes <= lo:
                    continue
                if closes - lo >= left:
                    return (lo + left).astimezone(dt.timezone.utc)
                left -= closes - lo
            day += dt.timedelta(days=1)
        raise CalendarError("the office calendar never opens")


def _date(text: str, where: str) -> dt.date:
    try:
        y, m, d = (int(x) for x in str(text).split("-"))
        return dt.date(y, m, d) if y > 1700 else jdatetime.date(y, m, d).togregorian()
    except (ValueError, TypeError):
        raise CalendarError(f"{where}: {text!r} is not a date (write 1404-07-13, Jalali)") from None


def parse(text: str, where: str = "calendar") -> OfficeCalendar:
    """A calendar from the text of a TOML file (``hours`` and a ``[holidays]`` table)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CalendarError(f"{where} is not valid TOML: {e}") from None
    unknown = set(data) - {"hours", "holidays"}
    if unknown:
        raise CalendarError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    spec = str(data.get("hours", "sat-wed 07:00-14:00"))
    try:
        hours = wh.parse(spec)
    except wh.HoursError as e:
        raise CalendarError(f"{where}: {e}") from None
    holidays = frozenset(_date(k, where) for k in dict(data.get("holidays", {})))
    return OfficeCalendar(hours, holidays, spec)


def load(path: str | None = None) -> OfficeCalendar:
    """The calendar in ``path``, or the packaged default."""
    p = Path(path) if path else DEFAULT
    try:
        return parse(p.read_text(encoding="utf-8"), str(p))
    except FileNotFoundError:
        raise CalendarError(f"office calendar not found: {p}") from None
