"""`favad backup` and `favad restore`: the database in one file, the keys in another.

SQLite is copied with its online backup API (a consistent copy while servers write); PostgreSQL
with ``pg_dump -Fc``, restored with ``pg_restore``. The keys (the caller keys, the tracking key
and the units' link keys) never go into the database's backup: whoever holds both could tie a
tracking code to its complaint, so they are kept, moved and destroyed apart.
"""
from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import tarfile
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, unquote, urlencode, urlsplit

from sqlalchemy import inspect

from config import Settings


class BackupError(Exception):
    """The backup or the restore could not be made; the message says why."""


def _sqlite_path(url: str) -> Path | None:
    return Path(url.split("///", 1)[1]) if url.startswith("sqlite:///") else None


def _pg(url: str) -> tuple[str, list[str]]:
    """A libpq URL for the client tools, and the schema options a search_path names."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    schemas = []
    for option in query.get("options", []):
        option = unquote(option)
        if option.startswith("-csearch_path="):
            schemas = option.split("=", 1)[1].split(",")
    # the rest of the query stays: a multi-host list (host=h1,h2&port=p1,p2) and
    # target_session_attrs are libpq's too, so the tools reach the primary as favad does
    kept = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "options"],
                     safe=",:")
    base = parts._replace(scheme="postgresql", query=kept).geturl()
    return base, [f"--schema={s.strip()}" for s in schemas if s.strip()]


def _sqlite_copy(src_path: Path, dst_path: Path) -> None:
    """SQLite's online backup: a consistent copy even while a server writes."""
    src, dst = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True), sqlite3.connect(dst_path)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def backup_database(settings: Settings, out: Path) -> None:
    """The database, consistent as of now, into ``out`` (0600, never the keys)."""
    url = settings.db_url
    if path := _sqlite_path(url):
        if not path.exists():
            raise BackupError(f"no database at {path}")
        _sqlite_copy(path, out)
    elif url.startswith("postgresql"):
        base, schemas = _pg(url)
        _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", *schemas,
              f"--file={out}", f"--dbname={base}"])
    else:
        raise BackupError(f"cannot back up a {url.split(':')[0]} database")
    os.chmod(out, 0o600)


def restore_database(settings: Settings, backup: Path, engine) -> None:
    """The database from ``backup``, into an empty one only: a restore never mixes two."""
    if inspect(engine).get_table_names():
        raise BackupError("the database is not empty: restore into a fresh one (a new database, "
                          "or move the old file away)")
    url = settings.db_url
    if path := _sqlite_path(url):
        _sqlite_copy(backup, path)
    elif url.startswith("postgresql"):
        base, _ = _pg(url)  # the dump holds only its schema, and creates it
        _run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
              f"--dbname={base}", str(backup)])
    else:
        raise BackupError(f"cannot restore a {url.split(':')[0]} database")


def _run(args: list[str]) -> None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=3600)
    except FileNotFoundError:
        raise BackupError(f"{args[0]} is missing: apt-get install postgresql-client") from None
    if done.returncode:
        errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
        raise BackupError(f"{args[0]} failed: {(errors or [f'exit code {done.returncode}'])[0]}")


def _key_files(settings: Settings) -> list[tuple[Path, str]]:
    """(file, name in the archive) of every key: the keys folder, and the link keys' file."""
    found = [(p, f"keys/{p.name}") for p in sorted(settings.keys_path.glob("*")) if p.is_file()]
    links = Path(settings.data_dir, "link-keys")
    if links.is_file():
        found.append((links, "link-keys"))
    return found


def backup_keys(settings: Settings, out: Path) -> int:
    """The keys into a tar file of their own (0600); how many."""
    files = _key_files(settings)
    with tarfile.open(out, "w") as tar:
        for path, name in files:
            tar.add(path, arcname=name)
    os.chmod(out, 0o600)
    return len(files)


def restore_keys(settings: Settings, archive: Path) -> int:
    """The keys back into keys_dir (0700, files 0600) and data_dir; refuses to overwrite one."""
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        targets = []
        for m in members:
            name = Path(m.name)
            if name.parent == Path("keys") and name.name not in ("", ".", ".."):
                targets.append((m, settings.keys_path / name.name))
            elif m.name == "link-keys":
                targets.append((m, Path(settings.data_dir, "link-keys")))
            else:
                raise BackupError(f"{archive}: unexpected member {m.name!r}: not a favad keys backup")
        for m, target in targets:
            if target.exists() and target.read_bytes() != tar.extractfile(m).read():
                raise BackupError(f"{target} exists and differs: move it away first")
        for m, target in targets:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            data = tar.extractfile(m).read()
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with io.FileIO(fd, "w") as f:
                f.write(data)
    os.chmod(settings.keys_path, 0o700)
    return len(targets)
