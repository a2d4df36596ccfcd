"""Group commit: one thread writes what concurrent calls file, many rows per transaction.

A commit costs an fsync (SQLite) or a WAL flush (PostgreSQL); under load, committing each
call's rows alone makes callers queue behind the disk (and, on SQLite, behind its single-writer
lock, in busy-wait sleeps). Here every write waits in a queue and the writer commits whatever
has gathered in one transaction, then answers each caller. A batch that fails on a constraint
is retried one write at a time, so one bad row cannot sink the others.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)
MAX_BATCH = 100


class GroupWriter:
    def __init__(self, Session: sessionmaker, apply: Callable[[Session, str, dict], object]):
        self.Session = Session
        self.apply = apply
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
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list, retries: int = 2) -> None:
        try:
            with self.Session() as s:
                results = [self.apply(s, kind, entry) for kind, entry, _ in batch]
                s.commit()
        except IntegrityError as e:
            if len(batch) > 1:
                for job in batch:
                    self._commit([job])
            elif retries:  # a race with another server (tracking code, caller counter): again
                self._commit(batch, retries - 1)
            else:
                batch[0][2].set_exception(e)
            return
        except Exception as e:  # the database is away: every caller hears about it
            for _, _, future in batch:
                future.set_exception(e)
            return
        for (_, _, future), result in zip(batch, results):
            future.set_result(result)
