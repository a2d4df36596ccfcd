"""The reference data on disk, so that a classic AGI process answers before any database.

A `favad agi` process lives for one call; loading provinces, agencies, offices and indicators
from the database (and importing SQLAlchemy to do it) kept its caller in silence for a third of
a second. It reads this file instead (``<data_dir>/reference.json``), and the database is
opened only when the call needs it.

Who keeps it fresh: every process that loads the reference data from the database writes it:
``favad serve`` every 30 s, ``favad journal replay`` (minutely where only classic AGI runs),
and each classic AGI call when it writes its call record or complaint; so do ``favad reference
snapshot`` and the commands that change reference data. A reader ignores a snapshot that is missing, unreadable, of another
format or another database, or older than ``MAX_AGE``, and says which in its log; the caller
then waits for the database, as before. Nothing about a caller is ever in it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from ivr.directory import Directory, OfficeInfo

log = logging.getLogger(__name__)
FORMAT = 1
FILE = "reference.json"
# seconds: a snapshot nobody rewrote for this long is not trusted (whatever refreshed it has
# stopped, and may have missed a change); the next classic call reads the database and writes a
# new one. Three minutes leave room for a minutely timer's random delay (service/units.py).
MAX_AGE = 180.0
CLOCK_SKEW = 5.0  # seconds a snapshot may seem to come from the future (clock adjusted)


@dataclass(frozen=True)
class Snapshot:
    """The reference data a call's flow needs, in plain values."""

    provinces: tuple[tuple[str, dt.date | None, tuple[str, ...]], ...]  # area code, first live day, languages
    agencies: tuple[str, ...]
    offices: tuple[tuple[str, str, str], ...]  # office, its agency, its province
    indicators: tuple[str, ...]
    written_at: float = 0.0  # seconds since the epoch, when read from a file

    def directory(self, today: dt.date) -> Directory:
        """What the flow reads; a province goes live on its day, whenever the data was taken."""
        return Directory(
            active_provinces=frozenset(p for p, since, _ in self.provinces if since is not None and since <= today),
            known_provinces=frozenset(p for p, _, _ in self.provinces),
            agencies=frozenset(self.agencies),
            offices={o: OfficeInfo(o, a, p) for o, a, p in self.offices},
            indicators=frozenset(self.indicators),
            languages={p: langs for p, _, langs in self.provinces if langs},
        )

    def to_json(self, database: str, written_at: float) -> bytes:
        return json.dumps({
            "format": FORMAT, "database": database, "written_at": written_at,
            "provinces": [[p, since and since.isoformat(), list(langs)] for p, since, langs in self.provinces],
            "agencies": list(self.agencies), "offices": [list(o) for o in self.offices],
            "indicators": list(self.indicators),
        }, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_data(cls, data: dict) -> Snapshot:
        """From the decoded file; TypeError, ValueError or KeyError if it is not one."""
        def text(v) -> str:
            if not isinstance(v, str):
                raise TypeError(f"not text: {type(v).__name__}")
            return v

        return cls(
            provinces=tuple((text(p), None if since is None else dt.date.fromisoformat(text(since)),
                             tuple(text(lang) for lang in langs)) for p, since, langs in data["provinces"]),
            agencies=tuple(text(a) for a in data["agencies"]),
            offices=tuple((text(o), text(a), text(p)) for o, a, p in data["offices"]),
            indicators=tuple(text(i) for i in data["indicators"]),
            written_at=float(data["written_at"]),
        )


class SnapshotFile:
    """``<data_dir>/reference.json``, tied to one database (a snapshot of another is ignored)."""

    def __init__(self, data_dir: str | Path, database_url: str, max_age: float = MAX_AGE):
        self.path = Path(data_dir) / FILE
        # the URL may hold a password: only a digest of it goes into the file
        self.database = hashlib.sha256(database_url.encode()).hexdigest()[:16]
        self.max_age = max_age

    def read(self, now: float | None = None) -> Snapshot | None:
        """The snapshot, or None (and the log says why) when the database must be asked."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return self._ignored("absent")
        except OSError as e:
            return self._ignored(f"unreadable ({e.strerror or type(e).__name__})")
        try:
            data = json.loads(raw)
            if data.get("format") != FORMAT:
                return self._ignored(f"of another format ({data.get('format')!r})")
            if data.get("database") != self.database:
                return self._ignored("of another database")
            snap = Snapshot.from_data(data)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            return self._ignored(f"corrupt ({type(e).__name__})")
        age = (time.time() if now is None else now) - snap.written_at
        if age > self.max_age or age < -CLOCK_SKEW:
            return self._ignored(f"stale ({age:.0f} s old, at most {self.max_age:.0f})")
        log.info("reference data from the snapshot (%.0f s old)", age)
        return snap

    def _ignored(self, why: str) -> None:
        log.warning("reference snapshot %s: reference data from the database", why)
        return None

    def write(self, snap: Snapshot, now: float | None = None) -> bool:
        """Replace the file in one step (readers see the old one or the new one, never half);
        a failure is logged, never raised: the snapshot only saves time."""
        body = snap.to_json(self.database, time.time() if now is None else now)
        tmp = self.path.with_name(f".{FILE}.{secrets.token_hex(4)}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            os.replace(tmp, self.path)
            return True
        except OSError as e:
            log.warning("reference snapshot not written (%s)", e.strerror or type(e).__name__)
            try:
                tmp.unlink()
            except OSError:
                pass
            return False

    def forget(self) -> None:
        """Remove it (reference data changed and could not be read again)."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
