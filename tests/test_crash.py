"""`favad serve` killed with SIGKILL under load, then restarted: every tracking code a caller
heard is stored, once, whole (its event and its outbox messages), and codes stay unique."""
from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

from sqlalchemy import func, select

from db.models import Complaint, ComplaintEvent
from dispatch.models import ComplaintRoute
from pbxsim.caller import FILE_ONE, Caller, heard_code  # noqa: F401  (others import them from here)
from pbxsim.fastagi import run_call
from test_serve import free_port, server_env, wait_listening


async def calls(port, sounds, n, heard_so_far=None):
    async def one(i):
        await asyncio.sleep(i * 0.03)  # callers arrive one after another, not in lockstep
        try:
            r = await run_call("127.0.0.1", port, script="favad", args=("28",), caller=Caller(FILE_ONE),
                               sounds_dir=sounds, timeout=20)
        except Exception:  # the server died under this call
            return None
        code = heard_code(r.played)
        if code and heard_so_far is not None:
            heard_so_far.append(code)
        return code
    return await asyncio.gather(*(one(i) for i in range(n)))


def start(settings, port):
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve"], env=server_env(settings, port),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_listening(port, proc)
    return proc


def test_sigkill_under_load_loses_no_heard_complaint_and_writes_none_by_half(backend):
    s = backend.settings
    port = free_port()
    proc = start(s, port)
    heard: list[str] = []

    async def load_then_kill():
        loop = asyncio.get_running_loop()
        so_far: list[str] = []
        batch = asyncio.ensure_future(calls(port, s.sounds_path, 80, so_far))
        for _ in range(600):  # kill once a few callers heard their codes, the rest mid-call
            if len(so_far) >= 3:
                break
            await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        await loop.run_in_executor(None, proc.wait)
        return await batch
    try:
        during = asyncio.run(load_then_kill())
        heard = [c for c in during if c]
        assert heard and len(heard) < len(during), "the kill should land in the middle of the load"
        proc = start(s, port)  # restarted: it serves again on the same data
        after = [c for c in asyncio.run(calls(port, s.sounds_path, 5)) if c]
        assert len(after) == 5
    finally:
        proc.kill()
        proc.wait()

    with backend.Session() as session:
        stored = list(session.scalars(select(Complaint.code_hash)))
        heard_hashes = {backend.code_hash(c) for c in heard + after}
        assert heard_hashes <= set(stored), "a caller heard a code that was not stored"
        assert len(stored) == len(set(stored))
        for model in (ComplaintEvent, ComplaintRoute):  # (the route says where its messages go)
            with_rows = session.scalar(select(func.count(func.distinct(model.complaint_id))))
            assert with_rows == len(stored), f"a complaint without its {model.__tablename__}"
