"""Classic AGI (``AGI(favad-agi)``): the same call flow on stdin/stdout, through pyst2.

pyst2's ``AGI()`` writes the whole AGI environment, caller ID included, to stderr, which
Asterisk copies into its log: it is given a sink that drops everything. Its reply parsing
raises on every ``-1`` (a missing sound file looks like a hangup), so replies go to the
session's own reader; pyst2 reads the environment and sends the commands.
On hangup Asterisk sends SIGHUP to a classic AGI process (no ``HANGUP`` line).

A daemonised Asterisk drops the script's stderr, so whatever goes wrong is told to Asterisk
itself with ``VERBOSE`` (its console and log show it), never as a traceback; a script that
cannot take the call also sets ``FAVAD_NEXT=unavailable`` and exits 1 (``AGISTATUS=FAILURE``).
"""
from __future__ import annotations

import io
import logging
import signal
import sys
from typing import Callable

from asterisk.agi import AGI

from config.files import keep_private
from ivr.session import Close, Command, Conversation, Effect, Unavailable

log = logging.getLogger(__name__)


class CannotStart(Exception):
    """Why this process cannot take the call, in one line for Asterisk's log."""


class _Sink:
    """A stderr that keeps nothing."""

    def write(self, _text) -> int:
        return 0

    def flush(self) -> None:
        pass


class _NoTraceback(logging.Filter):
    """Log lines keep the exception's name and lose its traceback (it would reach stderr)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            record.msg = f"{record.msg} ({record.exc_info[0].__name__})"
            record.exc_info = record.exc_text = None
        return True


def run(open_backend: Callable[[], object], stdin=None, stdout=None) -> int:
    """One call: the environment is read first, so that even a backend that cannot open
    (configuration, permissions, database) is reported to Asterisk."""
    keep_private()  # also when reached without the CLI: the journal's folder is favad's alone
    if stdin is None:  # a caller name that is not UTF-8 must not stop the call
        stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    agi = AGI(stdin=stdin, stdout=stdout or sys.stdout, stderr=_Sink())
    try:
        backend = open_backend()
    except CannotStart as e:
        return _unavailable(agi, f"favad-agi cannot take the call: {e}")
    except Exception as e:
        return _unavailable(agi, f"favad-agi cannot take the call ({type(e).__name__})")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_NoTraceback())
    try:
        session, ctx = backend.open_call(agi.env)  # clears agi.env: the number goes no further
    except Exception as e:
        backend.close()
        return _unavailable(agi, f"favad-agi cannot start the call ({type(e).__name__})")
    signal.signal(signal.SIGHUP, lambda *_: session.note_hangup())
    converse(agi, session, lambda action: backend.perform(action, ctx))
    backend.close()  # the call record is written before the process ends
    if session.failure and not session.hungup:
        converse(agi, Unavailable(f"favad-agi: the call ended on an error: {session.failure}"))
    # no journal replay here: Asterisk waits for this process; `favad serve` or a cron'd
    # `favad journal replay` catches up after an outage
    return 0


def _unavailable(agi: AGI, reason: str) -> int:
    converse(agi, Unavailable(reason))
    return 1


def converse(agi: AGI, conv: Conversation, perform=None) -> None:
    """Drive a conversation on the pipes until it closes."""
    out = conv.start()
    while not isinstance(out, Close):
        try:
            if isinstance(out, Effect):
                out = conv.on_effect(perform(out.action))
                continue
            if isinstance(out, Command):
                try:
                    agi.send_command(out.line)
                except OSError:  # the pipe is gone: Asterisk ended the call
                    conv.receive_data(b"")
            else:
                line = agi.stdin.readline()
                conv.receive_data(line.encode() if isinstance(line, str) else line)
            out = conv.next_output()
        except Exception as e:
            conv.failure = conv.failure or type(e).__name__
            log.error("classic AGI failed (%s)", type(e).__name__)
            out = conv.abort()
