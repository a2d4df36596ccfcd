"""Report months: Jalali (1404-07) or Gregorian (2025-10), bounded at Tehran midnight, in UTC."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import jdatetime

from clock import TEHRAN

JALALI_NAMES = ("فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور", "مهر", "آبان", "آذر", "دی",
                "بهمن", "اسفند")
GREGORIAN_NAMES = ("ژانویه", "فوریه", "مارس", "آوریل", "مه", "ژوئن", "ژوئیه", "اوت", "سپتامبر",
                   "اکتبر", "نوامبر", "دسامبر")


class MonthError(ValueError):
    pass


@dataclass(frozen=True)
class Month:
    year: int
    month: int
    jalali: bool

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def _first(self, year: int, month: int) -> dt.date:
        if self.jalali:
            return jdatetime.date(year, month, 1).togregorian()
        return dt.date(year, month, 1)

    def _shift(self, n: int) -> tuple[int, int]:
        k = self.year * 12 + self.month - 1 + n
        return k // 12, k % 12 + 1

    @property
    def start(self) -> dt.datetime:
        """Tehran midnight of the first day, in UTC."""
        return dt.datetime.combine(self._first(self.year, self.month), dt.time(), TEHRAN).astimezone(dt.timezone.utc)

    @property
    def end(self) -> dt.datetime:
        """Tehran midnight of the next month's first day, in UTC (exclusive)."""
        y, m = self._shift(1)
        return dt.datetime.combine(self._first(y, m), dt.time(), TEHRAN).astimezone(dt.timezone.utc)

    def previous(self) -> "Month":
        y, m = self._shift(-1)
        return Month(y, m, self.jalali)

    @property
    def name_fa(self) -> str:
        """'مهر ۱۴۰۴' (Persian digits are added at the presentation edge)."""
        names = JALALI_NAMES if self.jalali else GREGORIAN_NAMES
        return f"{names[self.month - 1]} {self.year}"


def parse(text: str) -> Month:
    """'1404-07' (Jalali) or '2025-10' (Gregorian: a year after 1700)."""
    m = re.fullmatch(r"\s*(\d{4})[-/](\d{1,2})\s*", text or "")
    if not m or not 1 <= int(m[2]) <= 12:
        raise MonthError(f"month {text!r}: write it as 1404-07 (Jalali) or 2025-10 (Gregorian)")
    year, month = int(m[1]), int(m[2])
    jalali = year < 1700
    if jalali and not 1300 <= year <= 1500:
        raise MonthError(f"month {text!r}: a Jalali year is between 1300 and 1500")
    return Month(year, month, jalali)


def last_complete(now: dt.datetime) -> Month:
    """The Jalali month before the one ``now`` is in (Tehran): the latest month to report."""
    today = jdatetime.date.fromgregorian(date=now.astimezone(TEHRAN).date())
    return Month(today.year, today.month, True).previous()
