"""Caller identity never gets past the socket: every AMI message is scrubbed as it arrives.

Asterisk puts the caller's number and name in nearly every channel event (``CallerIDNum``,
``ConnectedLineName``, ``CallerID1``, ``QueueEntry`` ...), in the uniqueid/linkedid that join a
call to the PBX's own records, in dialled extensions (``Exten``, ``DestExten``), in a dial's
``Destination``, CEL's ``Extra``, AsyncAGI's ``Env`` and AGIExec's ``Command``. So the scrub is
an allowlist: only the fields the monitor, the dialplan tools and panoramisk read get through
(a field Asterisk adds tomorrow does not), before panoramisk, a callback, a log line or the
monitor can see anything. Channel names can carry a SIP user, so they become pseudonyms that
only this process can compute; variable values are kept only for the variables 128 sets.
"""
from __future__ import annotations

import hashlib
import re
import secrets

from ami.wire import Headers

# what reads them: panoramisk (Response, ActionID, Message, EventList, SubEvent), ami/client.py
# (Ping: Pong; Output: the lines of the CLI commands favad sends, `dialplan reload|show`),
# monitor/live.py (the rest)
_KEEP = frozenset(k.lower() for k in (
    "Event", "Response", "ActionID", "CommandID", "Message", "EventList", "ListItems", "SubEvent",
    "Ping", "Output", "Context", "Application", "Duration", "Queue", "Abandoned", "Completed", "Wait",
    "LoggedIn", "Available", "Callers", "LongestHoldTime", "Variable",
    ""))  # "": the lines of an old-style `Response: Follows` (command output), as ami/wire reads them
_CHANVAR = re.compile(r"^(?:dest)?chanvariable(?:\((?P<name>[^)]*)\))?$", re.IGNORECASE)
OUR_VARIABLES = frozenset({"FAVAD_STEP", "FAVAD_NEXT", "FAVAD_PROVINCE", "AGISTATUS"})
_KEY = secrets.token_bytes(16)  # per process: pseudonyms link to nothing outside it


def pseudonym(channel: str) -> str:
    """A stable stand-in for a channel name, meaningless outside this process."""
    if not channel:
        return ""
    return "ch-" + hashlib.blake2b(channel.encode(), key=_KEY, digest_size=5).hexdigest()


def scrub(headers: Headers) -> Headers:
    """The fields the project reads, without caller identity; channel names pseudonymized."""
    out: Headers = []
    variable = next((v for k, v in headers if k.lower() == "variable"), "")
    for key, value in headers:
        low = key.lower()
        if low in _KEEP:
            out.append((key, value))
        elif low == "channel":
            out.append((key, pseudonym(value)))
        elif low == "value" and variable.upper() in OUR_VARIABLES:
            out.append((key, value))
        elif (m := _CHANVAR.match(low)) is not None:
            # Asterisk 12+: `ChanVariable: NAME=value`; Asterisk 11: `ChanVariable(NAME): value`
            name = m.group("name")
            name, value = (name.upper(), value) if name else (value.partition("=")[0].upper(),
                                                              value.partition("=")[2])
            if name in OUR_VARIABLES:
                out.append(("DestChanVariable" if low.startswith("dest") else "ChanVariable",
                            f"{name}={value}"))
    return out
