"""Carries a ``Call`` over AGI, sans I/O: turns actions into AGI commands, replies into events.

Outputs for the driver: ``Command`` (write this line, then feed the reply), ``Effect`` (do this
against the database or disk, then feed the resulting event), ``Close`` (close the connection).
Both the FastAGI server and the classic AGI script use it, so they share one brain.

Hangup detection follows what Asterisk 22 really does: a command interrupted by the hangup
returns ``-1``, the unsolicited ``HANGUP`` line follows, and media commands then get ``511``.
A ``-1`` with no hangup means a missing sound file; ``CHANNEL STATUS`` tells the two apart.
"""
from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass

from ivr import protocol as p
from ivr.events import (
    Action,
    Ask,
    Discard,
    Done,
    Finish,
    Input,
    Play,
    Played,
    Record,
    Recorded,
)
from ivr.flow import Call

log = logging.getLogger(__name__)
ESCAPE = "0123456789*#"


@dataclass(frozen=True)
class Command:
    line: str


@dataclass(frozen=True)
class Effect:
    action: Action


@dataclass(frozen=True)
class Close:
    pass


Output = Command | Effect | Close


class _Hangup(Exception):
    pass


class _Broken(Exception):
    """Asterisk refused a command we sent (510/520): our bug, end the call cleanly."""


class AgiSession:
    def __init__(self, call: Call, sound_prefix: str = "favad/", language: str | None = "fa"):
        self.call = call
        self.prefix = sound_prefix
        self.language = language
        self.hungup = False
        self.missing_prompts: set[str] = set()
        self.finish: Finish | None = None
        self.step = ""
        self._gen = self._drive()

    # ---- driver interface ---------------------------------------------------------------
    def start(self) -> Output:
        return next(self._gen)

    def on_reply(self, reply: p.Reply) -> Output:
        return self._gen.send(reply)

    def on_effect(self, event) -> Output:
        return self._gen.send(event)

    def note_hangup(self) -> None:
        """An unsolicited HANGUP line arrived; the reply to the pending command still follows."""
        self.hungup = True

    def on_connection_lost(self) -> Output:
        """EOF from Asterisk (AGIEXITONHANGUP, restart): no more commands, only clean-up."""
        self.hungup = True
        return self._gen.throw(_Hangup())

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
        except _Hangup:
            for action in self.call.hangup():
                if isinstance(action, Finish):
                    self.finish = action
                yield Effect(action)
        except _Broken:
            for action in self.call.hangup():
                if isinstance(action, Finish):
                    self.finish = Finish("system_error", action.province_code, action.next)
                    action = self.finish
                yield Effect(action)
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
        event = yield Effect(action)
        return Done() if isinstance(action, Discard) else event

    def _cmd(self, line: str):
        reply = yield Command(line)
        if self.hungup or reply is None or reply.dead_channel or reply.data == "hangup":
            raise _Hangup()
        if reply.code != 200:
            log.error("Asterisk refused an AGI command: %s %s", reply.code, line.split(" ", 2)[:2])
            raise _Broken()
        return reply

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
        reply = yield from self._cmd(p.stream_file(self.prefix + prompt, escape))
        code = reply.result_int()
        if code == -1:
            yield from self._alive()
            self._missing(prompt)
            return ""
        return chr(code) if code and code > 0 else ""

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
            reply = yield from self._cmd(p.get_data(self.prefix + prompt, ask.timeout_ms, ask.max_digits))
            if reply.result != "-1":
                return Input(reply.result.replace("#", ""), reply.data == "timeout")
            yield from self._alive()
            self._missing(prompt)
        # a key interrupted a prompt (or the question's sound was missing): collect the rest
        while len(digits) < ask.max_digits and not digits.endswith("#"):
            reply = yield from self._cmd(p.wait_for_digit(ask.timeout_ms))
            code = reply.result_int() or 0
            if code <= 0:
                if code == -1:
                    yield from self._alive()
                return Input(digits, True)
            digits += chr(code)
        return Input(digits.replace("#", ""), False)

    def _record(self, rec: Record):
        reply = yield from self._cmd(
            p.record_file(rec.path, rec.fmt, "#", rec.max_ms, rec.beep, rec.silence_s))
        if reply.result == "-1":
            yield from self._alive()  # e.g. "(writefile)": the directory is not writable
            log.error("RECORD FILE failed: %s", reply.data)
            return Recorded(0)
        return Recorded(max(reply.endpos or 0, 0))
