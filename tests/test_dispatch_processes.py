"""`favad dispatch` and `favad serve` as real processes: a complaint reaches the unit within a
second, two dispatchers on PostgreSQL send each message once, and a dispatcher killed with
SIGKILL mid-batch leaves its messages to another once the lease runs out."""
from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from config import load
from db.engine import make_engine, make_sessionmaker
from migrations.run import upgrade
from complaints.filing import file_complaint
from db.store import load_demo
from dispatch.loopback import SmsSink, SmtpSink, free_port
from dispatch.models import OutboxMessage
from dispatch.runner import Dispatcher
from dispatch.units import load_demo_units
from ivr.events import ComplaintDraft

from conftest import pg_schema

FAVAD = str(Path(sys.executable).with_name("favad"))


def utcnow():
    return dt.datetime.now(dt.timezone.utc)


class Proc:
    """A favad process whose output is collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str], ready: str, wait: bool = True):
        self.lines: list[str] = []
        self.ready = ready
        self.p = subprocess.Popen([FAVAD, *args], env={**os.environ, **env}, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        if wait:
            self.wait_ready()

    def wait_ready(self) -> "Proc":
        ready, end = self.ready, time.monotonic() + 15
        while not any(ready in line for line in self.lines):
            assert self.p.poll() is None and time.monotonic() < end, "".join(self.lines)
            time.sleep(0.02)
        return self

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line)

    def stop(self, sig=signal.SIGTERM) -> int:
        if self.p.poll() is None:
            self.p.send_signal(sig)
        return self.p.wait(timeout=15)


@pytest.fixture
def servers():
    smtp, sms = SmtpSink().start(), SmsSink().start()
    yield smtp, sms
    smtp.stop()
    sms.stop()


def prepare(url: str):
    upgrade(url)
    engine = make_engine(url)
    Session = make_sessionmaker(engine)
    with Session() as s:
        load_demo(s)
        load_demo_units(s)
    return engine, Session


def env_for(url, tmp_path, smtp, sms, **extra) -> dict[str, str]:
    env = {"FAVAD_DATABASE_URL": url, "FAVAD_DATA_DIR": str(tmp_path / "var"),
           "FAVAD_SMTP_HOST": "127.0.0.1", "FAVAD_SMTP_PORT": str(smtp.port),
           "FAVAD_SMTP_SECURITY": "none", "FAVAD_SMS_URL": sms.url, "FAVAD_SMS_API_KEY": "k",
           "FAVAD_DISPATCH_POLL": "0.02", "FAVAD_DISPATCH_BACKOFF_BASE": "0.05",
           "FAVAD_CALLER_HASH_KEY": "test-hash-key", "FAVAD_LOG_LEVEL": "WARNING"}
    return {**env, **{k: str(v) for k, v in extra.items()}}


def file(Session, n=1, office="280101", agency="101"):
    with Session() as s:
        return [file_complaint(s, ComplaintDraft("28", agency, office, "disrespect", None), utcnow(), 3)
                for _ in range(n)]


def all_sent(Session) -> bool:
    with Session() as s:
        return set(s.scalars(select(OutboxMessage.status))) == {"sent"}


def codes_of(smtp) -> list[str]:
    return [email.message_from_bytes(m.fields["content"], policy=email.policy.default)["X-Favad-Case-Number"]
            for m in smtp.messages]


def test_a_filed_complaint_reaches_smtp_and_sms_within_a_second(db_url, tmp_path, servers):
    smtp, sms = servers
    engine, Session = prepare(db_url)
    proc = Proc(["dispatch"], env_for(db_url, tmp_path, smtp, sms), ready="favad: dispatcher")
    try:
        [c] = file(Session)
        stored = time.time()
        smtp.wait_for(1, timeout=3), sms.wait_for(1, timeout=3)
        assert codes_of(smtp) == [c.case_number]
        assert smtp.messages[0].at - stored < 1.0 and sms.requests[0].at - stored < 1.0
    finally:
        assert proc.stop() == 0, "".join(proc.lines)
        engine.dispose()


def test_two_dispatchers_on_postgresql_send_every_message_exactly_once(tmp_path, servers):
    smtp, sms = servers
    smtp.delay = 0.003  # a little work per message, so the two really interleave
    with pg_schema() as url:
        engine, Session = prepare(url)
        env = env_for(url, tmp_path, smtp, sms, FAVAD_DISPATCH_BATCH=5)
        procs = [Proc(["dispatch"], env, ready="favad: dispatcher", wait=False) for _ in range(2)]
        for p in procs:
            p.wait_ready()
        try:
            complaints = file(Session, 40)
            smtp.wait_for(40, timeout=20), sms.wait_for(40, timeout=20)
            time.sleep(0.3)  # anything sent twice would arrive now
        finally:
            assert [p.stop() for p in procs] == [0, 0]
        with Session() as s:
            rows = list(s.scalars(select(OutboxMessage)))
        engine.dispose()
    assert Counter(codes_of(smtp)) == Counter({c.case_number: 1 for c in complaints})
    assert len(sms.requests) == 40 and len({r.fields["message"] for r in sms.requests}) == 40
    assert {r.status for r in rows} == {"sent"} and {r.tries for r in rows} == {1}
    assert len({r.claimed_by for r in rows}) == 2  # both took their share


def test_a_dispatcher_killed_mid_batch_leaves_its_messages_to_another_after_the_lease(
        db_url, tmp_path, servers):
    smtp, sms = servers
    smtp.delay = 0.2
    engine, Session = prepare(db_url)
    # the lease must outlast the longest send (8 SMTP steps of 0.3 s, 3 SMS steps of 0.5 s) with room
    env = env_for(db_url, tmp_path, smtp, sms, FAVAD_DISPATCH_LEASE=3.0, FAVAD_SMTP_TIMEOUT=0.3,
                  FAVAD_SMS_TIMEOUT=0.5)
    complaints = file(Session, 4)
    first = Proc(["dispatch"], env, ready="favad: dispatcher")
    smtp.wait_for(1, timeout=5)
    first.stop(signal.SIGKILL)
    killed_at = time.monotonic()
    with Session() as s:
        stuck = [m.id for m in s.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending"))]
    assert stuck  # it died holding claimed, unsent messages
    settings = load(environ=env)
    second = Dispatcher(settings, engine=engine)
    assert second.drain() == 0  # still leased to the dead one
    while time.monotonic() - killed_at < 8 and not all_sent(Session):
        second.drain()
        time.sleep(0.05)
    second.close()
    assert time.monotonic() - killed_at >= 2.9  # not before the lease ran out
    assert set(codes_of(smtp)) == {c.case_number for c in complaints}
    # what was in flight when it died may arrive twice (the same Message-ID), nothing more
    assert all(n <= 2 for n in Counter(codes_of(smtp)).values())
    with Session() as s:
        rows = {m.id: m for m in s.scalars(select(OutboxMessage))}
    engine.dispose()
    assert all(m.status == "sent" for m in rows.values())
    assert all(rows[i].tries == 2 for i in stuck), [(m.id, m.channel, m.tries, m.claimed_by, m.last_error)
                                                    for m in rows.values()]


def test_serve_runs_the_dispatcher_by_default_and_stops_it_on_sigterm(tmp_path, servers):
    smtp, sms = servers
    url = f"sqlite:///{tmp_path}/favad.sqlite3"
    engine, Session = prepare(url)
    env = env_for(url, tmp_path, smtp, sms, FAVAD_LISTEN_PORT=free_port(),
                  FAVAD_RECORDINGS_DIR=tmp_path / "rec")
    proc = Proc(["serve"], env, ready="FastAGI on")
    try:
        [c] = file(Session)
        smtp.wait_for(1, timeout=3)
        assert codes_of(smtp) == [c.case_number]
    finally:
        assert proc.stop() == 0
    assert "stopped" in "".join(proc.lines)
    engine.dispose()
