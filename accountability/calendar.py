"""Moved to ``clock.calendar`` (the one office clock); this name stays for importers not yet moved."""
from clock.calendar import DEFAULT, CalendarError, OfficeCalendar, load, parse  # noqa: F401
