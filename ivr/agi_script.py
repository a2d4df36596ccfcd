"""Classic AGI (``AGI(favad-agi)``): the same call flow on stdin/stdout, through pyst2.

pyst2's ``AGI()`` writes the whole AGI environment, caller ID included, to stderr, which
Asterisk copies into its log: it is given a sink that drops everything. Its reply parsing
raises on every ``-1`` (a missing sound file looks like a hangup), so replies go to the
session's own reader; pyst2 reads the environment and sends the commands.
On hangup Asterisk sends SIGHUP to a classic AGI process (no ``HANGUP`` line).

A daemonised Asterisk drops the script's stderr, so whatever goes wrong is told to Asterisk
itself with ``VERBOSE`` (its console and log show it), never as a traceback; a script that
cannot take the call also sets ``FAVAD_NEXT=unavailable`` and exits 1 (``AGISTATUS=FAILURE``).

A quick start: with a fresh reference snapshot (ivr/snapshot.py) the call's first command goes
out before SQLAlchemy, the database or the Backend are touched; the Backend opens in a thread
while the caller hears the first prompt, and the flow waits for it only at its first effect
(a complaint, a status, the call record). Without a usable snapshot the call starts as it
always did: the Backend first, with the reference data from the database (which then writes
the snapshot for the next call). Nothing imported at the top of this module may pull in
SQLAlchemy.
"""
from __future__ import annotations

import io
import logging
import signal
import sys
import threading
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


def run(load_settings: Callable[[], object], open_backend: Callable[..., object],
        stdin=None, stdout=None) -> int:
    """One call: the environment is read first, so that even a backend that cannot open
    (configuration, permissions, database) is reported to Asterisk. ``open_backend(settings,
    snapshot=None)`` raises ``CannotStart`` with the reason."""
    keep_private()  # also when reached without the CLI: the journal's folder is favad's alone
    if stdin is None:  # a caller name that is not UTF-8 must not stop the call
        stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    agi = AGI(stdin=stdin, stdout=stdout or sys.stdout, stderr=_Sink())
    try:
        settings = load_settings()
        quick = _quick_start(settings)
        backend = _Later(open_backend, settings, quick.snapshot) if quick else open_backend(settings)
    except CannotStart as e:
        return _unavailable(agi, f"favad-agi cannot take the call: {e}")
    except Exception as e:
        return _unavailable(agi, f"favad-agi cannot take the call ({type(e).__name__})")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_NoTraceback())
    try:  # either clears agi.env: the number goes no further
        session, ctx = quick.open_call(agi.env) if quick else backend.open_call(agi.env)
    except Exception as e:
        backend.close()
        return _unavailable(agi, f"favad-agi cannot start the call ({type(e).__name__})")
    signal.signal(signal.SIGHUP, lambda *_: session.note_hangup())
    converse(agi, session, lambda action: backend.perform(action, ctx),
             on_prompt=getattr(backend, "begin", None))
    backend.close()  # the call record is written before the process ends
    if session.failure and not session.hungup:
        converse(agi, Unavailable(f"favad-agi: the call ended on an error: {session.failure}"))
    # Asterisk's SIGHUP may come while the interpreter shuts down, which restores the default
    # handler (death by SIGHUP: a non-zero status); an ignored signal stays ignored
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # no journal replay here: Asterisk waits for this process; `favad serve` or a cron'd
    # `favad journal replay` catches up after an outage
    return 0


def _unavailable(agi: AGI, reason: str) -> int:
    converse(agi, Unavailable(reason))
    return 1


def converse(agi: AGI, conv: Conversation, perform=None, on_prompt: Callable[[], None] | None = None) -> None:
    """Drive a conversation on the pipes until it closes; ``on_prompt()`` once the first
    prompt is playing (a command that takes time, ``Command.seconds``)."""
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
                if on_prompt is not None and out.seconds is not None:
                    on_prompt()
                    on_prompt = None
            else:
                line = agi.stdin.readline()
                conv.receive_data(line.encode() if isinstance(line, str) else line)
            out = conv.next_output()
        except Exception as e:
            conv.failure = conv.failure or type(e).__name__
            log.error("classic AGI failed (%s)", type(e).__name__)
            out = conv.abort()


class _QuickStart:
    """What the first commands need, without the database: the snapshot's directory, the menu
    and the caller key."""

    def __init__(self, settings, snapshot):
        from clock import today
        from ivr.menu import MenuError, load_menu

        self.settings, self.snapshot = settings, snapshot
        self.directory = snapshot.directory(today())
        try:
            self.menu = load_menu(settings.menu_file or None, set(self.directory.indicators))
        except MenuError as e:
            raise CannotStart(str(e)) from None
        try:  # the keys the Backend will read: a folder it cannot use fails now, not mid-call
            self.keyring = settings.keyring()
            self.keyring.tracking_key()
        except OSError as e:
            raise CannotStart(f"cannot use {e.filename or 'the keys'}: {e.strerror or type(e).__name__} "
                              f"(run as the user that owns favad's files?)") from None

    def open_call(self, headers: dict[str, str]):
        from ivr.opening import open_call

        return open_call(headers, self.keyring, self.menu, self.directory,
                         bool(self.settings.operator_queue), str(self.settings.recordings_path))


def _quick_start(settings) -> _QuickStart | None:
    """A quick start if the snapshot file is usable (its log line says which it was)."""
    from ivr.snapshot import SnapshotFile

    snapshot = SnapshotFile(settings.data_dir, settings.db_url).read()
    return _QuickStart(settings, snapshot) if snapshot is not None else None


class _Later:
    """The Backend, opened in a thread from the first prompt on (or at the first effect, if
    that comes sooner); the call's context is made when it is there."""

    def __init__(self, open_backend: Callable[..., object], settings, snapshot):
        self._open = lambda: open_backend(settings, snapshot=snapshot)
        self._thread: threading.Thread | None = None
        self._backend = None
        self._error: BaseException | None = None
        self._ctx = None

    def begin(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._opening, name="favad-backend", daemon=True)
            self._thread.start()

    def _opening(self) -> None:
        try:
            self._backend = self._open()
        except BaseException as e:  # told to the call at its first effect
            log.error("classic AGI: the backend did not open: %s", e if isinstance(e, CannotStart)
                      else type(e).__name__)
            self._error = e

    def _ready(self):
        self.begin()
        self._thread.join()
        if self._error is not None:
            raise CannotStart(str(self._error))
        return self._backend

    def perform(self, action, fields: dict):
        backend = self._ready()
        if self._ctx is None:
            from ivr.backend import CallContext

            self._ctx = CallContext(**fields)
        return backend.perform(action, self._ctx)

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join()
            if self._backend is not None:
                self._backend.close()
