"""The AGI wire parser against every reply in the Asterisk 22 transcripts, plus fuzzing."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ivr import protocol as p

HEADERS = (
    b"agi_network: yes\nagi_network_script: ivr-fa?lang=fa&line=2\n"
    b"agi_request: agi://127.0.0.1:4573/ivr-fa?lang=fa&line=2\n"
    b"agi_channel: Local/agiargs@favad-test-0000000c;2\nagi_language: en\nagi_type: Local\n"
    b"agi_uniqueid: 1795817207.25\nagi_version: 22.10.1\nagi_callerid: 09121234567\n"
    b"agi_calleridname: Test\nagi_callingpres: 0\nagi_callingani2: 0\nagi_callington: 0\n"
    b"agi_callingtns: 0\nagi_dnid: unknown\nagi_rdnis: unknown\nagi_context: favad-test\n"
    b"agi_extension: agiargs\nagi_priority: 3\nagi_enhanced: 0.0\nagi_accountcode: \n"
    b"agi_threadid: 139690604717760\nagi_arg_1: first arg\nagi_arg_2: second"
)


def test_headers_of_transcript_9_with_arguments_and_query_string():
    h = p.parse_headers(HEADERS)
    assert len(h) == 24
    assert h["agi_network_script"] == "ivr-fa?lang=fa&line=2"
    assert h["agi_accountcode"] == ""
    assert h["agi_arg_1"] == "first arg"


@pytest.mark.parametrize("line,expected", [
    ("200 result=0", p.Reply(200, "0", None, None)),
    ("200 result=0 endpos=8000", p.Reply(200, "0", None, 8000)),
    ("200 result=53 endpos=2240", p.Reply(200, "53", None, 2240)),
    ("200 result=-1 endpos=0", p.Reply(200, "-1", None, 0)),
    ("200 result=-1 endpos=-1", p.Reply(200, "-1", None, -1)),
    ("200 result=49", p.Reply(200, "49")),
    ("200 result=23", p.Reply(200, "23")),
    ("200 result= (timeout)", p.Reply(200, "", "timeout")),
    ("200 result=78 (timeout)", p.Reply(200, "78", "timeout")),
    ("200 result=1 (ok 23)", p.Reply(200, "1", "ok 23")),
    ('200 result=1 ("Test" <09121234567>|Local/128@favad-inbound-00000000;2)',
     p.Reply(200, "1", '"Test" <09121234567>|Local/128@favad-inbound-00000000;2')),
    ("200 result=0 (timeout) endpos=0", p.Reply(200, "0", "timeout", 0)),
    ("200 result=35 (dtmf) endpos=9612", p.Reply(200, "35", "dtmf", 9612)),
    ("200 result=11181 (timeout) endpos=18732", p.Reply(200, "11181", "timeout", 18732)),
    ("200 result=-1 (hangup) endpos=0", p.Reply(200, "-1", "hangup", 0)),
    ("200 result=-2", p.Reply(200, "-2")),
])
def test_every_observed_200_reply(line, expected):
    got = p.parse_reply_line(line)
    assert (got.code, got.result, got.data, got.endpos) == \
        (expected.code, expected.result, expected.data, expected.endpos)


def test_hangup_line_before_the_511_reply_is_an_event_not_a_reply():
    r = p.ReplyReader()
    r.feed(b"200 result=-1\nHANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n")
    assert r.next_event().result == "-1"
    assert isinstance(r.next_event(), p.HangupNotice)
    dead = r.next_event()
    assert dead.code == 511 and dead.dead_channel
    assert r.next_event() is None


def test_520_usage_is_one_reply_however_many_lines():
    r = p.ReplyReader()
    r.feed(b"520-Invalid command syntax.  Proper usage follows:\nSend the given file...\n")
    assert r.next_event() is None
    r.feed(b"    <value>FAILED</value>\n520 End of proper usage.\n200 result=0\n")
    usage = r.next_event()
    assert usage.code == 520 and "FAILED" in usage.text
    assert r.next_event().result == "0"


def test_replies_split_across_reads_are_reassembled():
    r = p.ReplyReader()
    for byte in b"200 result=23\n":
        assert r.next_event() is None
        r.feed(bytes([byte]))
    assert r.next_event().result == "23"


def test_510_and_garbage():
    assert p.parse_reply_line("510 Invalid or unknown command").code == 510
    with pytest.raises(p.RemoteProtocolError):
        p.parse_reply_line("hello there")


def test_quoting_matches_asterisk_argument_parsing():
    assert p.set_variable("FAVAD_RESULT", "ok 23") == 'SET VARIABLE FAVAD_RESULT "ok 23"'
    assert p.stream_file("favad/welcome", "0123456789*#") == 'STREAM FILE favad/welcome "0123456789*#"'
    assert p.quote('a"b\\c') == '"a\\"b\\\\c"'
    assert p.record_file("/rec/x", "wav", "#", 60000, True, 3) == "RECORD FILE /rec/x wav # 60000 0 BEEP s=3"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_header_parser_never_fails_with_anything_but_a_protocol_error(data):
    try:
        p.parse_headers(data)
    except p.RemoteProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=120), max_size=8))
def test_reply_reader_never_fails_with_anything_but_a_protocol_error(chunks):
    r = p.ReplyReader()
    try:
        for chunk in chunks:
            r.feed(chunk)
            while r.next_event() is not None:
                pass
    except p.RemoteProtocolError:
        pass


def test_header_block_size_is_bounded():
    with pytest.raises(p.RemoteProtocolError):
        p.parse_headers(b"agi_request: x\n" + b"agi_x: " + b"y" * p.MAX_HEADER_BYTES)
