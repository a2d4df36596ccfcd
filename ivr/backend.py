"""Carries out the flow's effects (store, look up, discard, record the call); shared by drivers.

Blocking (SQLAlchemy, file system): the FastAGI server runs it in a thread pool.
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, TimeoutError as FutureTimeout
from pathlib import Path

from sqlalchemy.exc import DBAPIError, IntegrityError

from clock import today as tehran_today, utcnow
from clock.calendar import load as office_calendar
from config import Settings
from db import store
from db.engine import make_engine, make_sessionmaker
from db.writer import GroupWriter
from ivr.directory import Directory
from ivr.events import (
    AwaitFiled,
    ComplaintDraft,
    Discard,
    Done,
    FileComplaint,
    Filed,
    Filing,
    Finish,
    LookupStatus,
    RateComplaint,
    StatusFound,
)
from ivr.journal import Journal, Unstorable
from ivr.menu import Menu, load_menu
from ivr.opening import open_call
from ivr.reference import Reference
from ivr.snapshot import Snapshot, SnapshotFile
from ivr.writes import KINDS, Writes
from ivr.session import AgiSession
from ivr import voice
from complaints.callers import CallerLedger, Limits
from common.keyring import code_hash
from common.tracking import new_case_number, new_code

log = logging.getLogger(__name__)
WRITE_TIMEOUT = 10.0  # seconds a caller may wait for the database before the journal takes over
ORIGINALS_MAX_AGE = 1200.0  # seconds: an undisguised recording older than any call is a leftover
SWEEP_EVERY = 60.0
RETENTION_EVERY = 3600.0  # seconds: what retention deletes is due by the day, not the minute


@dataclass
class CallContext:
    """What a driver keeps about one call: never the number, only its keyed hash, which
    goes to the caller ledger alone (never into a call record, a complaint or the journal)."""

    started_at: dt.datetime
    started_mono: float
    caller_hash: str | None
    period: str  # the month whose caller key made the hash
    day: dt.date  # Tehran's day, for the daily limits
    filed: list[str] = field(default_factory=list)
    # the complaint being written (a Future, or an asyncio Task in the server): begun by
    # FileComplaint, awaited by AwaitFiled, never cancelled
    filing: Future | asyncio.Future | None = None


class Backend:
    def __init__(self, settings: Settings, engine=None, serving: bool = False,
                 snapshot: Snapshot | None = None):
        """``snapshot``: a classic AGI call that began from the snapshot file; the database is
        then first asked when the call needs it."""
        self.settings = settings
        self.engine = engine or make_engine(settings.db_url)
        self.Session = make_sessionmaker(self.engine)
        self.keyring = settings.keyring()
        self._tracking_key = self.keyring.tracking_key()
        self.ledger = CallerLedger(self.Session, Limits.from_settings(settings),
                                   Path(settings.data_dir) / "counts",
                                   (settings.counts_flush_min, settings.counts_flush_max))
        # a one-call process (classic AGI) refreshes as it goes; a server (serving) refreshes
        # from its housekeeping, so no call waits on the database (or its connect timeout)
        self.refresh_inline = not serving
        self.journal = Journal(Path(settings.data_dir) / "journal")
        self.calendar = office_calendar(settings.office_calendar or None)
        self._recordings_dir = str(settings.recordings_path)  # resolved once, not per call
        self._voice: ProcessPoolExecutor | None = None
        self._filer: ThreadPoolExecutor | None = None  # blocking drivers' writes, begun not awaited
        self.filings: set[asyncio.Task] = set()  # the event loop's writes not settled yet
        self._swept_at = 0.0
        self._retained_at: float | None = None  # the first look is at the first housekeeping
        self._legacy: frozenset[str] | None = None
        self.reference = Reference(self.Session, tehran_today, self.calendar,  # a province goes live at Tehran's midnight
                                   snapshot=SnapshotFile(settings.data_dir, settings.db_url))
        if snapshot is None:
            self.reference.load()
        else:
            self.reference.seed(snapshot)
        self.writes = Writes(self.reference, self.calendar, settings.sla_hours, self.code_hash)
        self.writer = GroupWriter(self.Session, self.writes.one, self.writes.batch)
        self.on_call = lambda outcome, province_code: None  # counted by service/metrics.py
        self.menu: Menu = load_menu(settings.menu_file or None, set(self.reference.cached_directory.indicators))

    def directory(self) -> Directory:
        return self.reference.directory()

    def open_call(self, headers: dict[str, str]) -> tuple[AgiSession, CallContext]:
        """Start a call from AGI headers; the caller's number is hashed here and dropped."""
        directory = self.directory() if self.refresh_inline else self.reference.cached_directory
        session, fields = open_call(headers, self.keyring, self.menu, directory,
                                    bool(self.settings.operator_queue), self._recordings_dir)
        return session, CallContext(**fields)

    def perform(self, action, ctx: CallContext):
        """Carry out one effect and return the event the flow expects back."""
        if isinstance(action, FileComplaint):  # the write goes on while the caller hears a prompt
            if self._filer is None:
                self._filer = ThreadPoolExecutor(4, thread_name_prefix="favad-filing")
            ctx.filing = self._filer.submit(self._file, action, ctx)
            return Filing()
        if isinstance(action, AwaitFiled):
            try:
                return ctx.filing.result()
            except Exception:  # a bug on the way to the database: the caller hears the apology
                log.exception("filing a complaint failed")
                return Filed(None)
        if isinstance(action, LookupStatus):
            if not self.ledger.allows("guesses", ctx.caller_hash, ctx.day):
                return StatusFound("limited")
            try:
                with self.Session() as s:
                    found = store.complaint_status(s, self.code_hash(action.tracking_code))
            except DBAPIError:
                return StatusFound("unavailable")
            if not found:
                self.ledger.add("guesses", ctx.caller_hash, ctx.period, ctx.day)
            return StatusFound(*found) if found else StatusFound(None)
        if isinstance(action, RateComplaint):
            entry = {"code_hash": self.code_hash(action.tracking_code), "rating": action.rating,
                     "at": utcnow().isoformat()}
            try:
                self._apply("rating", entry)
            except (DBAPIError, FutureTimeout) as e:
                self._journal("rating", entry, e)
            return Done()
        if isinstance(action, Discard):
            try:
                os.remove(action.path)
            except FileNotFoundError:
                pass  # on another host, or never written
            except OSError as e:
                log.warning("could not remove an unsubmitted recording: %s", e.strerror)
            return Done()
        if isinstance(action, Finish):
            call = {"started_at": ctx.started_at.replace(second=0, microsecond=0).isoformat(),
                    "province_code": action.province_code, "outcome": action.outcome,
                    "duration_s": int(round(time.monotonic() - ctx.started_mono)),
                    "language": action.language}
            self.on_call(action.outcome, action.province_code)
            # nobody waits for this one (a caller handed to the operator should not)
            self.writer.submit("call", call).add_done_callback(
                lambda f: f.exception() and self._journal("call", call, f.exception()))
            return Done()
        raise TypeError(f"not an effect: {type(action).__name__}")

    def _file(self, action: FileComplaint, ctx: CallContext) -> Filed:
        """Store the complaint; with the database away, journal it: the caller's code holds."""
        if not self.ledger.allows("complaints", ctx.caller_hash, ctx.day):
            return Filed(None, refused=True)
        action = FileComplaint(disguised(action.draft))
        entry = self._complaint_entry(action)
        try:
            return self._filed(entry, self.writer.submit("complaint", entry).result(WRITE_TIMEOUT), ctx)
        except Exception as e:
            return self._filed(entry, e, ctx)

    async def perform_async(self, action, ctx: CallContext, executor=None):
        """``perform`` for the event loop: a complaint awaits the group writer, a call record is
        only queued (no thread hop), the rest runs in ``executor`` (or the loop's default)."""
        if isinstance(action, FileComplaint):  # begun, not awaited: the caller hears a prompt meanwhile
            ctx.filing = task = asyncio.ensure_future(self.file_async(action, ctx, executor))
            self.filings.add(task)
            task.add_done_callback(self.filings.discard)
            return Filing()
        if isinstance(action, AwaitFiled):
            # shielded: a server that stops cancels the call's task, never the complaint's write
            try:
                return await asyncio.shield(ctx.filing)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug on the way to the database: the caller hears the apology
                log.exception("filing a complaint failed")
                return Filed(None)
        if isinstance(action, Finish):
            return self.perform(action, ctx)
        return await asyncio.get_running_loop().run_in_executor(executor, self.perform, action, ctx)

    async def file_async(self, action: FileComplaint, ctx: CallContext, executor=None) -> Filed:
        """``_file`` for the event loop: awaits the writer instead of holding a thread; the
        blocking parts run in ``executor`` (the driver's, as every other effect does)."""
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(executor, self.ledger.allows, "complaints", ctx.caller_hash, ctx.day):
            return Filed(None, refused=True)
        if action.draft.recording:  # Praat holds the GIL for the whole recording: in a process
            action = FileComplaint(await loop.run_in_executor(self._voice_pool(), disguised, action.draft))
        entry = self._complaint_entry(action)
        future = asyncio.wrap_future(self.writer.submit("complaint", entry))
        done, _ = await asyncio.wait({future}, timeout=WRITE_TIMEOUT)  # no cancel: it may yet land
        if not done:
            result: str | BaseException = FutureTimeout()
        else:
            result = future.exception() or future.result()
        if isinstance(result, BaseException):  # journaling fsyncs: off the loop
            return await loop.run_in_executor(executor, self._filed, entry, result, ctx)
        return self._filed(entry, result, ctx)

    def code_hash(self, code: str) -> str:
        return code_hash(self._tracking_key, code)

    def _complaint_entry(self, action: FileComplaint) -> dict:
        """The writer's job. ``code`` (what the caller will hear) stays in memory: the database
        and the journal get only its hash."""
        code = new_code()
        return {"draft": dataclasses.asdict(action.draft), "created_at": utcnow().isoformat(),
                "code_hash": self.code_hash(code), "case_number": new_case_number(), "code": code}

    def _filed(self, entry: dict, result: str | BaseException, ctx: CallContext) -> Filed:
        """What the caller hears: the stored code, or the journaled one, or an apology."""
        journaled = isinstance(result, (DBAPIError, FutureTimeout))
        if journaled:
            # a write that still lands later carries the same hash: replay then finds it stored
            if not self._journal("complaint", entry, result):
                return Filed(None)
        elif isinstance(result, BaseException):
            log.error("storing a complaint failed", exc_info=result)
            return Filed(None)
        self.ledger.add("complaints", ctx.caller_hash, ctx.period, ctx.day)
        ctx.filed.append(entry["code"])
        return Filed(entry["code"], journaled=journaled)

    def _journal(self, kind: str, entry: dict, error: BaseException) -> bool:
        """Keep a write the database did not take for replay; False if the disk would not either."""
        try:
            self.journal.write(kind, {k: v for k, v in entry.items() if k != "code"})
        except OSError as e:  # disk full, I/O error, read-only: nothing was kept
            log.error("database unavailable (%s) and the journal too (%s): a %s is lost",
                      type(error).__name__, e.strerror or type(e).__name__, kind)
            return False
        log.warning("database unavailable (%s): %s journaled for replay", type(error).__name__, kind)
        return True

    def _apply(self, kind: str, entry: dict):
        return self.writer.submit(kind, entry).result(WRITE_TIMEOUT)

    def _voice_pool(self) -> ProcessPoolExecutor:
        if self._voice is None:
            self._voice = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return self._voice

    def housekeep(self) -> None:
        """Off the call path, every few seconds: the caller counts at their random moment,
        originals a crash or a lost call left behind, and once an hour what retention says is due."""
        self.ledger.flush_if_due()
        if time.monotonic() - self._swept_at > SWEEP_EVERY:
            self.sweep_recordings()
        if self._retained_at is None or time.monotonic() - self._retained_at > RETENTION_EVERY:
            self.retain()

    def retain(self) -> None:
        """Delete what retention says is due (retention/sweep.py); a failure waits for the next hour."""
        from retention import sweep

        self._retained_at = time.monotonic()
        try:
            now = utcnow()
            with self.Session() as s:
                done = sweep.apply(self.settings, s, sweep.plan(self.settings, s, now), now)
            figures = {k: v for k, v in done.summary().items() if k != "recording_cases"}
            if any(figures.values()):
                log.info("retention deleted %s", figures)
        except DBAPIError as e:
            log.warning("database unavailable (%s): retention waits for the next hour", type(e).__name__)
        except Exception:
            log.exception("retention failed")

    def sweep_recordings(self) -> list[str]:
        """Delete undisguised recordings older than any call (a crash mid-call, a lost line)."""
        self._swept_at = time.monotonic()
        if self._legacy is None:  # recordings filed before disguising began: retention's, not ours
            try:
                with self.Session() as s:
                    self._legacy = store.undisguised_recordings(s)
            except DBAPIError:
                return []
        return voice.sweep_originals(self._recordings_dir, ORIGINALS_MAX_AGE, keep=self._legacy)

    def close(self) -> None:
        """Write what is queued (call records nobody waited for); caller counts to the spool."""
        if self._filer is not None:
            self._filer.shutdown(wait=True)  # begun writes settle (and journal) first
            self._filer = None
        self.writer.close()
        self.ledger.close()
        if self._voice is not None:
            self._voice.shutdown()
            self._voice = None

    def replay_journal(self) -> tuple[int, int]:
        """Move what was journaled during a database outage into the database, quarantining
        what it can never take; (stored, left)."""
        return self.journal.replay(self._replay_one)

    def _replay_one(self, kind: str, entry: dict) -> None:
        """Store one journal entry, or raise Unstorable if no later try could."""
        if kind not in KINDS:
            raise Unstorable(f"not a journal kind: {kind!r}")
        try:
            self._apply(kind, self._upgraded(kind, entry))
        except IntegrityError as e:  # after the writer's own retries: the data itself
            raise Unstorable(f"refused by the database ({type(e.orig).__name__})") from e
        except (LookupError, TypeError, ValueError, AttributeError) as e:  # not what the journal writes
            raise Unstorable(f"{type(e).__name__}: {e}") from e

    def _upgraded(self, kind: str, entry: dict) -> dict:
        """An entry journaled before tracking codes were hashed (0005): hash its code now."""
        if kind in ("complaint", "rating") and "code_hash" not in entry and "code" in entry:
            entry = {**entry, "code_hash": self.code_hash(entry.pop("code"))}
            if kind == "complaint":
                entry.setdefault("case_number", new_case_number())
        return entry


def disguised(draft: ComplaintDraft) -> ComplaintDraft:
    """The draft with its recording disguised (the original gone), or without one if that
    failed: an undisguised voice never goes further than this."""
    if not draft.recording:
        return draft
    return dataclasses.replace(draft, recording=voice.disguise(draft.recording))
