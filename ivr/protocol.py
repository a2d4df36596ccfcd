"""The AGI wire protocol, sans I/O: bytes in, parsed headers and replies out; commands as text.

Follows the replies a real Asterisk 22 sends (shared/asterisk/TRANSCRIPTS.md): LF-terminated
``agi_*`` headers ending in a blank line; one ``200 result=...`` line per command, except the
multi-line ``520-`` usage reply; an unsolicited ``HANGUP`` line when the caller hangs up.
panoramisk's ``parse_agi_result`` is not reused: it reads ``200 result= (timeout)`` as no result,
drops ``endpos`` on ``result=-1`` and cannot tell a missing sound file from a hangup.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MAX_HEADER_BYTES = 16 * 1024
MAX_HEADERS = 64
MAX_LINE_BYTES = 8 * 1024


class RemoteProtocolError(Exception):
    """The peer sent something that is not AGI; the connection should be closed."""


@dataclass(frozen=True)
class Reply:
    """One reply to one command."""

    code: int
    result: str = ""
    data: str | None = None
    endpos: int | None = None
    text: str = ""

    @property
    def dead_channel(self) -> bool:
        return self.code == 511

    def result_int(self) -> int | None:
        """``result`` as a number; None when it is none (``int()`` would also take "٥٣")."""
        return int(self.result) if _INT.fullmatch(self.result) else None


@dataclass(frozen=True)
class HangupNotice:
    """The unsolicited ``HANGUP`` line: the caller is gone."""


_INT = re.compile(r"-?[0-9]{1,9}")
_REPLY = re.compile(
    r"^200 result=(?P<result>\S*)(?: \((?P<data>.*?)\))?(?: endpos=(?P<endpos>-?\d+))?\s*$"
)


def parse_reply_line(line: str) -> Reply:
    """Parse one complete (non-520) reply line."""
    m = _REPLY.match(line)
    if m:
        endpos = m.group("endpos")
        return Reply(200, m.group("result"), m.group("data"), int(endpos) if endpos else None, line)
    code, _, text = line.partition(" ")
    if not (len(code) == 3 and code.isascii() and code.isdigit()) or code == "200":
        raise RemoteProtocolError("reply is not an AGI status line")  # every 200 has a result=
    return Reply(int(code), text=text)


# ---- what a reply may carry: validated before use, anything else is the peer's fault --------
KEYS = "0123456789*#ABCD"
_DIGITS = re.compile(r"[0-9*#A-D]*")


def key_of(reply: Reply) -> str | None:
    """The key in a STREAM FILE or WAIT FOR DIGIT reply: '' for none, None for ``-1`` (a
    hangup, or a missing sound file); any other value is not what Asterisk sends."""
    code = reply.result_int()
    if code == -1:
        return None
    if code == 0:
        return ""
    if code is not None and 0 < code < 128 and chr(code) in KEYS:
        return chr(code)
    raise RemoteProtocolError(f"not a key: result={reply.result[:16]!r}")


def digits_of(reply: Reply, max_digits: int) -> str | None:
    """The keys in a GET DATA reply ('' on a timeout), None for ``-1``."""
    if reply.result == "-1":
        return None
    if len(reply.result) <= max_digits + 1 and _DIGITS.fullmatch(reply.result):
        return reply.result
    raise RemoteProtocolError(f"not digits: result={reply.result[:16]!r}")


def samples_of(reply: Reply) -> int | None:
    """Samples a RECORD FILE wrote (its ``endpos``), None for ``-1``: the recording failed."""
    code = reply.result_int()
    if code is None:
        raise RemoteProtocolError(f"not a RECORD FILE result: {reply.result[:16]!r}")
    return None if code == -1 else max(reply.endpos or 0, 0)


def parse_headers(block: bytes) -> dict[str, str]:
    """Parse the ``agi_*: value`` header block (without its blank line)."""
    if len(block) > MAX_HEADER_BYTES:
        raise RemoteProtocolError("AGI header block too large")
    text = block.decode("utf-8", errors="replace")
    headers: dict[str, str] = {}
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line:
            continue
        key, sep, value = line.partition(": ")
        if not sep:
            key, sep, value = line.partition(":")
        if not sep or not key.startswith("agi_"):
            raise RemoteProtocolError("malformed AGI header line")
        headers[key] = value
        if len(headers) > MAX_HEADERS:
            raise RemoteProtocolError("too many AGI headers")
    if "agi_request" not in headers and "agi_network_script" not in headers:
        raise RemoteProtocolError("AGI headers lack agi_request")
    return headers


class ReplyReader:
    """Turns bytes from Asterisk into ``Reply`` and ``HangupNotice`` events."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._usage: list[str] | None = None

    def feed(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) > MAX_LINE_BYTES and b"\n" not in self._buf:
            raise RemoteProtocolError("reply line too long")

    def next_event(self) -> Reply | HangupNotice | None:
        """The next complete event, or None when more bytes are needed."""
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                return None
            raw = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            line = raw.decode("utf-8", errors="replace").rstrip("\r")
            if self._usage is not None:
                if line.startswith("520 "):
                    usage, self._usage = self._usage, None
                    return Reply(520, text="\n".join(usage))
                self._usage.append(line)
                continue
            if line == "HANGUP":
                return HangupNotice()
            if line.startswith("520-"):
                self._usage = [line[4:]]
                continue
            if line.startswith("100 "):  # "100 result=0 Trying..." precedes the real reply
                continue
            if not line:
                continue
            return parse_reply_line(line)


    def next_reply(self, on_hangup) -> Reply | None:
        """The next reply, calling ``on_hangup`` for each HANGUP line on the way; None when
        more bytes are needed (both drivers read the same way, only their I/O differs)."""
        while (event := self.next_event()) is not None:
            if isinstance(event, HangupNotice):
                on_hangup()
                continue
            return event
        return None


def quote(arg: str) -> str:
    """Quote one argument the way Asterisk's AGI argument parser reads it back."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def stream_file(name: str, escape: str) -> str:
    return f"STREAM FILE {name} {quote(escape)}"


def get_data(name: str, timeout_ms: int, max_digits: int) -> str:
    return f"GET DATA {name} {timeout_ms} {max_digits}"


def wait_for_digit(timeout_ms: int) -> str:
    return f"WAIT FOR DIGIT {timeout_ms}"


def record_file(path: str, fmt: str, escape: str, timeout_ms: int, beep: bool, silence_s: int) -> str:
    cmd = f"RECORD FILE {path} {fmt} {escape} {timeout_ms} 0"
    if beep:
        cmd += " BEEP"
    if silence_s:
        cmd += f" s={silence_s}"
    return cmd


def set_variable(name: str, value: str) -> str:
    return f"SET VARIABLE {name} {quote(value)}"


def verbose(message: str, level: int = 1) -> str:
    """A message for Asterisk's console and log (``asterisk -r``); kept to one line, since a
    newline would end the command."""
    return f"VERBOSE {quote(' '.join(message.split()))} {level}"


ANSWER = "ANSWER"
HANGUP = "HANGUP"
CHANNEL_STATUS = "CHANNEL STATUS"
