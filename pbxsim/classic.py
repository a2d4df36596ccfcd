"""Asterisk's side of classic AGI: run the script as a child process the way AGI(script,args)
does (launch_script + run_agi) and talk to it over its stdin/stdout.

Like Asterisk: the AGI arguments are also the process's argv (execv(script, [script, args...])),
the agi_* lines (agi_request first, no agi_network) go to its stdin, a hangup is delivered as
SIGHUP (no HANGUP line), and a non-zero exit status turns AGISTATUS=SUCCESS into FAILURE.
Unlike Asterisk, stderr is captured separately (Asterisk lets it go to its own stderr).
"""
from __future__ import annotations

import asyncio
import os
import signal
from typing import Callable, Iterable, Mapping

from .caller import Caller
from .channel import Channel
from .session import CallResult, Session, Transport, bounded, collect

# launch_script() sets these for the child (default paths of a packaged Asterisk)
AST_ENV = {
    "AST_CONFIG_DIR": "/etc/asterisk", "AST_CONFIG_FILE": "/etc/asterisk/asterisk.conf",
    "AST_MODULE_DIR": "/usr/lib/asterisk/modules", "AST_SPOOL_DIR": "/var/spool/asterisk",
    "AST_MONITOR_DIR": "/var/spool/asterisk/monitor", "AST_VAR_DIR": "/var/lib/asterisk",
    "AST_DATA_DIR": "/var/lib/asterisk", "AST_LOG_DIR": "/var/log/asterisk",
    "AST_AGI_DIR": "/var/lib/asterisk/agi-bin", "AST_KEY_DIR": "/var/lib/asterisk/keys",
    "AST_RUN_DIR": "/var/run/asterisk",
}
LINE_LIMIT = 1 << 20


class ClassicTransport(Transport):
    def __init__(self, proc: asyncio.subprocess.Process, result: CallResult, close_timeout: float):
        self.proc, self.result, self.close_timeout = proc, result, close_timeout

    async def readline(self) -> bytes:
        try:
            return await self.proc.stdout.readline()
        except (ConnectionError, OSError):
            return b""

    async def write(self, data: bytes) -> None:
        stdin = self.proc.stdin
        if stdin.is_closing():
            return
        try:
            stdin.write(data)
            await stdin.drain()
        except (ConnectionError, OSError):
            pass  # the script exited: Asterisk's write fails silently too

    def _sighup(self) -> None:
        if self.proc.returncode is None:
            try:
                self.proc.send_signal(signal.SIGHUP)
                self.result.sighups += 1
            except ProcessLookupError:
                pass

    async def notice(self) -> None:
        self._sighup()

    async def _reap(self) -> bool:
        """Wait up to close_timeout for the process to exit; kill it (a leak) if it does not."""
        try:
            self.result.exit_status = await asyncio.wait_for(self.proc.wait(), self.close_timeout)
            return True
        except asyncio.TimeoutError:
            await self.abandon()
            return False

    async def end(self, eof: bool, send_sighup: bool) -> None:
        if not eof and send_sighup:
            self._sighup()  # the loop ended while the script still runs (exit-on-hangup, failure)
        self.proc.stdin.close()  # Asterisk closes both pipes
        if not await self._reap() and eof:
            self.result.leaked = True  # closed stdout but never exits: Asterisk blocks in waitpid

    async def abandon(self) -> None:
        if self.proc.returncode is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        self.result.exit_status = await self.proc.wait()
        if not self.proc.stdin.is_closing():
            self.proc.stdin.close()


async def run_agi(argv: list[str], args: Iterable[str] = (), caller: Caller | None = None, *,
                  script: str | None = None, sounds_dir: str = ".",
                  callerid: str = "09121234567", calleridname: str = "Test",
                  language: str = "en", agiexitonhangup: bool = False,
                  on_prompt: Callable[[str], None] | None = None, close_timeout: float = 2.0,
                  timeout: float | None = 30.0, hangup_delay: float = 0.04,
                  env: Mapping[str, str] | None = None, pass_args: bool = True,
                  **channel_options) -> CallResult:
    """Run `argv` as AGI(script,args...): `script` (default argv[0]) is agi_request; with
    `pass_args` the args are appended to argv as Asterisk's execv() does.  Other keywords as in
    fastagi.run_call.  Raises CallTimeout when the call takes longer than `timeout` seconds."""
    args = tuple(args)
    variables = dict(channel_options.pop("variables", None) or {})
    if agiexitonhangup:
        variables["AGIEXITONHANGUP"] = "yes"
    chan = Channel(caller, sounds_dir=sounds_dir, callerid=callerid, calleridname=calleridname,
                   language=language, on_prompt=on_prompt, variables=variables,
                   **channel_options)
    result = CallResult()
    child_env = {**(os.environ if env is None else env), **AST_ENV}
    proc = await asyncio.create_subprocess_exec(
        *argv, *(args if pass_args else ()), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=child_env,
        limit=LINE_LIMIT)
    stderr = asyncio.ensure_future(proc.stderr.read())
    transport = ClassicTransport(proc, result, close_timeout)
    try:
        for line in chan.env(script or argv[0], args):
            await transport.send(line)
        session = Session(chan, transport, result, close_timeout=close_timeout,
                          hangup_delay=hangup_delay)
        await bounded(session, timeout, f"AGI {argv[0]}")
    finally:
        if proc.returncode is None:
            await transport.abandon()
        result.stderr = await stderr
    if result.exit_status not in (None, 0) and chan.status == "SUCCESS":
        chan.status = "FAILURE"  # agi_exec_full(): a non-zero exit status fails the AGI
    return collect(chan, result)
