"""Keeps pbxsim honest: the same scripted call on the real Asterisk and on pbxsim, AGI line by line.

Only what legitimately differs between two calls is masked: the channel's name, uniqueid and
thread id, and the caller ID's display text. Everything else (the header names and their order,
every command, every reply including `endpos`) must match, so a change to either side that makes
pbxsim drift from Asterisk 22 fails here."""
from __future__ import annotations

import asyncio
import re

from pbxsim.caller import Caller
from pbxsim.fastagi import run_call

from .calls import CALLER, place

VARYING = {"agi_channel", "agi_uniqueid", "agi_threadid", "agi_calleridname"}


def header_map(lines: list[str]) -> list[tuple[str, str]]:
    pairs = [tuple(line.split(": ", 1)) if ": " in line else (line.rstrip(":"), "") for line in lines]
    return [(k, "*" if k in VARYING else v) for k, v in pairs]


def sim_call(favad, real, keys: str):
    """The same call on pbxsim, against the same `favad serve`, with the real call's channel data."""
    headers = dict(line.split(": ", 1) for line in real.headers if ": " in line)

    async def go():
        return await run_call("127.0.0.1", favad.port, script="favad", args=(headers["agi_arg_1"],),
                              caller=Caller(keys), sounds_dir=str(favad.pbx.sounds), callerid=CALLER,
                              calleridname="Caller", language=headers["agi_language"],
                              channel=headers["agi_channel"], context=headers["agi_context"],
                              extension=headers["agi_extension"], priority=int(headers["agi_priority"]),
                              callingpres=int(headers["agi_callingpres"]),
                              timeout=120)
    result = asyncio.run(go())
    lines = b"".join(data for way, data in result.transcript if way == "<<<").decode().split("\n")
    blank = lines.index("")
    # agi_network and agi_network_script go out before Asterisk's AGI debug log starts
    sim_headers = [line for line in lines[:blank] if line.startswith("agi_")
                   and not line.startswith(("agi_network:", "agi_network_script:"))]
    replies = [line for line in lines[blank + 1:] if line and line != "HANGUP"]
    return sim_headers, list(zip(result.commands, replies))


def real_pairs(call) -> list[tuple[str, str]]:
    return [(x.command, x.reply) for x in call.exchanges]


def assert_same(sim, real) -> None:
    for n, (s, r) in enumerate(zip(sim, real)):
        assert s == r, f"exchange {n}: pbxsim {s} but Asterisk {r}"
    assert len(sim) == len(real), f"pbxsim {sim[len(real):]} / Asterisk {real[len(sim):]}"


def test_a_silent_caller_gets_the_same_session_from_asterisk_and_pbxsim(wave, serving):
    real = wave.calls["silence"]
    sim_headers, sim = sim_call(serving, real, " ".join(["-"] * 12))
    assert header_map(sim_headers) == header_map(real.headers)
    assert_same(sim, real_pairs(real))


def test_a_follow_up_typed_at_the_questions_is_the_same_on_asterisk_and_pbxsim(wave, serving, pbx, ami):
    code = wave.calls["office"].spoken_code()
    # typed only while a question is asked, as pbxsim's caller types: the welcome (8.8 s) and the
    # main menu (7.9 s) are statements; the question is the GET DATA that follows them
    # (16.7-21.7 s in)
    real = place(pbx, ami, f"2 {code}#", pre=19, hold=40).wait_hangup()
    assert "favad/status-received" in real.played, real.played
    sim_headers, sim = sim_call(serving, real, f"2 {code}#")
    assert header_map(sim_headers) == header_map(real.headers)
    assert_same(sim, real_pairs(real))
    assert any(re.fullmatch(r"200 result=0 endpos=\d+", reply) for _, reply in sim)
