"""What favad writes is its own: after the demo's commands and a call, run with the machine's
umask 022, every file is 0600 and every folder 0700; the recordings folder is shared with
Asterisk's group (02770), the prompt audio Asterisk plays is public (0644 in 0755 folders)."""
from __future__ import annotations

import asyncio
import grp
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from config.files import RECORDINGS_DIR_MODE, public_folder, recordings_folder
from db.engine import make_engine
from pbxsim.caller import Caller
from pbxsim.fastagi import run_call
from test_serve import free_port, wait_listening


def as_the_machine(env, *args, **kw):
    """A `favad` command the way a shell on this machine starts it: umask 022."""
    return subprocess.run([sys.executable, "-m", "cli", *args], env=env, capture_output=True,
                          timeout=180, preexec_fn=lambda: os.umask(0o022), check=True, **kw)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def other_group() -> str:
    """A group that is not this user's own (root may give any)."""
    mine = os.getgid()
    return next(g.gr_name for g in grp.getgrall() if g.gr_gid != mine)


def test_the_demo_setup_and_a_call_leave_only_private_files(tmp_path):
    data = tmp_path / "var"
    port, web_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAVAD_")}
    env.update(FAVAD_DATA_DIR=str(data), FAVAD_LISTEN_PORT=str(port), FAVAD_WEB_PORT=str(web_port),
               FAVAD_DISPATCH_POLL="0.05", FAVAD_RECORDINGS_GROUP=other_group())
    for command in (["db", "upgrade"], ["db", "demo"], ["prompts", "build", "--engine", "tone"]):
        as_the_machine(env, *command, cwd=tmp_path)
    server = subprocess.Popen([sys.executable, "-m", "cli", "serve"], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              preexec_fn=lambda: os.umask(0o022))
    try:
        wait_listening(port, server)
        result = asyncio.run(run_call("127.0.0.1", port, script="favad", args=("28",),
                                      caller=Caller("1 280101# 1 4 1 1 -", speak=True),
                                      sounds_dir=str(data / "sounds")))
        assert "favad/filed-code-is" in result.played
        for _ in range(100):  # the embedded dispatcher delivers within moments
            if (data / "sms.log").exists() and list(data.rglob("maildir/new/*")):
                break
            time.sleep(0.1)
        wal = [p for p in data.glob("favad.sqlite3-*")]
        assert wal and all(mode(p) == 0o600 for p in wal), [(p.name, oct(mode(p))) for p in wal]
    finally:
        server.terminate()
        server.wait(30)
    as_the_machine(env, "report", "monthly", "--format", "html,csv", cwd=tmp_path)

    recordings = data / "recordings"
    assert mode(recordings) == RECORDINGS_DIR_MODE
    assert recordings.stat().st_gid == grp.getgrnam(other_group()).gr_gid
    assert {mode(p) for p in recordings.iterdir()} == {0o640}  # the voice description
    assert (data / "sms.log").exists() and list(data.rglob("maildir/new/*"))
    assert list(data.glob("reports/*/*"))
    keys = tmp_path / "var-keys"  # the keys live beside the data, where there is such a folder
    wrong = []
    for top in (data, keys):
        for path in [top, *top.rglob("*")] if top.exists() else []:
            if path == recordings or path.parent == recordings:
                continue
            if (data / "sounds") in (path, *path.parents):  # what Asterisk plays is public
                want = 0o755 if path.is_dir() else 0o644
            else:
                want = 0o700 if path.is_dir() else 0o600
            if mode(path) != want:
                wrong.append(f"{path.relative_to(tmp_path)} {oct(mode(path))}")
    assert not wrong


def test_sqlite_gives_its_wal_and_shm_the_database_files_mode(tmp_path):
    """A process with a wider umask that writes to the database makes no readable side file."""
    db = tmp_path / "favad.sqlite3"
    as_the_machine({**os.environ, "FAVAD_DATA_DIR": str(tmp_path), "FAVAD_DATABASE_URL": ""},
                   "db", "upgrade", cwd=tmp_path)
    old = os.umask(0o022)
    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            conn.execute(text("CREATE TABLE probe (x)"))
            conn.execute(text("INSERT INTO probe VALUES (1)"))
            conn.commit()
            sides = sorted(p.name for p in tmp_path.glob("favad.sqlite3-*"))
            assert sides == ["favad.sqlite3-shm", "favad.sqlite3-wal"]
            assert {mode(tmp_path / name) for name in sides} == {0o600}
    finally:
        engine.dispose()
        os.umask(old)
    assert mode(db) == 0o600


def test_the_recordings_folder_is_put_right_when_it_exists_too_wide(tmp_path):
    folder = tmp_path / "rec"
    folder.mkdir(mode=0o777)
    os.chmod(folder, 0o777)
    recordings_folder(folder)
    assert mode(folder) == RECORDINGS_DIR_MODE and folder.stat().st_gid == os.getgid()


def test_prompt_folders_are_public_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        public_folder(tmp_path / "sounds" / "fa" / "favad")
    finally:
        os.umask(old)
    assert [mode(tmp_path / p) for p in ("sounds", "sounds/fa", "sounds/fa/favad")] == [0o755] * 3
