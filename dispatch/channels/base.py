"""The interface every channel keeps: ``send(message) -> Result``, which never raises.

A result says whose move it is: ``sent`` (the server took it), ``temporary`` (try again later:
the server is down, busy or timed out) or ``permanent`` (this message can never go: a rejected
recipient, an invalid number), which dead-letters it at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

SENT, TEMPORARY, PERMANENT = "sent", "temporary", "permanent"


@dataclass(frozen=True)
class Result:
    outcome: Literal["sent", "temporary", "permanent"]
    detail: str = ""  # the server's words, for `favad outbox dead`; never message content


@dataclass(frozen=True)
class Mail:
    sender: str  # the envelope sender (MAIL FROM)
    recipient: str
    data: bytes  # the whole message, headers and body, as it goes on the wire


@dataclass(frozen=True)
class Sms:
    recipient: str  # 09xxxxxxxxx, an inspection unit's mobile
    text: str


class Channel(Protocol):
    kind: str  # "email" or "sms": the outbox rows it takes

    def send(self, message) -> Result: ...

    def close(self) -> None: ...
