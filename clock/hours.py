"""Working hours as written, in Tehran time: "sat-wed 07:30-14:30, thu 07:30-12:30".

Days follow the Iranian week (sat ... fri), so "sat-wed" is five days. An empty spec means
always open. The notation only: what is open when, holidays included, is ``clock.calendar``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

DAYS = ("sat", "sun", "mon", "tue", "wed", "thu", "fri")
_PY_WEEKDAY = {d: (5 + i) % 7 for i, d in enumerate(DAYS)}  # datetime.weekday() of each day
_PART = re.compile(r"^(?P<d1>[a-z]{3})(?:-(?P<d2>[a-z]{3}))?\s+(?P<h1>\d{1,2}):(?P<m1>\d\d)"
                   r"-(?P<h2>\d{1,2}):(?P<m2>\d\d)$")


class HoursError(ValueError):
    pass


@dataclass(frozen=True)
class Hours:
    """Open windows per Python weekday, as minutes since local midnight; empty: always open."""

    windows: tuple[tuple[int, int, int], ...] = ()

    @property
    def always(self) -> bool:
        return not self.windows


def parse(spec: str | None) -> Hours:
    spec = (spec or "").strip().lower()
    if spec in ("", "24/7", "always"):
        return Hours()
    windows = []
    for part in (p.strip() for p in spec.split(",")):
        m = _PART.match(part)
        if not m:
            raise HoursError(f"cannot read working hours {part!r}; write e.g. 'sat-wed 07:30-14:30'")
        d1, d2 = m["d1"], m["d2"] or m["d1"]
        if d1 not in DAYS or d2 not in DAYS:
            raise HoursError(f"unknown day in {part!r}; days are {' '.join(DAYS)}")
        start = int(m["h1"]) * 60 + int(m["m1"])
        end = int(m["h2"]) * 60 + int(m["m2"])
        if int(m["m1"]) > 59 or int(m["m2"]) > 59 or not 0 <= start < end <= 24 * 60:
            raise HoursError(f"bad time range in {part!r}; the end must follow the start on the "
                             f"same day (split a night shift in two)")
        i, j = DAYS.index(d1), DAYS.index(d2)
        for k in range(i, (j if j >= i else j + 7) + 1):
            windows.append((_PY_WEEKDAY[DAYS[k % 7]], start, end))
    return Hours(tuple(sorted(windows)))
