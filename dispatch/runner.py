"""The dispatcher: claim due messages, render and send each, record how it went; escalate what
no unit took up in time. Runs as `favad dispatch` and, by default, inside `favad serve`.

Complaint messages and report cards are the same outbox: one claim, one lease (kept alive
while a batch is in flight, ``dispatch.lease``), one retry rule, one dead-letter queue."""
from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import aliased

from clock import calendar as office
from clock import utcnow
from config import ConfigError, Settings
from db.engine import make_engine, make_sessionmaker
from db.models import Agency, Complaint, Indicator, Office, Province
from dispatch import channels as channel_registry
from dispatch import lease, outbox, render
from dispatch.channels.base import PERMANENT, SENT, TEMPORARY, Mail, Result, Sms
from dispatch.models import ComplaintRoute, Document, InspectionUnit, OutboxMessage
from common import links

log = logging.getLogger(__name__)
ESCALATION_EVERY = 1.0  # seconds between looks for complaints to escalate
DB_DOWN_WAIT = 2.0
GROUP, GROUP_SECONDS = 10, 0.05  # results committed together: at most this many, this long


@dataclass
class Owed:
    """Results of sends the database has not recorded yet."""

    sent: dict[int, str | None] = field(default_factory=dict)  # id -> forward note
    failed: list[tuple["Job", Result, float]] = field(default_factory=list)
    released: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sent) + len(self.failed) + len(self.released)


@dataclass(frozen=True)
class Job:
    id: int
    channel: str
    recipient: str
    label: str  # for the log: "unit <code>" or the document's key
    tries: int  # this one included
    notice: render.Notice | None = None  # a complaint's message
    recording_path: str | None = None
    first: bool = False  # the complaint was not yet forwarded when this was claimed
    document: render.Document | None = None  # a report card


class Dispatcher:
    def __init__(self, settings: Settings, engine=None, worker: str | None = None):
        self.settings = settings
        self.engine = engine or make_engine(settings.db_url)
        self.Session = make_sessionmaker(self.engine)
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"
        self.channels = channel_registry.make(settings)  # checks the settings before any work
        self.renew_every = lease.check(settings)
        self.worst = lease.worst_send(settings)
        try:
            self.calendar = office.load(settings.office_calendar or None)
        except office.CalendarError as e:
            raise ConfigError(str(e)) from None
        # each sending thread keeps its own connections: a slow mail relay must not make
        # every other message wait behind it
        self._pool = ThreadPoolExecutor(max(1, settings.dispatch_concurrency), "dispatch-send")
        self._local = threading.local()
        self._open: list[dict] = [self.channels]
        self._escalated_at = 0.0
        self._owed = Owed()  # results sent but not yet recorded (the database was away)
        self._doubt = False  # the last round failed: claims of ours may be orphaned
        self._unsure: set[int] = set()  # sends that raised: left to their lease, never given back
        self.sent = self.failed = 0

    # ---- one round ----------------------------------------------------------------------
    def run_once(self, stop: threading.Event | None = None, due_by: dt.datetime | None = None,
                 kinds: tuple[str, ...] | None = None) -> int:
        """Escalate what is due, then claim one batch (of ``kinds``, default all; due by
        ``due_by``, default now) and send it; how many were claimed.

        What the last round could not record (the database went away mid-batch, or switched to
        its standby) is recorded first, and nothing is claimed until it is: a message a server
        accepted is never left to be claimed and sent again once its lease runs out."""
        s = self.settings
        if not self._settle():
            raise OperationalError("recording the last round's results", None, ConnectionError("database away"))
        with self.Session() as session:
            if self._doubt:  # the last round failed: a claim may have committed unheard
                if n := outbox.release_orphans(session, self.worker, utcnow(), keep=self._unsure):
                    log.warning("%d messages claimed in a round that failed go back to the queue", n)
                self._doubt = False
            if time.monotonic() - self._escalated_at >= ESCALATION_EVERY:
                self._escalated_at = time.monotonic()
                after = dt.timedelta(hours=s.escalate_after_hours)
                if n := outbox.escalate_due(session, utcnow(), after, calendar=self.calendar):
                    log.info("escalated %d complaints not taken up in time", n)
            ids = outbox.claim(session, self.worker, utcnow(), s.dispatch_lease, s.dispatch_batch, due_by,
                               s.dispatch_max_tries, kinds)
            jobs = self._jobs(session, ids) if ids else []
        keeper = lease.Keeper(self.engine, self.worker, s.dispatch_lease, self.renew_every, ids)
        try:
            self._send_all(jobs, keeper, stop)
        finally:
            keeper.close()
        return len(ids)

    def _send_all(self, jobs: list[Job], keeper: lease.Keeper, stop: threading.Event | None) -> None:
        # rendering is CPU work and stays here; the threads only wait on the network, so they
        # hold the GIL little and the database round trips below are not starved of it
        futures = {self._pool.submit(self._send, job, message, keeper, stop): job
                   for job, message in ((job, self._render(job)) for job in jobs)}
        seen: set = set()
        try:
            self._collect(futures, keeper, seen)
        finally:  # no send outlives its round, and none's result is dropped, even in a round that failed
            wait(futures)
            for future in set(futures) - seen:
                self._owe(futures[future], future)

    def _collect(self, futures: dict, keeper: lease.Keeper, seen: set) -> None:
        owed, oldest, recording = self._owed, 0.0, True
        # every send is waited for, whatever the database does meanwhile: a result not yet
        # recorded stays owed (in memory) and goes in before the next claim
        for future in as_completed(futures):
            seen.add(future)
            if self._owe(futures[future], future) == SENT:
                oldest = oldest or time.monotonic()
            # results are committed in small groups: fewer round trips, and a crash
            # re-sends at most a group (the same Message-ID), never loses one
            if recording and (len(owed.sent) >= GROUP or owed.failed or owed.released
                              or (owed.sent and time.monotonic() - oldest >= GROUP_SECONDS)):
                recording = self._settle(keeper)
                oldest = 0.0
        if recording:
            self._settle(keeper)

    def _owe(self, job: Job, future) -> str | None:
        """Note one send's result for recording; its outcome."""
        try:
            result, took = future.result()
        except Exception:  # a channel that raised: whether it sent is unknown, its claim lapses
            log.exception("%s message %d: the send failed unexpectedly; its claim runs out", job.channel, job.id)
            self._unsure.add(job.id)
            return None
        if result is None:  # stopping, or the claim is not ours for long enough
            self._owed.released.append(job.id)
            return None
        if result.outcome == SENT:
            log.info("%s message %d to %s: sent, try %d, %.2f s", job.channel, job.id,
                     job.label, job.tries, took)
            self._owed.sent[job.id] = f"{job.channel} to {job.label}" if job.first else None
        else:
            self._owed.failed.append((job, result, took))
        return result.outcome

    def _settle(self, keeper: lease.Keeper | None = None) -> bool:
        """Record what is owed, each item dropped once committed; False if the database is away
        (the rest stays owed). Each write is fenced on ``claimed_by`` and safe to repeat."""
        owed = self._owed
        if not owed:
            return True
        try:
            with self.engine.connect() as conn:  # Core: the ORM session costs more than the SQL here
                while owed.released:
                    outbox.release(conn, owed.released[0], self.worker)
                    self._done(keeper, owed.released.pop(0))
                while owed.failed:
                    self._failed(conn, *owed.failed[0])
                    self._done(keeper, owed.failed.pop(0)[0].id)
                if owed.sent:
                    self.sent += len(outbox.mark_sent(conn, owed.sent, self.worker, utcnow()))
                    for mid in owed.sent:
                        self._done(keeper, mid)
                    owed.sent = {}
        except DBAPIError as e:
            log.warning("recording %d results failed (%s); kept until the database is back",
                        len(owed), type(e).__name__)
            return False
        return True

    @staticmethod
    def _done(keeper: lease.Keeper | None, msg_id: int) -> None:
        if keeper is not None:
            keeper.done(msg_id)

    def _failed(self, conn, job: Job, result: Result, took: float) -> None:
        s = self.settings
        status = outbox.mark_failed(conn, job.id, self.worker, utcnow(), result.outcome == PERMANENT,
                                    result.detail, s.dispatch_max_tries, s.dispatch_backoff_base,
                                    s.dispatch_backoff_max)
        self.failed += 1
        end = {"dead": "dead letter", "pending": "will retry"}.get(status, "claim lost meanwhile")
        log.warning("%s message %d to %s: %s, try %d of %d, %.2f s (%s)", job.channel, job.id, job.label,
                    result.detail, job.tries, s.dispatch_max_tries, took, end)

    def _render(self, job: Job) -> Mail | Sms | Result:
        """The message to send, or a temporary failure if it cannot be prepared."""
        s = self.settings
        try:
            if job.document is not None:
                return Mail(s.mail_from, job.recipient,
                            render.document_message(job.document, job.recipient, s.mail_from))
            if job.channel == "sms":
                return Sms(job.recipient, render.sms_text(job.notice))
            notice, rec = render.with_recording(job.notice, job.recording_path,
                                                s.attachment_max_bytes, s.recording_url_base)
            return Mail(s.mail_from, job.recipient,
                        render.email_message(notice, job.recipient, s.mail_from, rec))
        except Exception as e:  # a template or data bug must not stop the other messages
            log.exception("preparing %s message %d failed", job.channel, job.id)
            return Result(TEMPORARY, f"internal: {type(e).__name__}")

    def _send(self, job: Job, message: Mail | Sms | Result, keeper: lease.Keeper,
              stop: threading.Event | None = None) -> tuple[Result | None, float]:
        """Send one message (in a sending thread) and how long it took; None if stopping, or
        if the claim will not outlast the longest send (it goes back untried)."""
        if stop is not None and stop.is_set():
            return None, 0.0
        if isinstance(message, Result):
            return message, 0.0
        if not keeper.usable(job.id, self.worst[job.channel]):
            if not keeper.lost(job.id):
                log.warning("message %d: its claim ends too soon to send it safely; handed back", job.id)
            return None, 0.0
        started = time.monotonic()
        result = self._thread_channels()[job.channel].send(message)
        return result, time.monotonic() - started

    def _thread_channels(self) -> dict:
        channels = getattr(self._local, "channels", None)
        if channels is None:
            channels = self._local.channels = channel_registry.make(self.settings)
            self._open.append(channels)
        return channels

    def _jobs(self, session, ids: list[int]) -> list[Job]:
        M, U = OutboxMessage, InspectionUnit
        First = aliased(InspectionUnit)
        rows = session.execute(
            select(M, Complaint, Indicator, Agency, Province, U, Office, ComplaintRoute, First.name_fa)
            .join(Complaint, M.complaint_id == Complaint.id)
            .join(Indicator, Complaint.indicator_id == Indicator.id)
            .join(Agency, Complaint.agency_id == Agency.id)
            .join(Province, Complaint.province_id == Province.id)
            .join(U, M.unit_id == U.id)
            .outerjoin(Office, Complaint.office_id == Office.id)
            .outerjoin(ComplaintRoute, ComplaintRoute.complaint_id == Complaint.id)
            .outerjoin(First, ComplaintRoute.unit_id == First.id)
            .where(M.id.in_(ids)).order_by(M.id))
        jobs = []
        for m, c, ind, ag, pr, unit, office_, route, first_fa in rows:
            notice = render.Notice(
                kind=m.kind, case_number=c.case_number, filed_at=c.created_at,
                sla_due_at=c.sla_due_at, indicator_code=ind.code, indicator_fa=ind.name_fa,
                agency_fa=ag.name_fa, province_fa=pr.name_fa, unit_fa=unit.name_fa,
                first_unit_fa=first_fa or unit.name_fa,
                office_code=office_.code if office_ else None,
                office_fa=office_.name_fa if office_ else None, city_fa=office_.city_fa if office_ else None,
                flag=route.flag if route and m.kind == "complaint" else None,
                action_url=links.url(self.settings, c.id, unit.id, utcnow()))
            jobs.append(Job(m.id, m.channel, m.recipient, f"unit {unit.code}", m.tries, notice,
                            c.recording_path, c.status == "received"))
        for m, d in session.execute(select(M, Document).join(Document, M.document_id == Document.id)
                                    .where(M.id.in_(ids)).order_by(M.id)):
            doc = render.Document(d.key, d.subject, d.text, d.html, d.pdf, d.filename)
            jobs.append(Job(m.id, m.channel, m.recipient, d.key, m.tries, document=doc))
        return jobs

    # ---- loops --------------------------------------------------------------------------
    def drain(self, kinds: tuple[str, ...] | None = None) -> int:
        """Send what is due now (of ``kinds``, default all), once each, and return how many
        were claimed (`--once`)."""
        total, start = 0, utcnow()  # not what a failure here reschedules: that waits its turn
        while n := self.run_once(due_by=start, kinds=kinds):
            total += n
        return total

    def run(self, stop: threading.Event) -> None:
        """Until ``stop`` is set: a full batch goes on at once, an empty outbox is polled."""
        log.info("dispatcher %s started", self.worker)
        while not stop.is_set():
            try:
                n = self.run_once(stop)
            except Exception as e:  # the database is down, restarting or failing over: wait, never die
                self._doubt = True
                log.error("dispatcher round failed (%s: %s); retrying", type(e).__name__,
                          str(e).splitlines()[0][:200] if str(e) else "")
                stop.wait(DB_DOWN_WAIT)
                continue
            if n < self.settings.dispatch_batch:
                stop.wait(self.settings.dispatch_poll)
        self.close()
        log.info("dispatcher %s stopped (%d sent, %d failed tries)", self.worker, self.sent, self.failed)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if not self._settle():  # the database is still away: these may be sent again later
            log.error("dispatcher stopping with %d results unrecorded: their messages may be "
                      "sent again once their claims run out (the same Message-ID)", len(self._owed))
        for channels in self._open:
            for channel in channels.values():
                channel.close()


def start_thread(settings: Settings) -> tuple[threading.Thread, threading.Event]:
    """The dispatcher embedded in another process (`favad serve`); set the event to stop it."""
    stop = threading.Event()
    dispatcher = Dispatcher(settings)
    thread = threading.Thread(target=dispatcher.run, args=(stop,), name="dispatcher", daemon=True)
    thread.start()
    return thread, stop
