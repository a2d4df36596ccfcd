"""How many calls a FastAGI server has in progress, kept on disk as a bare number (nothing
about the calls): a server that dies without its clean-up (SIGKILL, the OOM killer) leaves the
number behind, and the next start counts that many calls as ``system_error``, so the monthly
figures do not undercount calls cut by a crash.

Each server holds an exclusive ``flock`` on its own marker for as long as it runs; the kernel
drops the lock when the process dies, however it dies. A marker nobody holds is a dead
server's, so servers that share a data folder never take each other's calls.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


class InFlight:
    """This server's marker: ``started()`` and ``ended()`` around every call it takes."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{secrets.token_hex(4)}"
        tmp = folder / f".{name}.tmp"  # locked before it gets a name another start would read
        self._fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.path = folder / name
        os.rename(tmp, self.path)
        self.count = 0
        self._write()

    def started(self) -> None:
        self.count += 1
        self._write()

    def ended(self) -> None:
        self.count -= 1
        self._write()

    def _write(self) -> None:
        # one small write, no fsync: the page cache outlives the process, which is the point
        os.pwrite(self._fd, b"%-11d\n" % self.count, 0)

    def close(self) -> None:
        """A clean stop: every call ended and was recorded."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)


def left_behind(folder: Path) -> Iterator[tuple[int, dt.datetime]]:
    """(calls, when) for each dead server's marker, removed as it is read; ``when`` is the
    marker's last change, about when that server died."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.name.startswith("."):
            continue
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:  # another start took it first
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a server that is running
            os.close(fd)
            continue
        try:
            st = os.fstat(fd)
            if st.st_nlink == 0:  # another start read it and removed it while we waited
                continue
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            when = dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc)
            os.unlink(path)
        finally:
            os.close(fd)
        count = int(text) if text.isdigit() else 0
        if count > 0:
            yield count, when
