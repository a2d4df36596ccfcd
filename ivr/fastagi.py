"""The FastAGI server: a thin asyncio shell around ``AgiSession``.

It subclasses panoramisk's ``Application`` but replaces its connection handling, which on
Python 3.11 spins forever on a peer that closes before the blank line, crashes on sync routes,
shifts every reply by one after an inline ``HANGUP`` and reports EOF as an unknown error.
Here headers are read with a size and time bound, ``HANGUP`` lines are events, EOF is a hangup,
and the socket is always closed when the call ends (Asterisk waits for that, see §4 of the
transcripts).
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from panoramisk.fast_agi import Application

from ivr import protocol as p
from ivr.backend import Backend
from ivr.events import FileComplaint, Finish
from ivr.session import Close, Effect

log = logging.getLogger(__name__)
HEADER_TIMEOUT = 10.0  # seconds for Asterisk to send the headers (it sends them at once)
REPLY_TIMEOUT = 600.0  # a RECORD FILE or a long GET DATA can legitimately take minutes
HOUSEKEEPING_EVERY = 5.0


class FastAgiServer(Application):
    def __init__(self, backend: Backend, script: str = "favad", max_connections: int = 4000,
                 workers: int = 64, header_timeout: float = HEADER_TIMEOUT,
                 reply_timeout: float = REPLY_TIMEOUT):
        super().__init__(loop=asyncio.get_running_loop())
        self.backend = backend
        backend.refresh_inline = False  # _housekeeping keeps its reference data fresh
        self.header_timeout = header_timeout
        self.reply_timeout = reply_timeout
        self.script = script
        self.max_connections = max_connections
        self.lines: dict[asyncio.Task, _Line] = {}  # the calls in progress, for the reply watchdog
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="favad-db")
        self.server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int) -> asyncio.AbstractServer:
        # a backlog as deep as the calls we take: when a whole Asterisk box dials in at once
        # (a restart, a burst), asyncio's default of 100 drops SYNs and callers wait 1-3 s
        self.server = await asyncio.start_server(self.handler, host, port, limit=p.MAX_HEADER_BYTES,
                                                 backlog=min(self.max_connections, 4096))
        self._housekeeper = asyncio.create_task(self._housekeeping())
        self._watchdog = asyncio.create_task(self._watch_replies())
        return self.server

    @property
    def active(self):
        """The tasks of the calls in progress."""
        return self.lines.keys()

    async def _watch_replies(self) -> None:
        """Close the calls whose Asterisk has not replied within ``reply_timeout``: one sweep
        every few seconds instead of a timer per command (a timer costs ~6% of the loop at
        saturation, and the timeout is ten minutes)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(HOUSEKEEPING_EVERY, self.reply_timeout / 4))
            now = loop.time()
            for line in list(self.lines.values()):
                if line.deadline is not None and now > line.deadline:
                    log.info("no reply in %.0f s: closing a FastAGI connection", self.reply_timeout)
                    line.deadline = None
                    line.writer.transport.abort()  # the call ends as if Asterisk hung up

    async def _housekeeping(self) -> None:
        """Off the call path: journaled complaints go in as soon as the database is back, the
        reference data is reloaded when stale, and the caller counts are written when due."""
        loop = asyncio.get_running_loop()
        while True:
            for job in (self.backend.replay_journal, self.backend.directory, self.backend.housekeep):
                try:
                    await loop.run_in_executor(self.executor, job)
                except Exception:
                    log.exception("background %s failed", job.__name__)
            await asyncio.sleep(HOUSEKEEPING_EVERY)

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if len(self.active) >= self.max_connections:
            log.warning("connection limit (%d) reached: refusing a connection", self.max_connections)
            await _close(writer)
            return
        self.lines[task] = line = _Line(writer)
        try:
            await self._serve(reader, writer, line)
        except (p.RemoteProtocolError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError, TimeoutError) as e:
            log.info("closing a FastAGI connection: %s", type(e).__name__)
        except Exception:
            log.exception("FastAGI connection failed")
        finally:
            self.lines.pop(task, None)
            await _close(writer)

    async def _serve(self, reader, writer, line: _Line) -> None:
        block = await asyncio.wait_for(reader.readuntil(b"\n\n"), self.header_timeout)
        headers = p.parse_headers(block[:-2])
        script = headers.get("agi_network_script", "").split("?", 1)[0].strip("/")
        if script != self.script:
            log.warning("unknown FastAGI script requested; closing")
            return
        loop = asyncio.get_running_loop()
        session, ctx = self.backend.open_call(headers)
        replies = p.ReplyReader()
        out = session.start()
        while not isinstance(out, Close):
            if isinstance(out, Effect):
                if isinstance(out.action, Finish):  # only queues the call record: no thread hop
                    event = self.backend.perform(out.action, ctx)
                elif isinstance(out.action, FileComplaint):  # awaits the group writer directly
                    event = await self.backend.file_async(out.action, ctx)
                else:
                    event = await loop.run_in_executor(self.executor, self.backend.perform, out.action, ctx)
                out = session.on_effect(event)
                continue
            writer.write(out.line.encode() + b"\n")
            reply = await _read_reply(reader, replies, session, line, loop.time() + self.reply_timeout)
            out = session.on_connection_lost() if reply is None else session.on_reply(reply)

    async def serve_until(self, stop: asyncio.Event, grace: float) -> None:
        """Serve until ``stop`` is set, then let calls in progress finish for ``grace`` seconds."""
        await stop.wait()
        self.server.close()
        self._housekeeper.cancel()
        self._watchdog.cancel()
        if self.active:
            log.info("waiting up to %.0f s for %d call(s) in progress", grace, len(self.active))
            _, pending = await asyncio.wait(set(self.active), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        self.executor.shutdown(wait=True)
        self.backend.close()


class _Line:
    """One call's connection, as the reply watchdog sees it."""

    __slots__ = ("writer", "deadline")

    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.deadline: float | None = None  # loop time by which Asterisk must reply, while waiting


async def _read_reply(reader, replies: p.ReplyReader, session, line: _Line, deadline: float) -> p.Reply | None:
    """The reply to the command just sent; HANGUP lines on the way are noted. None on EOF."""
    while (reply := replies.next_reply(session.note_hangup)) is None:
        line.deadline = deadline
        data = await reader.read(4096)
        line.deadline = None
        if not data:
            return None
        replies.feed(data)
    return reply


async def _close(writer: asyncio.StreamWriter) -> None:
    try:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 5)
    except (ConnectionError, TimeoutError, OSError):
        pass
