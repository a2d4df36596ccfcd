"""The AMI client against the test AMI peer on loopback (pbxsim/ami.py, which speaks the bytes of
shared/asterisk/TRANSCRIPTS.md §10-12), and the wire and scrubbing underneath it, sans I/O."""
from __future__ import annotations

import asyncio
import logging

import pytest
from panoramisk.ami_protocol import AMIProtocol

from ami import AmiClient, AmiTimeout, AmiUnavailable
from ami.protocol import SafeProtocol
from ami.scrub import scrub
from ami.wire import Banner, Reader
from pbxsim.ami import BANNER, AmiPeer, SimChannel, SimMember, SimQueue, message

NUMBER, NAME = "09121234567", "علی رضایی"
IDENTITY = (NUMBER, NAME, "9121234567", "PJSIP/09121234567")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


async def started(**kw) -> tuple[AmiPeer, int]:
    peer = AmiPeer(auth_fail_delay=0.05, **kw)
    return peer, await peer.start()


def client(port, secret="favad-test-secret", **kw) -> AmiClient:
    kw.setdefault("timeout", 1.0)
    kw.setdefault("min_backoff", 0.05)
    return AmiClient("127.0.0.1", port, "favad", secret, **kw)


def caller(**kw) -> SimChannel:
    return SimChannel("PJSIP/09121234567-0000002a", caller_num=NUMBER, caller_name=NAME, **kw)


async def until(predicate, seconds=5.0):
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


def assert_anonymous(items):
    blob = repr(items)
    for needle in IDENTITY:
        assert needle not in blob


# ---- the peer itself speaks the transcripts ------------------------------------------------
def test_the_peer_answers_byte_for_byte_as_recorded():
    """TRANSCRIPTS.md §11: action before login, unknown action, Command output, Logoff."""
    async def scenario():
        peer, port = await started()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await reader.readuntil(b"\r\n") == BANNER
        writer.write(b"Action: CoreStatus\r\nActionID: pre-1\r\n\r\n")
        assert await reader.readuntil(b"\r\n\r\n") == \
            b"Response: Error\r\nActionID: pre-1\r\nMessage: Permission denied\r\n\r\n"
        writer.write(b"Action: Login\r\nActionID: l-1\r\nUsername: favad\r\nSecret: favad-test-secret\r\n"
                     b"Events: off\r\n\r\n")
        assert await reader.readuntil(b"\r\n\r\n") == \
            b"Response: Success\r\nActionID: l-1\r\nMessage: Authentication accepted\r\n\r\n"
        writer.write(b"Action: NoSuchAction\r\nActionID: u-1\r\n\r\n")
        assert await reader.readuntil(b"\r\n\r\n") == (
            b"Response: Error\r\nActionID: u-1\r\nMessage: Invalid/unknown command: NoSuchAction. "
            b"Use Action: ListCommands to show available commands.\r\n\r\n")
        writer.write(b"Action: Command\r\nActionID: c-2\r\nCommand: dialplan reload\r\n\r\n")
        assert await reader.readuntil(b"\r\n\r\n") == (
            b"Response: Success\r\nActionID: c-2\r\nMessage: Command output follows\r\n"
            b"Output: Dialplan reloaded.\r\n\r\n")
        writer.write(b"Action: Command\r\nActionID: c-3\r\nCommand: core show channels\r\n\r\n")
        answer = await reader.readuntil(b"\r\n\r\n")
        assert answer.startswith(
            b"Response: Success\r\nActionID: c-3\r\nMessage: Command output follows\r\n"
            b"Output: Channel" + b" " * 58 + b"Location" + b" " * 25 + b"State   Application(Data)"
            + b" " * 13 + b"\r\nOutput: 0 active channels\r\nOutput: 0 active calls\r\nOutput: ")
        assert answer.endswith(b" calls processed\r\n\r\n")
        writer.write(b"Action: Logoff\r\nActionID: lo-1\r\n\r\n")
        assert await reader.readuntil(b"\r\n\r\n") == \
            b"Response: Goodbye\r\nActionID: lo-1\r\nMessage: Thanks for all the fish.\r\n\r\n"
        assert await reader.read() == b""  # Asterisk closes after Goodbye
        await peer.stop()
    run(scenario())


def test_a_wrong_password_gets_authentication_failed_then_the_connection_closes():
    async def scenario():
        peer, port = await started()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readuntil(b"\r\n")
        writer.write(b"Action: Login\r\nActionID: bad-1\r\nUsername: favad\r\nSecret: nope\r\n\r\n")
        assert await reader.read() == \
            b"Response: Error\r\nActionID: bad-1\r\nMessage: Authentication failed\r\n\r\n"
        await peer.stop()
    run(scenario())


# ---- the client ------------------------------------------------------------------------------
def test_login_then_core_show_channels_without_any_caller_identity():
    async def scenario():
        peer, port = await started()
        await peer.new_channel(caller(variables={"FAVAD_STEP": "office", "FAVAD_PROVINCE": "28"}))
        async with client(port) as ami:
            channels = await ami.list_action({"Action": "CoreShowChannels"})
            assert len(channels) == 1
            (ch,) = channels
            assert ch["Context"] == "favad-ivr" and ch["Application"] == "AGI"
            assert ch["ChanVariable"] == ["FAVAD_STEP=office", "FAVAD_PROVINCE=28"]
            assert ch["Channel"].startswith("ch-")
            for key in ("CallerIDNum", "CallerIDName", "ConnectedLineNum", "ConnectedLineName",
                        "Uniqueid", "Linkedid", "ApplicationData"):
                assert key not in ch
            assert_anonymous([dict(c.items()) for c in channels])
            assert ami.protocol.version == "11.0.0"
        await peer.stop()
        assert peer.actions == ["Login", "CoreShowChannels", "Logoff"]
    run(scenario())


def test_events_after_login_reach_handlers_scrubbed():
    async def scenario():
        peer, port = await started()
        seen = []
        async with client(port) as ami:
            ami.register_event("*", lambda _m, e: seen.append(dict(e.items())))
            await ami.ready()
            ch = caller()
            await peer.new_channel(ch)
            await peer.set_variable(ch, "FAVAD_STEP", "indicator")
            await peer.set_variable(ch, "SECRET_THING", NUMBER)
            await peer.hangup(ch)
            await until(lambda: any(e["Event"] == "Hangup" for e in seen))
        await peer.stop()
        names = [e["Event"] for e in seen]
        assert names[-4:] == ["Newchannel", "VarSet", "VarSet", "Hangup"]
        assert seen[-3]["Value"] == "indicator"
        assert "Value" not in seen[-2]  # not one of 128's variables: its value is not kept
        assert_anonymous(seen)
    run(scenario())


def test_queue_status_and_summary_lists_are_read_whole():
    async def scenario():
        peer, port = await started()
        q = SimQueue("favad-operators", members=[SimMember("op1", "PJSIP/op1"),
                                                 SimMember("op2", "PJSIP/op2", status=2),
                                                 SimMember("op3", "PJSIP/op3", status=5)])
        peer.queues.append(q)
        await peer.join_queue(q, caller(exten="operator", application="Queue"), waited=42)
        async with client(port) as ami:
            status = await ami.list_action({"Action": "QueueStatus"})
            summary = await ami.list_action({"Action": "QueueSummary", "Queue": "favad-operators"})
        await peer.stop()
        assert [e.event for e in status] == ["QueueParams", "QueueMember", "QueueMember", "QueueMember",
                                             "QueueEntry"]
        (s,) = summary
        assert (s["LoggedIn"], s["Available"], s["Callers"]) == ("2", "1", "1")
        assert int(s["LongestHoldTime"]) >= 42
        assert_anonymous([dict(e.items()) for e in status + summary])
    run(scenario())


def test_a_wrong_password_is_reported_as_a_refused_login():
    async def scenario():
        peer, port = await started()
        ami = client(port, secret="wrong")
        with pytest.raises(AmiUnavailable, match="refused the AMI login"):
            await ami.send({"Action": "Ping"})
        assert ami.state == "refused"
        ami.close()
        await peer.stop()
    run(scenario())


def test_an_unreachable_asterisk_fails_fast_with_the_reason():
    async def scenario():
        peer, port = await started()
        await peer.stop()
        ami = client(port)
        with pytest.raises(AmiUnavailable, match="cannot connect"):
            await ami.send({"Action": "Ping"})
        assert ami.retry_in is not None  # and it keeps trying, with backoff
        ami.close()
    run(scenario())


def test_a_slow_answer_times_out_and_its_late_tail_is_dropped():
    async def scenario():
        peer, port = await started()
        peer.queues.append(SimQueue("favad-operators", members=[SimMember("op1", "PJSIP/op1")]))
        peer.delays["queuestatus"] = 0.6
        seen = []
        async with client(port, timeout=0.2) as ami:
            ami.register_event("*", lambda _m, e: seen.append(e.event))
            with pytest.raises(AmiTimeout, match="QueueStatus"):
                await ami.send({"Action": "QueueStatus"})
            pong = await ami.send({"Action": "Ping"}, timeout=3)  # answered after the slow one
            assert pong["Ping"] == "Pong"
            assert ami.state == "connected" and ami.logins == 1
        await peer.stop()
        assert "QueueParams" not in seen and "QueueMember" not in seen
    run(scenario())


def test_connection_loss_is_followed_by_a_reconnect():
    async def scenario():
        peer, port = await started()
        async with client(port) as ami:
            await ami.ready()
            peer.drop()
            await until(lambda: ami.state != "connected")
            with pytest.raises(AmiUnavailable):
                await ami.send({"Action": "Ping"}, timeout=0.01)
            await until(lambda: ami.logins == 2)
            assert (await ami.send({"Action": "Ping"}))["Ping"] == "Pong"
        await peer.stop()
        assert peer.logins == 2
    run(scenario())


def test_a_handler_that_raises_costs_neither_the_connection_nor_the_next_event(caplog):
    async def scenario():
        peer, port = await started()
        got = []

        def broken(_m, _e):
            raise RuntimeError("a bug in a handler")

        async with client(port) as ami:
            ami.register_event("Newchannel", broken)
            ami.register_event("Hangup", lambda _m, e: got.append(e.event))
            await ami.ready()
            ch = caller()
            # both events in one TCP write: panoramisk would lose the second with the connection
            await peer.emit_raw(message(("Event", "Newchannel"), *peer.channel_state(ch))
                                + message(("Event", "Hangup"), *peer.channel_state(ch), ("Cause", 16)))
            await until(lambda: got == ["Hangup"])
            assert ami.state == "connected"
            assert (await ami.send({"Action": "Ping"}))["Ping"] == "Pong"
        await peer.stop()
        assert peer.logins == 1
    caplog.set_level(logging.ERROR, "ami")
    run(scenario())
    assert "a handler of Newchannel failed" in caplog.text
    assert NUMBER not in caplog.text and NAME not in caplog.text


def test_persian_text_cut_between_two_reads_arrives_whole():
    async def scenario():
        peer, port = await started(split_non_ascii=True)
        got = []
        async with client(port) as ami:
            ami.register_event("VarSet", lambda _m, e: got.append(e["Value"]))
            await ami.ready()
            await peer.emit(("Event", "VarSet"), ("Variable", "FAVAD_STEP"), ("Value", "شکایت ثبت شد"))
            await peer.new_channel(caller())  # a Persian CallerIDName cut the same way
            await peer.emit(("Event", "VarSet"), ("Variable", "FAVAD_STEP"), ("Value", "پایان"))
            await until(lambda: len(got) == 2)
        await peer.stop()
        assert got == ["شکایت ثبت شد", "پایان"]
    run(scenario())


# ---- sans I/O ------------------------------------------------------------------------------------
PERSIAN = message(("Event", "VarSet"), ("Variable", "FAVAD_STEP"), ("Value", "سلام"))


def test_the_reader_reassembles_bytes_before_decoding_whatever_the_cuts():
    data = BANNER + PERSIAN + PERSIAN
    for step in (1, 2, 3, 7, len(data)):
        reader = Reader()
        out = []
        for i in range(0, len(data), step):
            out += reader.feed(data[i:i + step])
        one = [("Event", "VarSet"), ("Variable", "FAVAD_STEP"), ("Value", "سلام")]
        assert out == [Banner("11.0.0"), one, one]


def _feed(protocol_class, chunks):
    got = []

    class Factory:
        forgetable_actions = ()
        awaiting_actions = []

        @staticmethod
        def dispatch(message):
            got.append(message)

    class Transport:
        def close(self):
            pass

    protocol = protocol_class()
    protocol.connection_made(Transport())
    protocol.factory = Factory
    protocol.encoding = "utf-8"
    for chunk in chunks:
        protocol.data_received(chunk)
    return got


def test_panoramisk_loses_a_character_cut_between_reads_and_ours_does_not():
    cut = PERSIAN.index("سلام".encode()) + 1  # inside the first letter
    chunks = [BANNER, PERSIAN[:cut], PERSIAN[cut:]]
    assert _feed(AMIProtocol, chunks)[0]["Value"] != "سلام"  # the defect being worked around
    assert _feed(SafeProtocol, chunks)[0]["Value"] == "سلام"


def test_scrub_drops_identity_and_keeps_only_128s_variables():
    headers = [("Event", "QueueCallerJoin"), ("Channel", "PJSIP/09121234567-00000001"),
               ("CallerIDNum", NUMBER), ("CallerIDName", NAME), ("ConnectedLineNum", NUMBER),
               ("ConnectedLineName", NAME), ("DestCallerIDNum", NUMBER), ("Uniqueid", "1795816935.1"),
               ("Linkedid", "1795816935.0"), ("AccountCode", ""), ("ChanVariable", "FAVAD_STEP=main"),
               ("ChanVariable", f"CALLERID_COPY={NUMBER}"), ("ChanVariable(FAVAD_PROVINCE)", "28"),
               ("AppData", f"Dial(PJSIP/{NUMBER})"), ("Digit", "5"), ("Queue", "favad-operators")]
    out = scrub(headers)
    assert out[0] == ("Event", "QueueCallerJoin")
    assert out[1][0] == "Channel" and out[1][1].startswith("ch-")
    assert ("ChanVariable", "FAVAD_STEP=main") in out and ("ChanVariable", "FAVAD_PROVINCE=28") in out
    assert ("Queue", "favad-operators") in out
    assert len(out) == 5
    assert_anonymous(out)


# fields that pass a denylist of "callerid|channel|uniqueid..." names, each as Asterisk 22 sends it
LEAKY = [("CallerID1", NUMBER), ("CallerID2", "0212223344"), ("Channel1", "PJSIP/09121234567-00000001"),
         ("Channel2", "PJSIP/trunk-tehran-00000002"), ("Destination", "PJSIP/09121234567-00000003"),
         ("DestChannel", "PJSIP/09121234567-00000003"), ("Exten", NUMBER), ("DestExten", NUMBER),
         ("Extension", NUMBER), ("Extra", '{"dialstatus":"ANSWER","number":"09121234567"}'),
         ("Env", "agi_callerid%3A%2009121234567%0Aagi_calleridname%3A%20Test"),
         ("Command", f"EXEC Dial PJSIP/{NUMBER}"), ("Result", f"200 result=0 ({NUMBER})"),
         ("ConnectedLineNum", NUMBER), ("DestConnectedLineName", NAME), ("CallerIDNum", NUMBER),
         ("CallerIDName", NAME), ("Uniqueid", "1795816935.1"), ("DestLinkedid", "1795816935.0"),
         ("AccountCode", NUMBER), ("Peer", f"PJSIP/{NUMBER}"), ("Address", "10.0.0.7:5060"),
         ("UserField", NUMBER), ("Data", NUMBER), ("DialString", NUMBER), ("Digit", "5"),
         ("Something2030", NUMBER)]


@pytest.mark.parametrize("event", ["Dial", "DialBegin", "Bridge", "Link", "CEL", "AsyncAGIStart",
                                   "AGIExecStart", "AGIExecEnd", "Newexten", "UserEvent"])
def test_scrub_keeps_only_what_128_reads_so_no_field_can_carry_the_caller(event):
    out = scrub([("Event", event), *LEAKY, ("Context", "favad-inbound-qazvin"),
                 ("Application", "AGI"), ("Variable", "FAVAD_STEP"), ("Value", "office")])
    assert out == [("Event", event), ("Context", "favad-inbound-qazvin"), ("Application", "AGI"),
                   ("Variable", "FAVAD_STEP"), ("Value", "office")]


def test_scrub_keeps_what_the_monitor_and_the_dialplan_tools_read():
    queue = [("Event", "QueueSummary"), ("Queue", "favad-operators"), ("LoggedIn", "2"),
             ("Available", "1"), ("Callers", "1"), ("HoldTime", "0"), ("TalkTime", "0"),
             ("LongestHoldTime", "42"), ("ActionID", "a-1")]
    assert scrub(queue) == [h for h in queue if h[0] not in ("HoldTime", "TalkTime")]
    entry = [("Event", "QueueEntry"), ("Queue", "q"), ("Position", "1"), ("Channel", "PJSIP/op"),
             ("Wait", "7"), ("Priority", "0")]
    assert [k for k, _ in scrub(entry)] == ["Event", "Queue", "Channel", "Wait"]
    command = [("Response", "Success"), ("Message", "Command output follows"),
               ("Output", "Dialplan reloaded."), ("", "old-style body line")]
    assert scrub(command) == command
