"""The generated dialplan: render, check, diff, deploy (a reload that succeeds, one that fails and
is rolled back) and rollback, against the test AMI peer whose pbx_config reads the deployed
file, on SQLite and PostgreSQL."""
from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from conftest import favad_env
from db.engine import make_engine, make_sessionmaker
from dialplan import syntax
from dialplan.check import check
from dialplan.render import DialplanError, render, trunks, version_of
from pbxsim.ami import AmiPeer, PeerThread
from prompts.build import build
from clock import today as today_in_tehran

SECRET = "favad-test-secret"


def env_for(s, **extra) -> dict:
    return favad_env(s, **{"FAVAD_AMI_SECRET": SECRET, "FAVAD_AMI_TIMEOUT": "2",
                            "FAVAD_OPERATOR_QUEUE": "favad-operators",
                            "FAVAD_FASTAGI_URL": "agi://10.0.0.1:4573/favad", **extra})


def own_sounds(settings, tmp_path) -> str:
    """A copy of the session's prompts plus the dialplan's own, for tests that may change it."""
    path = tmp_path / "sounds"
    shutil.copytree(settings.sounds_path, path)
    build({"service-unavailable": "سامانه در دسترس نیست"}, ["service-unavailable"], str(path), engine="tone")
    return str(path)


def rendered(settings) -> str:
    engine = make_engine(settings.db_url)
    with make_sessionmaker(engine)() as s:
        text = render(settings, trunks(s, today_in_tehran()))
    engine.dispose()
    return text


def cli(env, *args):
    return CliRunner(mix_stderr=False).invoke(main, list(args), env=env)


def test_render_gives_each_province_trunk_its_context_and_keeps_callers_out_of_records(migrated):
    settings = dataclasses.replace(migrated, fastagi_url="agi://10.0.0.1:4573/favad",
                                   fastagi_failover_url="agi://10.0.0.2:4573/favad",
                                   classic_agi="favad-agi", operator_queue="favad-operators")
    text = rendered(settings)
    assert text == rendered(settings)  # same input, same bytes
    plan = syntax.parse(text)
    assert not plan.errors
    inbound = {c: s for c, s in plan.contexts.items() if c.startswith("favad-inbound-")}
    assert len(inbound) == 31
    qazvin = inbound["favad-inbound-qazvin"]
    assert [(s.exten, s.app, s.args) for s in qazvin] == [
        ("128", "Set", "CDR_PROP(disable)=1"), ("128", "Set", "FAVAD_PROVINCE=28"),
        ("128", "Set", "CHANNEL(language)=fa"), ("128", "Goto", "favad-ivr,start,1")]
    # each province starts in its default language (Tabriz: Azerbaijani, Ahvaz: Arabic)
    assert ("Set", "CHANNEL(language)=az") in [(s.app, s.args) for s in inbound["favad-inbound-east-azerbaijan"]]
    assert ("Set", "CHANNEL(language)=ar") in [(s.app, s.args) for s in inbound["favad-inbound-khuzestan"]]
    assert not any("CHANNEL(language)" in s.args for s in plan.contexts["favad-ivr"])
    assert all(steps[0].args == "CDR_PROP(disable)=1" for steps in inbound.values())
    ivr = plan.contexts["favad-ivr"]
    agi = [s.args for s in ivr if s.app == "AGI"]
    assert agi == ["agi://10.0.0.1:4573/favad,${FAVAD_PROVINCE}", "agi://10.0.0.2:4573/favad,${FAVAD_PROVINCE}",
                   "favad-agi,${FAVAD_PROVINCE}"]
    operator = [(s.app, s.args) for s in ivr if s.exten == "operator"]
    queue_at = operator.index(("Queue", "favad-operators"))
    before = [a for _, a in operator[:queue_at]]
    assert "CALLERID(num)=128" in before and "CALLERID(ANI-num)=128" in before
    assert "CALLERID(pres)=prohib" in before and "REDIRECTING(from-num)=" in before
    assert version_of(text) and f"NoOp(favad dialplan {version_of(text)})" in text
    assert "Isfahan (اصفهان), area code 31: not live yet" in text


def test_check_reports_a_missing_prompt_until_it_is_built(migrated, tmp_path):
    sounds = tmp_path / "sounds"
    shutil.copytree(migrated.sounds_path, sounds)  # the IVR's prompts, not the dialplan's own
    env = env_for(migrated, FAVAD_SOUNDS_DIR=str(sounds))
    result = cli(env, "dialplan", "check", "--offline")  # the files' part: no Asterisk here
    assert result.exit_code == 1
    assert "favad/service-unavailable has no wav file" in result.stdout
    build({"service-unavailable": "سامانه در دسترس نیست"}, ["service-unavailable"], str(sounds), engine="tone")
    assert cli(env, "dialplan", "check", "--offline").exit_code == 0
    result = cli({**env, "FAVAD_PROMPT_FORMATS": "wav,alaw"}, "dialplan", "check", "--offline")
    assert result.exit_code == 1
    assert "favad/service-unavailable has no alaw file" in result.stdout
    assert "IVR prompt favad/welcome has no alaw file" in result.stdout


def test_check_finds_syntax_errors_and_jumps_to_nowhere(tmp_path):
    text = "\n".join([
        "[favad-ivr]",
        "exten => start,1,Answer()",
        " same => n,GotoIf($[\"${FAVAD_NEXT}\" = \"operator\"]?operator,1)",
        " same => n,Goto(favad-elsewhere,s,1)",
        " same => n,Playback(favad/welcome",
        " same => 2,NoOp(again)",
        "exten => unavailable,1,Playback(favad/no-such-prompt&favad/welcome)",
        "[broken",
        "this is not a dialplan line",
    ])
    (tmp_path / "fa" / "favad").mkdir(parents=True)
    build({"welcome": "خوش آمدید"}, ["welcome"], str(tmp_path), engine="tone")
    problems = check(text, str(tmp_path), ("wav",))
    found = {(p.kind, p.line) for p in problems}
    assert ("context", 3) in found  # operator,1 is not defined
    assert ("context", 4) in found  # favad-elsewhere is not in the file
    assert ("syntax", 5) in found and ("syntax", 6) in found
    assert ("prompt", 7) in found and ("syntax", 8) in found and ("syntax", 9) in found
    assert not any("favad/welcome" in p.message for p in problems)


def test_deploy_reloads_and_confirms_then_a_failed_reload_is_rolled_back(migrated, tmp_path):
    target = tmp_path / "asterisk" / "favad-128.conf"
    peer = AmiPeer(dialplan_files=(str(target),))
    with PeerThread(peer) as port:
        env = env_for(migrated, FAVAD_SOUNDS_DIR=own_sounds(migrated, tmp_path),
                      FAVAD_DIALPLAN_FILE=str(target), FAVAD_AMI_PORT=str(port))

        first = cli(env, "dialplan", "diff")
        assert first.exit_code == 1 and "+[favad-inbound-qazvin]" in first.stdout
        deployed = cli(env, "dialplan", "deploy")
        assert deployed.exit_code == 0, deployed.stdout + deployed.stderr
        v1 = target.read_text(encoding="utf-8")
        assert "Asterisk reloaded and runs it" in deployed.stdout and version_of(v1) in deployed.stdout
        assert len(peer.contexts) == 32
        assert peer.cli("dialplan show version@favad-ivr")[0]
        assert cli(env, "dialplan", "diff").exit_code == 0

        assert cli(env, "provinces", "activate", "31", "--on", "1404-07-01").exit_code == 0
        change = cli(env, "dialplan", "diff")
        assert change.exit_code == 1
        assert "+; Isfahan (اصفهان), area code 31: live since 2025-09-23 (1404/07/01)" in change.stdout

        peer.reject_reloads = 1  # Asterisk will not take the new file
        failed = cli(env, "dialplan", "deploy")
        assert failed.exit_code == 1
        assert "rolled back" in failed.stderr.lower() and "live again" in failed.stderr
        assert target.read_text(encoding="utf-8") == v1  # byte for byte
        ok, lines = peer.cli("dialplan show version@favad-ivr")
        assert ok and version_of(v1) in " ".join(lines)  # and Asterisk runs it again
        assert not list(target.parent.glob("favad-128.conf.backups/*.conf"))

        redeployed = cli(env, "dialplan", "deploy")
        assert redeployed.exit_code == 0, redeployed.stderr
        v2 = target.read_text(encoding="utf-8")
        assert v2 != v1 and version_of(v2) in " ".join(peer.cli("dialplan show version@favad-ivr")[1])
        assert len(list(target.parent.glob("favad-128.conf.backups/*.conf"))) == 1

        back = cli(env, "dialplan", "rollback")
        assert back.exit_code == 0, back.stderr
        assert target.read_text(encoding="utf-8") == v1
        assert version_of(v1) in " ".join(peer.cli("dialplan show version@favad-ivr")[1])
        again = cli(env, "dialplan", "rollback")
        assert again.exit_code == 1 and "no backup" in again.stderr


def test_deploy_without_asterisk_changes_nothing(migrated, tmp_path):
    target = tmp_path / "asterisk" / "favad-128.conf"
    with PeerThread(AmiPeer()) as port:
        pass  # nothing listens there any more
    env = env_for(migrated, FAVAD_SOUNDS_DIR=own_sounds(migrated, tmp_path),
                  FAVAD_DIALPLAN_FILE=str(target), FAVAD_AMI_PORT=str(port))
    result = cli(env, "dialplan", "deploy")
    assert result.exit_code == 1 and "cannot connect" in result.stderr
    assert not Path(target).exists()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the rendering does not depend on it
def test_render_tries_each_fastagi_server_in_turn_while_none_took_the_call(migrated):
    settings = dataclasses.replace(migrated, fastagi_url="hagi://fastagi.128.example.ir/favad",
                                   fastagi_failover_url="agi://10.0.0.1:4573/favad, agi://10.0.0.2/favad",
                                   classic_agi="favad-agi")
    ivr = syntax.parse(rendered(settings)).contexts["favad-ivr"]
    start = [(s.app, s.args) for s in ivr if s.exten == "start"]
    agi_at = [i for i, (app, _) in enumerate(start) if app == "AGI"]
    assert [start[i][1] for i in agi_at] == [
        "hagi://fastagi.128.example.ir/favad,${FAVAD_PROVINCE}", "agi://10.0.0.1:4573/favad,${FAVAD_PROVINCE}",
        "agi://10.0.0.2/favad,${FAVAD_PROVINCE}", "favad-agi,${FAVAD_PROVINCE}"]
    # after each FastAGI server: a caller it already took (FAVAD_STEP set) is not started over
    for i in agi_at[:-1]:
        assert start[i + 1] == ("GotoIf", '$["${FAVAD_STEP}" != ""]?unavailable,1')
    for url, wrong in [("hagi://fastagi.128.example.ir:4573/favad", "turns Asterisk's SRV lookup off"),
                       ("http://10.0.0.1/favad", "not a FastAGI URL")]:
        with pytest.raises(DialplanError, match=wrong):
            rendered(dataclasses.replace(settings, fastagi_failover_url=url))


def walk(plan, agi_sets: list[dict]) -> list[str]:
    """Follow [favad-ivr] from `start` as Asterisk would, each AGI() setting the variables of the
    next entry of ``agi_sets`` (what that server told the channel); the apps run, in order."""
    steps = {(s.exten, s.priority): s for s in plan.contexts["favad-ivr"]}
    labels = {(s.exten, s.label): s.priority for s in plan.contexts["favad-ivr"] if s.label}
    chan, ran, at, answers = {}, [], ("start", 1), iter(agi_sets)
    while at in steps and len(ran) < 50:
        step = steps[at]
        ran.append(f"{step.app}({step.args})")
        nxt = (at[0], at[1] + 1)
        if step.app == "Set":
            name, _, value = step.args.partition("=")
            chan[name] = value
        elif step.app == "AGI":
            chan.update(next(answers, {}))
        elif step.app in ("GotoIf", "Goto"):
            cond, _, target = step.args.rpartition("?") if step.app == "GotoIf" else ("", "", step.args)
            if cond:
                left, op, right = re.fullmatch(r'\$\["\$\{(\w+)\}" (=|!=) "(.*)"\]', cond).groups()
                taken = (chan.get(left, "") == right) == (op == "=")
            if not cond or taken:
                exten, _, prio = target.partition(",")
                nxt = (exten, int(prio) if prio.isdigit() else labels.get((exten, prio), 1))
        elif step.app == "Hangup":
            break
        at = nxt
    return ran


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_call_no_server_takes_hears_the_apology_and_one_taken_then_lost_is_not_started_over(migrated):
    settings = dataclasses.replace(migrated, fastagi_url="agi://10.0.0.1:4573/favad",
                                   fastagi_failover_url="agi://10.0.0.2:4573/favad")
    plan = syntax.parse(rendered(settings))
    turned_away = {"FAVAD_NEXT": "unavailable"}  # what a full server, or a wrong script, says
    ran = walk(plan, [turned_away, turned_away])
    assert [r for r in ran if r.startswith("AGI")] == [  # the next server is tried, then the apology
        "AGI(agi://10.0.0.1:4573/favad,${FAVAD_PROVINCE})", "AGI(agi://10.0.0.2:4573/favad,${FAVAD_PROVINCE})"]
    assert ran[-2:] == ["Playback(favad/service-unavailable)", "Hangup()"]
    ran = walk(plan, [turned_away, {"FAVAD_STEP": "summary"}])  # taken by the second, then lost
    assert ran[-2:] == ["Playback(favad/service-unavailable)", "Hangup()"]
    ran = walk(plan, [{"FAVAD_STEP": "main"}])  # taken by the first and lost: not started over
    assert [r for r in ran if r.startswith("AGI")] == ["AGI(agi://10.0.0.1:4573/favad,${FAVAD_PROVINCE})"]
    assert ran[-2:] == ["Playback(favad/service-unavailable)", "Hangup()"]
