"""Carries out the flow's effects (store, look up, discard, record the call); shared by drivers.

Blocking (SQLAlchemy, file system): the FastAGI server runs it in a thread pool.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field

from config import Settings
from db import store
from db.engine import make_engine, make_sessionmaker
from ivr.anonymity import scrub
from ivr.directory import Directory
from ivr.events import (
    Discard,
    Done,
    FileComplaint,
    Filed,
    Finish,
    LookupStatus,
    StatusFound,
)
from ivr.flow import Call
from ivr.menu import Menu, load_menu
from ivr.session import AgiSession

log = logging.getLogger(__name__)
DIRECTORY_TTL = 30.0  # seconds: a province switched on reaches new calls within this


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class CallContext:
    """What a driver keeps about one call: never the number, only its keyed hash."""

    started_at: dt.datetime
    started_mono: float
    caller_hash: str | None
    period: str
    filed: list[str] = field(default_factory=list)


class Backend:
    def __init__(self, settings: Settings, engine=None):
        self.settings = settings
        self.engine = engine or make_engine(settings.db_url)
        self.Session = make_sessionmaker(self.engine)
        self._key = settings.hash_key()
        self._directory: Directory | None = None
        self._directory_at = 0.0
        self._lock = threading.Lock()
        with self.Session() as s:
            indicators = set(store.directory(s, utcnow().date()).indicators)
        self.menu: Menu = load_menu(settings.menu_file or None, indicators)

    def directory(self) -> Directory:
        with self._lock:
            if self._directory is None or time.monotonic() - self._directory_at > DIRECTORY_TTL:
                with self.Session() as s:
                    self._directory = store.directory(s, utcnow().date())
                self._directory_at = time.monotonic()
            return self._directory

    def open_call(self, headers: dict[str, str]) -> tuple[AgiSession, CallContext]:
        """Start a call from AGI headers; the caller's number is hashed here and dropped."""
        now = utcnow()
        period = now.strftime("%Y-%m")
        safe, caller_hash = scrub(headers, self._key, period)
        headers.clear()  # the raw headers (number, name, channel) go no further
        call = Call(self.menu, self.directory(), safe.get("agi_arg_1"),
                    operator=bool(self.settings.operator_queue),
                    recordings_dir=str(self.settings.recordings_path),
                    new_name=lambda: secrets.token_hex(16))
        return AgiSession(call), CallContext(now, time.monotonic(), caller_hash, period)

    def perform(self, action, ctx: CallContext):
        """Carry out one effect and return the event the flow expects back."""
        if isinstance(action, FileComplaint):
            try:
                with self.Session() as s:
                    complaint = store.file_complaint(s, action.draft, utcnow(), self.settings.sla_hours)
            except Exception:
                log.exception("storing a complaint failed")
                return Filed(None)
            ctx.filed.append(complaint.tracking_code)
            return Filed(complaint.tracking_code)
        if isinstance(action, LookupStatus):
            with self.Session() as s:
                found = store.complaint_status(s, action.tracking_code)
            return StatusFound(*found) if found else StatusFound(None)
        if isinstance(action, Discard):
            try:
                os.remove(action.path)
            except FileNotFoundError:
                pass  # on another host, or never written
            except OSError as e:
                log.warning("could not remove an unsubmitted recording: %s", e.strerror)
            return Done()
        if isinstance(action, Finish):
            duration = int(round(time.monotonic() - ctx.started_mono))
            try:
                with self.Session() as s:
                    store.record_call(s, ctx.started_at, action.province_code, action.outcome,
                                      duration, ctx.caller_hash, ctx.period)
            except Exception:
                log.exception("recording the call's outcome failed")
            return Done()
        raise TypeError(f"not an effect: {type(action).__name__}")
