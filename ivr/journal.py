"""A durable local journal for what the database could not take during a call.

When the database is down the caller still files a complaint and hears a tracking code: the
complaint is written here first (one file per entry, fsync'ed, renamed into place), and
``replay()`` moves it into the database once it is back. Replay is exactly-once: a complaint
whose tracking code is already stored is not inserted again, and an entry is removed only
after the database has committed it. Entries hold what the database would hold, nothing more.

An entry the database can never take (reference data it names is gone, a file that is not an
entry) is moved to ``quarantine/`` beside a ``.reason`` file, and replay goes on with the
rest: one bad entry must not hold back the complaints behind it. ``favad journal`` lists,
shows, retries and discards them.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
QUARANTINE = "quarantine"


class Unstorable(Exception):
    """This entry can never be stored as it is (no later try would do better)."""


@dataclass(frozen=True)
class Quarantined:
    name: str
    reason: str
    path: Path


class Journal:
    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.quarantine_dir = self.dir / QUARANTINE

    def write(self, kind: str, payload: dict) -> Path:
        """Durably record one entry; it survives a crash of this process from here on. An
        OSError (disk full, I/O error, read-only) leaves nothing behind."""
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%f}-{kind}-{secrets.token_hex(4)}.json"
        data = json.dumps({"kind": kind, **payload}, ensure_ascii=False).encode()
        final = self.dir / name
        _write_durably(final, data)
        return final

    def pending(self) -> list[Path]:
        if not self.dir.exists():
            return []
        return sorted(p for p in self.dir.glob("*.json") if not p.name.startswith("."))

    def replay(self, apply: Callable[[str, dict], None]) -> tuple[int, int]:
        """Apply each entry in order, removing it once applied and quarantining it if ``apply``
        raises Unstorable; any other error (the database is away) stops until the next
        replay. (applied, left)."""
        if not self.pending():
            return 0, 0
        with self._lock():
            return self._replay(apply)

    def _replay(self, apply: Callable[[str, dict], None]) -> tuple[int, int]:
        applied = 0
        entries = self.pending()
        for path in entries:
            try:
                kind, entry = _read(path)
                apply(kind, entry)
            except FileNotFoundError:  # discarded meanwhile
                continue
            except OSError as e:  # unreadable now (permissions, I/O): the others may be fine
                log.error("journal entry %s is unreadable (%s); left in place", path.name, e.strerror)
                continue
            except Unstorable as e:
                try:
                    self._quarantine(path, str(e))
                except OSError as q:  # the disk again: it stays, replay goes on with the rest
                    log.error("journal entry %s cannot be stored (%s) nor quarantined (%s)",
                              path.name, e, q.strerror)
                continue
            except Exception as e:  # the database is still away: try again later
                log.warning("journal replay stopped (%s); %d entries left", type(e).__name__,
                            len(entries) - applied)
                break
            path.unlink()
            applied += 1
        return applied, len(self.pending())

    def _quarantine(self, path: Path, reason: str) -> None:
        """Move an entry aside with the reason it cannot be stored; the reason first, so a
        crash between the two leaves the entry in the journal, never without its reason."""
        self.quarantine_dir.mkdir(mode=0o700, exist_ok=True)
        line = f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ} {reason}\n"
        _write_durably(self.quarantine_dir / f"{path.stem}.reason", line.encode())
        os.rename(path, self.quarantine_dir / path.name)
        _fsync_dir(self.quarantine_dir)
        log.error("journal entry %s quarantined: %s (see `favad journal list`)", path.name, reason)

    def quarantined(self) -> list[Quarantined]:
        if not self.quarantine_dir.exists():
            return []
        out = []
        for path in sorted(self.quarantine_dir.glob("*.json")):
            try:
                reason = path.with_suffix(".reason").read_text(encoding="utf-8").strip()
            except OSError:
                reason = "(no reason recorded)"
            out.append(Quarantined(path.name, reason, path))
        return out

    def find(self, name: str) -> Path:
        """A pending or quarantined entry by its file name (with or without ``.json``);
        LookupError if there is none."""
        name = name if name.endswith(".json") else f"{name}.json"
        if "/" in name or name.startswith("."):
            raise LookupError(f"not a journal entry: {name}")
        for path in (self.dir / name, self.quarantine_dir / name):
            if path.is_file():
                return path
        raise LookupError(f"no journal entry {name}")

    def release(self, name: str) -> Path:
        """Put a quarantined entry back in the journal, for the next replay."""
        path = self.find(name)
        if path.parent != self.quarantine_dir:
            raise LookupError(f"{path.name} is not in quarantine")
        with self._lock():
            back = self.dir / path.name
            os.rename(path, back)
            _fsync_dir(self.dir)
            path.with_suffix(".reason").unlink(missing_ok=True)
        return back

    def discard(self, name: str) -> None:
        """Delete a quarantined entry for good."""
        path = self.find(name)
        if path.parent != self.quarantine_dir:
            raise LookupError(f"{path.name} is not in quarantine: replay stores it")
        with self._lock():
            path.unlink()
            path.with_suffix(".reason").unlink(missing_ok=True)
            _fsync_dir(self.quarantine_dir)

    def _lock(self):
        """One replayer per journal, even across processes; CLI changes wait for it."""
        return _Lock(self.dir / ".replay.lock")


class _Lock:
    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.file = open(self.path, "w")
        fcntl.flock(self.file, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        self.file.close()


def _read(path: Path) -> tuple[str, dict]:
    """(kind, entry) of a journal file; Unstorable if it is not one."""
    try:
        entry = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise Unstorable(f"not a journal entry ({type(e).__name__}: {e})") from None
    if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
        raise Unstorable(f"not a journal entry (a JSON {type(entry).__name__} without a kind)")
    return entry.pop("kind"), entry


def _write_durably(final: Path, data: bytes) -> None:
    """Write, fsync and rename into place. On any error nothing is left: an entry whose
    durability is in doubt is not one the caller may be told about."""
    tmp = final.with_name(f".{final.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:  # a short write (a nearly full disk) is not an error by itself
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, final)
        _fsync_dir(final.parent)  # the rename itself must survive a power cut
    except BaseException:
        tmp.unlink(missing_ok=True)
        final.unlink(missing_ok=True)
        raise


def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
