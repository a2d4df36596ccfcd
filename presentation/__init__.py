"""The presentation edge: Jalali dates in Asia/Tehran, Persian digits, terminal tables."""
from __future__ import annotations

import datetime as dt

import jdatetime

from clock import TEHRAN

_FA_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def fa_digits(text) -> str:
    return str(text).translate(_FA_DIGITS)


def jalali(value, persian_digits: bool = False, fmt: str = "%Y/%m/%d %H:%M") -> str:
    """An aware datetime or ISO-8601 string as a Jalali date and time in Tehran."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    local = value.astimezone(TEHRAN)
    text = jdatetime.datetime.fromgregorian(datetime=local).strftime(fmt)
    return fa_digits(text) if persian_digits else text


def table(rows: list[dict], columns: list[str]) -> None:
    """A terminal table of ``rows`` (or a line saying there is nothing)."""
    from rich.console import Console  # here: rich takes 0.1 s to import, and most commands print no table
    from rich.table import Table

    console = Console()
    if not rows:
        console.print("(nothing to show)")
        return
    t = Table(show_lines=False)
    for c in columns:  # a reference someone reads out or types is never cut
        t.add_column(c, no_wrap=c in ("case_number", "unit", "code"), min_width=9 if c == "case_number" else None)
    for r in rows:
        t.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in columns))
    console.print(t)
