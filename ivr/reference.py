"""The reference data calls and writes need, cached together under one freshness rule.

The directory the flow reads (provinces, agencies, offices, indicators), their ids the writer
stores, and the route per agency and province are loaded together and are at most ``ttl``
seconds old; a complaint that names something the cache lacks reloads all of it at once
(an office or unit added a moment ago). With the database away, calls go on with what was
loaded last. Each load also rewrites the snapshot file a classic AGI process starts from
(ivr/snapshot.py).
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
from ivr.directory import Directory
from ivr.snapshot import Snapshot, SnapshotFile

log = logging.getLogger(__name__)
TTL = 30.0  # seconds: a province switched on, an office or a unit imported reach new calls within this


def load_snapshot(s: Session) -> Snapshot:
    """The reference data a call needs, as the database has it now."""
    provinces = s.execute(select(Province.area_code, Province.activated_on, Province.languages))
    offices = s.execute(
        select(Office.code, Agency.code, Province.area_code)
        .join(Agency, Office.agency_id == Agency.id)
        .join(Province, Office.province_id == Province.id)
    )
    return Snapshot(
        provinces=tuple((code, since, tuple(c.strip() for c in (langs or "").split(",") if c.strip()))
                        for code, since, langs in provinces),
        agencies=tuple(s.scalars(select(Agency.code))),
        offices=tuple((o, a, p) for o, a, p in offices),
        indicators=tuple(s.scalars(select(Indicator.code))),
    )


def load_directory(s: Session, today: dt.date) -> Directory:
    """The directory a call reads, from the database."""
    return load_snapshot(s).directory(today)


class Reference:
    def __init__(self, Session: sessionmaker, today: Callable[[], dt.date],
                 calendar: OfficeCalendar | None = None, ttl: float = TTL,
                 snapshot: SnapshotFile | None = None):
        self.Session = Session
        self.snapshot = snapshot  # rewritten at each load, for classic AGI's next calls
        self.today = today
        self.calendar = calendar  # whose holidays an SMS and the escalation clock wait out
        self.ttl = ttl
        self._lock = threading.Lock()
        self._loaded_at = float("-inf")
        self._directory = Directory()
        self._ids: dict[tuple[str, str], int] = {}
        self._plans: dict[tuple[int, int], Plan] = {}

    def load(self, s: Session | None = None) -> None:
        """Load everything now (in ``s``, or in a session of its own), and write the snapshot."""
        if s is None:
            with self.Session() as own:
                return self.load(own)
        snap, ids = load_snapshot(s), store.reference_ids(s)
        directory = snap.directory(self.today())
        with self._lock:
            self._directory, self._ids, self._plans = directory, ids, {}
            self._loaded_at = time.monotonic()
        if self.snapshot is not None:
            self.snapshot.write(snap)

    def seed(self, snap: Snapshot) -> None:
        """The directory from a snapshot file, for a call that starts before any database;
        still stale: ids and routes, and the directory itself, are loaded at the first use."""
        with self._lock:
            self._directory = snap.directory(self.today())

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


def refresh_snapshot(settings, forget_on_failure: bool = True) -> Snapshot:
    """Rewrite the snapshot file from the database now (reference data just changed, or a
    timer); raises what the database raised. A change must not leave an older snapshot behind:
    unless told otherwise, a failure removes the file (classic AGI then asks the database)."""
    from db.engine import make_engine, make_sessionmaker

    file = SnapshotFile(settings.data_dir, settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        with make_sessionmaker(engine)() as s:
            snap = load_snapshot(s)
    except Exception:
        if forget_on_failure:
            file.forget()
        raise
    finally:
        engine.dispose()
    if not file.write(snap):
        if forget_on_failure:
            file.forget()
        raise OSError(f"cannot write {file.path}")
    return snap


def refresh_after_change(settings) -> None:
    """Reference data was just changed by a command: classic AGI's next call starts from the
    new data, not from a snapshot up to MAX_AGE old (a server notices within TTL)."""
    try:
        refresh_snapshot(settings)
    except Exception:  # the snapshot was removed: the next classic call reads the database
        pass
