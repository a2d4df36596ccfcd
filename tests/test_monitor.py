"""`favad monitor` against the test AMI peer and a demo database with complaints, on SQLite and
PostgreSQL: what operators see, what happens when Asterisk goes away, and that no caller number
or name ever reaches the screen, the JSON or the logs."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from rich.console import Console

from cli import main
from conftest import ROOT
from db.engine import make_engine, make_sessionmaker
from clock.calendar import parse as parse_calendar
from complaints.filing import file_complaint
from conftest import favad_env
from ivr.events import ComplaintDraft
from monitor.live import LiveState
from pbxsim.ami import AmiPeer, PeerThread, SimChannel, SimMember, SimQueue

NUMBERS = ("09121234567", "9121234567", "09351112233", "9351112233")
NAMES = ("علی رضایی", "Zahra Mohammadi")
SECRET = "favad-test-secret"


def env_for(s, **extra) -> dict:
    return favad_env(s, **{"FAVAD_AMI_SECRET": SECRET, "FAVAD_AMI_TIMEOUT": "1",
                            "FAVAD_OPERATOR_QUEUE": "favad-operators", "FAVAD_LOG_LEVEL": "DEBUG",
                            **extra})


# deadlines in wall-clock hours, so that "past due" does not depend on the day the test runs
ROUND_THE_CLOCK = parse_calendar('hours = "always"', "test")


def file_complaints(settings) -> list[str]:
    """Three open complaints: one past its deadline, one due within the hour, one fresh."""
    now = dt.datetime.now(dt.timezone.utc)
    engine = make_engine(settings.db_url)
    codes = []
    with make_sessionmaker(engine)() as s:
        for hours_ago, agency, office, province in ((4, "101", "280101", "28"), (2.5, "102", "280102", "28"),
                                                     (0.1, "101", None, "21")):
            draft = ComplaintDraft(province, agency, office, "disrespect", None)
            codes.append(file_complaint(s, draft, now - dt.timedelta(hours=hours_ago), 3,
                                        calendar=ROUND_THE_CLOCK).case_number)
    engine.dispose()
    return codes


def populate(peer: AmiPeer) -> None:
    """Two calls in the IVR (one with a Persian name), one waiting for an operator."""
    peer.channels += [
        SimChannel("PJSIP/09121234567-00000001", caller_num=NUMBERS[0], caller_name=NAMES[0],
                   variables={"FAVAD_STEP": "office", "FAVAD_PROVINCE": "28"}, started=time.time() - 35),
        SimChannel("PJSIP/trunk-tehran-00000002", caller_num=NUMBERS[2], caller_name=NAMES[1],
                   variables={"FAVAD_STEP": "recording", "FAVAD_PROVINCE": "21"}),
        SimChannel("Local/s@caller-sim-00000003;1", caller_num=NUMBERS[0], context="caller-sim"),
    ]
    waiting = SimChannel("PJSIP/trunk-qazvin-00000004", caller_num=NUMBERS[2], caller_name=NAMES[1],
                         exten="operator", application="Queue", app_data="favad-operators",
                         variables={"FAVAD_STEP": "main", "FAVAD_PROVINCE": "28"})
    peer.channels.append(waiting)
    peer.queues.append(SimQueue("favad-operators", abandoned=2, completed=5,
                                members=[SimMember("op1", "PJSIP/op1"), SimMember("op2", "PJSIP/op2", status=2),
                                         SimMember("op3", "PJSIP/op3", status=5)],
                                entries=[(waiting, time.time() - 75)]))


def assert_anonymous(*texts: str) -> None:
    for text in texts:
        for needle in NUMBERS + NAMES:
            assert needle not in text


def test_once_shows_the_ivr_the_queue_and_the_sla_board(migrated):
    codes = file_complaints(migrated)
    peer = AmiPeer(auth_fail_delay=0.05)
    populate(peer)
    runner = CliRunner(mix_stderr=False)
    with PeerThread(peer) as port:
        env = env_for(migrated, FAVAD_AMI_PORT=str(port))
        # a real process, so its log lines (DEBUG) are on its stderr to be scanned
        as_json = subprocess.run([sys.executable, "-m", "cli", "monitor", "--once", "--json"],
                                 env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True,
                                 timeout=60)
        as_text = runner.invoke(main, ["monitor", "--once"], env={**env, "COLUMNS": "160"})
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    assert as_text.exit_code == 0, as_text.output + as_text.stderr
    snap = json.loads(as_json.stdout)

    ami = snap["ami"]
    assert ami["status"] == "ok"
    assert ami["ivr"]["calls"] == 2 and ami["ivr"]["by_step"] == {"office": 1, "recording": 1}
    office = next(c for c in ami["ivr"]["list"] if c["step"] == "office")
    assert office["province"] == "28" and office["seconds"] >= 35
    (q,) = ami["queues"]
    assert (q["queue"], q["waiting"], q["agents_logged_in"], q["agents_free"], q["abandoned"]) == \
        ("favad-operators", 1, 2, 1, 2)
    assert q["longest_wait_s"] >= 75

    db = snap["database"]
    assert db["status"] == "ok"
    assert db["by_status"]["received"] == 3
    nearest = db["nearest"]
    assert [c["case_number"] for c in nearest] == codes  # oldest deadline first
    assert nearest[0]["minutes_left"] < 0 < nearest[1]["minutes_left"] <= 30
    by_agency = {g["code"]: g for g in db["by_agency"]}
    assert (by_agency["101"]["open"], by_agency["101"]["overdue"]) == (2, 1)
    assert by_agency["102"]["due_within_1h"] == 1
    assert {g["code"]: g["open"] for g in db["by_province"]} == {"28": 2, "21": 1}
    assert db["outbox"]["status"] in ("ok", "n/a")

    text = as_text.stdout
    for expected in ("In the IVR: 2 call(s)", "office", "recording", "favad-operators",
                     "SLA board", codes[0], "OVERDUE", "Outbox"):
        assert expected in text
    assert "AMI: logged in" in as_json.stderr  # the logs were captured (DEBUG), and scanned:
    assert_anonymous(as_json.stdout, as_json.stderr, text, as_text.stderr)


def test_without_asterisk_the_database_half_is_still_shown(migrated):
    file_complaints(migrated)
    peer = AmiPeer()
    with PeerThread(peer) as port:
        pass  # stopped: nothing listens on that port any more
    result = CliRunner(mix_stderr=False).invoke(main, ["monitor", "--once", "--json"],
                                                env=env_for(migrated, FAVAD_AMI_PORT=str(port)))
    assert result.exit_code == 0, result.stderr
    snap = json.loads(result.stdout)
    assert snap["ami"]["status"] == "unavailable" and "cannot connect" in snap["ami"]["error"]
    assert snap["database"]["status"] == "ok" and snap["database"]["by_status"]["received"] == 3


def test_a_slow_asterisk_is_shown_as_unavailable_not_waited_for(migrated):
    peer = AmiPeer()
    populate(peer)
    peer.delays["coreshowchannels"] = 3
    with PeerThread(peer) as port:
        env = env_for(migrated, FAVAD_AMI_PORT=str(port), FAVAD_AMI_TIMEOUT="0.3")
        started = time.monotonic()
        result = CliRunner(mix_stderr=False).invoke(main, ["monitor", "--once", "--json"], env=env)
        assert time.monotonic() - started < 2.5
    snap = json.loads(result.stdout)
    assert snap["ami"]["status"] == "unavailable" and "CoreShowChannels" in snap["ami"]["error"]
    assert snap["database"]["status"] == "ok"


def test_a_slow_queue_list_costs_the_queue_section_only(migrated):
    peer = AmiPeer()
    populate(peer)
    peer.delays["queuestatus"] = 3
    with PeerThread(peer) as port:
        env = env_for(migrated, FAVAD_AMI_PORT=str(port), FAVAD_AMI_TIMEOUT="0.3")
        started = time.monotonic()
        as_json = CliRunner(mix_stderr=False).invoke(main, ["monitor", "--once", "--json"], env=env)
        as_text = CliRunner(mix_stderr=False).invoke(main, ["monitor", "--once"], env={**env, "COLUMNS": "160"})
        assert time.monotonic() - started < 5
    ami = json.loads(as_json.stdout)["ami"]
    assert ami["status"] == "ok" and ami["ivr"]["calls"] == 2
    assert ami["queues_status"] == "unavailable" and "QueueStatus" in ami["queues_error"]
    assert "In the IVR: 2 call(s)" in as_text.stdout and "Operator queue: unavailable" in as_text.stdout


@pytest.mark.parametrize("queue", ["", "favad-operators"])
def test_without_app_queue_the_calls_are_still_shown(migrated, queue):
    """Asterisk 22 without app_queue answers QueueStatus "Invalid/unknown command"."""
    from pbxsim.ami import STOCK_MODULES

    peer = AmiPeer(modules=STOCK_MODULES - {"app_queue"})
    populate(peer)
    peer.queues.clear()
    peer.channels = [ch for ch in peer.channels if ch.application != "Queue"]  # there is no Queue()
    with PeerThread(peer) as port:
        env = env_for(migrated, FAVAD_AMI_PORT=str(port), FAVAD_OPERATOR_QUEUE=queue)
        as_json = CliRunner(mix_stderr=False).invoke(main, ["monitor", "--once", "--json"], env=env)
        as_text = CliRunner(mix_stderr=False).invoke(main, ["monitor", "--once"], env={**env, "COLUMNS": "160"})
    assert as_json.exit_code == 0 and as_text.exit_code == 0, as_json.stderr + as_text.stderr
    ami = json.loads(as_json.stdout)["ami"]
    assert ami["status"] == "ok" and ami["queues_status"] == "no_module" and ami["queues"] == []
    assert ami["ivr"]["calls"] == 2 and ami["ivr"]["by_step"] == {"office": 1, "recording": 1}
    text = as_text.stdout
    assert "In the IVR: 2 call(s)" in text and "unavailable" not in text
    if queue:  # configured, but it cannot work: say so
        assert "no queue module" in text
    else:  # nothing configured: no queue section at all
        assert "Operator queue" not in text and "no queue module" not in text
    assert_anonymous(as_json.stdout, text)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # about AMI, not the database
def test_the_live_view_survives_losing_asterisk(migrated):
    from monitor.commands import _live

    peer = AmiPeer()
    populate(peer)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)

    async def scenario():
        port = await peer.start()
        settings = dataclasses.replace(migrated, ami_port=port, ami_secret=SECRET, ami_timeout=0.5,
                                       operator_queue="favad-operators")
        view = asyncio.create_task(_live(settings, 0.5, console))
        await until(lambda: "In the IVR: 2 call(s)" in out.getvalue())
        peer.drop()
        await until(lambda: "Asterisk (AMI): unavailable" in out.getvalue())
        lost = out.getvalue()
        await until(lambda: out.getvalue().rfind("In the IVR: 2 call(s)") > len(lost))
        view.cancel()
        await asyncio.gather(view, return_exceptions=True)
        await peer.stop()
        return lost

    lost = asyncio.run(scenario())
    text = out.getvalue()
    assert "office" in lost and "Asterisk (AMI): unavailable" in lost
    assert "the complaints below are current" in lost  # the database half stays
    assert text.rfind("In the IVR: 2 call(s)") > len(lost)  # back after reconnecting
    assert peer.logins == 2
    assert_anonymous(text)


async def until(predicate, seconds=5.0):
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


class _Event(dict):
    """A scrubbed AMI event as the monitor receives it (panoramisk Message-like)."""

    @property
    def event(self):
        return self["Event"]


def test_events_between_two_lists_move_calls_through_steps_and_the_queue():
    state = LiveState("favad-operators")
    state.load([], [], [_Event(Event="QueueSummary", Queue="favad-operators", LoggedIn="1",
                               Available="1", Callers="0", LongestHoldTime="0")], 1000.0)
    ch = {"Channel": "ch-1", "Context": "favad-inbound-qazvin"}
    state.apply(_Event(Event="Newchannel", **ch, ChanVariable=["FAVAD_STEP=", "FAVAD_PROVINCE="]), 1000.0)
    state.apply(_Event(Event="VarSet", **ch, Variable="FAVAD_PROVINCE", Value="28"), 1001.0)
    state.apply(_Event(Event="VarSet", **ch, Variable="FAVAD_STEP", Value="main"), 1002.0)
    snap = state.snapshot(1010.0)
    assert snap["ivr"]["list"] == [{"step": "main", "province": "28", "seconds": 10}]
    state.apply(_Event(Event="QueueCallerJoin", **ch, Queue="favad-operators"), 1011.0)
    snap = state.snapshot(1020.0)
    assert snap["ivr"]["calls"] == 0
    assert snap["queues"][0]["waiting"] == 1 and snap["queues"][0]["longest_wait_s"] == 9
    state.apply(_Event(Event="QueueCallerAbandon", **ch, Queue="favad-operators"), 1021.0)
    state.apply(_Event(Event="Hangup", **ch), 1021.0)
    snap = state.snapshot(1022.0)
    assert snap["queues"][0]["waiting"] == 0 and snap["queues"][0]["abandoned"] == 1
    assert snap["ivr"]["calls"] == 0
