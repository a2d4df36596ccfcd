"""A rolling restart under load: two `favad serve` on one PostgreSQL, each stopped with SIGTERM
and started again in turn while callers keep calling through the failover list the generated
dialplan writes (the next server while none took the call). No call fails: the calls the stopping
server holds finish within shutdown_grace, the new ones go to the other server, and every caller
hears a tracking code that is stored once."""
from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from config import Settings
from conftest import favad_env, pg_schema
from db.models import CallRecord, Complaint
from pbxsim.caller import Caller
from pbxsim.fastagi import run_call
from test_crash import FILE_ONE, heard_code
from test_dispatch_processes import Proc, prepare
from test_scale_out import SHARED, hashed
from test_serve import free_port

pytestmark = pytest.mark.postgres

CALLERS = 8  # calling at once, each calling again as soon as its call ends
PATIENCE = 180.0  # seconds for anything to happen on a loaded 2-core machine: never a timing assert
THINK = 0.3  # seconds a caller takes before each answer
READY = "favad: FastAGI on"


class Pair:
    """Two FastAGI servers on one PostgreSQL schema, each on its own port and data_dir."""

    def __init__(self, url: str, tmp, sounds: str):
        self.engine, self.Session = prepare(url)
        self.ports = [free_port(), free_port()]
        self.envs = [favad_env(Settings(data_dir=str(tmp / f"serve-{i}"), database_url=url,
                                        sounds_dir=sounds, recordings_dir=str(tmp / "recordings")),
                               **SHARED, FAVAD_LISTEN_PORT=str(port), FAVAD_SHUTDOWN_GRACE="300")
                     for i, port in enumerate(self.ports)]
        self.procs = [Proc(["serve", "--no-dispatch"], env, ready=READY, wait=False) for env in self.envs]
        self.stopped: list[Proc] = []  # the processes stopped by the restarts, for their output
        for proc in self.procs:
            proc.wait_ready()

    def start(self, i: int) -> Proc:
        """Server ``i`` again, on the same port (as systemd would restart it)."""
        self.stopped.append(self.procs[i])
        self.procs[i] = Proc(["serve", "--no-dispatch"], self.envs[i], ready=READY, wait=False)
        end = time.monotonic() + PATIENCE  # Proc.wait_ready allows 15 s: too little under load
        while not any(READY in line for line in self.procs[i].lines):
            assert self.procs[i].p.poll() is None and time.monotonic() < end, "".join(self.procs[i].lines)
            time.sleep(0.05)
        return self.procs[i]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.p.poll() is None:
                proc.p.send_signal(signal.SIGTERM)
        for proc in self.procs:
            proc.p.wait(timeout=PATIENCE)
        self.engine.dispose()


@pytest.fixture
def pair(tmp_path, sounds_dir):
    with pg_schema() as url:
        p = Pair(url, tmp_path, sounds_dir)
        try:
            yield p
        finally:
            for proc in p.procs:
                if proc.p.poll() is None:
                    proc.p.kill()
            p.engine.dispose()


def slow_caller() -> Caller:
    """FILE_ONE typed by someone who thinks THINK seconds before each answer: pbxsim plays
    prompts at once, and a call must last long enough for a stop to find calls to drain."""
    groups = iter(FILE_ONE.split())

    def think(_prompt: str) -> str | None:
        time.sleep(THINK)  # in pbxsim's thread for an interactive caller, not on the event loop
        return next(groups, None)
    return Caller(interactive=think)


class Call:
    """One caller's call, as the test sees it: the server that took it, and what it heard."""

    def __init__(self, order: list[int], started: str):
        self.order, self.started = order, started  # `started`: the phase of the restart it began in
        self.port: int | None = None  # the server it is trying
        self.taken_by: int | None = None  # the server that played it a prompt: it took the call
        self.code: str | None = None
        self.ended = False


async def dial(call: Call, sounds: str, number: str, on_prompt) -> None:
    """[favad-ivr]: each server in turn while none took the call (refused, reset, or closed before
    the IVR set FAVAD_STEP, as Asterisk's AGI() reports them); a taken call is not started over."""
    for port in call.order:
        call.port = port
        try:
            r = await run_call("127.0.0.1", port, script="favad", args=("28",), caller=slow_caller(),
                               sounds_dir=sounds, callerid=number, timeout=PATIENCE,
                               on_prompt=lambda prompt: on_prompt(call, prompt))
        except ConnectionError:  # refused: the stopped server's port is closed
            continue
        call.code = heard_code(r.played)
        if call.code or r.variables.get("FAVAD_STEP"):
            break
    call.ended = True


def test_each_server_restarted_in_turn_under_load_drops_no_call(pair, sounds_dir):
    calls: list[Call] = []
    phase = ["warm-up"]  # "warm-up", then "stopping i", "restarted i" for each server
    signalled: dict[int, list[Call]] = {}  # server -> the calls it held when SIGTERM came
    numbers = (f"0913{n:07d}" for n in itertools.count())  # one each: no per-caller limit is reached

    def on_prompt(call: Call, prompt: str) -> None:
        call.taken_by = call.port
        # the first prompt of a call on server i, once i's turn has come: SIGTERM it under that call
        i = pair.ports.index(call.port)
        if phase[0] == f"stop {i}" and i not in signalled:
            pair.procs[i].p.send_signal(signal.SIGTERM)
            signalled[i] = [c for c in calls if c.taken_by == call.port and not c.ended]
            phase[0] = f"stopping {i}"

    async def until(done, what: str) -> None:
        end = time.monotonic() + PATIENCE
        while not done():
            assert time.monotonic() < end, f"gave up waiting for {what}"
            await asyncio.sleep(0.05)

    def answered(phase_name: str, first: int) -> int:
        """Calls begun in that phase with server ``first`` listed first, ended with a code."""
        return sum(1 for c in calls if c.started == phase_name and c.order[0] == pair.ports[first]
                   and c.ended and c.code)

    async def restarts() -> None:
        await until(lambda: answered("warm-up", 0) >= 3 and answered("warm-up", 1) >= 3, "the warm-up")
        for i in (0, 1):
            phase[0] = f"stop {i}"  # the next prompt on server i stops it
            await until(lambda: i in signalled, f"a call on server {i}")
            rc = await asyncio.to_thread(pair.procs[i].p.wait, PATIENCE)
            assert rc == 0, "".join(pair.procs[i].lines)
            phase[0] = f"down {i}"  # calls listing i first now go to the other server
            await until(lambda: answered(f"down {i}", i) >= 3, f"calls while server {i} is down")
            await asyncio.to_thread(pair.start, i)
            phase[0] = f"restarted {i}"
            await until(lambda: answered(f"restarted {i}", i) >= 3, f"calls to the restarted server {i}")
        phase[0] = "done"

    async def caller(k: int) -> None:
        for n in itertools.count():
            if phase[0] == "done":
                return
            order = pair.ports if (k + n) % 2 == 0 else pair.ports[::-1]
            call = Call(list(order), phase[0])
            calls.append(call)
            await dial(call, sounds_dir, next(numbers), on_prompt)

    async def run() -> None:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(4 * CALLERS))
        workers = [asyncio.create_task(caller(k)) for k in range(CALLERS)]
        try:
            await restarts()
        finally:
            phase[0] = "done"
            await asyncio.gather(*workers)

    asyncio.run(run())

    failed = [c for c in calls if not c.code]
    assert not failed, f"{len(failed)} of {len(calls)} calls heard no tracking code, " \
                       f"begun in: {Counter(c.started for c in failed)}"
    for i in (0, 1):  # the calls in progress on a stopping server finished there
        held = signalled[i]
        assert held and all(c.code and c.taken_by == pair.ports[i] for c in held)
    pair.stop()
    for proc in pair.stopped + pair.procs:
        out = "".join(proc.lines)
        assert proc.p.returncode == 0 and "Traceback" not in out and "call failed" not in out, out

    heard = Counter(hashed(c.code) for c in calls)
    assert max(heard.values()) == 1, "two callers heard the same code"
    with pair.Session() as s:
        stored = Counter(s.scalars(select(Complaint.code_hash)))
        outcomes = Counter(s.scalars(select(CallRecord.outcome)))
    assert stored == heard  # each heard code stored once, nothing else stored
    assert outcomes == {"complaint_filed": len(calls)}  # no call recorded as a system error
