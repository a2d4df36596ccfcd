"""The FastAGI server: a thin asyncio shell around the sans-IO session (``ivr/session.py``).

It subclasses panoramisk's ``Application`` but replaces its connection handling, which on
Python 3.11 spins forever on a peer that closes before the blank line, crashes on sync routes,
shifts every reply by one after an inline ``HANGUP`` and reports EOF as an unknown error.
Here headers are read with a size and time bound, ``HANGUP`` lines are events, EOF is a hangup,
and the socket is always closed when the call ends (Asterisk waits for that, see §4 of the
transcripts).

Limits: a connection has ``short_timeout`` to send its headers and Asterisk as long to answer a
command that returns at once (ANSWER, SET VARIABLE, CHANNEL STATUS, HANGUP); a command that
waits for the caller gets what it may take (WAIT FOR DIGIT's timeout, RECORD FILE's length) on
top, and ``long_timeout`` at most, which a prompt of unknown length (STREAM FILE, GET DATA)
gets. When every slot is taken, the connection that has waited longest without sending its
headers makes room (Asterisk sends them at once: an idle one is not a call); a call that still
finds no room, or asks for another script, is told ``FAVAD_NEXT=unavailable``, so the dialplan
plays the apology. Connections turned away are logged as one line per ``LOG_EVERY`` seconds.
"""
from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from panoramisk.fast_agi import Application

from ivr import protocol as p
from ivr.backend import Backend, CallContext
from ivr.events import Finish
from ivr.inflight import InFlight, left_behind
from ivr.session import Close, Command, Conversation, Effect, Unavailable
from common.tracking import new_code

log = logging.getLogger(__name__)
SHORT_TIMEOUT = 10.0  # seconds: the headers, and a reply that comes at once (it comes in ms)
LONG_TIMEOUT = 600.0  # seconds: at most, for a command that waits for the caller
HOUSEKEEPING_EVERY = 5.0
LOG_EVERY = 10.0  # seconds between two lines about connections turned away
WRITE_GRACE = 15.0  # seconds beyond the grace for writes begun: the writer's timeout, then the journal
FILES_BESIDE_CALLS = 256  # descriptors besides the calls': database, journal, logs, the listener
TELLING_MAX = 64  # refused calls being told FAVAD_NEXT=unavailable at once; beyond, just closed


class FastAgiServer(Application):
    def __init__(self, backend: Backend, script: str = "favad", max_connections: int = 4000,
                 workers: int = 64, short_timeout: float = SHORT_TIMEOUT,
                 long_timeout: float = LONG_TIMEOUT):
        super().__init__(loop=asyncio.get_running_loop())
        self.backend = backend
        self.short_timeout = short_timeout
        self.long_timeout = long_timeout
        self.script = script
        self.max_connections = max_connections
        self.lines: dict[asyncio.Task, _Line] = {}  # every connection, for the watchdog
        self.waiting: dict[asyncio.Task, _Line] = {}  # those without headers yet, oldest first
        self.telling = 0
        self.turned_away = _Tally()
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="favad-db")
        self.server: asyncio.AbstractServer | None = None
        self.inflight: InFlight | None = None
        self.on_turnaround = None  # service/metrics.py: seconds from a reply to the next command

    async def start(self, host: str, port: int) -> asyncio.AbstractServer:
        raise_file_limit(self.max_connections)
        new_code()  # imports stdnum now, not on the loop at the first complaint (~10-20 ms)
        folder = Path(self.backend.settings.data_dir) / "calls-in-progress"
        self._count_calls_left_behind(folder)
        self.inflight = InFlight(folder)
        # a backlog as deep as the calls we take: when a whole Asterisk box dials in at once
        # (a restart, a burst), asyncio's default of 100 drops SYNs and callers wait 1-3 s
        self.server = await asyncio.start_server(self.handler, host, port, limit=p.MAX_HEADER_BYTES,
                                                 backlog=min(self.max_connections, 4096))
        self._housekeeper = asyncio.create_task(self._housekeeping())
        self._watchdog = asyncio.create_task(self._watch())
        return self.server

    def _count_calls_left_behind(self, folder: Path) -> None:
        """Calls a dead server had in progress become ``system_error`` call records."""
        for count, when in left_behind(folder):
            log.warning("a FastAGI server stopped with %d call(s) in progress: recorded as system errors",
                        count)
            ctx = CallContext(started_at=when, started_mono=time.monotonic(), caller_hash=None,
                              period="", day=when.date())
            for _ in range(count):
                self.backend.perform(Finish("system_error", None), ctx)

    @property
    def active(self):
        """The tasks of the connections in progress."""
        return self.lines.keys()

    async def _watch(self) -> None:
        """Close the connections whose deadline passed (no headers, no reply in time): one sweep
        every few seconds instead of a timer per command (a timer costs ~6% of the loop at
        saturation)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(HOUSEKEEPING_EVERY, self.short_timeout / 4))
            now = loop.time()
            for line in list(self.lines.values()):
                if line.deadline is not None and now > line.deadline:
                    line.deadline = None
                    self.turned_away.add("closed: no headers or no reply in time")
                    line.writer.transport.abort()  # the call ends as if Asterisk hung up
            self.turned_away.flush()

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
        if len(self.lines) >= self.max_connections and not self._make_room():
            await self._turn_away(reader, writer)
            return
        line = _Line(writer, asyncio.get_running_loop().time() + self.short_timeout)
        self.lines[task] = self.waiting[task] = line
        try:
            await self._serve(reader, writer, line, task)
        except (p.RemoteProtocolError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError, TimeoutError) as e:
            self.turned_away.add(f"closed before a call began ({type(e).__name__})")
        except asyncio.CancelledError:  # stopped before its headers came (a call ends in _converse)
            pass
        except Exception:
            log.exception("FastAGI connection failed")
        finally:
            self.lines.pop(task, None)
            self.waiting.pop(task, None)
            await _close(writer)

    def _make_room(self) -> bool:
        """Close the connection that has waited longest for its headers, if there is one."""
        if not self.waiting:
            return False
        task = next(iter(self.waiting))
        line = self.waiting.pop(task)
        self.lines.pop(task, None)
        self.turned_away.add("closed to make room: no headers yet")
        line.writer.transport.abort()
        return True

    async def _serve(self, reader, writer, line: _Line, task: asyncio.Task) -> None:
        block = await reader.readuntil(b"\n\n")  # within line.deadline (the watchdog)
        self.waiting.pop(task, None)
        line.deadline = None
        headers = p.parse_headers(block[:-2])
        script = headers.get("agi_network_script", "").split("?", 1)[0].strip("/")
        if script != self.script:
            headers.clear()
            self.turned_away.add("unknown FastAGI script")
            await self._converse(Unavailable("favad: unknown FastAGI script (check the AGI() URL)"),
                                 reader, writer, line, None)
            return
        session, ctx = self.backend.open_call(headers)
        self.inflight.started()
        try:
            await self._converse(session, reader, writer, line, ctx)
        finally:
            self.inflight.ended()

    async def _converse(self, conv: Conversation, reader, writer, line: _Line, ctx) -> None:
        """Drive one conversation until it closes: the reading loop of every FastAGI call."""
        loop = asyncio.get_running_loop()
        out = conv.start()
        replied = None  # loop time of Asterisk's last reply, until favad's next command
        while not isinstance(out, Close):
            try:
                if isinstance(out, Effect):
                    out = conv.on_effect(await self.backend.perform_async(out.action, ctx, self.executor))
                    continue
                if isinstance(out, Command):
                    if replied is not None and self.on_turnaround is not None:
                        self.on_turnaround(loop.time() - replied)
                    replied = None
                    writer.write(out.data)
                else:
                    line.deadline = loop.time() + self._limit(out.command)
                    try:
                        data = await reader.read(4096)
                    except ConnectionError:
                        data = b""
                    finally:
                        line.deadline = None
                    conv.receive_data(data)
                    replied = loop.time()
                out = conv.next_output()
            except asyncio.CancelledError:  # the server stops: the clean-up, with no more I/O
                out = conv.abort()
            except Exception:
                log.exception("FastAGI call failed")
                out = conv.abort()

    def _limit(self, command: Command | None) -> float:
        if command is None or command.seconds is None:
            return self.short_timeout
        return min(self.long_timeout, self.short_timeout + command.seconds)

    async def _turn_away(self, reader, writer) -> None:
        """No room even for a call: tell Asterisk (its log, and the dialplan) and close."""
        self.turned_away.add(f"refused: {self.max_connections} connections, the limit")
        if self.telling >= TELLING_MAX:
            writer.transport.abort()
            return
        self.telling += 1
        try:
            await asyncio.wait_for(self._tell_unavailable(reader, writer), self.short_timeout)
        except (p.RemoteProtocolError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError, TimeoutError, asyncio.TimeoutError):
            pass
        finally:
            self.telling -= 1
            await _close(writer)

    async def _tell_unavailable(self, reader, writer) -> None:
        p.parse_headers((await reader.readuntil(b"\n\n"))[:-2]).clear()
        conv = Unavailable(f"favad: FastAGI server full ({self.max_connections} connections)")
        await self._converse(conv, reader, writer, _Line(writer, None), None)

    async def serve_until(self, stop: asyncio.Event, grace: float) -> None:
        """Serve until ``stop`` is set, then let calls in progress finish for ``grace`` seconds;
        the calls still running then end with their clean-up and records."""
        await stop.wait()
        self.server.close()  # first: Asterisk's next connection is refused and tries the next server
        self._housekeeper.cancel()
        self._watchdog.cancel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        # a connection accepted just before the close gets its handler a few loop turns later:
        # it is a call in progress too, so look again until none is left or the grace is over
        await asyncio.sleep(0.1)
        if self.active:
            log.info("waiting up to %.0f s for %d call(s) in progress", grace, len(self.active))
        while self.active and loop.time() < deadline:
            await asyncio.wait(set(self.active), timeout=deadline - loop.time())
        pending = set(self.active)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
        if self.backend.filings:  # complaints whose callers left mid-write: stored or journaled first
            await asyncio.wait(set(self.backend.filings), timeout=WRITE_GRACE)
        self.turned_away.flush(force=True)
        self.executor.shutdown(wait=True)
        self.backend.close()
        if self.inflight is not None and self.inflight.count == 0:
            self.inflight.close()  # every call ended with its record: nothing left behind


def raise_file_limit(connections: int) -> None:
    """Room for every call's socket: a soft limit of 1,024 descriptors (systemd's and most
    shells' default) would refuse calls long before ``max_connections``. The soft limit is
    raised as far as the hard one allows; a hard limit too low is logged, with its fix."""
    need = connections + FILES_BESIDE_CALLS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < need:
            log.warning("open files limited to %d (hard limit): fewer than max_connections=%d calls "
                        "fit; raise LimitNOFILE in the systemd unit or `ulimit -Hn`", new, connections)


class _Line:
    """One connection, as the watchdog sees it."""

    __slots__ = ("writer", "deadline")

    def __init__(self, writer: asyncio.StreamWriter, deadline: float | None):
        self.writer = writer
        self.deadline = deadline  # loop time by which the peer must have sent what we wait for


class _Tally:
    """Connections turned away, by reason, logged at most once every LOG_EVERY seconds: a flood
    of them is a line, not a line each."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.logged_at = -LOG_EVERY

    def add(self, why: str) -> None:
        self.counts[why] += 1
        self.flush()

    def flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.counts and (force or now - self.logged_at >= LOG_EVERY):
            log.warning("FastAGI connections turned away: %s",
                        ", ".join(f"{n} {why}" for why, n in self.counts.most_common()))
            self.counts.clear()
            self.logged_at = now


async def _close(writer: asyncio.StreamWriter) -> None:
    try:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 5)
    except (ConnectionError, TimeoutError, asyncio.TimeoutError, OSError):
        pass
