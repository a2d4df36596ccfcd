"""AGI commands that play or record audio or wait for the caller, after res_agi.c's handlers.

Each handler returns (reply line without LF, ok) where ok=False is res_agi's RESULT_FAILURE
(which makes AGISTATUS=FAILURE when it happens on a live channel), or USAGE for a 520 reply.
Time is simulated: commands answer at once with the numbers the caller model implies.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from . import dialplan
from .agiparse import atoi, scan_int
from .sounds import RECORD_FORMATS, UNSIMULATED_FORMATS, find_sound, record_path, tone, write_audio

if TYPE_CHECKING:
    from .channel import Channel

USAGE = object()
SPEECH_SAMPLES = 9612   # 1.2 s of caller audio as a real Asterisk recorded it (TRANSCRIPTS §7b)
FRAME_MS = 20


class Unsupported(RuntimeError):
    """The script asked for something this peer cannot simulate faithfully."""


def _ms(ms: int, rate: int = 8000) -> int:
    return ms * rate // 1000


def _play(ch: Channel, name: str, escape: str, offset: int = 0):
    """Open and 'play' a prompt: (sound, endpos, key) or None when the file does not exist."""
    snd = find_sound(ch.sounds_dir, name, ch.language)
    if snd is None:
        return None
    ch.played_prompt(name)
    start = min(max(offset, 0), snd.samples)
    barge_at = start + _ms(ch.caller.barge_ms, snd.rate)
    if barge_at < snd.samples:  # a key typed ahead arrives while the prompt still plays
        key = ch.caller.barge(escape)
        if key:
            return snd, barge_at, key
    return snd, snd.samples, None


def stream_file(ch: Channel, argv: list[str]):
    if not 4 <= len(argv) <= 5:
        return USAGE
    offset = 0
    if len(argv) > 4:
        offset = scan_int(argv[4])
        if offset is None:
            return USAGE
    played = _play_counted(ch, argv[2], argv[3], offset)
    if played is None:
        return f"200 result=-1 endpos={offset}", False
    snd, endpos, key = played
    if key is None and not ch.up:  # the caller hung up while it played
        res = -1
    else:
        res = ord(key) if key else 0
    ch.vars["PLAYBACKSTATUS"] = "FAILED" if res else "SUCCESS"
    return f"200 result={res} endpos={endpos}", res >= 0


def _play_counted(ch: Channel, name: str, escape: str, offset: int):
    """STREAM FILE: a found file is a media command; hangup_at may end the call inside it."""
    snd = find_sound(ch.sounds_dir, name, ch.language)
    if snd is None:
        return None
    if ch.caller.media_starts():
        ch.played_prompt(name)
        start = min(max(offset, 0), snd.samples)
        ch.hang_up(by_caller=True)
        return snd, min(start + _ms(ch.caller.hangup_ms, snd.rate), snd.samples), None
    return _play(ch, name, escape, offset)


def get_option(ch: Channel, argv: list[str]):
    if not 4 <= len(argv) <= 5:
        return USAGE
    played = _play(ch, argv[2], argv[3])
    if played is None:
        return "200 result=-1 endpos=0", False
    _, endpos, key = played
    if key:
        return f"200 result={ord(key)} endpos={endpos}", True
    nxt = ch.caller.next_key()  # the digit wait after the prompt; a key not allowed reads as 0
    res = ord(nxt) if nxt and nxt in argv[3] else 0
    return f"200 result={res} endpos={endpos}", True


def control_stream_file(ch: Channel, argv: list[str]):
    if not 5 <= len(argv) <= 10:
        return USAGE
    if len(argv) > 5 and scan_int(argv[5]) is None:
        return USAGE
    offsetms = 0
    if len(argv) > 9:
        offsetms = scan_int(argv[9])
        if offsetms is None:
            return USAGE
    played = _play(ch, argv[3], argv[4], _ms(offsetms))
    if played is None:
        ch.vars.update(CPLAYBACKSTATUS="ERROR", CPLAYBACKOFFSET="-1")
        return "200 result=-1 endpos=-1", False
    _, endpos, key = played
    if key:
        ch.vars.update(CPLAYBACKSTATUS="USERSTOPPED", CPLAYBACKSTOPKEY=key)
        res, endms = ord(key), endpos // 8
    else:
        ch.vars["CPLAYBACKSTATUS"] = "SUCCESS"
        res, endms = 0, -1  # the stream ran out: offset -8 samples -> -1 ms ("end of file")
    ch.vars["CPLAYBACKOFFSET"] = str(endms)
    return f"200 result={res} endpos={endms}", True


def get_data(ch: Channel, argv: list[str]):
    if len(argv) < 3:
        return USAGE
    timeout = atoi(argv[3]) if len(argv) >= 4 else 0
    max_digits = atoi(argv[4]) if len(argv) >= 5 else 1024
    prompt = argv[2]
    if prompt:
        if find_sound(ch.sounds_dir, prompt, ch.language) is None:
            return "200 result=-1", True  # ast_streamfile() failed: no digit wait at all
        ch.played_prompt(prompt)
    if ch.caller.media_starts():
        ch.hang_up(by_caller=True)
        return "200 result=-1", True
    if max_digits == 0:
        return "200 result=-1", True  # ast_readstring_full() refuses a zero-length buffer
    got = ch.caller.read_digits(prompt, max_digits, infinite=timeout < 0)
    if got is None:
        ch.hang_up(by_caller=True)
        return "200 result=-1", True
    digits, outcome = got
    return (f"200 result={digits} (timeout)" if outcome == "timeout"
            else f"200 result={digits}"), True


def wait_for_digit(ch: Channel, argv: list[str]):
    if len(argv) != 4:
        return USAGE
    timeout = scan_int(argv[3])
    if timeout is None:
        return USAGE
    if timeout == 0:
        return "200 result=0", True  # ast_waitfordigit_full(0) returns without reading
    if ch.caller.media_starts():
        ch.hang_up(by_caller=True)
        return "200 result=-1", False
    key = ch.caller.wait_digit(ch.last_prompt, infinite=timeout < 0)
    if key is None:
        ch.hang_up(by_caller=True)
        return "200 result=-1", False
    return f"200 result={ord(key) if key else 0}", True


def say(check):
    """SAY *: argument checks differ; the caller's typed-ahead keys barge in like a prompt."""
    def handler(ch: Channel, argv: list[str]):
        if not check(argv):
            return USAGE
        key = ch.caller.barge(argv[3])
        return f"200 result={ord(key) if key else 0}", True
    return handler


def _silence_arg(argv: list[str]) -> int:
    """handle_recordfile(): the first of argv[6..8] holding an 's' that reads `s=N` (ms)."""
    found = next((a[a.index("s"):] for a in argv[6:9] if "s" in a), None)
    if found and len(found) > 2 and found.startswith("s="):
        seconds = atoi(found[2:])
        return seconds * 1000 if seconds > 0 else seconds
    return 0


def _wants_beep(argv: list[str]) -> bool:
    """Anything in the offset slot that is not a number, or in the next slot, asks for a beep."""
    return ((len(argv) > 6 and scan_int(argv[6]) is None and not argv[6].startswith("s="))
            or (len(argv) > 7 and not argv[7].startswith("s=")))


def record_file(ch: Channel, argv: list[str]):
    if len(argv) < 6:
        return USAGE
    ms = scan_int(argv[5])
    if ms is None:
        return USAGE
    silence = _silence_arg(argv)
    offset = scan_int(argv[6]) or 0 if len(argv) > 6 else 0
    escape = argv[4]
    if _wants_beep(argv):
        if find_sound(ch.sounds_dir, "beep", ch.language) is None:
            return f"200 result=-1 (randomerror) endpos={offset}", True
        key = None if ch.caller.speak else ch.caller.barge(escape)
        if key:  # a key typed ahead interrupts the beep: the recording never starts
            return f"200 result={ord(key)} (randomerror) endpos={offset}", True
    fmt = argv[3]
    if fmt not in RECORD_FORMATS:
        if fmt in UNSIMULATED_FORMATS:
            raise Unsupported(f"RECORD FILE in format {fmt!r} is not simulated (use wav or sln)")
        return "200 result=-1 (writefile)", False
    path = record_path(ch.sounds_dir, argv[2], fmt)
    if not os.path.isdir(os.path.dirname(path) or "."):
        return "200 result=-1 (writefile)", False
    frames, reply, ok = _recording(ch, ms, silence, escape, offset)
    write_audio(path, frames, fmt)
    ch.recordings.append(path)
    return reply, ok


def _recording(ch: Channel, ms: int, silence: int, escape: str, offset: int):
    """What the caller sends into the recording: (frames, reply, ok)."""
    caller = ch.caller
    if caller.media_starts():
        ch.hang_up(by_caller=True)
        return b"", f"200 result=-1 (hangup) endpos={offset}", False
    if not caller.speak:
        key = caller.barge(escape)
        if key:
            return b"", f"200 result={ord(key)} (dtmf) endpos=0", True
        if ms < 0:  # no frames and no time limit: only the caller's hangup ends it
            ch.hang_up(by_caller=True)
            return b"", f"200 result=-1 (hangup) endpos={offset}", False
        return b"", "200 result=0 (timeout) endpos=0", True  # no frames: silence never detected
    speech_ms = SPEECH_SAMPLES // 8
    if 0 <= ms <= speech_ms:
        return tone(_ms(ms)), f"200 result=0 (timeout) endpos={_ms(ms)}", True
    if "#" in escape:
        return tone(SPEECH_SAMPLES), f"200 result=35 (dtmf) endpos={SPEECH_SAMPLES}", True
    if silence > 0:
        # speech then silence frames; detection fires one frame after `silence` ms of them,
        # then Asterisk rewinds (silence - 1000) ms; result is the time left (ast_waitfor)
        end_ms = speech_ms + silence + FRAME_MS
        if ms < 0 or end_ms < ms:
            kept = _ms(end_ms - (silence - 1000))
            frames = tone(SPEECH_SAMPLES) + bytes(2 * max(kept - SPEECH_SAMPLES, 0))
            left = (ms if ms >= 0 else 100000) - (end_ms if ms >= 0 else FRAME_MS)
            return frames[:2 * kept], f"200 result={left} (timeout) endpos={kept}", True
    if ms < 0:
        ch.hang_up(by_caller=True)
        return tone(SPEECH_SAMPLES), f"200 result=-1 (hangup) endpos={SPEECH_SAMPLES}", False
    frames = tone(SPEECH_SAMPLES) + bytes(2 * (_ms(ms) - SPEECH_SAMPLES))
    return frames, f"200 result=0 (timeout) endpos={_ms(ms)}", True


def _playback(ch: Channel, data: str) -> int:
    """app_playback: each &-file; a missing one sets PLAYBACKSTATUS=FAILED but returns 0."""
    failed = not ch.up
    for name in data.split(",")[0].split("&"):
        if ch.up and find_sound(ch.sounds_dir, name, ch.language) is not None:
            ch.played_prompt(name)
        else:
            failed = True
    ch.vars["PLAYBACKSTATUS"] = "FAILED" if failed else "SUCCESS"
    return 0


def _set(ch: Channel, data: str) -> int:
    name, _, value = data.partition("=")
    dialplan.write_variable(ch, name.strip(), value)
    return 0


def _hangup(ch: Channel, data: str) -> int:
    if ch.up:
        ch.hang_up(by_caller=False)
    return -1


APPS = {
    "playback": _playback, "set": _set, "hangup": _hangup,
    "noop": lambda ch, data: 0, "verbose": lambda ch, data: 0, "log": lambda ch, data: 0,
    "answer": lambda ch, data: 0 if ch.up else -1, "wait": lambda ch, data: 0 if ch.up else -1,
}


def exec_app(ch: Channel, argv: list[str]):
    """EXEC app [options]: only the applications in APPS exist; others are 'not found' (-2)."""
    if len(argv) < 2:
        return USAGE
    app = APPS.get(argv[1].lower())
    if app is None:
        return "200 result=-2", True
    data = argv[2] if len(argv) >= 3 else ""
    if (ch.vars.get("AGIEXECFULL") or "").lower() in ("yes", "true", "y", "t", "1", "on"):
        data = dialplan.substitute(ch, data)
    return f"200 result={app(ch, data)}", True
