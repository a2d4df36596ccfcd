"""The scripted caller on the far end of the simulated channel.

`keys` is a list of whitespace-separated groups; a group is what the caller types, quickly, when
asked a question.  Semantics (the peer replies exactly as Asterisk would to such a caller):

* The caller listens until asked: a group is typed only at a GET DATA (or, for the very first
  group only, at a WAIT FOR DIGIT that comes before any GET DATA).  A GET DATA takes the keys
  still pending from the current group (typed ahead) or else starts the next group.
* Keys barge in: a pending key that is in a prompt's escape digits (STREAM FILE, CONTROL STREAM
  FILE, GET OPTION, SAY ...) interrupts it ``barge_ms`` into the prompt and is consumed.
* GET DATA reads pending keys until ``#`` (consumed, not returned), max digits, a ``-`` (a pause:
  the caller stops typing, Asterisk times out) or the end of the group (also a time-out).
  A group ``-`` is silence for that whole question.
* WAIT FOR DIGIT returns the next pending key, ``-`` or an exhausted group gives the time-out
  ``200 result=0``; with timeout -1 the caller, who would otherwise wait forever, types on.
* When every group is used up and input is needed (GET DATA / WAIT FOR DIGIT), the caller hangs
  up during that command (or asks ``interactive(prompt)`` for one more group; None = hang up).
* ``hangup_at=N`` hangs up during the N-th STREAM FILE / GET DATA / WAIT FOR DIGIT / RECORD FILE
  that actually starts (a missing sound file fails at once and is not counted), ``hangup_ms``
  into it.  ``idle_hangup`` seconds without any command also makes the caller hang up.
* ``eager=True``: the caller does not wait to be asked: the first group is typed from the very
  first command, so its keys barge into the prompts played before any question (a key that is
  not among a prompt's escape digits does not stop it: ``STREAM FILE x ""`` plays to the end).
* ``speak=True``: at each RECORD FILE the caller talks for 1.2 s (9612 samples, as recorded by a
  real Asterisk) then presses ``#``.
"""
from __future__ import annotations

from typing import Callable

# new complaint, office 280101 confirmed, an indicator, no voice message, submit, hang up
FILE_ONE = "1 280101# 1 4 2 1 -"


def heard_code(played: list[str]) -> str | None:
    """The ten digits the caller heard after "your tracking code is", if the call got there."""
    if "favad/filed-code-is" not in played:
        return None
    i = played.index("favad/filed-code-is")
    digits = [p[-1] for p in played[i + 1:i + 11] if p.startswith("favad/digits/")]
    return "".join(digits) if len(digits) == 10 else None

KEYS = frozenset("0123456789*#ABCD")  # DTMF, A-D included as SendDTMF() sends them
PAUSE = "-"
HANGUP = None  # returned by the input methods when the caller hangs up instead


class Caller:
    def __init__(self, keys: str = "", *, speak: bool = False, hangup_at: int | None = None,
                 interactive: Callable[[str], str | None] | None = None, hangup_ms: int = 2500,
                 barge_ms: int = 280, idle_hangup: float | None = None, eager: bool = False):
        self.groups = [self._check(g) for g in keys.split()]
        self.speak = speak
        self.hangup_at = hangup_at
        self.interactive = interactive
        self.hangup_ms = hangup_ms    # how far into the media command a hangup_at hangup comes
        self.barge_ms = barge_ms      # 280 ms reproduces the captured `endpos=2240` of §9b
        self.idle_hangup = idle_hangup
        self.media_count = 0
        self._cur = 0          # index of the current group
        self._pos = 0          # next key within it
        # the current group has been typed (its keys can barge in); an eager caller starts at once
        self._started = eager and bool(self.groups)

    @staticmethod
    def _check(group: str) -> str:
        bad = set(group) - KEYS - {PAUSE}
        if bad:
            raise ValueError(f"caller keys must be 0-9 * # A-D or '-', got {''.join(sorted(bad))!r}")
        return group

    # -- state -------------------------------------------------------------------------------
    def _pending(self) -> str:
        if not self._started or self._cur >= len(self.groups):
            return ""
        return self.groups[self._cur][self._pos:]

    def _take(self) -> str:
        key = self.groups[self._cur][self._pos]
        self._pos += 1
        return key

    def _next_group(self, prompt: str) -> bool:
        """Start typing the next group (asking the person if interactive); False = none left."""
        if self._started:
            self._cur, self._pos = self._cur + 1, 0
        if self._cur >= len(self.groups) and self.interactive is not None:
            typed = self.interactive(prompt)
            if typed is not None:  # a person's typos are dropped, not fatal; nothing = silence
                self.groups.append("".join(k for k in typed.upper() if k in KEYS or k == PAUSE)
                                   or PAUSE)
        self._started = self._cur < len(self.groups)
        return self._started

    def media_starts(self) -> bool:
        """Count one media command; True when the caller hangs up during it (hangup_at)."""
        self.media_count += 1
        return self.hangup_at is not None and self.media_count == self.hangup_at

    # -- what the caller does ----------------------------------------------------------------
    def barge(self, escape: str) -> str | None:
        """A typed-ahead key interrupting a prompt whose escape digits include it."""
        pending = self._pending()
        if pending and pending[0] != PAUSE and pending[0] in escape:
            return self._take()
        return None

    def next_key(self) -> str | None:
        """The next typed-ahead key for a short digit wait ('' = a pause), None if nothing."""
        if not self._pending():
            return None
        return self._take()

    def read_digits(self, prompt: str, max_digits: int, infinite: bool) -> tuple[str, str] | None:
        """GET DATA: (digits, 'complete' | 'timeout' | 'empty'), or None when hanging up."""
        if not self._pending() and not self._next_group(prompt):
            return HANGUP
        digits = ""
        while True:
            if not self._pending():
                if not infinite:
                    return digits, "timeout"
                if not self._next_group(prompt):  # Asterisk waits forever: the caller types on
                    return HANGUP
                continue
            key = self._take()
            if key == PAUSE:
                if infinite:
                    continue
                return digits, "timeout"
            if key == "#":
                return digits, "complete" if digits else "empty"
            digits += key
            if len(digits) >= max_digits:
                return digits, "complete"

    def wait_digit(self, prompt: str, infinite: bool) -> str | None:
        """WAIT FOR DIGIT: a key, '' for the time-out, None when hanging up."""
        if not self._started and self._cur < len(self.groups):
            self._started = True  # the first group may be typed at a WAIT FOR DIGIT (§1)
        while True:
            pending = self._pending()
            if pending:
                key = self._take()
                if key != PAUSE:
                    return key
                if not infinite:
                    return ""
                continue
            if self._cur + 1 < len(self.groups) or self.interactive is not None:
                if not infinite:
                    return ""
                if not self._next_group(prompt):
                    return HANGUP
                continue
            return HANGUP
