"""Asterisk's own records: `favad dialplan check` and `deploy` ask Asterisk over AMI (ModuleCheck)
whether the modules the generated dialplan needs are loaded, since without func_cdr the dialplan
loads, CDR_PROP(disable) fails at call time and the CDR keeps the caller's number."""
from __future__ import annotations

import asyncio
import dataclasses

import pytest

from dialplan.modules import needed
from pbxsim.ami import BANNER, STOCK_MODULES, AmiPeer, PeerThread
from test_dialplan import cli, env_for, own_sounds, rendered

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # AMI's part, not the db's


def without(*names: str) -> frozenset[str]:
    return STOCK_MODULES - set(names)


@sqlite_only
def test_the_needed_modules_are_read_from_the_dialplan_and_the_queue_only_with_an_operator(migrated):
    with_queue = dataclasses.replace(migrated, operator_queue="favad-operators")
    needs = {n.name: n.why for n in needed(rendered(with_queue), ("wav", "alaw"))}
    assert set(needs) == {"pbx_config", "func_cdr", "func_callerid", "func_channel", "res_agi",
                          "app_playback", "app_queue", "format_wav or format_pcm"}
    assert "CDR records the caller's number" in needs["func_cdr"]
    assert "REDIRECTING()" in needs["func_callerid"] and "queue_log" in needs["func_callerid"]
    alone = dataclasses.replace(migrated, operator_queue="")
    assert "app_queue" not in {n.name for n in needed(rendered(alone), ("wav",))}


def test_the_peer_answers_module_check_byte_for_byte_as_asterisk_22():
    """main/manager.c manager_modulecheck: Response, ActionID, an empty Version; or
    astman_send_error's Response, ActionID, Message. Names match without case, `.so` or not."""
    async def scenario():
        peer = AmiPeer(modules=without("func_cdr"))
        port = await peer.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await reader.readuntil(b"\r\n") == BANNER
        writer.write(b"Action: Login\r\nUsername: favad\r\nSecret: favad-test-secret\r\nEvents: off\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        asked = [(b"m-1", b"res_agi"), (b"m-2", b"RES_AGI.so"), (b"m-3", b"func_cdr"), (b"m-4", b"")]
        for aid, module in asked:
            writer.write(b"Action: ModuleCheck\r\nActionID: " + aid + b"\r\nModule: " + module + b"\r\n\r\n")
        answers = [await reader.readuntil(b"\r\n\r\n") for _ in asked]
        assert answers[:2] == [b"Response: Success\r\nActionID: m-1\r\nVersion: \r\n\r\n",
                               b"Response: Success\r\nActionID: m-2\r\nVersion: \r\n\r\n"]
        assert answers[2:] == [b"Response: Error\r\nActionID: m-3\r\nMessage: Module not loaded\r\n\r\n",
                               b"Response: Error\r\nActionID: m-4\r\nMessage: Module not loaded\r\n\r\n"]
        writer.write(b"Action: ModuleCheck\r\nModule: app_queue\r\n\r\n")  # no ActionID, none echoed
        assert await reader.readuntil(b"\r\n\r\n") == b"Response: Success\r\nVersion: \r\n\r\n"
        writer.close()
        await peer.stop()
    asyncio.run(asyncio.wait_for(scenario(), 20))


@sqlite_only
def test_without_func_cdr_check_fails_and_deploy_refuses_touching_nothing(migrated, tmp_path):
    target = tmp_path / "asterisk" / "favad-128.conf"
    peer = AmiPeer(dialplan_files=(str(target),), modules=without("func_cdr"))
    with PeerThread(peer) as port:
        env = env_for(migrated, FAVAD_SOUNDS_DIR=own_sounds(migrated, tmp_path),
                      FAVAD_DIALPLAN_FILE=str(target), FAVAD_AMI_PORT=str(port))
        checked = cli(env, "dialplan", "check")
        assert checked.exit_code == 1
        assert "modules: module: func_cdr is not loaded" in checked.stdout
        assert "CDR records the caller's number" in checked.stdout
        assert "load => func_cdr.so" in checked.stdout and "nothing would be deployed" in checked.stderr

        deployed = cli(env, "dialplan", "deploy")
        assert deployed.exit_code == 1
        assert "func_cdr is not loaded" in deployed.stderr and "Nothing deployed" in deployed.stderr
        assert not target.exists() and not target.with_name(target.name + ".backups").exists()
        assert "Command" not in peer.actions  # no reload, no `dialplan show`

        peer.modules.add("func_cdr")  # `module load func_cdr.so`
        assert cli(env, "dialplan", "check").exit_code == 0
        assert cli(env, "dialplan", "deploy").exit_code == 0 and target.exists()


@sqlite_only
def test_app_queue_is_needed_only_with_an_operator_queue(migrated, tmp_path):
    target = tmp_path / "asterisk" / "favad-128.conf"
    peer = AmiPeer(dialplan_files=(str(target),), modules=without("app_queue"))
    with PeerThread(peer) as port:
        env = env_for(migrated, FAVAD_SOUNDS_DIR=own_sounds(migrated, tmp_path),
                      FAVAD_DIALPLAN_FILE=str(target), FAVAD_AMI_PORT=str(port))
        checked = cli(env, "dialplan", "check")
        assert checked.exit_code == 1 and "app_queue is not loaded: Queue()" in checked.stdout
        refused = cli(env, "dialplan", "deploy")
        assert refused.exit_code == 1 and "app_queue is not loaded" in refused.stderr
        assert not target.exists()

        no_operator = {**env, "FAVAD_OPERATOR_QUEUE": ""}
        checked = cli(no_operator, "dialplan", "check")
        assert checked.exit_code == 0, checked.stdout + checked.stderr
        assert "func_cdr" in checked.stdout and "app_queue" not in checked.stdout
        deployed = cli(no_operator, "dialplan", "deploy")
        assert deployed.exit_code == 0, deployed.stderr
        assert "Queue(" not in target.read_text(encoding="utf-8")


@sqlite_only
def test_check_without_asterisk_says_the_modules_were_not_checked(migrated, tmp_path):
    with PeerThread(AmiPeer()) as port:
        pass  # nothing listens there any more
    env = env_for(migrated, FAVAD_SOUNDS_DIR=own_sounds(migrated, tmp_path), FAVAD_AMI_PORT=str(port))
    unasked = cli(env, "dialplan", "check")
    assert unasked.exit_code == 3
    assert "modules NOT checked" in unasked.stdout
    assert "cannot connect" in unasked.stderr and "func_cdr" in unasked.stderr
    offline = cli(env, "dialplan", "check", "--offline")
    assert offline.exit_code == 0 and "modules NOT checked" in offline.stdout
    unconfigured = cli({**env, "FAVAD_AMI_SECRET": ""}, "dialplan", "check")
    assert unconfigured.exit_code == 3 and "ami_secret is empty" in unconfigured.stderr
