"""Bad input on the FastAGI port: each gets a clean close in bounded time and leaves the
server serving; error replies Asterisk really sends end the call cleanly."""
from __future__ import annotations

import asyncio
import os
import time

import pytest
from sqlalchemy import select

from conftest import running_server
from db.models import CallRecord
from pbxsim.caller import Caller
from pbxsim.fastagi import run_call

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def headers(script="favad", name=b"Test", args=(b"28",)) -> bytes:
    base = (b"agi_network: yes\nagi_network_script: " + script.encode() + b"\n"
            b"agi_request: agi://127.0.0.1:4573/" + script.encode() + b"\n"
            b"agi_channel: Local/128@favad-inbound-00000000;2\nagi_language: en\nagi_type: Local\n"
            b"agi_uniqueid: 1795816935.1\nagi_version: 22.10.1\nagi_callerid: 09121234567\n"
            b"agi_calleridname: " + name + b"\n")
    return base + b"".join(b"agi_arg_%d: %s\n" % (i + 1, a) for i, a in enumerate(args)) + b"\n"


async def raw_call(port, head: bytes, answer):
    """Speak AGI by hand: ``answer(command)`` gives the reply bytes, or None to hang up (EOF)."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(head)
    commands = []
    try:
        while True:
            line = await asyncio.wait_for(r.readline(), 5)
            if not line:
                return commands, "closed by server"
            commands.append(line.decode().rstrip("\n"))
            reply = answer(commands[-1])
            if reply is None:
                return commands, "closed by us"
            w.write(reply)
    finally:
        w.close()


async def closed_within(reader, seconds) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1 << 20), seconds) == b""
    except ConnectionError:  # reset: closed with our unread bytes still in its buffer
        return True
    except asyncio.TimeoutError:
        return False


async def a_real_call_works(port, backend):
    result = await run_call("127.0.0.1", port, script="favad", args=("28",), caller=Caller("- - -"),
                            sounds_dir=backend.settings.sounds_path)
    assert result.played[-1] == "favad/goodbye-failure" and not result.leaked


def outcomes(backend):
    with backend.Session() as s:
        return [r.outcome for r in s.scalars(select(CallRecord).order_by(CallRecord.id))]


@pytest.mark.parametrize("garbage", [os.urandom(4096), b"\x00" * 100 + b"\n\n", b"GET / HTTP/1.1\r\n\r\n",
                                     b"agi_network: yes\nagi_network_scr"])
def test_garbage_gets_a_clean_close_and_the_server_keeps_serving(backend, garbage):
    async def scenario():
        async with running_server(backend, short_timeout=0.5) as (server, port):
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(garbage)
            await w.drain()
            assert await closed_within(r, 3)
            w.close()
            await a_real_call_works(port, backend)
            assert not server.active
    asyncio.run(scenario())


def test_headers_without_the_blank_line_are_dropped_after_the_header_timeout(backend):
    async def scenario():
        async with running_server(backend, short_timeout=0.5) as (server, port):
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(headers()[:-1])  # everything but the final blank line
            start = time.monotonic()
            assert await closed_within(r, 3)
            assert time.monotonic() - start < 2
            w.close()
    asyncio.run(scenario())


def test_a_one_megabyte_line_is_refused_at_once(backend):
    async def scenario():
        async with running_server(backend) as (server, port):
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"agi_network: " + b"x" * (1 << 20))
            assert await closed_within(r, 3)
            w.close()
            await a_real_call_works(port, backend)
    asyncio.run(scenario())


def test_idle_connections_make_room_for_a_real_call_and_are_released_at_the_short_limit(backend):
    async def scenario():
        async with running_server(backend, max_connections=20, short_timeout=1.0) as (server, port):
            idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
            await asyncio.sleep(0.1)
            assert len(server.active) == 20
            await a_real_call_works(port, backend)  # the oldest idle one made room
            assert await closed_within(idle[0][0], 1), "the oldest idle connection should go first"
            await asyncio.sleep(1.5)  # the others hit the short limit
            assert not server.active
            for _, iw in idle:
                iw.close()
    asyncio.run(scenario())


def test_invalid_utf8_in_the_caller_name_does_not_break_the_call(backend):
    async def scenario():
        async with running_server(backend) as (_server, port):
            return await raw_call(port, headers(name=b"\xff\xfe\xc3("), lambda c: b"200 result=0\n"
                                  if not c.startswith("GET DATA") else b"200 result= (timeout)\n")
    commands, how = asyncio.run(scenario())
    assert commands[0] == "ANSWER" and commands[-1] == "HANGUP"
    assert outcomes(backend) == ["failed_input"]


@pytest.mark.parametrize("reply", [
    b"510 Invalid or unknown command\n",
    b"520-Invalid command syntax.  Proper usage follows:\nUsage text\n520 End of proper usage.\n",
])
def test_an_error_reply_ends_the_call_cleanly(backend, reply):
    async def scenario():
        async with running_server(backend) as (server, port):
            out = await raw_call(port, headers(), lambda c: reply if c.startswith("GET DATA") else b"200 result=0\n")
            await asyncio.sleep(0.2)
            assert not server.active
            return out
    commands, how = asyncio.run(scenario())
    assert how == "closed by server"
    assert outcomes(backend) == ["system_error"]


def test_eof_in_the_middle_of_a_command_is_a_hangup(backend):
    async def scenario():
        async with running_server(backend) as (server, port):
            out = await raw_call(port, headers(), lambda c: None if c.startswith("GET DATA") else b"200 result=0\n")
            await asyncio.sleep(0.2)
            assert not server.active
            return out
    asyncio.run(scenario())
    assert outcomes(backend) == ["abandoned"]


def test_an_unsolicited_hangup_line_does_not_shift_the_replies(backend):
    """panoramisk 1.4 reads the HANGUP line as the reply and is one behind from then on."""
    def answer(cmd):
        if cmd.startswith("GET DATA"):
            return b"200 result=-1\n"
        if cmd == "CHANNEL STATUS":
            return b"HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n"
        return b"200 result=0\n"

    async def scenario():
        async with running_server(backend) as (_server, port):
            return await raw_call(port, headers(), answer)
    commands, how = asyncio.run(scenario())
    assert commands[-1] == "CHANNEL STATUS" and how == "closed by server"
    assert outcomes(backend) == ["abandoned"]


def test_asterisk_restarting_drops_every_call_at_once_and_nothing_partial_is_stored(backend):
    """Every FastAGI connection reset mid-call, as when Asterisk restarts."""
    from db.models import Complaint

    async def scenario():
        async with running_server(backend) as (server, port):
            conns = []
            for _ in range(30):
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(headers())
                conns.append((r, w))
            for r, w in conns:  # each call is at the main menu, one command in flight
                assert (await asyncio.wait_for(r.readline(), 5)).startswith(b"ANSWER")
                w.write(b"200 result=0\n")
            await asyncio.sleep(0.2)
            assert len(server.active) == 30
            for _, w in conns:
                w.transport.abort()  # RST, no HANGUP line: the PBX is gone
            for _ in range(50):
                if not server.active:
                    break
                await asyncio.sleep(0.05)
            assert not server.active, "calls left hanging after the PBX went away"
            await a_real_call_works(port, backend)
    asyncio.run(scenario())
    backend.close()
    assert outcomes(backend).count("abandoned") == 30
    with backend.Session() as s:
        assert s.scalar(select(Complaint.id)) is None


def test_attacks_leave_no_task_or_file_descriptor_behind(backend):
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def scenario():
        async with running_server(backend, max_connections=50, short_timeout=0.5) as (server, port):
            await a_real_call_works(port, backend)  # warm: pools and threads exist
            before, tasks_before = open_fds(), len(asyncio.all_tasks())
            idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(60)]
            for payload in (os.urandom(2048), b"agi_network: yes\n", b"x" * 70000):
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(payload)
                idle.append((r, w))
            await asyncio.sleep(1.2)  # past the header timeout
            for _, w in idle:
                w.close()
            await asyncio.sleep(0.3)
            assert not server.active
            assert len(asyncio.all_tasks()) <= tasks_before
            assert open_fds() <= before, "a file descriptor was left open"
    asyncio.run(scenario())


def test_an_asterisk_that_stops_replying_is_closed_after_the_reply_timeout(backend):
    async def scenario():
        async with running_server(backend, short_timeout=0.8) as (server, port):
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(headers())
            assert (await r.readline()).startswith(b"ANSWER")
            w.write(b"200 result=0\n")  # one reply, then silence
            await r.readline()
            started = time.monotonic()
            assert await closed_within(r, 5), "a silent peer must not hold the call forever"
            assert time.monotonic() - started >= 0.7  # not before the timeout
            for _ in range(50):
                if not server.active:
                    break
                await asyncio.sleep(0.05)
            assert not server.active and not server.lines
            w.close()
            await a_real_call_works(port, backend)
    asyncio.run(scenario())


def test_header_then_silence_peers_are_released_within_the_short_limit(backend):
    async def scenario():
        async with running_server(backend, short_timeout=0.6) as (server, port):
            peers = []
            for _ in range(50):
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(headers())  # a whole call's headers, then nothing: no reply to ANSWER
                peers.append((r, w))
            started = time.monotonic()
            for r, _ in peers:
                assert (await r.readline()).startswith(b"ANSWER")
                assert await closed_within(r, 3)
            assert time.monotonic() - started < 0.6 + 0.6 / 4 + 0.5  # the limit and one sweep
            await asyncio.sleep(0.2)
            assert not server.active
            for _, w in peers:
                w.close()
            await a_real_call_works(port, backend)
    asyncio.run(scenario())
    backend.close()
    assert set(outcomes(backend)) == {"abandoned", "failed_input"}  # each cut call has its record


def test_5000_idle_connections_do_not_cost_a_real_call_and_are_logged_as_a_few_lines(backend, caplog):
    async def scenario():
        async with running_server(backend, max_connections=4000) as (server, port):
            idle = []
            for _ in range(5000):
                idle.append(await asyncio.open_connection("127.0.0.1", port))
            await asyncio.sleep(0.5)
            assert len(server.active) <= 4000
            result = await run_call("127.0.0.1", port, script="favad", args=("28",), caller=Caller("- - -"),
                                    sounds_dir=backend.settings.sounds_path)
            assert result.played[-1] == "favad/goodbye-failure", "the real call was closed"
            for _, w in idle:
                w.close()
    caplog.set_level("INFO", logger="ivr.fastagi")
    asyncio.run(scenario())
    lines = [r for r in caplog.records if r.name == "ivr.fastagi"]
    assert 1 <= len(lines) <= 3, [r.getMessage() for r in lines]
    assert "closed to make room" in lines[0].getMessage()


def test_a_call_that_finds_every_slot_taken_by_calls_is_told_unavailable(backend):
    async def scenario():
        async with running_server(backend, max_connections=2) as (server, port):
            holding = []
            for _ in range(2):  # two calls in progress, waiting for their first reply
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(headers())
                assert (await r.readline()).startswith(b"ANSWER")
                holding.append(w)
            result = await run_call("127.0.0.1", port, script="favad", args=("28",), caller=Caller("1"),
                                    sounds_dir=backend.settings.sounds_path)
            for w in holding:
                w.close()
            return result
    result = asyncio.run(scenario())
    assert result.commands == ['VERBOSE "favad: FastAGI server full (2 connections)" 1',
                               'SET VARIABLE FAVAD_NEXT "unavailable"']
    assert result.variables["FAVAD_NEXT"] == "unavailable" and not result.played
