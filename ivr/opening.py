"""Opening a call from its AGI headers, before any database: the caller's number hashed and
dropped, the flow built. Shared by the Backend and by classic AGI's quick start, which must
not import the Backend (SQLAlchemy and the rest) before its first command."""
from __future__ import annotations

import secrets
import time

from clock import today as tehran_today, utcnow
from common.anonymity import scrub
from common.keyring import month_of
from ivr.directory import Directory
from ivr.flow import Call
from ivr.menu import Menu
from ivr.session import AgiSession


def open_call(headers: dict[str, str], keyring, menu: Menu, directory: Directory, operator: bool,
              recordings_dir: str) -> tuple[AgiSession, dict]:
    """The call's session, and the fields of its ``CallContext`` (ivr/backend.py): the
    number goes no further than the keyed hash made here."""
    now = utcnow()
    period = month_of(now)
    safe, caller_hash = scrub(headers, keyring.caller_key(period), period)
    headers.clear()  # the raw headers (number, name, channel) go no further
    call = Call(menu, directory, safe.get("agi_arg_1"), operator=operator,
                recordings_dir=recordings_dir, new_name=lambda: secrets.token_hex(16))
    return AgiSession(call), {"started_at": now, "started_mono": time.monotonic(),
                              "caller_hash": caller_hash, "period": period, "day": tehran_today(now)}
