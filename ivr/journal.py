"""A durable local journal for what the database could not take during a call.

When the database is down the caller still files a complaint and hears a tracking code: the
complaint is written here first (one file per entry, fsync'ed, renamed into place), and
``replay()`` moves it into the database once it is back. Replay is exactly-once: a complaint
whose tracking code is already stored is not inserted again, and an entry is removed only
after the database has committed it. Entries hold what the database would hold, nothing more.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


class Journal:
    def __init__(self, directory: Path):
        self.dir = Path(directory)

    def write(self, kind: str, payload: dict) -> Path:
        """Durably record one entry; it survives a crash of this process from here on."""
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%f}-{kind}-{secrets.token_hex(4)}.json"
        tmp = self.dir / f".{name}.tmp"
        data = json.dumps({"kind": kind, **payload}, ensure_ascii=False).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        final = self.dir / name
        os.rename(tmp, final)
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a power cut
        finally:
            os.close(dir_fd)
        return final

    def pending(self) -> list[Path]:
        if not self.dir.exists():
            return []
        return sorted(p for p in self.dir.glob("*.json") if not p.name.startswith("."))

    def replay(self, apply: Callable[[str, dict], None]) -> tuple[int, int]:
        """Apply each entry in order, removing it once applied; (applied, left)."""
        if not self.pending():
            return 0, 0
        with open(self.dir / ".replay.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one replayer per journal, even across processes
            return self._replay(apply)

    def _replay(self, apply: Callable[[str, dict], None]) -> tuple[int, int]:
        applied = 0
        entries = self.pending()
        for path in entries:
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                log.error("journal entry %s is unreadable; left in place", path.name)
                continue
            kind = entry.pop("kind")
            try:
                apply(kind, entry)
            except Exception as e:  # the database is still away: try again later
                log.warning("journal replay stopped (%s); %d entries left", type(e).__name__,
                            len(entries) - applied)
                break
            path.unlink()
            applied += 1
        return applied, len(self.pending())
