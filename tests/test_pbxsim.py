"""The Asterisk 22 peer itself: replayed against the captures of TRANSCRIPTS.md, byte for byte.

Each scenario below is pasted from /work/shared/asterisk/TRANSCRIPTS.md.  A throwaway FastAGI
server sends the `>>>` commands as the probe did and reads replies as a script does (an
unsolicited HANGUP before a reply, a 520 block to its end); everything it receives must equal
the `<<<` bytes of the capture.
"""
from __future__ import annotations

import ast
import asyncio
import os
import re
import sys
import textwrap
import wave

import pytest

from pbxsim import Caller, CallTimeout, Channel, Unsupported, run_agi, run_call
from pbxsim.agiparse import parse_args

ITEM = re.compile(r"#1 (<<<|>>>) (b'.*')$")
DEAD = b"511 Command Not Permitted on a dead channel or intercept routine\n"


def wav(path, samples, rate=8000):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * samples)


@pytest.fixture
def sounds(tmp_path):
    d = tmp_path / "sounds"
    for name, n in {"silence/1": 8000, "silence/10": 80000, "beep": 3404,
                    "demo-congrats": 24000, "vm-intro": 44000}.items():
        wav(d / f"{name}.wav", n)
    return str(d)


def parse(transcript: str) -> list[tuple[str, bytes]]:
    return [(m.group(1), ast.literal_eval(m.group(2)))
            for m in map(ITEM.search, transcript.strip().splitlines()) if m]


async def script_server(commands, finish="close", trailing=0.3):
    """A FastAGI server that plays `commands`, then reads what follows for `trailing` s and
    closes ('close'), half-closes and reads to EOF ('half'), or never closes ('never')."""
    received = bytearray()
    done = asyncio.get_running_loop().create_future()

    async def readline(reader):
        line = await reader.readline()
        received.extend(line)
        return line

    async def handle(reader, writer):
        try:
            while await readline(reader) not in (b"\n", b""):
                pass
            for cmd in commands:
                writer.write(cmd)
                await writer.drain()
                line = await readline(reader)
                while line == b"HANGUP\n":
                    line = await readline(reader)
                while line.startswith(b"520-") or (line and not line[:3].isdigit()):
                    line = await readline(reader)
            try:
                while await asyncio.wait_for(readline(reader), trailing):
                    pass
            except asyncio.TimeoutError:
                pass
            if finish == "half":
                writer.write_eof()
                while await readline(reader):
                    pass
            elif finish == "never":
                while await readline(reader):
                    pass
            writer.close()
        finally:
            done.set_result(bytes(received))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], done


def replay(transcript, caller, sounds, finish="close", trailing=0.3, headers=False, **kw):
    """Run one capture against the peer; returns (CallResult, bytes the server received)."""
    items = parse(transcript)
    commands = [data for way, data in items if way == ">>>"]

    async def main():
        server, port, done = await script_server(commands, finish, trailing)
        async with server:
            result = await run_call("127.0.0.1", port, caller=caller, sounds_dir=sounds, **kw)
            return result, await asyncio.wait_for(done, 10)

    result, got = asyncio.run(main())
    expected = b"".join(data for way, data in items if way == "<<<")
    body = got if headers else got[got.index(b"\n\n") + 1:]
    assert body == expected
    return result, got


# --------------------------------------------------------------------- the captures (§1-§9b)
S1 = r"""
[   2.468] #1 <<< b'agi_network: yes\n'
[   2.468] #1 <<< b'agi_network_script: ivr\n'
[   2.468] #1 <<< b'agi_request: agi://127.0.0.1:4573/ivr\n'
[   2.469] #1 <<< b'agi_channel: Local/128@favad-inbound-00000000;2\n'
[   2.469] #1 <<< b'agi_language: en\n'
[   2.469] #1 <<< b'agi_type: Local\n'
[   2.469] #1 <<< b'agi_uniqueid: 1795816935.1\n'
[   2.469] #1 <<< b'agi_version: 22.10.1\n'
[   2.469] #1 <<< b'agi_callerid: 09121234567\n'
[   2.469] #1 <<< b'agi_calleridname: Test\n'
[   2.469] #1 <<< b'agi_callingpres: 0\n'
[   2.469] #1 <<< b'agi_callingani2: 0\n'
[   2.470] #1 <<< b'agi_callington: 0\n'
[   2.470] #1 <<< b'agi_callingtns: 0\n'
[   2.470] #1 <<< b'agi_dnid: unknown\n'
[   2.470] #1 <<< b'agi_rdnis: unknown\n'
[   2.470] #1 <<< b'agi_context: favad-inbound\n'
[   2.470] #1 <<< b'agi_extension: 128\n'
[   2.470] #1 <<< b'agi_priority: 3\n'
[   2.470] #1 <<< b'agi_enhanced: 0.0\n'
[   2.470] #1 <<< b'agi_accountcode: \n'
[   2.470] #1 <<< b'agi_threadid: 139690603693760\n'
[   2.470] #1 <<< b'\n'
[   2.470] #1 >>> b'ANSWER\n'
[   2.471] #1 <<< b'200 result=0\n'
[   2.471] #1 >>> b'STREAM FILE silence/1 ""\n'
[   3.473] #1 <<< b'200 result=0 endpos=8000\n'
[   3.474] #1 >>> b'WAIT FOR DIGIT 5000\n'
[   4.169] #1 <<< b'200 result=49\n'
[   4.169] #1 >>> b'GET DATA beep 5000 3\n'
[   7.327] #1 <<< b'200 result=23\n'
[   7.327] #1 >>> b'SET VARIABLE FAVAD_RESULT "ok 23"\n'
[   7.328] #1 <<< b'200 result=1\n'
[   7.328] #1 >>> b'GET VARIABLE FAVAD_RESULT\n'
[   7.328] #1 <<< b'200 result=1 (ok 23)\n'
[   7.328] #1 >>> b'GET VARIABLE NO_SUCH_VAR\n'
[   7.329] #1 <<< b'200 result=0\n'
[   7.329] #1 >>> b'GET FULL VARIABLE "${CALLERID(all)}|${CHANNEL}"\n'
[   7.329] #1 <<< b'200 result=1 ("Test" <09121234567>|Local/128@favad-inbound-00000000;2)\n'
[   7.329] #1 >>> b'VERBOSE "hello from fastagi probe" 1\n'
[   7.329] #1 <<< b'200 result=1\n'
[   7.329] #1 >>> b'CHANNEL STATUS\n'
[   7.331] #1 <<< b'200 result=6\n'
[   7.331] #1 >>> b'STREAM FILE no-such-sound-file ""\n'
[   7.334] #1 <<< b'200 result=-1 endpos=0\n'
[   7.334] #1 >>> b'STREAM FILE beep "0123456789*#"\n'
[   7.759] #1 <<< b'200 result=0 endpos=3404\n'
[   7.759] #1 >>> b'SAY DIGITS 42 "#"\n'
[   9.307] #1 <<< b'200 result=0\n'
[   9.307] #1 >>> b'FOO BAR\n'
[   9.307] #1 <<< b'510 Invalid or unknown command\n'
[   9.308] #1 >>> b'STREAM FILE\n'
[   9.308] #1 <<< b'520-Invalid command syntax.  Proper usage follows:\n'
[   9.349] #1 <<< b'Send the given file, allowing playback to be interrupted by the given digits, if any. Returns <literal>0</literal> if playback completes without a digit being pressed, or the ASCII numerical value of the digit if one was pressed, or <literal>-1</literal> on error or if the channel was disconnected. If musiconhold is playing before calling stream file it will be automatically stopped and will not be restarted after completion.\n'
[   9.349] #1 <<< b'It sets the following channel variables upon completion:\n'
[   9.349] #1 <<< b'<variable>PLAYBACKSTATUS</variable>: The status of the playback attempt as a text string.\n'
[   9.349] #1 <<< b'    <value>SUCCESS</value>\n'
[   9.350] #1 <<< b'    <value>FAILED</value>\n'
[   9.350] #1 <<< b'520 End of proper usage.\n'
[   9.350] #1 >>> b'WAIT FOR DIGIT 20000\n'
[  17.589] #1 <<< b'200 result=-1\n'
[  17.589] #1 >>> b'STREAM FILE beep ""\n'
[  17.590] #1 <<< b'HANGUP\n'
[  17.633] #1 <<< b'511 Command Not Permitted on a dead channel or intercept routine\n'
[  17.633] #1 >>> b'CHANNEL STATUS\n'
[  17.634] #1 <<< b'511 Command Not Permitted on a dead channel or intercept routine\n'
[  17.634] #1 >>> b'GET VARIABLE FAVAD_RESULT\n'
[  17.634] #1 <<< b'200 result=1 (ok 23)\n'
[  17.634] #1 >>> b'VERBOSE "after hangup" 1\n'
[  17.635] #1 <<< b'200 result=1\n'
"""

S2 = r"""
[   2.199] #1 <<< b'\n'
[   2.199] #1 >>> b'ANSWER\n'
[   2.200] #1 <<< b'200 result=0\n'
[   2.200] #1 >>> b'WAIT FOR DIGIT 10000\n'
[   4.699] #1 <<< b'200 result=-1\n'
[   4.699] #1 >>> b'WAIT FOR DIGIT 1000\n'
[   4.700] #1 <<< b'HANGUP\n'
[   4.741] #1 <<< b'511 Command Not Permitted on a dead channel or intercept routine\n'
[   4.741] #1 >>> b'STREAM FILE beep ""\n'
[   4.742] #1 <<< b'511 Command Not Permitted on a dead channel or intercept routine\n'
[   4.742] #1 >>> b'GET VARIABLE CHANNEL\n'
[   4.742] #1 <<< b'200 result=1 (Local/agi@favad-test-00000001;2)\n'
[   4.742] #1 >>> b'NOOP\n'
[   4.742] #1 <<< b'200 result=0\n'
"""

S3_STREAM = r"""
[   2.185] #1 <<< b'\n'
[   2.185] #1 >>> b'ANSWER\n'
[   2.187] #1 <<< b'200 result=0\n'
[   2.187] #1 >>> b'STREAM FILE silence/10 ""\n'
[   4.680] #1 <<< b'200 result=-1 endpos=20000\n'
[   4.680] #1 >>> b'STREAM FILE beep ""\n'
[   4.680] #1 <<< b'HANGUP\n'
[   4.724] #1 <<< b'511 Command Not Permitted on a dead channel or intercept routine\n'
"""

S3_GETDATA = r"""
[   2.211] #1 <<< b'\n'
[   2.211] #1 >>> b'ANSWER\n'
[   2.212] #1 <<< b'200 result=0\n'
[   2.212] #1 >>> b'GET DATA silence/10 10000 4\n'
[   4.709] #1 <<< b'200 result=-1\n'
[   4.709] #1 >>> b'GET DATA beep 1000 4\n'
[   4.710] #1 <<< b'HANGUP\n'
[   4.752] #1 <<< b'511 Command Not Permitted on a dead channel or intercept routine\n'
"""

S4A = r"""
[   2.230] #1 <<< b'\n'
[   4.730] #1 <<< b'HANGUP\n'
"""

S4B = r"""
[   2.209] #1 <<< b'\n'
[   4.709] #1 <<< b'HANGUP\n'
[   4.709] #1 <<< b'HANGUP\n'
"""

S5 = r"""
[   2.136] #1 <<< b'\n'
[   2.136] #1 >>> b'ANSWER\n'
[   2.137] #1 <<< b'200 result=0\n'
[   2.137] #1 >>> b'SET VARIABLE FAVAD_DONE 1\n'
[   2.138] #1 <<< b'200 result=1\n'
[   2.138] #1 half-closing (write_eof)
[   2.138] #1 <<< b'HANGUP\n'
"""

S6 = r"""
[   2.226] #1 <<< b'\n'
[   2.226] #1 >>> b'ANSWER\n'
[   2.226] #1 <<< b'200 result=0\n'
[   2.226] #1 >>> b'STREAM FILE no-such-sound-file ""\n'
[   2.228] #1 <<< b'200 result=-1 endpos=0\n'
[   2.228] #1 >>> b'GET DATA no-such-sound-file 1000 2\n'
[   2.228] #1 <<< b'200 result=-1\n'
[   2.229] #1 >>> b'CONTROL STREAM FILE no-such-sound-file "#"\n'
[   2.229] #1 <<< b'200 result=-1 endpos=-1\n'
[   2.229] #1 >>> b'EXEC Playback no-such-sound-file\n'
[   2.230] #1 <<< b'200 result=0\n'
[   2.230] #1 >>> b'GET VARIABLE PLAYBACKSTATUS\n'
[   2.231] #1 <<< b'200 result=1 (FAILED)\n'
[   2.231] #1 >>> b'EXEC Playback beep\n'
[   2.655] #1 <<< b'200 result=0\n'
[   2.655] #1 >>> b'GET VARIABLE PLAYBACKSTATUS\n'
[   2.657] #1 <<< b'200 result=1 (SUCCESS)\n'
[   2.657] #1 >>> b'EXEC NoSuchApp foo\n'
[   2.658] #1 <<< b'200 result=-2\n'
[   2.658] #1 >>> b'SET MUSIC on default\n'
[   2.659] #1 <<< b'200 result=0\n'
[   2.659] #1 >>> b'SET MUSIC off\n'
[   2.660] #1 <<< b'200 result=0\n'
[   2.660] #1 >>> b'DATABASE PUT favad k1 v1\n'
[   2.662] #1 <<< b'200 result=1\n'
[   2.662] #1 >>> b'DATABASE GET favad k1\n'
[   2.666] #1 <<< b'200 result=1 (v1)\n'
[   2.666] #1 >>> b'DATABASE GET favad nokey\n'
[   2.667] #1 <<< b'200 result=0\n'
[   2.667] #1 >>> b'HANGUP\n'
[   2.668] #1 <<< b'200 result=1\n'
[   2.668] #1 >>> b'CHANNEL STATUS\n'
[   2.668] #1 <<< b'HANGUP\n'
[   2.710] #1 <<< b'511 Command Not Permitted on a dead channel or intercept routine\n'
"""

S7A = r"""
[   2.221] #1 <<< b'\n'
[   2.221] #1 >>> b'ANSWER\n'
[   2.224] #1 <<< b'200 result=0\n'
[   2.224] #1 >>> b'RECORD FILE /var/spool/asterisk/rec/agi-rec wav # 5000 0 BEEP s=2\n'
[   7.655] #1 <<< b'200 result=0 (timeout) endpos=0\n'
[   7.655] #1 >>> b'RECORD FILE /var/spool/asterisk/rec/agi-rec2 wav # 4000\n'
[  11.662] #1 <<< b'200 result=0 (timeout) endpos=0\n'
[  11.662] #1 >>> b'STREAM FILE /var/spool/asterisk/rec/agi-rec ""\n'
[  11.663] #1 <<< b'200 result=0 endpos=0\n'
[  11.663] #1 >>> b'HANGUP\n'
[  11.663] #1 <<< b'200 result=1\n'
[  11.705] #1 <<< b'HANGUP\n'
"""

S7B = r"""
[   2.195] #1 <<< b'\n'
[   2.195] #1 >>> b'ANSWER\n'
[   2.196] #1 <<< b'200 result=0\n'
[   2.196] #1 >>> b'RECORD FILE /var/spool/asterisk/rec/speech-hash wav # 15000 0 BEEP s=2\n'
[   4.297] #1 <<< b'200 result=35 (dtmf) endpos=9612\n'
[   4.297] #1 >>> b'RECORD FILE /var/spool/asterisk/rec/speech-sil wav # 15000 0 s=2\n'
[  10.555] #1 <<< b'200 result=-1 (hangup) endpos=0\n'
[  10.555] #1 >>> b'HANGUP\n'
[  10.556] #1 <<< b'HANGUP\n'
[  10.597] #1 <<< b'511 Command Not Permitted on a dead channel or intercept routine\n'
"""

S9 = r"""
[   2.238] #1 <<< b'agi_network: yes\n'
[   2.238] #1 <<< b'agi_network_script: ivr-fa?lang=fa&line=2\n'
[   2.238] #1 <<< b'agi_request: agi://127.0.0.1:4573/ivr-fa?lang=fa&line=2\n'
[   2.238] #1 <<< b'agi_channel: Local/agiargs@favad-test-0000000c;2\n'
[   2.238] #1 <<< b'agi_language: en\n'
[   2.238] #1 <<< b'agi_type: Local\n'
[   2.238] #1 <<< b'agi_uniqueid: 1795817207.25\n'
[   2.239] #1 <<< b'agi_version: 22.10.1\n'
[   2.239] #1 <<< b'agi_callerid: 09121234567\n'
[   2.239] #1 <<< b'agi_calleridname: Test\n'
[   2.239] #1 <<< b'agi_callingpres: 0\n'
[   2.239] #1 <<< b'agi_callingani2: 0\n'
[   2.239] #1 <<< b'agi_callington: 0\n'
[   2.239] #1 <<< b'agi_callingtns: 0\n'
[   2.239] #1 <<< b'agi_dnid: unknown\n'
[   2.239] #1 <<< b'agi_rdnis: unknown\n'
[   2.239] #1 <<< b'agi_context: favad-test\n'
[   2.239] #1 <<< b'agi_extension: agiargs\n'
[   2.239] #1 <<< b'agi_priority: 3\n'
[   2.239] #1 <<< b'agi_enhanced: 0.0\n'
[   2.240] #1 <<< b'agi_accountcode: \n'
[   2.240] #1 <<< b'agi_threadid: 139690604717760\n'
[   2.240] #1 <<< b'agi_arg_1: first arg\n'
[   2.240] #1 <<< b'agi_arg_2: second\n'
[   2.240] #1 <<< b'\n'
[   2.240] #1 >>> b'ANSWER\n'
[   2.240] #1 <<< b'200 result=0\n'
[   2.240] #1 >>> b'SET VARIABLE FAVAD_DONE 1\n'
[   2.241] #1 <<< b'200 result=1\n'
[   2.241] #1 half-closing (write_eof)
[   2.242] #1 <<< b'HANGUP\n'
"""

S9B = r"""
[   2.183] #1 <<< b'\n'
[   2.183] #1 >>> b'ANSWER\n'
[   2.185] #1 <<< b'200 result=0\n'
[   2.185] #1 >>> b'WAIT FOR DIGIT 1500\n'
[   3.687] #1 <<< b'200 result=0\n'
[   3.687] #1 >>> b'GET DATA beep 1500 3\n'
[   5.615] #1 <<< b'200 result= (timeout)\n'
[   5.616] #1 >>> b'STREAM FILE demo-congrats "0123456789*#"\n'
[   5.884] #1 <<< b'200 result=53 endpos=2240\n'
[   5.884] #1 >>> b'GET DATA vm-intro 3000 4\n'
[  13.691] #1 <<< b'200 result=78 (timeout)\n'
[  13.692] #1 >>> b'WAIT FOR DIGIT -1\n'
[  15.144] #1 <<< b'200 result=42\n'
[  15.144] #1 >>> b'GET OPTION beep "12" 1000\n'
[  16.570] #1 <<< b'200 result=0 endpos=3404\n'
[  16.570] #1 >>> b'SAY NUMBER 128 ""\n'
[  19.954] #1 <<< b'200 result=0\n'
[  19.954] #1 >>> b'WAIT FOR DIGIT 10000\n'
[  23.400] #1 <<< b'200 result=-1\n'
[  23.444] #1 <<< b'HANGUP\n'
"""


def test_s1_full_ivr_session_with_full_headers(sounds):
    result, _ = replay(S1, Caller("1 23#"), sounds, headers=True, script="ivr",
                       request="agi://127.0.0.1:4573/ivr")
    assert result.agistatus == "FAILURE"  # the missing file, although the caller hung up later
    assert result.hungup_by_caller and result.closed_after_hangup and not result.leaked
    assert result.variables["FAVAD_RESULT"] == "ok 23"
    assert result.played == ["silence/1", "beep", "beep"]


def test_s2_hangup_during_wait_for_digit(sounds):
    result, _ = replay(S2, Caller(), sounds, channel="Local/agi@favad-test-00000001;2")
    assert result.agistatus == "HANGUP" and result.closed_after_hangup


def test_s3_hangup_during_stream_file_and_get_data(sounds):
    result, _ = replay(S3_STREAM, Caller(hangup_at=1), sounds)
    assert result.agistatus == "HANGUP" and result.variables["PLAYBACKSTATUS"] == "FAILED"
    result, _ = replay(S3_GETDATA, Caller(hangup_at=1), sounds)
    assert result.agistatus == "HANGUP"


def test_s4a_idle_script_gets_hangup_alone_and_must_close_itself(sounds):
    result, _ = replay(S4A, Caller(idle_hangup=0.2), sounds, trailing=0.6)
    assert result.agistatus == "HANGUP" and result.closed_after_hangup and not result.leaked


def test_s4b_agiexitonhangup_sends_hangup_twice_and_closes(sounds):
    result, _ = replay(S4B, Caller(idle_hangup=0.2), sounds, trailing=0.6, agiexitonhangup=True)
    assert result.agistatus == "HANGUP" and result.closed_after_hangup is None
    assert result.variables["AGIEXITONHANGUP"] == "yes"


def test_s5_script_half_closes_while_the_call_is_up(sounds):
    result, _ = replay(S5, Caller(), sounds, finish="half")
    assert result.agistatus == "SUCCESS" and result.closed_after_hangup is None
    assert not result.hungup_by_caller and result.variables["FAVAD_DONE"] == "1"


def test_s6_missing_files_exec_moh_astdb_and_agi_hangup(sounds):
    result, _ = replay(S6, Caller(), sounds)
    assert result.agistatus == "FAILURE" and not result.hungup_by_caller
    assert result.variables["CPLAYBACKSTATUS"] == "ERROR" and result.played == ["beep"]


def test_s7a_record_from_a_silent_caller(sounds, tmp_path):
    rec = tmp_path / "rec"
    rec.mkdir()
    result, _ = replay(S7A.replace("/var/spool/asterisk/rec", str(rec)), Caller(), sounds)
    assert [os.path.getsize(p) for p in result.recordings] == [44, 44]
    assert result.recordings == [str(rec / "agi-rec.wav"), str(rec / "agi-rec2.wav")]
    assert result.agistatus == "HANGUP"  # the AGI HANGUP command, nothing failed before


def test_s7b_record_a_speaking_caller_then_hangup_while_recording(sounds, tmp_path):
    rec = tmp_path / "rec"
    rec.mkdir()
    result, _ = replay(S7B.replace("/var/spool/asterisk/rec", str(rec)),
                       Caller(speak=True, hangup_at=2), sounds)
    with wave.open(str(rec / "speech-hash.wav")) as w:
        assert (w.getnframes(), w.getframerate(), w.getnchannels()) == (9612, 8000, 1)
    assert os.path.getsize(rec / "speech-sil.wav") == 44


def test_s9_arguments_and_query_string_with_full_headers(sounds):
    result, _ = replay(S9, Caller(), sounds, finish="half", headers=True,
                       script="ivr-fa?lang=fa&line=2", args=("first arg", "second"),
                       request="agi://127.0.0.1:4573/ivr-fa?lang=fa&line=2",
                       channel="Local/agiargs@favad-test-0000000c;2", uniqueid="1795817207.25",
                       context="favad-test", extension="agiargs", threadid=139690604717760)
    assert result.agistatus == "SUCCESS"


def test_s9b_timeouts_barge_in_get_option_and_say_number(sounds):
    result, _ = replay(S9B, Caller("- -578-*"), sounds)
    assert result.agistatus == "HANGUP" and result.hungup_by_caller


# --------------------------------------------------------------------- beyond the captures
def test_a_server_that_never_closes_after_hangup_is_reported_as_a_leak(sounds):
    result, got = replay(S2.split("[   4.699] #1 >>> b'WAIT FOR DIGIT 1000")[0]
                         + "[   4.700] #1 <<< b'HANGUP\\n'\n", Caller(), sounds,
                         finish="never", close_timeout=0.3)
    assert result.leaked and result.closed_after_hangup is False
    assert got.endswith(b"200 result=-1\nHANGUP\n")


def test_a_server_that_never_answers_raises_a_clear_timeout(sounds):
    async def main():
        server, port, _ = await script_server([], finish="never", trailing=5)
        async with server:
            return await run_call("127.0.0.1", port, caller=Caller(), sounds_dir=sounds,
                                  timeout=0.5)
    with pytest.raises(CallTimeout) as err:
        asyncio.run(main())
    assert "did not end within 0.5 s" in str(err.value) and err.value.result.commands == []


def test_a_last_line_without_lf_is_still_run_and_failure_ends_the_agi(sounds):
    async def main(payload):
        got = asyncio.get_running_loop().create_future()

        async def handle(reader, writer):
            while await reader.readline() not in (b"\n", b""):
                pass
            writer.write(payload)
            writer.write_eof()
            got.set_result(await reader.read())
            writer.close()
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with server:
            result = await run_call("127.0.0.1", server.sockets[0].getsockname()[1],
                                    sounds_dir=sounds)
            return result, await asyncio.wait_for(got, 5)

    result, got = asyncio.run(main(b"NOOP"))  # fgets() hands over the partial line at EOF
    assert got == b"200 result=0\nHANGUP\n" and result.agistatus == "SUCCESS"
    result, got = asyncio.run(main(b"failure\nNOOP\n"))  # the "could not execute" marker
    assert got == b"HANGUP\n" and result.agistatus == "FAILURE" and result.commands == []


def run(chan: Channel, *lines: str) -> list[bytes]:
    """Feed commands to the sans-IO channel, delivering the hangup notice as a driver would."""
    out = []
    for line in lines:
        if chan.needhup:
            chan.enter_dead()
            out.append(b"HANGUP\n")
        out.append(chan.execute(line.encode() + b"\n"))
    return out


@pytest.mark.parametrize("line, usage", [
    ("WAIT FOR DIGIT", "Waits up to <replaceable>timeout</replaceable> milliseconds"),
    ("WAIT FOR DIGIT 100 200", "Waits up to"), ("GET DATA", "Stream the given"),
    ("SET VARIABLE ONLYNAME", "Sets a variable to the current channel."),
    ("RECORD FILE /tmp/x wav #", "Record to a file until"),
    ("DATABASE GET fam", "Retrieves an entry"), ("HANGUP a b", "Hangs up the specified"),
])
def test_known_commands_with_bad_arguments_get_the_multiline_520(sounds, line, usage):
    (reply,) = run(Channel(sounds_dir=sounds), line)
    lines = reply.decode().split("\n")
    assert lines[0] == "520-Invalid command syntax.  Proper usage follows:"
    assert lines[1].startswith(usage) and lines[-2:] == ["520 End of proper usage.", ""]
    assert not any(x.startswith("520") for x in lines[1:-2])


def test_dead_channel_allows_only_the_dead_safe_commands(sounds):
    chan = Channel(Caller(), sounds_dir=sounds)
    replies = run(chan, "WAIT FOR DIGIT 100", "ANSWER", "DATABASE PUT f k v", "DATABASE GET f k",
                  "EXEC NoOp x", 'SET VARIABLE A "b c"', "GET FULL VARIABLE ${A}", "GET DATA beep",
                  "SAY DIGITS 1 #", "HANGUP", "GET OPTION beep 1", "CONTROL STREAM FILE beep #",
                  "RECORD FILE /tmp/x wav # 100", "VERBOSE x 1", "NOOP")
    assert replies == [b"200 result=-1\n", b"HANGUP\n", DEAD, b"200 result=1\n",
                       b"200 result=1 (v)\n", b"200 result=0\n", b"200 result=1\n",
                       b"200 result=1 (b c)\n", DEAD, DEAD, DEAD, DEAD, DEAD, DEAD,
                       b"200 result=1\n", b"200 result=0\n"]


def test_parse_args_follows_res_agi():
    assert parse_args('STREAM FILE beep ""') == ["STREAM", "FILE", "beep", ""]
    assert parse_args(r'SET VARIABLE X "a \"b\" c"') == ["SET", "VARIABLE", "X", 'a "b" c']
    assert parse_args(r"A b\ c  d\\e") == ["A", "b c", "d\\e"]
    assert parse_args('X ab"c d"e') == ["X", "abc de"]
    assert parse_args("ANSWER\r") == ["ANSWER\r"]


def test_crlf_and_case(sounds):
    assert run(Channel(sounds_dir=sounds), "ANSWER\r", "answer", "Get Variable CHANNEL") == [
        b"510 Invalid or unknown command\n", b"200 result=0\n",
        b"200 result=1 (Local/128@favad-inbound-00000000;2)\n"]


def test_caller_groups_typed_ahead_barge_in_and_pauses(sounds):
    chan = Channel(Caller("12 3# # 45-6"), sounds_dir=sounds)
    esc = '"0123456789*#"'
    assert run(chan, f"STREAM FILE beep {esc}",   # listening: nothing typed before a question
               "GET DATA beep 3000 1", f"STREAM FILE beep {esc}", "WAIT FOR DIGIT 3000",
               "GET DATA beep 3000 5", "GET DATA beep 3000 5", "GET DATA beep 3000 5",
               "WAIT FOR DIGIT 3000", "GET DATA beep 3000 5") == [
        b"200 result=0 endpos=3404\n", b"200 result=1\n", b"200 result=50 endpos=2240\n",
        b"200 result=0\n", b"200 result=3\n", b"200 result=\n", b"200 result=45 (timeout)\n",
        b"200 result=54\n", b"200 result=-1\n"]
    assert chan.hungup_by_caller and chan.status == "HANGUP"


def test_wait_for_digit_without_timeout_types_on_and_interactive_groups(sounds):
    asked = []

    def person(prompt):
        asked.append(prompt)
        return "7" if len(asked) == 1 else None

    chan = Channel(Caller("- 9", interactive=person), sounds_dir=sounds)
    assert run(chan, "WAIT FOR DIGIT 100", "WAIT FOR DIGIT -1", "GET DATA beep 100 2",
               "GET DATA silence/1 100 2") == [
        b"200 result=0\n", b"200 result=57\n", b"200 result=7 (timeout)\n", b"200 result=-1\n"]
    assert asked == ["beep", "silence/1"]


def test_language_and_sound_lookup(sounds):
    wav(os.path.join(sounds, "fa/favad/welcome.wav"), 1000)
    wav(os.path.join(sounds, "favad/welcome.wav"), 2000)
    wav(os.path.join(sounds, "favad/wide.wav"), 2000, rate=16000)  # format_wav refuses it
    chan = Channel(sounds_dir=sounds, on_prompt=(heard := []).append)
    assert run(chan, 'STREAM FILE favad/welcome ""', 'SET VARIABLE CHANNEL(language) fa',
               'STREAM FILE favad/welcome ""', "GET VARIABLE CHANNEL(language)",
               'STREAM FILE favad/wide ""', 'STREAM FILE beep ""') == [
        b"200 result=0 endpos=2000\n", b"200 result=1\n", b"200 result=0 endpos=1000\n",
        b"200 result=1 (fa)\n", b"200 result=-1 endpos=0\n", b"200 result=0 endpos=3404\n"]
    assert heard == ["favad/welcome", "favad/welcome", "beep"] and chan.status == "FAILURE"


def test_record_file_outcomes(sounds, tmp_path):
    rec = str(tmp_path)
    chan = Channel(Caller("#", speak=True), sounds_dir=sounds)
    assert run(chan, f"RECORD FILE {rec}/a wav # 15000 0 BEEP s=2",
               f"RECORD FILE {rec}/b wav 1 15000 0 s=2", f"RECORD FILE {rec}/c wav 1 5000",
               f"RECORD FILE {rec}/nodir/d wav # 5000") == [
        b"200 result=35 (dtmf) endpos=9612\n", b"200 result=11779 (timeout) endpos=17768\n",
        b"200 result=0 (timeout) endpos=40000\n", b"200 result=-1 (writefile)\n"]
    with wave.open(f"{rec}/b.wav") as w:
        assert w.getnframes() == 17768
    assert chan.status == "FAILURE"  # the directory that does not exist
    with pytest.raises(Unsupported):
        run(Channel(sounds_dir=sounds), f"RECORD FILE {rec}/e gsm # 5000")


def test_hangup_at_every_media_step(sounds):
    script = ['STREAM FILE beep ""', "GET DATA beep 1000 2", "WAIT FOR DIGIT 1000",
              "RECORD FILE /tmp/pbxsim-x wav # 1000"]
    expected = [b"200 result=-1 endpos=3404\n", b"200 result=-1\n", b"200 result=-1\n",
                b"200 result=-1 (hangup) endpos=0\n"]
    for n in range(1, 5):
        chan = Channel(Caller("12 3", hangup_at=n), sounds_dir=sounds)
        replies = run(chan, *script, "GET VARIABLE UNIQUEID")
        assert replies[n - 1] == expected[n - 1]
        assert replies[n:] == [b"HANGUP\n", *[DEAD] * (4 - n), b"200 result=1 (1795816935.1)\n"]
        assert chan.status == "HANGUP" and chan.hungup_by_caller
    os.remove("/tmp/pbxsim-x.wav")


AGI_SCRIPT = r'''
import os, signal, sys, time
hups = []
signal.signal(signal.SIGHUP, lambda *a: hups.append(1))
env = b""
while not env.endswith(b"\n\n"):
    env += sys.stdin.buffer.readline()
open(os.environ["ENV_OUT"], "wb").write(env + repr(sys.argv[1:]).encode())
def cmd(c):
    sys.stdout.write(c + "\n"); sys.stdout.flush()
    return sys.stdin.readline()
assert cmd("ANSWER") == "200 result=0\n"
assert cmd("GET DATA beep 1000 2") == "200 result=12\n"
assert cmd("WAIT FOR DIGIT 1000") == "200 result=-1\n"
deadline = time.time() + 2
while not hups and time.time() < deadline:
    time.sleep(0.01)
assert cmd('STREAM FILE beep ""').startswith("511 ")
cmd("SET VARIABLE GOT_SIGHUP %d" % len(hups))
'''


def test_classic_agi_env_on_stdin_args_in_argv_and_sighup(sounds, tmp_path):
    script = tmp_path / "agi.py"
    script.write_text(AGI_SCRIPT)
    env = {**os.environ, "ENV_OUT": str(tmp_path / "env")}
    result = asyncio.run(run_agi([sys.executable, str(script)], args=("28",),
                                 caller=Caller("12"), sounds_dir=sounds, env=env,
                                 script="favad-agi"))
    env_lines = (tmp_path / "env").read_bytes()
    assert env_lines.startswith(b"agi_request: favad-agi\nagi_channel: Local/128@")
    assert b"agi_network" not in env_lines and env_lines.endswith(b"agi_arg_1: 28\n\n['28']")
    assert result.variables["GOT_SIGHUP"] == "1" and result.sighups == 1
    assert result.stderr == b"" and result.exit_status == 0
    assert result.agistatus == "HANGUP" and result.closed_after_hangup and not result.leaked
    assert b"HANGUP\n" not in result.received()


def test_classic_agi_stderr_exit_status_and_default_sighup(sounds, tmp_path):
    failing = tmp_path / "fail.py"
    failing.write_text("import sys\nsys.stdin.readline()\nsys.stderr.write('oops')\nsys.exit(3)\n")
    result = asyncio.run(run_agi([sys.executable, str(failing)], sounds_dir=sounds))
    assert (result.stderr, result.exit_status, result.agistatus) == (b"oops", 3, "FAILURE")
    # no handler: SIGHUP kills the script, which counts as having closed
    naive = tmp_path / "naive.py"
    naive.write_text(textwrap.dedent("""\
        import sys, time
        while sys.stdin.readline() != "\\n": pass
        print("WAIT FOR DIGIT 100", flush=True); sys.stdin.readline()
        time.sleep(5)
        """))
    result = asyncio.run(run_agi([sys.executable, str(naive)], sounds_dir=sounds))
    assert result.closed_after_hangup and not result.leaked and result.exit_status < 0
