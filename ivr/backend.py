"""Carries out the flow's effects (store, look up, discard, record the call); shared by drivers.

Blocking (SQLAlchemy, file system): the FastAGI server runs it in a thread pool.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from config import Settings
from db import store
from db.engine import make_engine, make_sessionmaker
from ivr.anonymity import scrub
from ivr.directory import Directory
from ivr.events import (
    ComplaintDraft,
    Discard,
    Done,
    FileComplaint,
    Filed,
    Finish,
    LookupStatus,
    StatusFound,
)
from ivr.flow import Call
from ivr.journal import Journal
from ivr.menu import Menu, load_menu
from ivr.session import AgiSession
from ivr.tracking import new_code

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
        self._lock = threading.Lock()
        self.journal = Journal(Path(settings.data_dir) / "journal")
        with self.Session() as s:
            self._directory = store.directory(s, utcnow().date())
        self._directory_at = time.monotonic()
        self.menu: Menu = load_menu(settings.menu_file or None, set(self._directory.indicators))

    def directory(self) -> Directory:
        with self._lock:
            if time.monotonic() - self._directory_at > DIRECTORY_TTL:
                try:
                    with self.Session() as s:
                        self._directory = store.directory(s, utcnow().date())
                except DBAPIError:  # keep answering calls with what we knew
                    log.warning("database unavailable: using the reference data loaded earlier")
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
            return self._file(action, ctx)
        if isinstance(action, LookupStatus):
            try:
                with self.Session() as s:
                    found = store.complaint_status(s, action.tracking_code)
            except DBAPIError:
                return StatusFound("unavailable")
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
            call = {"started_at": ctx.started_at.isoformat(), "province_code": action.province_code,
                    "outcome": action.outcome, "caller_hash": ctx.caller_hash, "period": ctx.period,
                    "duration_s": int(round(time.monotonic() - ctx.started_mono))}
            try:
                self._apply("call", call)
            except DBAPIError:
                self.journal.write("call", call)
            return Done()
        raise TypeError(f"not an effect: {type(action).__name__}")

    def _file(self, action: FileComplaint, ctx: CallContext) -> Filed:
        """Store the complaint; with the database away, journal it: the caller's code holds."""
        entry = {"draft": dataclasses.asdict(action.draft), "created_at": utcnow().isoformat(),
                 "code": new_code()}
        try:
            code = self._apply("complaint", entry)
        except DBAPIError as e:
            self.journal.write("complaint", entry)
            log.warning("database unavailable (%s): complaint journaled for replay", type(e).__name__)
            code = entry["code"]
        except Exception:
            log.exception("storing a complaint failed")
            return Filed(None)
        ctx.filed.append(code)
        return Filed(code)

    def _apply(self, kind: str, entry: dict):
        """Write one complaint or call record; the same function replays the journal."""
        with self.Session() as s:
            if kind == "complaint":
                return store.file_complaint(
                    s, ComplaintDraft(**entry["draft"]), dt.datetime.fromisoformat(entry["created_at"]),
                    self.settings.sla_hours, code=entry["code"]).tracking_code
            store.record_call(s, dt.datetime.fromisoformat(entry["started_at"]), entry["province_code"],
                              entry["outcome"], entry["duration_s"], entry["caller_hash"], entry["period"])

    def replay_journal(self) -> tuple[int, int]:
        """Move what was journaled during a database outage into the database; (done, left)."""
        return self.journal.replay(self._apply)
