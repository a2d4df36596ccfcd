"""Out of one box with the pieces there are: two `favad serve --no-dispatch` processes (each with
its own data_dir) and two `favad dispatch` processes (each with its own Maildir and SMS file) on
one PostgreSQL, callers shared between the servers the way the generated dialplan shares them
(the next FastAGI server while none took the call). Every code a caller heard is unique and
stored once, every message of every complaint is delivered once, and a server killed with
SIGKILL under load loses no heard complaint while the calls after it go to the other one."""
from __future__ import annotations

import asyncio
import email
import email.policy
import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from config import Settings
from conftest import favad_env, pg_schema
from db.models import CallerCount, Complaint, ComplaintEvent
from dispatch.models import ComplaintRoute, OutboxMessage
from complaints.callers import CallerLedger, Limits
from common.keyring import code_hash
from pbxsim.caller import Caller
from pbxsim.fastagi import run_call
from test_crash import FILE_ONE, heard_code
from test_dispatch_processes import FAVAD, Proc, prepare
from test_serve import free_port

pytestmark = pytest.mark.postgres

CALLS, AT_ONCE = 160, 20
SHARED = {"FAVAD_CALLER_HASH_KEY": "scale-out-hash-key",  # the same caller hashes alike on every server
          "FAVAD_TRACKING_KEY": "scale-out-tracking-key",  # a code heard from one server follows up on any
          "FAVAD_LINK_KEYS": "scale-out-link-key",  # a link signed by one dispatcher opens on any page
          "FAVAD_LOG_LEVEL": "WARNING", "FAVAD_WEB_IN_SERVE": "0"}
PERSIAN = str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")


def hashed(code: str) -> str:
    return code_hash(SHARED["FAVAD_TRACKING_KEY"].encode(), code)


class Cluster:
    """Two FastAGI servers and two dispatchers on one PostgreSQL schema."""

    def __init__(self, url: str, tmp: Path, sounds: str):
        self.engine, self.Session = prepare(url)  # migrated, demo data, the inspection units
        self.servers, self.dispatchers, self.ports, self.envs = [], [], [], []
        for name in ("a", "b"):
            s = Settings(data_dir=str(tmp / f"serve-{name}"), database_url=url, sounds_dir=sounds,
                         recordings_dir=str(tmp / "recordings"))  # Asterisk's, shared by all
            self.ports.append(free_port())
            self.envs.append(favad_env(s, **SHARED, FAVAD_LISTEN_PORT=str(self.ports[-1])))
            self.servers.append(Proc(["serve", "--no-dispatch"], self.envs[-1], ready="favad: FastAGI on",
                                     wait=False))
        self.outputs = [tmp / f"dispatch-{name}" for name in ("a", "b")]
        for data_dir in self.outputs:
            env = {**SHARED, "FAVAD_DATABASE_URL": url, "FAVAD_DATA_DIR": str(data_dir),
                   "FAVAD_DISPATCH_POLL": "0.05"}
            self.dispatchers.append(Proc(["dispatch"], env, ready="favad: dispatcher", wait=False))
        for proc in self.servers + self.dispatchers:
            proc.wait_ready()

    def stop(self) -> None:
        for proc in self.servers + self.dispatchers:
            if proc.p.poll() is None:
                proc.p.send_signal(signal.SIGTERM)
        for proc in self.servers + self.dispatchers:
            try:
                proc.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.p.kill()
                proc.p.wait()
        self.engine.dispose()

    def stored(self) -> list[str]:
        """The code hashes stored (the codes themselves are not)."""
        with self.Session() as s:
            return list(s.scalars(select(Complaint.code_hash)))

    def wait_for(self, done, timeout=60.0):
        end = time.monotonic() + timeout
        while not done() and time.monotonic() < end:
            time.sleep(0.1)
        return done()

    def all_sent(self) -> bool:
        with self.Session() as s:
            return set(s.scalars(select(OutboxMessage.status))) <= {"sent"}

    def delivered(self) -> Counter:
        """(case number, channel, recipient) of every message in the dispatchers' outputs."""
        found = Counter()
        for out in self.outputs:
            for path in (out / "maildir" / "new").glob("*"):
                m = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                found[(m["X-Favad-Case-Number"], "email", m["To"])] += 1
            sms = out / "sms.log"
            for line in sms.read_text(encoding="utf-8").splitlines() if sms.exists() else []:
                entry = json.loads(line)
                code = entry["text"].translate(PERSIAN).split("پرونده ", 1)[1].split()[0]
                found[(code, "sms", entry["to"])] += 1
        return found

    def queued(self) -> Counter:
        """The same triples from the outbox: what should have gone out."""
        with self.Session() as s:
            rows = s.execute(select(Complaint.case_number, OutboxMessage.channel, OutboxMessage.recipient)
                             .join(Complaint, OutboxMessage.complaint_id == Complaint.id))
            return Counter(tuple(r) for r in rows)


@pytest.fixture
def cluster(tmp_path, sounds_dir):
    with pg_schema() as url:
        c = Cluster(url, tmp_path, sounds_dir)
        try:
            yield c
        finally:
            c.stop()


async def dial(ports: list[int], sounds: str, number: str, on_prompt=None) -> str | None:
    """One caller through [favad-ivr]: each FastAGI server in turn while none took the call
    (connection refused, or closed before the IVR set FAVAD_STEP); the code heard, if any.
    ``on_prompt(port, prompt)`` hears every prompt played."""
    for port in ports:
        hook = on_prompt and (lambda prompt, port=port: on_prompt(port, prompt))
        try:
            r = await run_call("127.0.0.1", port, script="favad", args=("28",), caller=Caller(FILE_ONE),
                               sounds_dir=sounds, callerid=number, timeout=60, on_prompt=hook)
        except ConnectionRefusedError:
            continue  # AGISTATUS=FAILURE and FAVAD_STEP empty: the next AGI() line
        code = heard_code(r.played)
        if code or r.variables.get("FAVAD_STEP"):
            return code  # taken by this server: a broken-off call is not started over
    return None


def callers(c: Cluster, sounds: str, n: int, on_prompt=None, killed=(), heard=None) -> list:
    """``n`` calls, AT_ONCE at a time; caller i dials number i//2, server a first for even i and
    b first for odd i (two Asterisk boxes with opposite primaries). For each call: (its primary,
    whether ``killed`` was already true when it started, the code it heard), also appended to
    ``heard`` as each call ends."""
    async def run():
        gate = asyncio.Semaphore(AT_ONCE)

        async def one(i):
            order = c.ports if i % 2 == 0 else c.ports[::-1]
            async with gate:
                after = bool(killed)
                result = (i % 2, after, await dial(order, sounds, f"0912{i // 2:07d}", on_prompt))
            if heard is not None:
                heard.append(result)
            return result
        return await asyncio.gather(*(one(i) for i in range(n)))
    return asyncio.run(run())


def test_two_servers_and_two_dispatchers_store_each_heard_code_once_and_send_each_message_once(
        cluster, sounds_dir):
    results = callers(cluster, sounds_dir, CALLS)
    heard = [hashed(code) for _, _, code in results if code]
    assert len(heard) == CALLS, f"{CALLS - len(heard)} callers heard no tracking code"
    assert len(set(heard)) == len(heard), "two callers heard the same code"
    assert cluster.wait_for(lambda: len(cluster.stored()) >= len(heard))  # a journaled one goes in too
    stored = cluster.stored()
    assert Counter(stored) == Counter(heard)  # each heard code stored once, nothing else stored

    assert cluster.wait_for(cluster.all_sent), "the dispatchers did not deliver the outbox"
    queued = cluster.queued()
    assert len({case for case, _, _ in queued}) == len(heard) and {ch for _, ch, _ in queued} == {"email", "sms"}
    assert cluster.delivered() == queued  # every message of every complaint, once
    with cluster.Session() as s:
        assert len(set(s.scalars(select(OutboxMessage.claimed_by)))) == 2  # both took their share
    cluster.stop()  # the servers leave their caller counts in their spools on the way out
    for env in cluster.envs:  # as each one's next flush would take them in
        assert CallerLedger(cluster.Session, Limits(), Path(env["FAVAD_DATA_DIR"]) / "counts").flush() > 0
    with cluster.Session() as s:
        rows = list(s.scalars(select(CallerCount)))
    # each number called once through each server: one caller, one keyed hash (the shared seed)
    assert len(rows) == CALLS // 2 and {(r.complaints, r.guesses) for r in rows} == {(2, 0)}


def test_a_server_killed_under_load_loses_no_heard_code_and_the_next_calls_go_to_the_other(
        cluster, sounds_dir):
    a, port_a = cluster.servers[0].p, cluster.ports[0]
    killed: list[bool] = []
    ended: list[tuple] = []

    def kill_mid_call(port, prompt):
        # once a few of a's callers heard their codes, a dies under one still hearing its own
        if port == port_a and prompt == "favad/filed-code-is" and not killed and \
                sum(1 for primary, _, code in ended if primary == 0 and code) >= 3:
            a.kill()
            a.wait(timeout=10)  # dead, its port closed: a call placed from now on is refused
            killed.append(True)

    results = callers(cluster, sounds_dir, 120, kill_mid_call, killed, ended)
    assert killed and a.returncode == -signal.SIGKILL
    # what a had journaled and not yet replayed, an admin replays from its data_dir
    replay = subprocess.run([FAVAD, "journal", "replay"], env=cluster.envs[0], capture_output=True,
                            text=True, timeout=120)
    assert replay.returncode == 0, replay.stdout + replay.stderr

    heard = [hashed(code) for _, _, code in results if code]
    after_kill = [code for _, after, code in results if after]
    assert after_kill and all(after_kill), "a call placed after the kill did not go to the other server"
    assert len(set(heard)) == len(heard)
    stored = cluster.stored()
    assert len(set(stored)) == len(stored)
    assert set(heard) <= set(stored), "a caller heard a code that was not stored"
    # stored, never heard: the complaint of the caller cut off while hearing it, and at most
    # one per other call a broke off
    assert len(heard) < len(stored) <= len(results)
    with cluster.Session() as s:
        for model in (ComplaintEvent, ComplaintRoute):
            assert s.scalar(select(func.count(func.distinct(model.complaint_id)))) == len(stored)
    assert cluster.wait_for(cluster.all_sent), "the dispatchers did not deliver the outbox"
    assert cluster.delivered() == cluster.queued()
