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
from pbxsim.caller import Caller
from pbxsim.fastagi import run_call
from test_serve import free_port, server_env, wait_listening

FILE_ONE = "1 280101# 1 4 2 1 -"


def heard_code(played: list[str]) -> str | None:
    if "favad/filed-code-is" not in played:
        return None
    i = played.index("favad/filed-code-is")
    digits = [p[-1] for p in played[i + 1:i + 11] if p.startswith("favad/digits/")]
    return "".join(digits) if len(digits) == 10 else None


async def calls(port, sounds, n):
    async def one():
        try:
            r = await run_call("127.0.0.1", port, script="favad", args=("28",), caller=Caller(FILE_ONE),
                               sounds_dir=sounds, timeout=20)
            return heard_code(r.played)
        except Exception:  # the server died under this call
            return None
    return await asyncio.gather(*(one() for _ in range(n)))


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
        batch = asyncio.ensure_future(calls(port, s.sounds_path, 80))
        for _ in range(300):  # kill once some complaints are in, with calls still running
            await asyncio.sleep(0.05)
            with backend.Session() as session:
                if session.scalar(select(func.count()).select_from(Complaint)) >= 10:
                    break
        await asyncio.sleep(0.3)  # a few callers hear their codes, others are mid-call
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
        stored = list(session.scalars(select(Complaint.tracking_code)))
        assert set(heard) | set(after) <= set(stored), "a caller heard a code that was not stored"
        assert len(stored) == len(set(stored))
        for model in (ComplaintEvent, ComplaintRoute):  # (the route says where its messages go)
            with_rows = session.scalar(select(func.count(func.distinct(model.complaint_id))))
            assert with_rows == len(stored), f"a complaint without its {model.__tablename__}"
