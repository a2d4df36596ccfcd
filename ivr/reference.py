"""The reference data calls and writes need, cached together under one freshness rule.

The directory the flow reads (provinces, agencies, offices, indicators), their ids the writer
stores, and the route per agency and province are loaded together and are at most ``ttl``
seconds old; a complaint that names something the cache lacks reloads all of it at once
(an office or unit added a moment ago). With the database away, calls go on with what was
loaded last.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from db import store
from db.models import Agency, Indicator, Office, Province
from clock.calendar import OfficeCalendar
from dispatch.outbox import Plan, plan_for
from ivr.directory import Directory, OfficeInfo

log = logging.getLogger(__name__)
TTL = 30.0  # seconds: a province switched on, an office or a unit imported reach new calls within this


def load_directory(s: Session, today: dt.date) -> Directory:
    """The snapshot of reference data a call needs."""
    provinces = list(s.scalars(select(Province)))
    offices = s.execute(
        select(Office.code, Agency.code, Province.area_code)
        .join(Agency, Office.agency_id == Agency.id)
        .join(Province, Office.province_id == Province.id)
    )
    return Directory(
        active_provinces=frozenset(p.area_code for p in provinces
                                   if p.activated_on is not None and p.activated_on <= today),
        known_provinces=frozenset(p.area_code for p in provinces),
        agencies=frozenset(s.scalars(select(Agency.code))),
        offices={o: OfficeInfo(o, a, pr) for o, a, pr in offices},
        indicators=frozenset(s.scalars(select(Indicator.code))),
        languages={p.area_code: tuple(c.strip() for c in p.languages.split(",") if c.strip())
                   for p in provinces if p.languages},
    )


class Reference:
    def __init__(self, Session: sessionmaker, today: Callable[[], dt.date],
                 calendar: OfficeCalendar | None = None, ttl: float = TTL):
        self.Session = Session
        self.today = today
        self.calendar = calendar  # whose holidays an SMS and the escalation clock wait out
        self.ttl = ttl
        self._lock = threading.Lock()
        self._loaded_at = float("-inf")
        self._directory = Directory()
        self._ids: dict[tuple[str, str], int] = {}
        self._plans: dict[tuple[int, int], Plan] = {}

    def load(self, s: Session | None = None) -> None:
        """Load everything now (in ``s``, or in a session of its own)."""
        if s is None:
            with self.Session() as own:
                return self.load(own)
        directory, ids = load_directory(s, self.today()), store.reference_ids(s)
        with self._lock:
            self._directory, self._ids, self._plans = directory, ids, {}
            self._loaded_at = time.monotonic()

    def stale(self) -> bool:
        return time.monotonic() - self._loaded_at > self.ttl

    def expire(self) -> None:
        """The next look reloads (after a change the caller knows of)."""
        self._loaded_at = float("-inf")

    @property
    def cached_directory(self) -> Directory:
        """The directory as loaded last, without looking at the database."""
        return self._directory

    def directory(self) -> Directory:
        """The directory, reloaded first if stale; with the database away, the last one
        (and no new try for ``ttl`` seconds: a call must not wait on a connect timeout)."""
        if self.stale():
            try:
                self.load()
            except DBAPIError:
                log.warning("database unavailable: using the reference data loaded earlier")
                self._loaded_at = time.monotonic()
        return self._directory

    def ids(self, s: Session, reload: bool = False) -> dict[tuple[str, str], int]:
        """(kind, code) -> id, reloaded in ``s`` first if stale or ``reload``."""
        if reload or self.stale():
            self.load(s)
        return self._ids

    def plan(self, s: Session, agency_id: int, province_id: int) -> Plan:
        """The route of complaints about an agency in a province, looked up once per load."""
        key = (agency_id, province_id)
        if (p := self._plans.get(key)) is None:
            p = self._plans[key] = plan_for(s, agency_id, province_id, self.calendar)
        return p
