"""Abuse limits per caller, counted so that the counts can never be paired with a call.

What is kept per caller: per key month, Tehran day and keyed caller hash (the month's key, which is
destroyed after the month: common/keyring.py), how many complaints were filed and how many
tracking codes that matched nothing were tried. Nothing else: no id, no time finer than the
day, no call or complaint it belongs to.

The counts are held in memory and written by the ledger's own transactions, at random moments
(``counts_flush_min`` to ``counts_flush_max`` seconds apart), rows in hash order: never in the
transaction or batch of a call record or a complaint, so neither transaction ids (``xmin``),
row order (``ctid``) nor commit times pair a caller with a call. A process that serves one
call (classic AGI) or stops leaves its counts in a spool file with a random name, which a
server's next flush takes in. A crash loses the counts not yet written: they only ever make
limits more lenient, never lose a complaint.

Limits are checked before filing and before looking up a code; with the database away the
check lets the caller through (a citizen is never refused because of an outage).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from db.models import CallerCount

log = logging.getLogger(__name__)
KINDS = ("complaints", "guesses")


@dataclass(frozen=True)
class Limits:
    complaints_day: int = 5
    complaints_month: int = 20
    guesses_day: int = 10
    guesses_month: int = 30

    @classmethod
    def from_settings(cls, s) -> "Limits":
        return cls(s.limit_complaints_day, s.limit_complaints_month, s.limit_guesses_day,
                   s.limit_guesses_month)

    def applies(self, kind: str) -> bool:
        return bool(getattr(self, f"{kind}_day") or getattr(self, f"{kind}_month"))

    def allows(self, kind: str, today: int, month: int) -> bool:
        day_limit, month_limit = getattr(self, f"{kind}_day"), getattr(self, f"{kind}_month")
        return (not day_limit or today < day_limit) and (not month_limit or month < month_limit)


class CallerLedger:
    def __init__(self, Session, limits: Limits, spool_dir: str | Path,
                 flush_every: tuple[float, float] = (300.0, 900.0)):
        self.Session = Session
        self.limits = limits
        self.spool = Path(spool_dir)
        self.flush_every = flush_every
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, dt.date, str], list[int]] = {}  # (period, day, hash)
        self._by_hash: dict[str, list[tuple[dt.date, list[int]]]] = {}  # the same counts, by caller
        self._stored: dict[str, dict[dt.date, list[int]]] = {}  # read once per hash between flushes
        self._rng = random.SystemRandom()
        self._spool_stamp: int | None = None
        self._spool_cache: dict[str, list] = {}
        self._next_flush = time.monotonic() + self._rng.uniform(*flush_every)

    # ---- the call path --------------------------------------------------------------------
    def allows(self, kind: str, caller_hash: str | None, today: dt.date) -> bool:
        """May this caller file a complaint (``complaints``) or try a code (``guesses``)?
        Blocking: reads the caller's stored counts once between flushes."""
        if caller_hash is None or not self.limits.applies(kind):  # no number, or no limit to hold
            return True
        stored = self._stored_counts(caller_hash)
        if stored is None:
            return True
        i = KINDS.index(kind)
        spooled = self._spooled(caller_hash)
        with self._lock:
            mine = spooled + self._by_hash.get(caller_hash, [])
            day = stored.get(today, [0, 0])[i] + sum(c[i] for d, c in mine if d == today)
            month = sum(c[i] for c in stored.values()) + sum(c[i] for _, c in mine)
        return self.limits.allows(kind, day, month)

    def add(self, kind: str, caller_hash: str | None, period: str, today: dt.date) -> None:
        """Count one complaint or unknown code for a caller hashed with ``period``'s key."""
        if caller_hash is None:
            return
        with self._lock:
            self._counts((period, today, caller_hash))[KINDS.index(kind)] += 1

    def _counts(self, key: tuple[str, dt.date, str]) -> list[int]:
        """The pending counts of (period, day, hash), made and indexed on first use; under the lock."""
        if (counts := self._pending.get(key)) is None:
            counts = self._pending[key] = [0, 0]
            self._by_hash.setdefault(key[2], []).append((key[1], counts))
        return counts

    def _stored_counts(self, caller_hash: str) -> dict[dt.date, list[int]] | None:
        with self._lock:
            if (known := self._stored.get(caller_hash)) is not None:
                return known
        try:  # Core on a pooled connection: this runs for every complaint filed
            with self.Session.kw["bind"].connect() as conn:
                rows = conn.execute(_COUNTS_OF, {"h": caller_hash}).all()
        except DBAPIError:
            log.warning("database unavailable: caller limits not checked")
            return None
        counts = {day: [c, g] for day, c, g in rows}
        with self._lock:
            self._stored[caller_hash] = counts
        return counts

    def _spooled(self, caller_hash: str) -> list[tuple[dt.date, list[int]]]:
        """This caller's counts left in the spool by processes that stopped (classic AGI); the
        spool is read again only when a file came or went (the folder's mtime)."""
        try:
            stamp = self.spool.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        with self._lock:
            if stamp != self._spool_stamp:
                found: dict = {}
                self._read_spool(found)
                by_hash: dict[str, list] = {}
                for (_, day, h), c in found.items():
                    by_hash.setdefault(h, []).append((day, c))
                self._spool_cache, self._spool_stamp = by_hash, stamp
            return list(self._spool_cache.get(caller_hash, ()))

    # ---- writing, apart from every call ---------------------------------------------------
    def due(self) -> bool:
        return time.monotonic() >= self._next_flush

    def flush(self) -> int:
        """Write the pending counts and the spooled ones in one transaction of their own, rows
        in hash order; the number of rows written. On failure they stay pending."""
        with self._lock:
            pending, self._pending, self._by_hash = self._pending, {}, {}
            self._next_flush = time.monotonic() + self._rng.uniform(*self.flush_every)
        spooled = self._read_spool(pending)
        if not pending:
            self._remove(spooled)
            return 0
        rows = [{"period": period, "day": day, "caller_hash": h, "complaints": c[0], "guesses": c[1]}
                for (period, day, h), c in sorted(pending.items(), key=lambda kv: (kv[0][2], kv[0][1]))]
        try:
            with self.Session() as s:
                conn = s.connection()
                conn.execute(_upsert(conn.dialect.name), rows)
                s.commit()
        except DBAPIError:
            log.warning("database unavailable: %d caller count(s) kept for the next flush", len(rows))
            with self._lock:
                for key, c in pending.items():
                    mine = self._counts(key)
                    mine[0] += c[0]
                    mine[1] += c[1]
            self._remove(spooled)
            return 0
        self._remove(spooled)
        with self._lock:
            self._stored.clear()  # other servers' counts are read afresh
        return len(rows)

    def flush_if_due(self) -> int:
        return self.flush() if self.due() else 0

    def close(self) -> None:
        """Leave what is pending in the spool for a server's next flush (never written now:
        a write at the end of a one-call process would date that call's counts)."""
        with self._lock:
            pending, self._pending, self._by_hash = self._pending, {}, {}
        if not pending:
            return
        self.spool.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = json.dumps([[p, d.isoformat(), h, c[0], c[1]] for (p, d, h), c in pending.items()]).encode()
        path = self.spool / f"{secrets.token_hex(16)}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    def _read_spool(self, into: dict) -> list[Path]:
        if not self.spool.is_dir():
            return []
        taken = []
        for path in self.spool.glob("*.json"):
            try:
                for period, day, h, c, g in json.loads(path.read_text()):
                    mine = into.setdefault((str(period), dt.date.fromisoformat(day), str(h)), [0, 0])
                    mine[0] += int(c)
                    mine[1] += int(g)
            except (OSError, ValueError, TypeError) as e:
                log.warning("skipping an unreadable caller-count spool file (%s)", type(e).__name__)
            taken.append(path)
        return taken

    @staticmethod
    def _remove(paths: list[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)


_COUNTS_OF = (select(CallerCount.day, CallerCount.complaints, CallerCount.guesses)
              .where(CallerCount.caller_hash == bindparam("h")))


def _upsert(dialect: str):
    T = CallerCount.__table__
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(T)
    return stmt.on_conflict_do_update(
        index_elements=[T.c.period, T.c.day, T.c.caller_hash],
        set_={"complaints": T.c.complaints + stmt.excluded.complaints,
              "guesses": T.c.guesses + stmt.excluded.guesses})


def forget_month(s, period: str) -> int:
    """Delete the counts made with a month's key (``YYYY-MM``) as the key goes. No commit."""
    return s.execute(delete(CallerCount).where(CallerCount.period == period)).rowcount


def counted_days(s) -> list[tuple[dt.date, int]]:
    """(day, callers counted) for `favad retention` and tests: figures, never hashes."""
    return list(s.execute(select(CallerCount.day, func.count()).group_by(CallerCount.day)
                          .order_by(CallerCount.day)).tuples())
