"""Placing scripted callers on the real PBX and reading back what Asterisk did with them."""
from __future__ import annotations

import csv
import re
import time
from dataclasses import dataclass, field

from .harness import Ami, Pbx

CALLER = "09121234567"
_AGI_LINE = re.compile(r"<(?P<chan>[^>]+)>AGI (?P<dir>Rx <<|Tx >>) ?(?P<text>.*)$")
_MEDIA = ("STREAM FILE", "GET DATA", "CONTROL STREAM FILE", "GET OPTION")


@dataclass
class Exchange:
    """One AGI command the script sent and Asterisk's reply, from the AGI debug log."""
    command: str
    reply: str = ""


@dataclass
class Call:
    pbx: Pbx
    ami: Ami
    action_id: str
    channel: str = ""
    reason: str = ""
    headers: list[str] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)

    def wait_answered(self, timeout: float = 30) -> "Call":
        m = self.ami.wait_event(lambda e: e.get("Event") == "OriginateResponse"
                                and e.get("ActionID") == self.action_id, timeout, "OriginateResponse")
        self.channel, self.reason = m.get("Channel", ""), m.get("Reason", "")
        assert m.get("Response") == "Success", f"originate failed: {m.headers}"
        return self

    def wait_hangup(self, timeout: float = 180, read: bool = True) -> "Call":
        if not self.channel:
            self.wait_answered()
        self.ami.wait_event(lambda e: e.get("Event") == "Hangup" and e.get("Channel") == self.channel,
                            timeout, f"the hangup of {self.channel}")
        if read:
            time.sleep(0.5)  # Asterisk's logger thread writes the last lines a moment later
            self.read_log()
        return self

    def read_log(self) -> "Call":
        """This call's AGI session from the full log (after `agi set debug on`)."""
        headers, exchanges = [], []
        for line in self.pbx.log_text().splitlines():
            m = _AGI_LINE.search(line)
            if not m or m["chan"] != self.channel:
                continue
            if m["dir"] == "Rx <<":
                exchanges.append(Exchange(m["text"]))
            elif exchanges:
                if m["text"] and not exchanges[-1].reply:
                    exchanges[-1].reply = m["text"]
            elif m["text"].startswith("agi_"):
                headers.append(m["text"])
        self.headers, self.exchanges = headers, exchanges
        return self

    @property
    def commands(self) -> list[str]:
        return [x.command for x in self.exchanges]

    @property
    def played(self) -> list[str]:
        """The sound files the IVR played or asked with, in order."""
        out = []
        for c in self.commands:
            for verb in _MEDIA:
                if c.startswith(verb + " "):
                    out.append(c[len(verb) + 1:].split(" ", 1)[0].strip('"'))
        return out

    def spoken_code(self) -> str:
        """The tracking code as the caller heard it: the digits after filed-code-is."""
        played = self.played
        i = played.index("favad/filed-code-is")
        digits = []
        for name in played[i + 1:]:
            if not name.startswith("favad/digits/"):
                break
            digits.append(name.rsplit("/", 1)[1])
        return "".join(digits)


def place(pbx: Pbx, ami: Ami, keys: str, *, province: str = "qazvin", context: str | None = None,
          exten: str = "128", cid: str = CALLER, pre: float = 3, gap: float = 3, hold: float = 40,
          play: str = "", play_at: int | None = None, agi: str = "",
          variables: dict[str, str] | None = None) -> Call:
    """Originate one caller who types ``keys`` (groups split by spaces, ``-`` = silent for a turn).

    The originated channel runs the IVR as a trunk channel would (`caller-sim-seq-ans`); the
    other half of the Local pair is the caller, typing a group every ``gap`` seconds."""
    seq = "/".join(keys.split()) or "-"
    v = {"SIM_SEQ": seq, "SIM_PRE": str(pre), "SIM_GAP": str(gap), "SIM_HOLD": str(hold)}
    if play:
        v.update(SIM_PLAY=play, SIM_PLAY_AT=str(play_at))
    if agi:  # a classic AGI script of agi-bin, run from the harness's own context
        context, exten = "favad-test", "agiargs"
        v.update(AGI_URL=agi, AGI_ARG1="28")
    v.update(variables or {})
    headers = {"Action": "Originate", "Channel": "Local/s@caller-sim-seq-ans",
               "Context": context or f"favad-inbound-{province}", "Exten": exten, "Priority": "1",
               "CallerID": f'"Caller" <{cid}>', "Timeout": "30000", "Async": "true"}
    aid = ami.send(headers, v)  # one Variable header per pair: Asterisk splits a value on commas
    return Call(pbx, ami, aid)


def cdr_rows(pbx: Pbx) -> list[list[str]]:
    if not pbx.cdr_csv.exists():
        return []
    with open(pbx.cdr_csv, newline="") as f:
        return list(csv.reader(f))


def wait_all(calls: list[Call], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    for c in calls:
        c.wait_hangup(max(1.0, deadline - time.monotonic()), read=False)
    time.sleep(1)  # Asterisk's logger thread writes the last lines a moment later
    for c in calls:
        c.read_log()
