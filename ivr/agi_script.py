"""Classic AGI (``AGI(favad-agi)``): the same call flow on stdin/stdout, through pyst2.

pyst2's ``AGI()`` writes the whole AGI environment, caller ID included, to stderr, which
Asterisk copies into its log: it is given a sink that drops everything. Its reply parsing
raises on every ``-1`` (a missing sound file looks like a hangup), so replies are read with
the project's own parser; pyst2 reads the environment and sends the commands.
On hangup Asterisk sends SIGHUP to a classic AGI process (no ``HANGUP`` line).
"""
from __future__ import annotations

import signal
import sys

from asterisk.agi import AGI

from config.files import keep_private
from ivr import protocol as p
from ivr.backend import Backend
from ivr.session import Close, Effect


class _Sink:
    """A stderr that keeps nothing."""

    def write(self, _text) -> int:
        return 0

    def flush(self) -> None:
        pass


def run(backend: Backend, stdin=None, stdout=None) -> int:
    keep_private()  # also when reached without the CLI: the journal's folder is favad's alone
    agi = AGI(stdin=stdin or sys.stdin, stdout=stdout or sys.stdout, stderr=_Sink())
    session, ctx = backend.open_call(agi.env)  # clears agi.env: the number goes no further
    signal.signal(signal.SIGHUP, lambda *_: session.note_hangup())
    replies = p.ReplyReader()
    out = session.start()
    while not isinstance(out, Close):
        if isinstance(out, Effect):
            out = session.on_effect(backend.perform(out.action, ctx))
            continue
        try:
            agi.send_command(out.line)
        except BrokenPipeError:
            out = session.on_connection_lost()
            continue
        reply = _read_reply(agi.stdin, replies, session)
        out = session.on_connection_lost() if reply is None else session.on_reply(reply)
    backend.close()  # the call record is written before the process ends
    # no journal replay here: Asterisk waits for this process; `favad serve` or a cron'd
    # `favad journal replay` catches up after an outage
    return 0


def _read_reply(stdin, replies: p.ReplyReader, session) -> p.Reply | None:
    """As the FastAGI driver's, on a pipe: the reply, or None on EOF."""
    while (reply := replies.next_reply(session.note_hangup)) is None:
        line = stdin.readline()
        if not line:
            return None
        replies.feed(line.encode() if isinstance(line, str) else line)
    return reply
