"""Caller identity never gets past the socket: every AMI message is scrubbed as it arrives.

Asterisk puts the caller's number and name in nearly every channel event (``CallerIDNum``,
``ConnectedLineName``, ``DestCallerIDNum``, ``QueueEntry`` ...), and the uniqueid/linkedid that
join a call to the PBX's own records. They are dropped here, before panoramisk, a callback, a
log line or the monitor can see them. Channel names can carry a SIP user, so they become
pseudonyms that only this process can compute. What the digits a caller pressed (``Digit``)
and the arguments of applications (``AppData``) may hold is dropped too; variable values are
kept only for the variables 128 itself sets.
"""
from __future__ import annotations

import hashlib
import re
import secrets

from ami.wire import Headers

_IDENTITY = re.compile(
    r"(calleridnum|calleridname|callerid|connectedlinenum|connectedlinename|uniqueid|linkedid"
    r"|accountcode|appdata|applicationdata|dialstring|digit|rdnis|dnid|ani)$", re.IGNORECASE)
_CHANNEL = re.compile(r"channel$", re.IGNORECASE)
_CHANVAR = re.compile(r"^(?:dest)?chanvariable(?:\((?P<name>[^)]*)\))?$", re.IGNORECASE)
OUR_VARIABLES = frozenset({"FAVAD_STEP", "FAVAD_NEXT", "FAVAD_PROVINCE", "AGISTATUS"})
_KEY = secrets.token_bytes(16)  # per process: pseudonyms link to nothing outside it


def pseudonym(channel: str) -> str:
    """A stable stand-in for a channel name, meaningless outside this process."""
    if not channel:
        return ""
    return "ch-" + hashlib.blake2b(channel.encode(), key=_KEY, digest_size=5).hexdigest()


def scrub(headers: Headers) -> Headers:
    """The message without caller identity; channel names pseudonymized."""
    out: Headers = []
    variable = next((v for k, v in headers if k.lower() == "variable"), "")
    for key, value in headers:
        low = key.lower()
        if _IDENTITY.search(low):
            continue
        if (m := _CHANVAR.match(low)) is not None:
            # Asterisk 12+: `ChanVariable: NAME=value`; Asterisk 11: `ChanVariable(NAME): value`
            name = m.group("name")
            name, value = (name.upper(), value) if name else (value.partition("=")[0].upper(),
                                                              value.partition("=")[2])
            if name in OUR_VARIABLES:
                out.append(("DestChanVariable" if low.startswith("dest") else "ChanVariable",
                            f"{name}={value}"))
            continue
        if low == "value" and variable.upper() not in OUR_VARIABLES:
            continue
        if _CHANNEL.search(low) and value:
            value = pseudonym(value)
        out.append((key, value))
    return out
