"""Group commit: one thread writes what concurrent calls file, many rows per transaction.

A commit costs an fsync (SQLite) or a WAL flush (PostgreSQL); under load, committing each
call's rows alone makes callers queue behind the disk (and, on SQLite, behind its single-writer
lock, in busy-wait sleeps). Here every write waits in a queue and the writer commits whatever
has gathered in one transaction, then answers each caller. A batch goes in through
``apply_batch`` (a few multi-row statements for the whole batch); if it fails on a constraint
it is retried one write at a time through ``apply`` (the careful path, which tells a replayed
write from a new one), so one bad row cannot sink the others.

Waiters either block (``Future.result``) or await (``asyncio.wrap_future``); a waiter that gives
up does not cancel the write: it still lands, and a journaled copy of it is then a replay.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)
MAX_BATCH = 100


class GroupWriter:
    def __init__(self, Session: sessionmaker, apply: Callable[[Session, str, dict], object],
                 apply_batch: Callable[[Session, list[tuple[str, dict]]], list] | None = None):
        self.Session = Session
        self.apply = apply
        self.on_batch = lambda size, seconds: None  # service/metrics.py: latency and size
        self.apply_batch = apply_batch or (lambda s, jobs: [apply(s, kind, entry) for kind, entry in jobs])
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, kind: str, entry: dict) -> Future:
        future: Future = Future()
        with self._lock:
            if self._thread is None:  # started on first use, and again after close()
                self._thread = threading.Thread(target=self._run, name="favad-writer", daemon=True)
                self._thread.start()
            self._q.put((kind, entry, future))
        return future

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop (a later submit starts a new writer)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._q.put(None)
        thread.join(timeout)

    def _run(self) -> None:
        while True:
            job = self._q.get()
            if job is None:
                return
            batch = [job]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    more = self._q.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            started = time.monotonic()
            self._commit(batch)
            self.on_batch(len(batch), time.monotonic() - started)
            if stop:
                return

    def _commit(self, batch: list, retries: int = 2, careful: bool = False) -> None:
        try:
            with self.Session() as s:
                if careful:
                    results = [self.apply(s, kind, entry) for kind, entry, _ in batch]
                else:
                    results = self.apply_batch(s, [(kind, entry) for kind, entry, _ in batch])
                s.commit()
        except IntegrityError as e:
            if not careful or len(batch) > 1:
                for job in batch:
                    self._commit([job], careful=True)
            elif retries:  # a race with another server (tracking code, caller counter): again
                self._commit(batch, retries - 1, careful=True)
            else:
                _settle(batch[0][2], exception=e)
            return
        except Exception as e:  # the database is away: every caller hears about it
            for _, _, future in batch:
                _settle(future, exception=e)
            return
        for (_, _, future), result in zip(batch, results):
            if isinstance(result, Exception):  # that write alone was refused; the rest stand
                _settle(future, exception=result)
            else:
                _settle(future, result)


def _settle(future: Future, result=None, exception: BaseException | None = None) -> None:
    """Answer a waiter, unless it cancelled (the write stands either way)."""
    if future.set_running_or_notify_cancel():
        if exception is None:
            future.set_result(result)
        else:
            future.set_exception(exception)
