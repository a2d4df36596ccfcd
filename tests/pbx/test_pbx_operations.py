"""Failover, the dialplan tools and the project's files, on a real Asterisk 22 (one call at a time)."""
from __future__ import annotations

import re

from .calls import place
from .conftest import serve_stopped
from .scenarios import FILE_BY_OFFICE
from .test_pbx_paths import outcomes

CLASSIC_HEADER = "agi_request: favad-agi"


def test_with_favad_serve_down_the_call_fails_over_to_classic_agi(serving, pbx, ami):
    before = len(serving.complaints())
    with serve_stopped(serving):
        call = place(pbx, ami, FILE_BY_OFFICE).wait_hangup()
    assert CLASSIC_HEADER in call.headers, call.headers
    assert len(call.spoken_code()) == 10
    assert len(serving.complaints()) == before + 1


def test_with_both_down_the_caller_hears_service_unavailable_then_the_queue(serving, pbx, ami):
    wrapper = pbx.agi_bin / "favad-agi"
    hidden = wrapper.with_name("favad-agi.off")
    with serve_stopped(serving):
        wrapper.rename(hidden)
        try:
            call = place(pbx, ami, "1", hold=12)
            call.wait_answered()
            ami.wait_event(lambda e: e.get("Event") == "QueueCallerJoin" and e.get("Channel") == call.channel,
                           30, "the caller to reach the operator queue")
            call.wait_hangup(30)
        finally:
            hidden.rename(wrapper)
    log = [line for line in pbx.log_text().splitlines() if call.channel in line]
    played = [m.group(1) for line in log for m in [re.search(r'Playback\("[^"]*", "([^"]*)"\)', line)] if m]
    assert played[:2] == ["favad/service-unavailable", "favad/transfer-operator"], played
    assert not call.exchanges  # no AGI ran
    assert not [line for line in log if "not found" in line.lower() or "Unable to open" in line]


def test_dialplan_check_diff_deploy_rollback_against_the_live_pbx(serving, pbx):
    assert "dialplan ok" in serving.run("dialplan", "check").stdout
    assert "up to date" in serving.run("dialplan", "diff").stdout
    live = pbx.cli("dialplan show version@favad-ivr").stdout
    before = re.search(r"favad dialplan ([0-9a-f]{12})", live).group(1)
    changed = {"FAVAD_FASTAGI_FAILOVER_URL": "agi://127.0.0.1:9/favad"}
    diff = serving.run("dialplan", "diff", env=changed, check=False)
    assert diff.returncode == 1 and "+ same => n,AGI(agi://127.0.0.1:9/favad" in diff.stdout, diff.stdout
    serving.run("dialplan", "deploy", env=changed)
    after = re.search(r"favad dialplan ([0-9a-f]{12})", pbx.cli("dialplan show version@favad-ivr").stdout)
    assert after.group(1) != before
    assert "agi://127.0.0.1:9/favad" in pbx.cli("dialplan show favad-ivr").stdout
    serving.run("dialplan", "rollback")
    assert before in pbx.cli("dialplan show version@favad-ivr").stdout
    assert "up to date" in serving.run("dialplan", "diff").stdout


def test_a_broken_dialplan_is_not_left_live(serving, pbx, tmp_path):
    """A template Asterisk cannot load is rolled back and the old dialplan stays live."""
    live = pbx.cli("dialplan show version@favad-ivr").stdout
    templates = tmp_path / "templates"
    templates.mkdir()
    from dialplan.render import HERE

    text = (HERE / "templates" / "favad-128.conf.j2").read_text()
    (templates / "favad-128.conf.j2").write_text(text.replace("[favad-ivr]", "[favad-ivr-renamed]", 1))
    r = serving.run("dialplan", "deploy", env={"FAVAD_DIALPLAN_TEMPLATES": str(templates)}, check=False)
    assert r.returncode != 0
    assert pbx.cli("dialplan show version@favad-ivr").stdout == live
    assert "up to date" in serving.run("dialplan", "diff").stdout


def test_no_caller_number_in_the_projects_files(wave, serving, pbx):
    # the wave's "cdr" caller filed with 09127654321 and a voice description was recorded
    for path in serving.home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"9127654321" not in data and b"9121234567" not in data, path
    for path in pbx.recordings.rglob("*"):
        assert "9127654321" not in path.name
    assert outcomes(serving)
