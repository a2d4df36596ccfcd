"""Dates as admins type them: Jalali (1404-07-01, ۱۴۰۴/۰۷/۰۱) or ISO (2025-09-23)."""
from __future__ import annotations

import datetime as dt
import re

import jdatetime

from clock import today as today_in_tehran

_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_DATE = re.compile(r"^\s*(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\s*$")
JALALI_BEFORE = 1700  # a year below this is a Jalali year (Gregorian dates here are 2000+)


class DateError(ValueError):
    """Not a date an admin could mean; the message says what is accepted."""


def parse_date(text: str, now: dt.datetime | None = None) -> dt.date:
    """The Gregorian date meant by ``text``: Jalali when the year is below 1700, else ISO."""
    raw = text.translate(_DIGITS)
    if raw.strip().lower() in ("today", "امروز"):
        return today_in_tehran(now)
    m = _DATE.match(raw)
    if not m:
        raise DateError(f"{text!r} is not a date: use YYYY-MM-DD, Jalali (1404-07-01) or ISO (2025-09-23)")
    year, month, day = map(int, m.groups())
    try:
        if year < JALALI_BEFORE:
            return jdatetime.date(year, month, day).togregorian()
        return dt.date(year, month, day)
    except ValueError as e:
        kind = "Jalali" if year < JALALI_BEFORE else "Gregorian"
        raise DateError(f"{text!r} is not a valid {kind} date ({e})") from None


def jalali_date(day: dt.date) -> str:
    return jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d")
