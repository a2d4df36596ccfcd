"""Asterisk's side of FastAGI: connect to a FastAGI server the way AGI(agi://host:port/script)
does, send the agi_* headers, then answer the script's commands as Asterisk 22 would."""
from __future__ import annotations

import asyncio
from typing import Callable, Iterable

from .caller import Caller
from .channel import Channel
from .session import CallResult, Session, Transport, bounded, collect

LINE_LIMIT = 1 << 20  # the script may send long lines; never fail on the reader's limit


class FastTransport(Transport):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 result: CallResult):
        self.reader, self.writer, self.result = reader, writer, result

    async def readline(self) -> bytes:
        try:
            return await self.reader.readline()
        except (ConnectionError, OSError):
            return b""

    async def write(self, data: bytes) -> None:
        if self.writer.is_closing():
            return
        self.writer.write(data)
        try:
            await self.writer.drain()
        except (ConnectionError, OSError):
            pass  # the script is gone: Asterisk's write fails silently too

    async def notice(self) -> None:
        await self.send(b"HANGUP\n")

    async def end(self, eof: bool, send_sighup: bool) -> None:
        if send_sighup:
            await self.send(b"HANGUP\n")
        await self.abandon()

    async def abandon(self) -> None:
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)
        except (ConnectionError, OSError):
            pass
        except asyncio.TimeoutError:  # a script that reads nothing: drop the unsent bytes
            self.writer.transport.abort()


async def run_call(host: str, port: int, script: str = "favad", args: Iterable[str] = (),
                   caller: Caller | None = None, *, sounds_dir: str = ".",
                   callerid: str = "09121234567", calleridname: str = "Test",
                   language: str = "en", agiexitonhangup: bool = False,
                   on_prompt: Callable[[str], None] | None = None, close_timeout: float = 2.0,
                   timeout: float | None = 30.0, hangup_delay: float = 0.04,
                   request: str | None = None, **channel_options) -> CallResult:
    """Place one call: AGI(agi://host:port/script,args...) on a Local channel.

    `script` may carry a query string (`ivr?lang=fa`); `request` overrides the agi_request URL.
    `channel_options` go to Channel (channel name, uniqueid, context, extension, priority,
    threadid, variables, astdb).  `hangup_delay` is how long after a hangup the unsolicited
    HANGUP line comes when the script sends nothing (~40 ms on a real Asterisk).  Raises
    CallTimeout when the whole call takes longer than `timeout` seconds.
    """
    variables = dict(channel_options.pop("variables", None) or {})
    if agiexitonhangup:
        variables["AGIEXITONHANGUP"] = "yes"
    chan = Channel(caller, sounds_dir=sounds_dir, callerid=callerid, calleridname=calleridname,
                   language=language, on_prompt=on_prompt, variables=variables,
                   **channel_options)
    result = CallResult()
    reader, writer = await asyncio.open_connection(host, port, limit=LINE_LIMIT)
    transport = FastTransport(reader, writer, result)
    url = request or f"agi://{host}:{port}" + (f"/{script}" if script else "")
    # launch_netscript() writes these two before setup_env(); no script, no agi_network_script
    await transport.send(b"agi_network: yes\n")
    if script:
        await transport.send(f"agi_network_script: {script}\n".encode("utf-8", "surrogateescape"))
    for line in chan.env(url, tuple(args)):
        await transport.send(line)
    session = Session(chan, transport, result, close_timeout=close_timeout,
                      hangup_delay=hangup_delay)
    await bounded(session, timeout, f"FastAGI {url}")
    return collect(chan, result)
