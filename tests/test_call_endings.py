"""Every way a call can end writes its call record and removes its unsubmitted recording: a bad
reply, a reply that is not AGI, a failure in the driver, the server stopping, the server killed
(counted at the next start); and the session's own checks, with no I/O at all."""
from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from conftest import running_server
from db.models import CallRecord, Complaint
from ivr import protocol as p
from ivr.events import Finish
from ivr.session import Close, Command, Effect, NeedData
from test_fastagi_robustness import headers
from test_serve import free_port, server_env, wait_listening

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
FILE_WITH_VOICE = ["1", "280101#", "1", "4", "1", "1"]  # ... record a voice description, submit


def outcomes(backend):
    with backend.Session() as s:
        return [r.outcome for r in s.scalars(select(CallRecord).order_by(CallRecord.id))]


def stored(backend):
    with backend.Session() as s:
        return list(s.scalars(select(Complaint.id)))


async def asterisk(port, after_record: bytes | None = None, silent_after_record: bool = False):
    """A hand-written Asterisk for one call along FILE_WITH_VOICE: it records the caller (a
    file on disk, as Asterisk leaves it), then answers the next command with ``after_record``
    to the summary's first prompt (or no answer at all). Returns (commands, the recording's path)."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(headers())
    keys, commands, recording, recorded = iter(FILE_WITH_VOICE), [], None, False
    try:
        while line := await asyncio.wait_for(r.readline(), 10):
            cmd = line.decode().rstrip("\n")
            commands.append(cmd)
            summary = recorded and cmd.startswith("STREAM FILE")  # the first prompt after the recording
            if summary and silent_after_record:
                continue
            if summary and after_record is not None:
                w.write(after_record)
                after_record = None
                continue
            if cmd.startswith("RECORD FILE"):
                recording = Path(cmd.split()[2] + ".wav")
                recording.write_bytes(b"RIFF" + bytes(9648))
                recorded = True
                reply = "200 result=35 (dtmf) endpos=9612"
            elif cmd.startswith("GET DATA"):
                k = next(keys, "").rstrip("#")
                reply = f"200 result={k}" if k else "200 result= (timeout)"
            elif cmd.startswith("STREAM FILE"):
                reply = "200 result=0 endpos=800"
            elif cmd == "CHANNEL STATUS":
                reply = "200 result=6"
            else:
                reply = "200 result=1" if not cmd.startswith("ANSWER") else "200 result=0"
            w.write(reply.encode() + b"\n")
    except (ConnectionError, asyncio.TimeoutError):
        pass
    finally:
        w.close()
    return commands, recording


@pytest.mark.parametrize("bad", [
    b"200 result=99999999 endpos=0\n",          # a key no keypad has (was a ValueError in chr())
    b"200 result=\xd9\xa5\xd9\xa3 endpos=0\n",  # digits, but not ASCII ones
    b"HTTP/1.1 400 Bad Request\r\n\r\n",        # not AGI at all
    b"200 OK\n",                                # a status line without its result
])
def test_a_bad_reply_after_a_recording_leaves_a_record_and_no_recording(backend, bad):
    async def scenario():
        async with running_server(backend) as (server, port):
            out = await asyncio.wait_for(asterisk(port, after_record=bad), 20)
            await asyncio.sleep(0.2)
            assert not server.active
            return out
    commands, recording = asyncio.run(scenario())
    assert commands[-1].startswith("STREAM FILE")  # the summary, right after the recording
    backend.close()
    assert outcomes(backend) == ["system_error"] and not stored(backend)
    assert recording is not None and not recording.exists(), "the unsubmitted recording stayed"


def test_a_failure_in_the_driver_leaves_a_record_and_no_recording(backend, monkeypatch):
    async def boom(*_a, **_k):
        raise RuntimeError("a bug on the way to the database")
    monkeypatch.setattr(backend, "file_async", boom)

    async def scenario():
        async with running_server(backend) as (server, port):
            out = await asyncio.wait_for(asterisk(port), 20)
            await asyncio.sleep(0.2)
            assert not server.active
            return out
    _, recording = asyncio.run(scenario())
    backend.close()
    assert outcomes(backend) == ["system_error"] and not stored(backend)
    assert not recording.exists()


def test_a_call_still_running_when_the_server_stops_is_recorded_and_cleaned_up(backend):
    async def scenario():
        async with running_server(backend, long_timeout=60) as (server, port):
            peer = asyncio.ensure_future(asterisk(port, silent_after_record=True))
            for _ in range(100):
                if list(backend.settings.recordings_path.iterdir()):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # the summary is being played
            assert len(server.active) == 1
        return await peer  # the server stopped with a grace of 5 s: the call was cut
    _, recording = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert outcomes(backend) == ["system_error"]
    assert not recording.exists()


def test_calls_cut_by_a_killed_server_are_counted_at_the_next_start(backend):
    s = backend.settings
    port = free_port()
    folder = Path(s.data_dir) / "calls-in-progress"

    def start():
        proc = subprocess.Popen([sys.executable, "-m", "cli", "serve"], env=server_env(s, port),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(port, proc)
        return proc

    async def three_calls_then_kill(proc):
        peers = []
        for _ in range(3):
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(headers())
            assert (await asyncio.wait_for(r.readline(), 10)).startswith(b"ANSWER")
            peers.append(w)  # each call waits for its first reply
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait)
        for w in peers:
            w.close()

    proc = start()
    try:
        asyncio.run(three_calls_then_kill(proc))
        (marker,) = [f for f in folder.iterdir() if not f.name.startswith(".")]
        assert marker.read_text().split() == ["3"]  # a number, nothing about the calls
        proc = start()
        for _ in range(100):
            if outcomes(backend) == ["system_error"] * 3:
                break
            time.sleep(0.1)
        assert outcomes(backend) == ["system_error"] * 3
        assert not marker.exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert outcomes(backend) == ["system_error"] * 3  # a clean stop adds nothing
    assert [f for f in folder.iterdir() if not f.name.startswith(".")] == []


# ---- the session on its own: bytes in, outputs out -----------------------------------------
def drive(session, replies: dict[str, bytes]):
    """Run a session against canned replies (by command prefix); the effects it asked for."""
    effects, out = [], session.start()
    while not isinstance(out, Close):
        if isinstance(out, Effect):
            effects.append(out.action)
            out = session.on_effect(None)
            continue
        if isinstance(out, Command):
            reply = next((r for prefix, r in replies.items() if out.line.startswith(prefix)), b"200 result=0\n")
            session.receive_data(reply)
        else:
            assert isinstance(out, NeedData)
            session.receive_data(b"")
        out = session.next_output()
    return effects


def test_a_key_out_of_range_from_wait_for_digit_is_a_system_error(backend):
    session, _ctx = backend.open_call(p.parse_headers(headers()[:-2]))
    effects = drive(session, {"STREAM FILE": b"200 result=50 endpos=10\n",  # '2' during the welcome
                              "WAIT FOR DIGIT": b"200 result=1114112\n"})
    assert isinstance(effects[-1], Finish) and effects[-1].outcome == "system_error"
    assert session.failure and "1114112" in session.failure


def test_the_limits_a_session_gives_each_command(backend):
    session, _ctx = backend.open_call(p.parse_headers(headers()[:-2]))
    first = session.start()
    assert first == Command("ANSWER") and first.seconds is None  # answered at once: the short limit
    session.receive_data(b"200 result=0\n")
    assert session.next_output().seconds is None  # SET VARIABLE
    session.receive_data(b"200 ")
    assert isinstance(session.next_output(), NeedData)  # half a reply: read on
    session.receive_data(b"result=1\n")
    out = session.next_output()
    while out.line.startswith("SET VARIABLE"):
        session.receive_data(b"200 result=1\n")
        out = session.next_output()
    assert out.line.startswith("STREAM FILE") and out.seconds == float("inf")  # a prompt: the long limit
    while not out.line.startswith("WAIT FOR DIGIT"):  # '2' (follow-up) at every prompt: a code is typed
        session.receive_data(b"200 result=50 endpos=100\n" if out.line.startswith("STREAM") else b"200 result=1\n")
        out = session.next_output()
    assert out.seconds == 5.0  # its own timeout, then the short limit on top
