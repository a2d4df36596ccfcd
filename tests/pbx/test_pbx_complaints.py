"""Complaints filed through the generated dialplan on a real Asterisk 22 (the first wave's calls)."""
from __future__ import annotations

import json
import re

from .calls import CALLER, cdr_rows
from .scenarios import FILED, LOAD_CALLS, TYPED_ON_INDICATOR

CLASSIC_HEADER = "agi_request: favad-agi"


def new_complaints(wave) -> list[dict]:
    """What the wave stored from the FILED callers (the typed-on agency call is checked apart)."""
    seen = {c["case_number"] for c in wave.before}
    return [c for c in wave.after if c["case_number"] not in seen and c["indicator"] != TYPED_ON_INDICATOR]


def test_every_filing_caller_hears_a_code_of_their_own_and_each_is_stored_once(wave):
    codes = {name: wave.calls[name].spoken_code() for name in FILED}
    assert all(re.fullmatch(r"\d{10}", code) for code in codes.values()), codes
    assert len(set(codes.values())) == len(FILED)
    assert len(new_complaints(wave)) == len(FILED)


def test_the_wait_prompt_plays_between_submitting_and_the_code(wave):
    """Issue 17: the complaint is written while a prompt that promises nothing plays."""
    for name in FILED:
        played = wave.calls[name].played
        at = played.index("favad/filed-wait")  # after the summary (a key typed during it submits)
        assert "favad/summary" in played[:at] and played[at + 1] == "favad/filed-code-is", (name, played)
        assert not [p for p in played[:at] if p == "favad/filed-code-is"], (name, played)
    replies = [x.reply for x in wave.calls["office"].exchanges if x.command.startswith("STREAM FILE favad/filed-wait")]
    assert len(replies) == 1 and re.fullmatch(r"200 result=0 endpos=[1-9]\d*", replies[0]), replies  # heard in full


def test_fifty_concurrent_callers_all_file(wave):
    load = [c for name, c in wave.calls.items() if name.startswith("load-")]
    assert len(load) == LOAD_CALLS
    assert all(c.commands[-1] == "HANGUP" for c in load)  # each IVR hung up itself after the goodbye
    assert all("favad/goodbye" in c.played for c in load)


def test_a_complaint_by_office_code(wave):
    call = wave.calls["office"]
    assert call.commands[:2] == ["ANSWER", 'SET VARIABLE CHANNEL(language) "fa"'], call.commands[:4]
    assert 'GET DATA favad/enter-office-code 5000 8' in call.commands
    assert [x.reply for x in call.exchanges if x.command.startswith("GET DATA favad/enter-office")] == \
        ["200 result=280101"]
    assert all(x.reply.startswith("200 ") for x in call.exchanges), call.exchanges
    assert [c["office"] for c in new_complaints(wave)].count("280101") >= 1


def test_a_complaint_by_agency_code(wave):
    call = wave.calls["agency"]
    assert "GET DATA favad/enter-agency-code 5000 4" in call.commands, call.played
    (c,) = [c for c in new_complaints(wave) if c["indicator"] == "employee_absent"]
    assert c["agency"] == "102" and c["office"] in (None, ""), c


def test_on_asterisk_a_star_does_not_end_get_data(wave):
    """pbxsim's caller ends an entry with its key group; Asterisk's GET DATA ends only on '#', the
    maximum or 5 s of silence, so '*' and an agency code typed 3 s later are one entry."""
    call = wave.calls["agency-typed-on"]
    office = [x.reply for x in call.exchanges if x.command.startswith("GET DATA favad/enter-office-code")]
    assert office[0] == "200 result=*102", office


def test_an_agency_code_typed_right_after_the_star_is_taken(wave):
    """Found by this suite: the flow used to take '*102' as '*' and ask for the agency again."""
    filed = [c for c in wave.after if c["indicator"] == TYPED_ON_INDICATOR]
    assert [c["agency"] for c in filed] == ["102"]


def test_a_voice_description_is_recorded_by_asterisk_and_kept(wave, pbx):
    call = wave.calls["voice"]
    (record,) = [x for x in call.exchanges if x.command.startswith("RECORD FILE")]
    # the caller's voice (hello-world, 1.1 s), then '#'
    assert re.fullmatch(r"200 result=35 \(dtmf\) endpos=\d+", record.reply), record.reply
    assert int(record.reply.rsplit("=", 1)[1]) > 4000, record.reply
    # the only recording left on disk (the wave's other recording caller hung up): kept under a
    # random name of the project's, not the one Asterisk recorded to
    files = list(pbx.recordings.iterdir())
    assert len(files) == 1 and files[0].stat().st_size > 8000, files
    assert CALLER not in files[0].name
    (c,) = [c for c in new_complaints(wave) if c["has_recording"]]


def test_classic_agi_runs_the_same_call(wave):
    call = wave.calls["classic"]
    assert CLASSIC_HEADER in call.headers, call.headers
    assert call.commands[:2] == wave.calls["office"].commands[:2]


def test_128_legs_leave_no_cdr_row_even_though_cdr_is_on(wave, pbx):
    rows = cdr_rows(pbx)
    ivr = {c.channel for name, c in wave.calls.items() if not name.startswith("plain-")}
    # CDR works: the simulated phones' own legs (the other half of each Local pair) are there
    assert any(r[1] == "09127654321" and r[3] == "caller-sim-seq" for r in rows), rows[:3]
    leaked = [r for r in rows if set(r) & ivr or r[3].startswith(("favad-inbound", "favad-ivr"))]
    assert not leaked, leaked


def test_monitor_json_during_the_wave_shows_the_calls_and_no_caller(wave):
    snap = wave.monitor
    assert snap["ami"]["status"] == "ok", snap["ami"]
    text = json.dumps(snap, ensure_ascii=False)
    assert not re.search(r"09\d{9}|9\d{9}", text), "a caller number in the monitor's view"
    assert "favad-operators" in text
    ivr = snap["ami"]["ivr"]
    assert ivr["calls"] >= 50 and len(ivr["list"]) == ivr["calls"], ivr["by_step"]
    steps = {"main", "office", "agency", "confirm_office", "indicator", "recording", "summary", "filed"}
    assert set(ivr["by_step"]) <= steps, ivr["by_step"]
