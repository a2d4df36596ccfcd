"""Database outages during calls: the caller still files, the journal replays exactly once."""
from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
from sqlalchemy import func, select

from conftest import PG_URL, pg_schema, running_server
from db.engine import make_engine, make_sessionmaker
from db.migrate import upgrade
from db.models import CallRecord, Complaint
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
