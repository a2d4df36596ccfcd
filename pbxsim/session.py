"""run_agi()'s loop, shared by the FastAGI and the classic AGI drivers.

What Asterisk does, in order, and what the loop below reproduces:
* a hangup (during a command, by the AGI HANGUP command, or while the script is idle) is noticed
  before the next command is read: the notice (`HANGUP\\n` / SIGHUP) always precedes the reply to
  the next command; AGI then runs in dead mode;
* with AGIEXITONHANGUP=yes the loop ends right after the notice;
* the script closing its side ends the loop; a line starting with "failure" ends it as FAILURE;
* at the end, FastAGI gets one more `HANGUP\\n` and is closed, a classic process is reaped.
Asterisk itself would wait forever for a script that never closes after a hangup; the peer waits
`close_timeout` seconds, then reports a leak and closes itself.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .channel import Channel

TRUE = ("yes", "true", "y", "t", "1", "on")
FALSE = ("no", "false", "n", "f", "0", "off")


@dataclass
class CallResult:
    transcript: list[tuple[str, bytes]] = field(default_factory=list)  # '>>>' script->PBX
    commands: list[str] = field(default_factory=list)
    played: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    agistatus: str = ""
    hungup_by_caller: bool = False
    closed_after_hangup: bool | None = None  # None: no hangup, or Asterisk closed (exit-on-hangup)
    leaked: bool = False
    recordings: list[str] = field(default_factory=list)
    stderr: bytes = b""
    sighups: int = 0        # classic AGI: SIGHUPs sent to the process
    exit_status: int | None = None  # classic AGI: the process's return code when reaped

    def received(self) -> bytes:
        """Everything the peer wrote to the script, as one byte string."""
        return b"".join(data for way, data in self.transcript if way == "<<<")


class CallTimeout(TimeoutError):
    """The call did not end within the overall timeout; `.result` holds what happened so far."""

    def __init__(self, message: str, result: CallResult):
        super().__init__(message)
        self.result = result


class Transport:
    """The I/O of one AGI session; fastagi.py and classic.py implement it."""

    result: CallResult

    async def send(self, data: bytes) -> None:
        """Write and record bytes going to the script."""
        self.result.transcript.append(("<<<", data))
        await self.write(data)

    async def readline(self) -> bytes:  # b"" or a partial line (no LF) at EOF
        raise NotImplementedError

    async def write(self, data: bytes) -> None:
        raise NotImplementedError

    async def notice(self) -> None:  # the hangup notice: HANGUP line or SIGHUP
        raise NotImplementedError

    async def end(self, eof: bool, send_sighup: bool) -> None:  # run_agi's last block
        raise NotImplementedError

    async def abandon(self) -> None:  # close everything without further protocol
        raise NotImplementedError


def channel_flags(chan: Channel) -> tuple[bool, bool]:
    """(send_sighup, exit_on_hangup) from AGISIGHUP / AGIEXITONHANGUP, read once at start."""
    sighup = (chan.vars.get("AGISIGHUP") or "").strip().lower() not in FALSE  # !ast_false()
    exit_on = (chan.vars.get("AGIEXITONHANGUP") or "").strip().lower() in TRUE  # ast_true()
    return sighup, exit_on


class Session:
    def __init__(self, chan: Channel, transport: Transport, result: CallResult, *,
                 close_timeout: float, hangup_delay: float):
        self.chan, self.tr, self.res = chan, transport, result
        self.close_timeout, self.hangup_delay = close_timeout, hangup_delay
        self.send_sighup, self.exit_on_hangup = channel_flags(chan)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.ensure_future(self.tr.readline())
        deadline = None
        eof = False
        try:
            while True:
                if self.chan.needhup:
                    # a command already on its way is still answered after the notice
                    await asyncio.wait({reader}, timeout=self.hangup_delay)
                    self.chan.enter_dead()
                    if self.send_sighup:
                        await self.tr.notice()
                    if self.exit_on_hangup:
                        break
                    deadline = loop.time() + self.close_timeout
                if deadline is not None:
                    wait = max(deadline - loop.time(), 0)
                elif self.chan.up and self.chan.caller.idle_hangup is not None:
                    wait = self.chan.caller.idle_hangup
                else:
                    wait = None
                done, _ = await asyncio.wait({reader}, timeout=wait)
                if not done:
                    if deadline is not None:
                        self.res.leaked, self.res.closed_after_hangup = True, False
                        await self.tr.abandon()
                        return
                    self.chan.caller_hangs_up()
                    continue
                line = reader.result()
                eof = not line.endswith(b"\n")
                if not eof:
                    reader = asyncio.ensure_future(self.tr.readline())
                if line:
                    self.res.transcript.append((">>>", line))
                    if line[:7].lower() == b"failure":  # "failed to execute" marker
                        self.chan.status = "FAILURE"
                        break
                    await self.tr.send(await self._execute(line))
                if eof:
                    break
        finally:
            if not reader.done():
                reader.cancel()
        if eof and not self.chan.up:
            self.res.closed_after_hangup = True
        await self.tr.end(eof, self.send_sighup)

    async def _execute(self, line: bytes) -> bytes:
        if self.chan.caller.interactive is not None:
            # a person types at a prompt: keep the event loop (and the socket) alive meanwhile
            return await asyncio.to_thread(self.chan.execute, line)
        return self.chan.execute(line)


def collect(chan: Channel, result: CallResult) -> CallResult:
    """Copy the channel's outcome into the result (after the session ended, or timed out)."""
    result.commands = list(chan.commands)
    result.played = list(chan.played)
    result.recordings = list(chan.recordings)
    result.hungup_by_caller = chan.hungup_by_caller
    result.agistatus = chan.final_status()
    result.variables = dict(chan.vars)
    return result


async def bounded(session: Session, timeout: float | None, what: str) -> None:
    """Run the session within `timeout` seconds, or abandon it and raise CallTimeout."""
    try:
        await asyncio.wait_for(session.run(), timeout)
    except asyncio.TimeoutError:
        await session.tr.abandon()
        collect(session.chan, session.res)
        raise CallTimeout(f"{what}: the call did not end within {timeout} s "
                          f"(last command: {session.chan.commands[-1:] or 'none'})",
                          session.res) from None
    except BaseException:  # e.g. media.Unsupported: do not leave the script connected
        await session.tr.abandon()
        raise
