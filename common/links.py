"""The personal links in the units' messages: signed, scoped to one complaint and one unit,
expiring. Short enough for an SMS.

A token is base64url(payload + mac): the payload is the complaint id and the unit id (varints)
and the expiry (unix seconds, 4 bytes); the mac is HMAC-SHA256 over a context string and the
payload, cut to 96 bits. Several keys are accepted (rotation); the first, the newest, signs.
The mac is checked before anything in the payload is believed, the expiry included.

A unit's inbox has links of its own (``sign_inbox``): the unit, the generation of its inbox
links (revoking them all is a step of the generation, kept in the database) and a long expiry,
signed with the same keys under another context string, so a complaint's link never opens an
inbox and an inbox link never opens a complaint.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import os
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # common/ imports no part of 128; settings are passed in
    from config import Settings

CONTEXT = b"favad unit link v1\0"
INBOX_CONTEXT = b"favad unit inbox v1\0"
INBOX_PATH = "/staff/inbox"  # where the staff interface serves a unit's inbox
INBOX_TTL_DAYS = 180  # an inbox link is kept in a bookmark: long-lived, revoked by generation
MAC_BYTES = 12
KEEP_KEYS = 3  # a rotation keeps this many older keys: links signed with them still work


class LinkError(Exception):
    """The link cannot be used; ``code`` is 'tampered' or 'expired'."""

    def __init__(self, code: str, expired_at: dt.datetime | None = None):
        super().__init__(code)
        self.code, self.expired_at = code, expired_at


@dataclass(frozen=True)
class Link:
    complaint_id: int
    unit_id: int
    expires: dt.datetime


@dataclass(frozen=True)
class InboxLink:
    unit_id: int
    generation: int  # valid while the unit's inbox generation in the database is the same
    expires: dt.datetime


# ---- keys -----------------------------------------------------------------------------------
def key_file(settings: Settings) -> Path:
    return Path(settings.data_dir, "link-keys")


def keys(settings: Settings) -> list[bytes]:
    """The accepted keys, newest first: from the setting, else the key file (made on first use)."""
    if settings.link_keys:
        return [k.strip().encode() for k in settings.link_keys.split(",") if k.strip()]
    path = key_file(settings)
    if not path.exists():
        _write_keys(path, [secrets.token_hex(32)], replace=False)  # two first users: one key wins
    return [k.encode() for k in path.read_text().split() if k]


def rotate(settings: Settings) -> int:
    """Put a new signing key first in the key file, keep ``KEEP_KEYS`` older ones; how many
    keys are accepted now."""
    if settings.link_keys:
        raise ValueError("link_keys is set in the configuration: rotate there (new key first)")
    old = [k.decode() for k in keys(settings)][:KEEP_KEYS]
    _write_keys(key_file(settings), [secrets.token_hex(32)] + old)
    return len(old) + 1


def _write_keys(path: Path, values: list[str], replace: bool = True) -> None:
    """Write the key file whole (mode 0600); ``replace=False`` keeps one that appeared meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(values) + "\n")
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


# ---- tokens ---------------------------------------------------------------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if i >= len(data) or shift > 56:
            raise LinkError("tampered")
        byte = data[i]
        n |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if not byte & 0x80:
            return n, i


def _mac(key: bytes, payload: bytes, context: bytes = CONTEXT) -> bytes:
    return hmac.new(key, context + payload, hashlib.sha256).digest()[:MAC_BYTES]


def _sign(key: bytes, context: bytes, numbers: tuple[int, int], expires: dt.datetime) -> str:
    payload = b"".join(map(_varint, numbers)) + struct.pack(">I", int(expires.timestamp()))
    return base64.urlsafe_b64encode(payload + _mac(key, payload, context)).rstrip(b"=").decode()


def _verify(accepted: list[bytes], context: bytes, token: str, now: dt.datetime) -> tuple[int, int, dt.datetime]:
    """The two numbers and the expiry a token holds, once its mac is found good."""
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii") + b"=" * (-len(token) % 4))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise LinkError("tampered") from None
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if len(payload) < 6 or not any(hmac.compare_digest(_mac(k, payload, context), mac) for k in accepted):
        raise LinkError("tampered")
    first, i = _read_varint(payload, 0)
    second, i = _read_varint(payload, i)
    if len(payload) - i != 4:
        raise LinkError("tampered")
    expires = dt.datetime.fromtimestamp(struct.unpack(">I", payload[i:])[0], dt.timezone.utc)
    if now >= expires:
        raise LinkError("expired", expires)
    return first, second, expires


def sign(key: bytes, complaint_id: int, unit_id: int, expires: dt.datetime) -> str:
    return _sign(key, CONTEXT, (complaint_id, unit_id), expires)


def verify(accepted: list[bytes], token: str, now: dt.datetime) -> Link:
    """The link a token stands for; LinkError('tampered') for anything not signed by an
    accepted key, LinkError('expired') for a genuine link past its time."""
    return Link(*_verify(accepted, CONTEXT, token, now))


def sign_inbox(key: bytes, unit_id: int, generation: int, expires: dt.datetime) -> str:
    return _sign(key, INBOX_CONTEXT, (unit_id, generation), expires)


def verify_inbox(accepted: list[bytes], token: str, now: dt.datetime) -> InboxLink:
    """The inbox link a token stands for, as ``verify``; whether its generation is still the
    unit's is the database's to say (``accountability.inbox``)."""
    return InboxLink(*_verify(accepted, INBOX_CONTEXT, token, now))


def csrf_token(key: bytes, token: str) -> str:
    """The hidden form field that goes with a link's page."""
    return hmac.new(key, b"favad csrf\0" + token.encode(), hashlib.sha256).hexdigest()[:32]


def csrf_ok(accepted: list[bytes], token: str, given: str) -> bool:
    return any(hmac.compare_digest(csrf_token(k, token), given or "") for k in accepted)


# ---- URLs -----------------------------------------------------------------------------------
def base_url(settings: Settings) -> str:
    return (settings.public_url or f"http://{settings.web_host}:{settings.web_port}").rstrip("/")


def url(settings: Settings, complaint_id: int, unit_id: int, now: dt.datetime) -> str:
    """A unit's link to a complaint, valid for ``link_ttl_days`` from ``now``."""
    expires = now + dt.timedelta(days=settings.link_ttl_days)
    return f"{base_url(settings)}/u/{sign(keys(settings)[0], complaint_id, unit_id, expires)}"


def inbox_url(settings: Settings, unit_id: int, generation: int, now: dt.datetime) -> str:
    """A unit's link to its inbox, valid for ``INBOX_TTL_DAYS`` from ``now``."""
    expires = now + dt.timedelta(days=INBOX_TTL_DAYS)
    return f"{base_url(settings)}{INBOX_PATH}/{sign_inbox(keys(settings)[0], unit_id, generation, expires)}"
