"""Putting a dialplan live, and taking it back.

deploy: ask Asterisk whether the modules the file needs are loaded (refusing, untouched, if not);
write the file atomically (temporary file, fsync, rename) after a timestamped backup of
the one it replaces; ask Asterisk over AMI to ``dialplan reload``; confirm with ``dialplan show``
that every context of the file is there and that the ``version`` line is this file's; on any
failure put the previous file back, reload it and say so. rollback: the newest backup back in
place, reloaded and confirmed. One deploy at a time (a lock file beside the dialplan).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import fcntl
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ami import AmiError
from dialplan.modules import ModulesUnknown, Need, missing
from dialplan.render import version_of
from dialplan.syntax import parse

KEEP_BACKUPS = 20


class DeployError(Exception):
    """The deploy did not go live; ``rolled_back`` says whether the previous file is back."""

    def __init__(self, message: str, rolled_back: bool = False):
        super().__init__(message)
        self.rolled_back = rolled_back


@dataclass
class Outcome:
    changed: bool
    backup: Path | None = None
    notes: list[str] = field(default_factory=list)


def read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def unified_diff(old: str | None, new: str, path: Path) -> str:
    return "".join(difflib.unified_diff((old or "").splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"{path} (deployed)", f"{path} (rendered)"))


def backup_dir(path: Path) -> Path:
    return path.with_name(path.name + ".backups")


def backups(path: Path) -> list[Path]:
    """Backups of the deployed file, oldest first."""
    folder = backup_dir(path)
    return sorted(folder.glob("*.conf")) if folder.is_dir() else []


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a crash once the folder is synced
        dfd = os.open(path.parent, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)


def make_backup(path: Path, text: str) -> Path:
    folder = backup_dir(path)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    target = folder / f"{stamp}.conf"
    write_atomic(target, text)
    for old in backups(path)[:-KEEP_BACKUPS]:
        old.unlink(missing_ok=True)
    return target


@contextlib.contextmanager
def locked(path: Path):
    """One deploy or rollback at a time on this file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DeployError(f"another deploy or rollback of {path} is running") from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


async def reload_and_confirm(ami, text: str | None) -> list[str]:
    """Reload Asterisk's dialplan; what shows it is not running ``text`` (empty: all good)."""
    ok, lines = await ami.command("dialplan reload")
    if not ok or not any("Dialplan reloaded" in line for line in lines):
        return [f"`dialplan reload` failed: {' '.join(lines) or 'no output'}"]
    if text is None:
        return []
    problems = []
    contexts = list(parse(text).contexts)
    missing = []
    for context in contexts:
        ok, lines = await ami.command(f"dialplan show {context}")
        if not any(line.startswith(f"[ Context '{context}'") for line in lines):
            missing.append(context)
    if missing:
        named = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        problems.append(f"{len(missing)} of the {len(contexts)} contexts are not in Asterisk's "
                        f"dialplan after the reload ({named})")
    version = version_of(text)
    if version and not problems:
        ok, lines = await ami.command("dialplan show version@favad-ivr")
        if not any(version in line for line in lines):
            problems.append(f"Asterisk does not run version {version} after the reload")
    return problems


async def deploy(ami, path: Path, text: str, needs: list[Need] = ()) -> Outcome:
    """Put ``text`` live at ``path``; DeployError (after a rollback) if Asterisk does not run it."""
    with locked(path):
        old = read(path)
        await ami.ready()  # no AMI, no change: the file is not touched
        await _modules_loaded(ami, needs)
        if old == text:
            problems = await reload_and_confirm(ami, text)
            if problems:
                raise DeployError("the deployed file is unchanged but not live: " + "; ".join(problems))
            return Outcome(changed=False)
        backup = make_backup(path, old) if old is not None else None
        write_atomic(path, text)
        try:
            problems = await reload_and_confirm(ami, text)
        except AmiError as e:
            problems = [f"Asterisk stopped answering during the reload ({e})"]
        if not problems:
            return Outcome(changed=True, backup=backup)
        note = await _restore(ami, path, old, backup)
        raise DeployError("; ".join(problems) + f". {note}", rolled_back=True)


async def _modules_loaded(ami, needs: list[Need]) -> None:
    """DeployError, before anything is touched, unless Asterisk has every module ``needs`` names."""
    try:
        absent = await missing(ami, list(needs))
    except ModulesUnknown as e:
        raise DeployError(f"cannot ask Asterisk which modules are loaded ({e}): nothing deployed") from None
    if absent:
        raise DeployError(" ".join(n.advice() + "." for n in absent) + " Nothing deployed.")


async def _restore(ami, path: Path, old: str | None, backup: Path | None) -> str:
    if old is None:
        path.unlink(missing_ok=True)
        restored = "the new file was removed (there was none before)"
    else:
        write_atomic(path, old)
        if backup is not None:
            backup.unlink(missing_ok=True)
        restored = "the previous file is back in place"
    try:
        problems = await reload_and_confirm(ami, old)
    except AmiError as e:
        return f"Rolled back: {restored}, but Asterisk could not reload it ({e}): run " \
               f"`asterisk -rx 'dialplan reload'`"
    if problems:
        return f"Rolled back: {restored}, but " + "; ".join(problems)
    return f"Rolled back: {restored} and live again"


async def rollback(ami, path: Path) -> Path:
    """Put the newest backup back, reload and confirm; the backup used is returned (and gone)."""
    with locked(path):
        saved = backups(path)
        if not saved:
            raise DeployError(f"no backup of {path} to roll back to")
        await ami.ready()
        backup = saved[-1]
        text = backup.read_text(encoding="utf-8")
        write_atomic(path, text)
        backup.unlink()
        try:
            problems = await reload_and_confirm(ami, text)
        except AmiError as e:
            problems = [f"Asterisk could not reload it ({e})"]
        if problems:
            raise DeployError(f"{backup.name} is back in place, but " + "; ".join(problems))
        return backup
