"""Database outages during calls: the caller still files, the journal replays exactly once."""
from __future__ import annotations

import asyncio
import dataclasses
import errno
import json
import os

import pytest
from sqlalchemy import func, select

from conftest import PG_URL, pg_schema, running_server
from db.engine import make_engine, make_sessionmaker
from migrations.run import upgrade
from db.models import Agency, CallRecord, Complaint
from db.store import load_demo
from ivr.backend import Backend
from ivr.events import ComplaintDraft
from pbxsim.caller import Caller
from pbxsim.fastagi import run_call
from tcpproxy import TcpProxy

FILE_ONE = "1 280101# 1 4 2 1 -"


def spoken_code(played):
    i = played.index("favad/filed-code-is")
    return "".join(n[-1] for n in played[i + 1:i + 11])


def count(backend, model):
    with backend.Session() as s:
        return s.scalar(select(func.count()).select_from(model))


@pytest.fixture
def proxied(settings):
    """A backend whose PostgreSQL connections go through a proxy the test can cut."""
    with pg_schema() as url:
        upgrade(url)
        engine = make_engine(url)
        with make_sessionmaker(engine)() as s:
            load_demo(s)
        engine.dispose()
        proxy = TcpProxy("127.0.0.1", 5432)
        host = PG_URL.split("@", 1)[1].split("/", 1)[0]
        backend = Backend(dataclasses.replace(settings, database_url=url.replace(host, f"127.0.0.1:{proxy.port}")))
        try:
            yield backend, proxy
        finally:
            backend.engine.dispose()
            proxy.close()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_database_outage_mid_call_still_files_and_replays_once(proxied):
    backend, proxy = proxied

    async def scenario():
        async with running_server(backend) as (_server, port):
            sounds = backend.settings.sounds_path
            await run_call("127.0.0.1", port, args=("28",), caller=Caller("2 1234567894# -"), sounds_dir=sounds)
            await asyncio.to_thread(backend.close)  # that call's record is written
            proxy.cut()  # the database goes away in the middle of the day
            during = await run_call("127.0.0.1", port, args=("28",), caller=Caller(FILE_ONE), sounds_dir=sounds)
            followup = await run_call("127.0.0.1", port, args=("28",), caller=Caller("2 1234567894#"),
                                      sounds_dir=sounds)
            return during, followup
    during, followup = asyncio.run(scenario())
    code = spoken_code(during.played)
    assert len(code) == 10 and during.played[-1] == "favad/goodbye"
    assert "favad/status-unavailable" in followup.played
    assert len(backend.journal.pending()) == 3  # the complaint and two call records
    for entry in backend.journal.pending():
        text = entry.read_text(encoding="utf-8")
        assert "9121234567" not in text and "Test" not in text
        assert code not in text, "the journal holds the caller's code, not only its hash"

    assert backend.replay_journal() == (0, 3)  # still down: nothing lost, nothing applied
    proxy.restore()
    assert backend.replay_journal() == (3, 0)
    assert backend.replay_journal() == (0, 0)
    with backend.Session() as s:
        (c,) = s.scalars(select(Complaint)).all()
        assert c.code_hash == backend.code_hash(code)
    assert count(backend, CallRecord) == 3


def test_replay_after_a_crash_between_commit_and_removal_stores_once(backend):
    entry = {"draft": dataclasses.asdict(ComplaintDraft("28", "101", "280101", "disrespect", None)),
             "created_at": "2026-11-27T08:00:00+00:00", "code_hash": backend.code_hash("1234567894"),
             "case_number": "7KQ2-M9XD"}
    path = backend.journal.write("complaint", entry)
    backend._apply("complaint", entry)  # committed, then the process died before removing it
    assert json.loads(path.read_text())["case_number"] == "7KQ2-M9XD"
    assert backend.replay_journal() == (1, 0)
    assert count(backend, Complaint) == 1


def test_an_entry_journaled_before_codes_were_hashed_is_stored_with_its_hash(backend):
    # the form of a complaint journaled by the version before 0005: the code itself
    backend.journal.write("complaint", {
        "draft": dataclasses.asdict(ComplaintDraft("28", "101", "280101", "disrespect", None)),
        "created_at": "2026-11-27T08:00:00+00:00", "code": "1234567894"})
    assert backend.replay_journal() == (1, 0)
    with backend.Session() as s:
        (c,) = s.scalars(select(Complaint)).all()
        assert c.code_hash == backend.code_hash("1234567894") and c.case_number


def test_journal_entries_are_durable_files_readable_only_by_the_service(backend):
    path = backend.journal.write("call", {"outcome": "abandoned"})
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert not list(path.parent.glob(".*.tmp"))


# ---- what cannot be stored goes to quarantine; the rest is replayed -------------------------
def complaint_entry(backend, draft: ComplaintDraft, code: str) -> dict:
    return {"draft": dataclasses.asdict(draft), "created_at": "2026-11-27T08:00:00+00:00",
            "code_hash": backend.code_hash(code), "case_number": f"TEST-{code[:4]}"}


def test_a_poisoned_journal_quarantines_the_bad_entries_and_stores_the_good_ones_behind_them(backend):
    j = backend.journal
    j.dir.mkdir(parents=True)
    (j.dir / "20000101T000000000000-complaint-aaaaaaaa.json").write_text("[]")  # first in line
    (j.dir / "20000101T000000000001-complaint-bbbbbbbb.json").write_text("{not json")
    j.write("complaint", complaint_entry(backend, ComplaintDraft("28", "999", None, "disrespect", None),
                                         "1111111111"))  # an agency that no longer exists
    j.write("complaint", complaint_entry(backend, ComplaintDraft("28", "101", "289999", "disrespect", None),
                                         "2222222222"))  # an office that no longer exists
    j.write("complaint", complaint_entry(backend, ComplaintDraft("28", "101", "280101", "disrespect", None),
                                         "3333333333"))
    j.write("call", {"started_at": "2026-11-27T08:00:00+00:00", "province_code": "28",
                     "outcome": "complaint_filed", "duration_s": 60})
    j.write("nonsense", {})

    assert backend.replay_journal() == (3, 0)
    reasons = [q.reason for q in j.quarantined()]
    assert len(reasons) == 4 and not j.pending()
    assert any("a JSON list without a kind" in r for r in reasons)
    assert any("JSONDecodeError" in r for r in reasons)
    assert any("no such agency 999" in r for r in reasons)
    assert any("not a journal kind: 'nonsense'" in r for r in reasons)
    with backend.Session() as s:
        stored = {c.code_hash: c for c in s.scalars(select(Complaint))}
        moved = stored[backend.code_hash("2222222222")]
        assert moved.office_id is None and moved.agency.code == "101" and moved.province.area_code == "28"
        assert "office 289999 no longer exists" in moved.events[0].note
        assert backend.code_hash("3333333333") in stored and len(stored) == 2
    assert count(backend, CallRecord) == 1
    assert backend.replay_journal() == (0, 0)  # quarantine is not retried on its own
    assert oct(j.quarantine_dir.stat().st_mode & 0o777) == "0o700"
    for q in j.quarantined():
        assert oct(q.path.with_suffix(".reason").stat().st_mode & 0o777) == "0o600"


def _enospc_on_journal_writes(monkeypatch):
    """os.write fails with ENOSPC for journal files only (as a full data_dir would)."""
    real = os.write

    def write(fd, data):
        if "/journal/" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)
    monkeypatch.setattr(os, "write", write)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_full_disk_during_an_outage_gives_the_apology_and_leaves_no_partial_file(proxied, monkeypatch):
    backend, proxy = proxied

    async def scenario():
        async with running_server(backend) as (_server, port):
            proxy.cut()
            return await run_call("127.0.0.1", port, args=("28",), caller=Caller(FILE_ONE),
                                  sounds_dir=backend.settings.sounds_path)
    _enospc_on_journal_writes(monkeypatch)
    during = asyncio.run(scenario())
    assert "favad/store-failed" in during.played and "favad/filed-code-is" not in during.played
    assert during.played[-1] == "favad/goodbye"
    assert not backend.journal.pending()
    assert not [p for p in backend.journal.dir.iterdir() if p.name != ".replay.lock"]  # no .tmp either
    monkeypatch.undo()
    proxy.restore()
    backend.close()  # the call record nobody waited for
    assert count(backend, Complaint) == 0


def test_a_failed_journal_write_of_a_rating_or_call_record_is_logged_not_raised(backend, monkeypatch, caplog):
    def full(*_a, **_k):
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    monkeypatch.setattr(backend.journal, "write", full)
    assert backend._journal("call", {"outcome": "abandoned"}, TimeoutError()) is False
    assert "journal too" in caplog.text


def test_journal_cli_lists_shows_retries_and_discards_quarantined_entries(backend):
    from click.testing import CliRunner

    from cli import main

    s = backend.settings
    env = {"FAVAD_DATABASE_URL": s.db_url, "FAVAD_DATA_DIR": s.data_dir,
           "FAVAD_CALLER_HASH_KEY": s.caller_hash_key}
    run = lambda *args, **kw: CliRunner().invoke(main, list(args), env=env, **kw)  # noqa: E731
    j = backend.journal
    gone = j.write("complaint", complaint_entry(backend, ComplaintDraft("28", "190", None, "disrespect", None),
                                                "4444444444")).name
    j.dir.joinpath("20000101T000000000000-call-cccccccc.json").write_text("[]")
    r = run("journal", "replay")
    assert r.exit_code == 0, r.output
    assert "0 journal entries stored, 0 left, 2 in quarantine" in r.output
    r = run("journal", "list")
    assert "0 waiting for the database, 2 in quarantine" in r.output
    assert gone in r.output and "no such agency 190" in r.output
    r = run("journal", "show", gone.removesuffix(".json"))
    assert r.exit_code == 0 and "in quarantine: " in r.output and '"case_number": "TEST-4444"' in r.output
    assert run("journal", "show", "nothing-here").exit_code == 1
    assert "not a journal entry" in run("journal", "discard", "--yes", "../x").output

    r = run("journal", "retry", gone)  # the agency still does not exist: back in quarantine
    assert r.exit_code == 1 and "1 in quarantine again" in r.output
    with backend.Session() as session:  # the admin restores the agency
        session.add(Agency(code="190", name_fa="-", name_en="-"))
        session.commit()
    r = run("journal", "retry", "--all")
    assert r.exit_code == 1 and "1 journal entries stored" in r.output and "1 in quarantine again" in r.output
    with backend.Session() as session:
        assert session.scalar(select(Complaint.case_number)) == "TEST-4444"

    r = run("journal", "discard", "20000101T000000000000-call-cccccccc", input="n\n")
    assert r.exit_code == 1 and len(j.quarantined()) == 1
    r = run("journal", "discard", "20000101T000000000000-call-cccccccc", input="y\n")
    assert r.exit_code == 0 and not j.quarantined()
    assert not list(j.quarantine_dir.iterdir())  # its reason went with it
    assert run("journal", "list").output.startswith("0 waiting for the database, 0 in quarantine")
