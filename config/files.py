"""File modes: what favad writes is its own (files 0600, folders 0700), except what it shares.

The process umask makes every file and folder private whoever wrote the code that creates it
(SQLite gives its ``-wal``/``-shm`` the database file's mode). Two things are shared on
purpose, with modes set explicitly: the recordings folder, where Asterisk writes and favad
reads, and the prompt audio, which Asterisk plays and which holds nothing secret.
"""
from __future__ import annotations

import grp
import os
from pathlib import Path

from config import ConfigError

PRIVATE_UMASK = 0o077
# Asterisk (the group) writes the recordings, favad (the owner) reads and removes them; the
# setgid bit hands the folder's group to every file Asterisk creates in it
RECORDINGS_DIR_MODE = 0o2770
PUBLIC_DIR_MODE = 0o755


def keep_private() -> None:
    """From now on this process creates files 0600 and folders 0700."""
    os.umask(PRIVATE_UMASK)


def recordings_folder(path: Path, group: str = "") -> Path:
    """Create the recordings folder, or put it right: 02770, in ``group`` when one is named.

    A folder this user does not own is the admin's, set up their way, and is left alone."""
    path.mkdir(parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid != os.geteuid():
        return path
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise ConfigError(f"recordings_group {group!r}: no such group") from None
        if st.st_gid != gid:
            try:
                os.chown(path, -1, gid)
            except PermissionError:
                raise ConfigError(f"recordings_group {group!r}: this user is not a member, so it "
                                  f"cannot give the group {path}") from None
    if st.st_mode & 0o7777 != RECORDINGS_DIR_MODE:
        os.chmod(path, RECORDINGS_DIR_MODE)
    return path


def public_folder(path: Path) -> Path:
    """Create ``path`` and its missing parents 0755 whatever the umask (Asterisk reads them);
    folders that exist keep their mode."""
    missing, folder = [], path
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
        os.chmod(folder, PUBLIC_DIR_MODE)
    return path
