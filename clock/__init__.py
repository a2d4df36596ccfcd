"""Office time, in one place: the zone (Tehran), now and today, and (in ``calendar``) working
hours, holidays and the clocks counted in them: the three-hour deadline, the acknowledgement
target, escalation and when an SMS may ring.

The bottom layer: it imports no part of the project, and every part may import it. Storage is
UTC; a local time exists only to be compared with office hours or shown.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

TEHRAN = ZoneInfo("Asia/Tehran")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def today(now: dt.datetime | None = None) -> dt.date:
    """The date in Tehran at ``now`` (default: now)."""
    return (now or utcnow()).astimezone(TEHRAN).date()
