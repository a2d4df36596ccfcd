"""Whole calls: the FastAGI server and the classic AGI script against the Asterisk 22 peer,
on SQLite and PostgreSQL, with real prompt audio and recordings on disk."""
from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path

from sqlalchemy import select

from conftest import CALLER_NAME, CALLER_NUMBER, favad_env, running_server
from db.models import CallRecord, Complaint
from pbxsim.caller import Caller
from pbxsim.classic import run_agi
from pbxsim.fastagi import run_call

FILE_ONE = "1 280101# 1 4 2 1 -"          # new, office, confirm, disrespect, no recording, submit
FILE_WITH_VOICE = "1 280101# 1 4 1 1 -"   # ... record a voice description


def call(backend, keys="", args=("28",), script="favad", **kw):
    """One call over FastAGI against a fresh server; (result, server)."""
    async def scenario():
        async with running_server(backend) as (server, port):
            result = await run_call("127.0.0.1", port, script=script, args=args,
                                    caller=Caller(keys, **{k: kw.pop(k) for k in ("speak", "hangup_at", "eager")
                                                          if k in kw}),
                                    sounds_dir=backend.settings.sounds_path, **kw)
            return result, server
    return asyncio.run(scenario())


def complaints(backend):
    with backend.Session() as s:
        found = list(s.scalars(select(Complaint).order_by(Complaint.id)))
        for c in found:  # load what the assertions read before the session closes
            c.office, c.agency, c.province, c.indicator
        return found


def call_records(backend):
    with backend.Session() as s:
        return [r.outcome for r in s.scalars(select(CallRecord).order_by(CallRecord.id))]


def reply_to(result, command):
    """The peer's reply line to the first ``command`` the script sent."""
    sent = False
    for way, data in result.transcript:
        if way == ">>>" and data == command.encode() + b"\n":
            sent = True
        elif sent and way == "<<<" and not data.startswith(b"HANGUP"):
            return data.decode().strip()
    raise AssertionError(f"{command!r} was not sent")


def resolve(backend, complaint, outcome="written_warning"):
    """What an inspection unit's resolution leaves behind."""
    import datetime as dt

    from db.models import ComplaintEvent

    with backend.Session() as s:
        row = s.get(Complaint, complaint.id)
        row.status, row.outcome = "resolved", outcome
        s.add(ComplaintEvent(complaint_id=complaint.id, at=dt.datetime.now(dt.timezone.utc),
                             kind="resolved", status="resolved", actor="unit:test", note=None))
        s.commit()


def ratings(backend):
    from db.models import ComplaintRating

    backend.close()
    with backend.Session() as s:
        return [r.rating for r in s.query(ComplaintRating)]


def spoken_code(played):
    """The tracking code as the caller heard it: the digits after filed-code-is."""
    i = played.index("favad/filed-code-is")
    digits = []
    for name in played[i + 1:]:
        if not name.startswith("favad/digits/"):
            break
        digits.append(name[-1])
    return "".join(digits)


def test_a_complaint_filed_over_fastagi_is_stored_and_its_code_read_back(backend):
    result, _ = call(backend, FILE_ONE)
    (c,) = complaints(backend)
    assert backend.code_hash(spoken_code(result.played)) == c.code_hash
    assert (c.office.code, c.agency.code, c.province.area_code, c.indicator.code) == \
        ("280101", "101", "28", "disrespect")
    assert c.status == "received" and c.recording_path is None
    # the three hours are office hours (Sat-Wed 07:00-14:00 Tehran), as the reports count them
    assert c.sla_due_at == backend.calendar.add(c.created_at, 180) > c.created_at
    assert call_records(backend) == ["complaint_filed"]
    assert result.agistatus == "HANGUP"  # the IVR hung up itself after the goodbye
    assert not result.leaked
    assert result.commands[0] == "ANSWER"
    assert result.commands[1] == 'SET VARIABLE CHANNEL(language) "fa"'
    assert result.commands[-1] == "HANGUP"


def test_voice_description_is_kept_only_disguised_under_a_random_name(backend):
    result, _ = call(backend, FILE_WITH_VOICE, speak=True)
    (c,) = complaints(backend)
    path = Path(c.recording_path)
    assert path.parent == backend.settings.recordings_path and path.name.endswith(".v.wav")
    assert path.exists() and path.stat().st_size > 44
    assert CALLER_NUMBER not in path.name and len(path.name.removesuffix(".v.wav")) == 32
    record = [cmd for cmd in result.commands if cmd.startswith("RECORD FILE")][0]
    original = Path(record.split()[2] + ".wav")
    assert record == f"RECORD FILE {original.with_suffix('')} wav # 60000 0 BEEP s=3"
    # what Asterisk recorded is gone; the disguised copy has a name of its own
    assert original.stem != path.name.removesuffix(".v.wav")
    assert list(backend.settings.recordings_path.iterdir()) == [path]


def test_an_empty_recording_counts_as_none_and_is_removed(backend):
    call(backend, FILE_WITH_VOICE, speak=False)
    (c,) = complaints(backend)
    assert c.recording_path is None
    assert list(backend.settings.recordings_path.iterdir()) == []


def test_hangup_after_every_step_leaves_nothing_half_written(backend):
    full, _ = call(backend, FILE_WITH_VOICE, speak=True)
    steps = len([c for c in full.commands if c.split(" ")[0] in ("STREAM", "GET", "WAIT", "RECORD")])
    assert steps > 10
    before = len(complaints(backend))
    for n in range(1, steps + 1):
        result, server = call(backend, FILE_WITH_VOICE, speak=True, hangup_at=n)
        assert result.hungup_by_caller, n
        assert result.closed_after_hangup and not result.leaked, n
        assert not server.active, n
    after = complaints(backend)
    filed = [c for c in after[before:]]
    # only the calls that got past "submit" filed a complaint, each with its recording
    assert all(Path(c.recording_path).exists() for c in filed)
    on_disk = set(backend.settings.recordings_path.iterdir())
    assert on_disk == {Path(c.recording_path) for c in after}, "a stray recording was left"
    outcomes = call_records(backend)[1:]
    assert len(outcomes) == steps
    assert set(outcomes) <= {"abandoned", "complaint_filed"}
    assert outcomes.count("complaint_filed") == len(filed)


def test_follow_up_reads_the_status(backend):
    filed, _ = call(backend, FILE_ONE)
    (c,) = complaints(backend)
    code = spoken_code(filed.played)
    result, _ = call(backend, f"2 {code}#")
    assert "favad/status-received" in result.played
    assert call_records(backend)[-1] == "followup"


def test_follow_up_with_three_wrong_codes_ends_the_call(backend):
    result, _ = call(backend, "2 1234567890# 1111111111# 42#")
    assert result.played[-2:] == ["favad/tracking-code-wrong", "favad/goodbye-failure"]
    assert call_records(backend) == ["failed_input"]


def test_a_province_not_yet_live_is_told_so(backend):
    result, _ = call(backend, "", args=("31",))
    assert result.played == ["favad/welcome", "favad/province-inactive"]
    assert call_records(backend) == ["province_inactive"]


def test_keys_typed_during_the_welcome_do_not_skip_the_inactive_province_notice(backend):
    result, _ = call(backend, "11", args=("31",), eager=True)  # the caller presses 1 at once, twice
    assert reply_to(result, 'STREAM FILE favad/welcome "0123456789*#"').startswith("200 result=49 ")
    notice = 'STREAM FILE favad/province-inactive ""'  # no escape digits: played to the end
    assert notice in result.commands
    assert reply_to(result, notice).startswith("200 result=0 ")
    assert result.played == ["favad/welcome", "favad/province-inactive"]
    assert result.commands[-1] == "HANGUP"  # the IVR hung up after the notice, not the caller
    assert call_records(backend) == ["province_inactive"]


def test_missing_province_argument_is_asked(backend):
    result, _ = call(backend, "26 2 -  -  -", args=())
    assert "favad/enter-province" in result.played
    assert call_records(backend) == ["failed_input"]


def test_out_of_scope_goes_back_to_the_main_menu_and_is_counted(backend):
    result, _ = call(backend, "1 280101# 1 8 - - -")
    i = result.played.index("favad/out-of-scope")
    assert result.played[i + 1] == "favad/main-menu"
    assert call_records(backend) == ["out_of_scope"]
    assert complaints(backend) == []


def test_keys_typed_ahead_answer_the_question_being_played(backend):
    result, _ = call(backend, "1280101#14 2 1 -")  # no pauses: every key barges in
    assert len(complaints(backend)) == 1


def test_operator_hand_off_returns_the_call_to_the_dialplan(backend):
    backend.settings = dataclasses.replace(backend.settings, operator_queue="favad-operators")
    result, _ = call(backend, "0")
    assert result.variables.get("FAVAD_NEXT") == "operator"
    assert result.agistatus == "SUCCESS" and "HANGUP" not in result.commands
    assert call_records(backend) == ["operator"]


def test_a_missing_prompt_file_does_not_strand_the_caller(backend, tmp_path):
    import shutil

    sounds = tmp_path / "sounds"
    shutil.copytree(backend.settings.sounds_path, sounds)
    (sounds / "fa/favad/welcome.wav").unlink()
    backend.settings = dataclasses.replace(backend.settings, sounds_dir=str(sounds))
    result, _ = call(backend, FILE_ONE)
    assert len(complaints(backend)) == 1
    assert result.agistatus == "FAILURE"  # as a real Asterisk reports a missing file


def test_asterisk_closing_on_hangup_is_a_clean_end(backend):
    result, server = call(backend, "1 280101#", agiexitonhangup=True)
    assert result.hungup_by_caller and not server.active
    assert call_records(backend) == ["abandoned"]


def test_an_unknown_script_is_told_unavailable_so_the_dialplan_plays_the_apology(backend):
    result, _ = call(backend, FILE_ONE, script="other")
    assert result.commands == ['VERBOSE "favad: unknown FastAGI script (check the AGI() URL)" 1',
                               'SET VARIABLE FAVAD_NEXT "unavailable"']
    assert result.variables["FAVAD_NEXT"] == "unavailable" and result.agistatus == "SUCCESS"
    assert not result.played and call_records(backend) == []  # no call was taken


def test_a_peer_that_closes_mid_headers_does_not_freeze_the_server(backend):
    async def scenario():
        async with running_server(backend) as (server, port):
            for _ in range(3):
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(b"agi_network: yes\nagi_network_scr")
                await w.drain()
                w.close()
            return await asyncio.wait_for(
                run_call("127.0.0.1", port, script="favad", args=("28",), caller=Caller(FILE_ONE),
                         sounds_dir=backend.settings.sounds_path), 20)
    result = asyncio.run(scenario())
    assert spoken_code(result.played)


def test_classic_agi_files_the_same_complaint_and_writes_nothing_identifying(backend):
    s = backend.settings
    env = favad_env(s)
    result = asyncio.run(run_agi([sys.executable, "-m", "cli", "agi"], args=("28",),
                                 caller=Caller(FILE_ONE), sounds_dir=s.sounds_path, env=env,
                                 callerid=CALLER_NUMBER, calleridname=CALLER_NAME))
    (c,) = complaints(backend)
    assert backend.code_hash(spoken_code(result.played)) == c.code_hash
    assert CALLER_NUMBER.encode() not in result.stderr and b"9121234567" not in result.stderr
    assert CALLER_NAME.encode() not in result.stderr


def test_classic_agi_hangup_by_sighup(backend):
    s = backend.settings
    env = favad_env(s)
    # the peer plays prompts in no time, so the caller hangs up while the script may still be
    # opening its database in the background (ivr/agi_script.py): it then finishes that, writes
    # the call record and exits, in more than the peer's default 2 s on a busy machine
    result = asyncio.run(run_agi([sys.executable, "-m", "cli", "agi"], args=("28",),
                                 caller=Caller(FILE_ONE, hangup_at=4), sounds_dir=s.sounds_path,
                                 env=env, close_timeout=15))
    assert result.hungup_by_caller and not result.leaked
    assert complaints(backend) == []
    assert call_records(backend) == ["abandoned"]


def test_classic_agi_that_cannot_start_tells_asterisk_why_and_prints_no_traceback(backend, tmp_path):
    env = favad_env(backend.settings, FAVAD_DATABASE_URL=f"sqlite:///{tmp_path}/never-upgraded.sqlite3")
    result = asyncio.run(run_agi([sys.executable, "-m", "cli", "agi"], args=("28",), caller=Caller(FILE_ONE),
                                 sounds_dir=backend.settings.sounds_path, env=env))
    assert result.commands == [
        'VERBOSE "favad-agi cannot take the call: cannot open the database (OperationalError); '
        'run `favad db upgrade` first or check database_url" 1',
        'SET VARIABLE FAVAD_NEXT "unavailable"']
    assert result.agistatus == "FAILURE" and result.variables["FAVAD_NEXT"] == "unavailable"
    assert b"Traceback" not in result.stderr and not result.played


def test_a_resolved_complaint_is_heard_with_its_outcome_and_rated_once(backend):
    filed, _ = call(backend, FILE_ONE)
    (c,) = complaints(backend)
    code = spoken_code(filed.played)
    resolve(backend, c)
    first, _ = call(backend, f"2 {code}# 4")
    assert first.played[-4:] == ["favad/outcome-written_warning", "favad/rate-handling",
                                 "favad/rating-thanks", "favad/followup-goodbye"]
    again, _ = call(backend, f"2 {code}# 1")
    assert "favad/rate-handling" not in again.played
    assert ratings(backend) == [4]


def test_a_key_pressed_during_the_outcome_readout_is_not_taken_as_the_rating(backend):
    filed, _ = call(backend, FILE_ONE)
    (c,) = complaints(backend)
    code = spoken_code(filed.played)
    resolve(backend, c)
    # 5 right after the code's #: it barges into the read-out; 2 is typed at the rating question
    result, _ = call(backend, f"2 {code}#5 2")
    assert reply_to(result, 'STREAM FILE favad/status-resolved "0123456789*#"').startswith("200 result=53 ")
    rating = "GET DATA favad/rate-handling 5000 1"
    assert rating in result.commands
    assert reply_to(result, rating) == "200 result=2"
    assert ratings(backend) == [2]
