"""Carries a ``Call`` over AGI, sans I/O: turns actions into AGI commands, bytes from Asterisk
into replies and replies into events. Both the FastAGI server and the classic AGI script drive
it the same way, so they share one brain and one reading loop::

    out = session.start()
    while not isinstance(out, Close):
        if Command: write out.data;                        out = session.next_output()
        if NeedData: session.receive_data(read() or b"");  out = session.next_output()
        if Effect: out = session.on_effect(perform(out.action))
        (the driver failed, or is shutting down:           out = session.abort())

Every way a call ends (Asterisk's hangup or EOF, a reply that is not AGI or not a valid value,
a command Asterisk refused, a bug in the flow, ``abort()``) ends with the flow's clean-up as
``Effect``s (the unsubmitted recording discarded, the call record) before ``Close``.

Hangup detection follows what Asterisk 22 really does: a command interrupted by the hangup
returns ``-1``, the unsolicited ``HANGUP`` line follows, and media commands then get ``511``.
A ``-1`` with no hangup means a missing sound file; ``CHANNEL STATUS`` tells the two apart.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Generator
from dataclasses import dataclass

from ivr import protocol as p
from ivr.events import (
    Action,
    Ask,
    AwaitFiled,
    Discard,
    Done,
    Finish,
    Input,
    Play,
    Played,
    Record,
    Recorded,
    SetLanguage,
)
from ivr.flow import Call

log = logging.getLogger(__name__)
ESCAPE = "0123456789*#"
UNKNOWN = math.inf  # a prompt's length is not known here: the driver's long limit applies


@dataclass(frozen=True)
class Command:
    line: str
    seconds: float | None = None  # how long Asterisk may take on it; None: it answers at once

    @property
    def data(self) -> bytes:
        return self.line.encode() + b"\n"


@dataclass(frozen=True)
class NeedData:
    """The reply to ``command`` is not complete: read from Asterisk, then ``receive_data``."""

    command: Command


@dataclass(frozen=True)
class Effect:
    action: Action


@dataclass(frozen=True)
class Close:
    pass


Output = Command | NeedData | Effect | Close


class _Hangup(Exception):
    pass


class _Broken(Exception):
    """Asterisk refused a command we sent (510/520): our bug, end the call cleanly."""


class Conversation:
    """One AGI connection, sans I/O: the reading loop both drivers share. Subclasses write
    ``_drive``, a generator of outputs that gets each command's reply from ``_cmd``."""

    def __init__(self) -> None:
        self.hungup = False
        self.failure: str | None = None  # why the call ended on a fault, in a few words
        self._replies = p.ReplyReader()
        self._eof = False
        self._error: p.RemoteProtocolError | None = None
        self._pending: Command | None = None
        self._aborting = False
        self._gen = self._drive()

    # ---- driver interface ---------------------------------------------------------------
    def start(self) -> Output:
        return self._advance(self._gen.send, None)

    def on_effect(self, event) -> Output:
        return self._advance(self._gen.send, event)

    def receive_data(self, data: bytes) -> None:
        """Bytes from Asterisk; ``b""`` at EOF (the connection or the pipe closed)."""
        if not data:
            self._eof = True
            return
        try:
            self._replies.feed(data)
        except p.RemoteProtocolError as e:
            self._error = e

    def next_output(self) -> Output:
        """After a ``Command`` was written or data received: what to do next."""
        if self._error is None:
            try:
                reply = self._replies.next_reply(self.note_hangup)
            except p.RemoteProtocolError as e:
                self._error = reply = e
        if self._error is not None:
            log.info("Asterisk's reply is not AGI (%s): ending the call", self._error)
            self.failure = self.failure or f"a reply that is not AGI ({self._error})"
            self._error = None  # told once; what is left is only clean-up
            self._pending = None
            return self._advance(self._gen.throw, _Broken())
        if reply is not None:
            self._pending = None
            return self._advance(self._gen.send, reply)
        if self._eof:  # AGIEXITONHANGUP, an Asterisk restart: no more commands, only clean-up
            self.hungup = True
            self._pending = None
            return self._advance(self._gen.throw, _Hangup())
        return NeedData(self._pending)

    def note_hangup(self) -> None:
        """An unsolicited HANGUP line (or SIGHUP) arrived; a pending reply still follows."""
        self.hungup = True

    def abort(self) -> Output:
        """The driver failed or is shutting down: no more commands, the clean-up, then Close.
        Called again when an effect of the clean-up failed, it goes on with the rest."""
        self._aborting = True
        self.failure = self.failure or "stopped by the server"
        self._gen.close()
        self._gen = self._end(failed=True)
        return self._advance(self._gen.send, None)

    # ---- the machinery --------------------------------------------------------------------
    def _advance(self, how, value) -> Output:
        try:
            out = how(value)
        except StopIteration:
            return Close()
        except Exception as e:  # a bug on our side: the call still gets its record and its clean-up
            log.exception("the call failed")
            self.failure = self.failure or f"{type(e).__name__} in favad"
            return Close() if self._aborting else self.abort()
        if isinstance(out, Command):
            self._pending = out
        return out

    def _drive(self) -> Generator[Output, object, None]:
        yield Close()

    def _end(self, failed: bool) -> Generator[Output, object, None]:
        yield Close()

    def _cmd(self, line: str, seconds: float | None = None):
        reply = yield Command(line, seconds)
        if self.hungup or reply is None or reply.dead_channel or reply.data == "hangup":
            raise _Hangup()
        if reply.code != 200:
            verb = " ".join(line.split(" ", 2)[:2])
            log.error("Asterisk refused an AGI command: %s %s", reply.code, verb)
            self.failure = self.failure or f"Asterisk answered {reply.code} to {verb}"
            raise _Broken()
        return reply


class Unavailable(Conversation):
    """A call this server does not take (connection limit, unknown script, a classic AGI that
    cannot start): ``reason`` to Asterisk's log, and ``FAVAD_NEXT=unavailable`` for the
    dialplan, which then plays the apology instead of silence."""

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason
        super().__init__()

    def _drive(self):
        try:
            if self.reason:
                yield from self._cmd(p.verbose(self.reason))
            yield from self._cmd(p.set_variable("FAVAD_NEXT", "unavailable"))
        except (_Hangup, _Broken, p.RemoteProtocolError):
            pass
        yield Close()


class AgiSession(Conversation):
    def __init__(self, call: Call, sound_prefix: str = "favad/", language: str | None = None):
        self.call = call
        self.prefix = sound_prefix
        self.language = language or call.language  # the province's default, set before any prompt
        self.missing_prompts: set[str] = set()
        self.finish: Finish | None = None
        self.step = ""
        self._left: list[Action] | None = None  # the clean-up still to do, once it began
        super().__init__()

    # ---- the translation ----------------------------------------------------------------
    def _drive(self) -> Generator[Output, object, None]:
        try:
            yield from self._cmd(p.ANSWER)
            if self.language:
                yield from self._cmd(p.set_variable("CHANNEL(language)", self.language))
            action = self.call.start()
            while not isinstance(action, Finish):
                event = yield from self._perform(action)
                action = self.call.send(event)
            self.finish = action
            if action.next == "operator":
                yield from self._cmd(p.set_variable("FAVAD_NEXT", "operator"))
                yield Effect(action)
            else:
                yield Effect(action)
                yield from self._cmd(p.HANGUP)
            yield Close()
        except _Hangup:
            yield from self._end(failed=False)
        except (_Broken, p.RemoteProtocolError) as e:
            if isinstance(e, p.RemoteProtocolError):  # a value no Asterisk sends
                log.info("Asterisk's reply is not valid (%s): ending the call", e)
                self.failure = self.failure or f"an invalid reply ({e})"
            yield from self._end(failed=True)

    def _end(self, failed: bool):
        """The flow's clean-up; a call that failed on our side or Asterisk's is a system error.
        Kept in a list so that an abort in the middle goes on with what is left."""
        if self._left is None:
            self._left = self.call.hangup()
        while self._left:
            action = self._left.pop(0)
            if isinstance(action, Finish):
                if failed:
                    action = dataclasses.replace(action, outcome="system_error")
                self.finish = action
            event = yield Effect(action)
            if isinstance(action, AwaitFiled):  # the complaint's write settled: the real ending
                self._left = self.call.settled(event)
        yield Close()

    def _perform(self, action: Action):
        if isinstance(action, Ask):
            return (yield from self._ask(action))
        if isinstance(action, Play):
            escape = ESCAPE if action.interruptible else ""
            for prompt in action.prompts:
                if (yield from self._stream(prompt, escape)):
                    break  # the key skipped the rest and goes no further: it answers nothing
            return Played()
        if isinstance(action, Record):
            return (yield from self._record(action))
        if isinstance(action, SetLanguage):
            # Asterisk finds favad/<id> under sounds/<language>/ from the next prompt on
            yield from self._cmd(p.set_variable("CHANNEL(language)", action.language))
            self.language = action.language
            return Done()
        event = yield Effect(action)
        return Done() if isinstance(action, Discard) else event

    def _alive(self):
        """After a -1: is the caller still there (a sound file was missing) or gone?"""
        yield from self._cmd(p.CHANNEL_STATUS)
        return True

    def _missing(self, prompt: str) -> None:
        if prompt not in self.missing_prompts:
            self.missing_prompts.add(prompt)
            log.warning("sound file missing for prompt %s (favad prompts check)", prompt)

    def _stream(self, prompt: str, escape: str = ESCAPE):
        """Play one prompt; the key pressed during it, or '' (always '' with no escape digits)."""
        reply = yield from self._cmd(p.stream_file(self.prefix + prompt, escape), UNKNOWN)
        key = p.key_of(reply)
        if key is None:
            yield from self._alive()
            self._missing(prompt)
            return ""
        return key

    def _ask(self, ask: Ask):
        if ask.step and ask.step != self.step:
            # visible to operators over AMI (manager.conf channelvars = FAVAD_STEP)
            self.step = ask.step
            yield from self._cmd(p.set_variable("FAVAD_STEP", ask.step))
        digits = ""
        for i, prompt in enumerate(ask.prompts):
            if i < len(ask.prompts) - 1:
                digits = yield from self._stream(prompt)
                if digits:
                    break
                continue
            reply = yield from self._cmd(p.get_data(self.prefix + prompt, ask.timeout_ms, ask.max_digits),
                                         UNKNOWN)
            got = p.digits_of(reply, ask.max_digits)
            if got is not None:
                return Input(got.replace("#", ""))
            yield from self._alive()
            self._missing(prompt)
        # a key interrupted a prompt (or the question's sound was missing): collect the rest
        wait = ask.timeout_ms / 1000 if ask.timeout_ms >= 0 else UNKNOWN
        while len(digits) < ask.max_digits and not digits.endswith("#"):
            reply = yield from self._cmd(p.wait_for_digit(ask.timeout_ms), wait)
            key = p.key_of(reply)
            if not key:
                if key is None:
                    yield from self._alive()
                return Input(digits)
            digits += key
        return Input(digits.replace("#", ""))

    def _record(self, rec: Record):
        # the beep, then at most max_ms (0 or less: no limit)
        reply = yield from self._cmd(p.record_file(rec.path, rec.fmt, "#", rec.max_ms, rec.beep, rec.silence_s),
                                     rec.max_ms / 1000 + 2 if rec.max_ms > 0 else UNKNOWN)
        samples = p.samples_of(reply)
        if samples is None:
            yield from self._alive()  # e.g. "(writefile)": the directory is not writable
            log.error("RECORD FILE failed: %s", reply.data)
            return Recorded(0)
        return Recorded(samples)
