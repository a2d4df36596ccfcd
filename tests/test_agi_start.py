"""Classic AGI's quick start: the reference snapshot it starts from (written, read, refreshed
when reference data changes, ignored when stale, corrupt or another database's), and whole
calls through `favad agi` with it, without it, and with a database that never answers."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import socket
import sys
import threading
import time

import pytest
from click.testing import CliRunner

from cli import main
from clock import today as tehran_today
from conftest import favad_env
from db.models import Province
from ivr.reference import Reference, load_directory, load_snapshot
from ivr.snapshot import MAX_AGE, SnapshotFile
from pbxsim.caller import Caller
from pbxsim.classic import run_agi
from test_calls import FILE_ONE, complaints, spoken_code

AGI = [sys.executable, "-m", "cli", "agi"]


def snapshot_file(settings) -> SnapshotFile:
    return SnapshotFile(settings.data_dir, settings.db_url)


def classic_call(settings, caller, **kw):
    env = favad_env(settings, **kw.pop("env", {}))
    return asyncio.run(run_agi(AGI, args=("28",), caller=caller, sounds_dir=settings.sounds_path,
                               env=env, close_timeout=15, timeout=90, **kw))


def test_loading_the_reference_data_writes_the_snapshot_and_it_reads_back_the_same_directory(backend):
    snap = snapshot_file(backend.settings).read()
    assert snap is not None and abs(time.time() - snap.written_at) < 60
    today = tehran_today()
    with backend.Session() as s:
        assert snap.directory(today) == load_directory(s, today)
    assert "28" in snap.directory(today).active_provinces and snap.offices


def test_a_province_goes_live_on_its_day_whenever_the_snapshot_was_taken(backend):
    today = tehran_today()
    with backend.Session() as s:
        s.query(Province).filter_by(area_code="31").one().activated_on = today + dt.timedelta(days=1)
        s.commit()
    backend.reference.load()
    snap = snapshot_file(backend.settings).read()
    assert "31" not in snap.directory(today).active_provinces
    assert "31" in snap.directory(today + dt.timedelta(days=1)).active_provinces


def test_a_snapshot_too_old_of_another_database_or_format_corrupt_or_absent_is_ignored_and_the_log_says_why(
        backend, caplog):
    file = snapshot_file(backend.settings)
    good = file.path.read_bytes()
    written_at = json.loads(good)["written_at"]
    caplog.set_level(logging.INFO, logger="ivr.snapshot")

    def ignored(why: str) -> bool:
        found = any(why in r.getMessage() for r in caplog.records)
        caplog.clear()
        return found

    assert file.read(now=written_at + MAX_AGE - 1) is not None
    assert file.read(now=written_at + MAX_AGE + 1) is None and ignored("stale")
    assert file.read(now=written_at - 60) is None and ignored("stale")  # from the future: a clock moved
    assert SnapshotFile(backend.settings.data_dir, "sqlite:////elsewhere.sqlite3").read() is None
    assert ignored("of another database")
    for bad in (good[: len(good) // 2], b"\x00\xff" * 40, b"[]",
                json.dumps({**json.loads(good), "offices": [["280101", 7, "28"]]}).encode(),
                json.dumps({**json.loads(good), "provinces": [["28", "not a date", ["fa"]]]}).encode()):
        file.path.write_bytes(bad)
        assert file.read() is None and ignored("corrupt"), bad[:60]
    file.path.write_bytes(json.dumps({**json.loads(good), "format": 99}).encode())
    assert file.read() is None and ignored("of another format")
    file.forget()
    assert file.read() is None and ignored("absent")


def test_the_snapshot_is_written_whole_or_not_at_all_and_holds_nothing_but_reference_data(backend):
    file = snapshot_file(backend.settings)
    with backend.Session() as s:
        snap = load_snapshot(s)
    assert file.write(snap)
    assert [p.name for p in file.path.parent.iterdir() if p.name.startswith(".reference")] == []
    assert file.path.stat().st_mode & 0o077 == 0
    data = json.loads(file.path.read_bytes())
    assert set(data) == {"format", "database", "written_at", "provinces", "agencies", "offices", "indicators"}
    assert backend.settings.db_url not in file.path.read_text()  # the URL may hold a password


def test_changing_reference_data_with_favad_rewrites_the_snapshot_at_once(migrated):
    env = favad_env(migrated)
    runner = CliRunner(mix_stderr=False)
    file = snapshot_file(migrated)
    file.forget()
    assert runner.invoke(main, ["provinces", "activate", "31"], env=env).exit_code == 0
    assert "31" in file.read().directory(tehran_today()).active_provinces
    assert runner.invoke(main, ["provinces", "languages", "31", "az,fa"], env=env).exit_code == 0
    assert file.read().directory(tehran_today()).languages["31"] == ("az", "fa")
    assert runner.invoke(main, ["provinces", "deactivate", "31"], env=env).exit_code == 0
    assert "31" not in file.read().directory(tehran_today()).active_provinces


def test_favad_reference_snapshot_writes_it_or_says_why_not(migrated, tmp_path):
    runner = CliRunner(mix_stderr=False)
    file = snapshot_file(migrated)
    file.forget()
    done = runner.invoke(main, ["reference", "snapshot"], env=favad_env(migrated))
    assert done.exit_code == 0 and "31 provinces" in done.stdout
    assert file.read() is not None
    broken = runner.invoke(main, ["reference", "snapshot"], env=favad_env(
        migrated, FAVAD_DATABASE_URL=f"sqlite:///{tmp_path}/never-upgraded.sqlite3"))
    assert broken.exit_code == 1 and "cannot read the reference data" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_classic_agi_starts_from_the_snapshot_files_the_complaint_and_leaves_it_fresher(backend):
    before = snapshot_file(backend.settings).read().written_at
    result = classic_call(backend.settings, Caller(FILE_ONE))
    assert b"reference data from the snapshot" in result.stderr
    (c,) = complaints(backend)
    assert backend.code_hash(spoken_code(result.played)) == c.code_hash
    assert result.exit_status == 0 and not result.leaked
    assert snapshot_file(backend.settings).read().written_at > before  # its writes loaded it again


def test_classic_agi_without_a_snapshot_reads_the_database_files_the_complaint_and_leaves_one(backend):
    file = snapshot_file(backend.settings)
    file.forget()
    result = classic_call(backend.settings, Caller(FILE_ONE))
    assert b"reference snapshot absent: reference data from the database" in result.stderr
    (c,) = complaints(backend)
    assert backend.code_hash(spoken_code(result.played)) == c.code_hash
    assert file.read() is not None  # the next call starts quickly


class Silent:
    """A database server that accepts connections and never says a word (a real socket)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[float] = []
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(time.monotonic())
            self._held.append(conn)

    def close(self):
        self.sock.close()
        for c in self._held:
            c.close()


def test_the_first_prompt_plays_before_the_database_is_touched_and_a_silent_database_is_journaled(backend):
    silent = Silent()
    try:
        url = f"postgresql://favad@127.0.0.1:{silent.port}/favad"
        settings = dataclasses.replace(backend.settings, database_url=url)
        with backend.Session() as s:  # the data a server had written, for this database
            assert SnapshotFile(settings.data_dir, settings.db_url).write(load_snapshot(s))
        heard: list[float] = []
        result = classic_call(settings, Caller(FILE_ONE), env={"FAVAD_DATABASE_URL": url},
                              on_prompt=lambda _name: heard.append(time.monotonic()))
    finally:
        silent.close()
    assert result.commands[0] == "ANSWER"
    assert any(c.startswith(("STREAM FILE", "GET DATA")) for c in result.commands[:4])
    assert heard and silent.accepted, "the call never asked the database"
    assert silent.accepted[0] > heard[0]  # asked only once the caller was listening
    # the write waited for the connect timeout, then the journal kept the complaint: its code holds
    code = spoken_code(result.played)
    assert len(code) == 10 and complaints(backend) == []
    assert sorted(p.name.split("-")[1] for p in backend.journal.pending()) == ["call", "complaint"]
    assert result.exit_status == 0 and not result.leaked


def test_reference_seeded_from_a_snapshot_loads_from_the_database_at_its_first_use(backend):
    snap = snapshot_file(backend.settings).read()
    ref = Reference(backend.Session, tehran_today, snapshot=snapshot_file(backend.settings))
    ref.seed(snap)
    assert ref.cached_directory == snap.directory(tehran_today()) and ref.stale()
    with backend.Session() as s:
        assert ref.ids(s)[("province", "28")]  # loaded there and then
    assert not ref.stale()


def test_a_backend_that_cannot_open_mid_call_hands_the_caller_to_the_apology_without_a_code(backend, tmp_path):
    calendar = tmp_path / "calendar.toml"  # read by the Backend alone, after the first prompt
    calendar.write_text("this is = = not toml")
    result = classic_call(backend.settings, Caller(FILE_ONE), env={"FAVAD_OFFICE_CALENDAR": str(calendar)})
    assert result.commands[0] == "ANSWER"
    assert result.commands[-1] == 'SET VARIABLE FAVAD_NEXT "unavailable"'
    assert result.commands[-2].startswith('VERBOSE "favad-agi: the call ended on an error')
    assert "favad/filed-code-is" not in result.played and complaints(backend) == []
    assert b"Traceback" not in result.stderr and b"the backend did not open" in result.stderr
