"""Asterisk 22's Manager Interface on loopback, byte for byte as recorded in
/work/shared/asterisk/TRANSCRIPTS.md §10-12 and raw/ami-*.log: the banner
``Asterisk Call Manager/11.0.0\\r\\n``, CRLF lines, messages ended by an empty line, the ActionID
echoed right after ``Response:``, EventList ``start``/``Complete`` lists, ``Action: Command``
output as ``Output:`` headers, ``Permission denied`` before Login, a refused Login answered after
about a second and followed by the connection closing. ``ModuleCheck`` answers as manager.c's
``manager_modulecheck`` does in Asterisk 22 (an empty ``Version:`` header, or the error ``Module
not loaded``) from ``modules``, the loaded modules, a stock install's by default.

Queue lists follow app_queue.c (QueueParams, QueueMember, QueueEntry, QueueSummary, the
ActionID last). Channel events carry the channel state string of manager.c, including
``ChanVariable: NAME=value`` for each ``channelvars`` name, so events hold a caller's number and
name exactly where Asterisk puts them. A small pbx_config stands behind ``dialplan reload`` and
``dialplan show``: it reads the extensions files it is given, and a file with a syntax error
contributes no context.

Faults for tests: ``delays`` (an action answered late, or never), ``drop()`` (connection loss),
``split_non_ascii`` (a message with a Persian character is written in two TCP writes cut inside
that character), ``reject_reloads`` (the next N reloads find the files unparsable, as an Asterisk
whose parser is stricter than ours would).
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
STATE_DESC = {0: "Down", 1: "Rsrvd", 2: "OffHook", 3: "Dialing", 4: "Ring", 5: "Ringing", 6: "Up",
              7: "Busy"}
DEVICE_NOT_INUSE, DEVICE_INUSE, DEVICE_UNAVAILABLE = 1, 2, 5
_ids = itertools.count(1)
_START = time.time()
# actions a module registers (manager.c knows them only while it is loaded)
PROVIDED_BY = {"queuestatus": "app_queue", "queuesummary": "app_queue"}
# loaded on an ordinary Asterisk 22 install, in part: all the 128 dialplan and IVR use, and
# some neighbours
STOCK_MODULES = frozenset({
    "app_playback", "app_queue", "app_dial", "app_echo", "app_senddtmf", "app_stack", "app_verbose",
    "app_record", "app_read", "app_exec", "app_originate", "func_cdr", "func_callerid", "func_channel",
    "func_logic", "func_strings", "func_global", "func_db", "func_timeout", "res_agi", "res_speech",
    "res_musiconhold", "res_srtp", "res_rtp_asterisk", "res_pjsip", "res_pjsip_session",
    "res_stasis", "res_ari", "pbx_config", "pbx_spool", "chan_pjsip",
    "chan_bridge_media", "bridge_simple", "bridge_softmix", "cdr_csv", "cdr_custom", "cel_custom",
    "codec_alaw", "codec_ulaw", "codec_gsm", "codec_resample", "format_wav", "format_sln",
    "format_pcm", "format_gsm", "format_wav_gsm",
})


@dataclass
class SimChannel:
    name: str
    caller_num: str = "09121234567"
    caller_name: str = "Test"
    state: int = 6
    context: str = "favad-ivr"
    exten: str = "start"
    priority: int = 4
    application: str = "AGI"
    app_data: str = "agi://127.0.0.1:4573/favad,28"
    variables: dict[str, str] = field(default_factory=dict)
    language: str = "fa"
    started: float = field(default_factory=time.time)
    uniqueid: str = field(default_factory=lambda: f"{int(_START)}.{next(_ids)}")

    @property
    def linkedid(self) -> str:
        return self.uniqueid


@dataclass
class SimMember:
    name: str
    interface: str
    status: int = DEVICE_NOT_INUSE
    paused: bool = False
    calls: int = 0


@dataclass
class SimQueue:
    name: str
    members: list[SimMember] = field(default_factory=list)
    entries: list[tuple[SimChannel, float]] = field(default_factory=list)  # (caller, joined at)
    completed: int = 0
    abandoned: int = 0
    holdtime: int = 0
    talktime: int = 0
    strategy: str = "rrmemory"


def message(*pairs: tuple[str, object]) -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in pairs) + b"\r\n"


def _response(aid: str | None, status: str, *rest: tuple[str, object]) -> bytes:
    return message(("Response", status), *([("ActionID", aid)] if aid else []), *rest)


def _aid(aid: str | None) -> list[tuple[str, str]]:
    return [("ActionID", aid)] if aid else []


class AmiPeer:
    """One Asterisk's AMI: start() it, then point the client at ``127.0.0.1:port``."""

    def __init__(self, username: str = "favad", secret: str = "favad-test-secret", *,
                 channelvars: tuple[str, ...] = ("FAVAD_STEP", "FAVAD_PROVINCE"),
                 dialplan_files: tuple[str, ...] = (), auth_fail_delay: float = 1.0,
                 split_non_ascii: bool = True, modules: frozenset[str] = STOCK_MODULES):
        self.users = {username: secret}
        self.channelvars = channelvars
        self.dialplan_files = [Path(p) for p in dialplan_files]
        self.auth_fail_delay = auth_fail_delay
        self.split_non_ascii = split_non_ascii
        self.channels: list[SimChannel] = []
        self.queues: list[SimQueue] = []
        self.delays: dict[str, float] = {}  # action name (lower case) -> seconds; inf: never
        self.reject_reloads = 0
        self.modules = set(modules)  # loaded, by name without `.so`
        self.contexts: dict[str, list[dict]] = {}
        self.logins = 0
        self.actions: list[str] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._sessions: dict[asyncio.StreamWriter, dict] = {}
        self._tasks: set[asyncio.Task] = set()

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()

    def drop(self) -> None:
        """Connection loss: every AMI session is cut without a word (Asterisk restarting)."""
        for writer in list(self._sessions):
            writer.transport.abort()
        self._sessions.clear()

    # ---- the session -----------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())
        session = {"user": None, "events": True, "writer": writer}
        self._sessions[writer] = session
        try:
            await self._write(writer, BANNER)
            while True:
                block = await reader.readuntil(b"\r\n\r\n")
                headers = _parse(block)
                if not await self._action(session, headers):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # stop(): end quietly (asyncio's stream callback chokes on a cancelled task)
        finally:
            self._sessions.pop(writer, None)
            self._tasks.discard(asyncio.current_task())
            with contextlib.suppress(Exception):
                writer.close()

    async def _action(self, session: dict, h: dict[str, list[str]]) -> bool:
        """Answer one action; False when the session ends."""
        writer = session["writer"]
        name = _one(h, "action")
        aid = h.get("actionid", [None])[0]
        self.actions.append(name)
        delay = self.delays.get(name.lower(), 0)
        if delay:
            await asyncio.sleep(delay if delay != float("inf") else 3600)
        low = name.lower()
        if low == "login":
            user, secret = _one(h, "username"), _one(h, "secret")
            if self.users.get(user) != secret or not user:
                await asyncio.sleep(self.auth_fail_delay)
                await self._write(writer, _response(aid, "Error", ("Message", "Authentication failed")))
                writer.close()
                return False
            session["user"] = user
            session["events"] = _one(h, "events").lower() != "off"
            self.logins += 1
            await self._write(writer, _response(aid, "Success", ("Message", "Authentication accepted")))
            if session["events"]:
                peer = writer.get_extra_info("peername")
                await self._write(writer, message(
                    ("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", self._uptime()),
                    ("LastReload", self._uptime()), ("Status", "Fully Booted")))
                await self._write(writer, message(
                    ("Event", "SuccessfulAuth"), ("Privilege", "security,all"),
                    ("EventTV", _event_tv()), ("Severity", "Informational"), ("Service", "AMI"),
                    ("EventVersion", 1), ("AccountID", user), ("SessionID", f"0x{id(session):x}"),
                    ("LocalAddress", f"IPV4/TCP/127.0.0.1/{self.port}"),
                    ("RemoteAddress", f"IPV4/TCP/{peer[0]}/{peer[1]}"), ("UsingPassword", 0),
                    ("SessionTV", _event_tv())))
            return True
        if session["user"] is None:
            await self._write(writer, _response(aid, "Error", ("Message", "Permission denied")))
            return True
        if low == "logoff":
            await self._write(writer, _response(aid, "Goodbye", ("Message", "Thanks for all the fish.")))
            writer.close()
            return False
        handler = {"ping": self._ping, "corestatus": self._core_status,
                   "coreshowchannels": self._core_show_channels, "queuestatus": self._queue_status,
                   "queuesummary": self._queue_summary, "command": self._command,
                   "modulecheck": self._module_check}.get(low)
        if PROVIDED_BY.get(low, "") not in {m.lower() for m in self.modules} | {""}:
            handler = None  # the module that registers the action is not loaded
        if handler is None:
            await self._write(writer, _response(aid, "Error", (
                "Message", f"Invalid/unknown command: {name}. Use Action: ListCommands to show "
                           f"available commands.")))
            return True
        for chunk in handler(aid, h):
            await self._write(writer, chunk)
        return True

    # ---- actions ------------------------------------------------------------------------
    def _ping(self, aid, _h):
        yield _response(aid, "Success", ("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}"))

    def _core_status(self, aid, _h):
        started = time.gmtime(_START)
        yield _response(aid, "Success", ("CoreStartupDate", time.strftime("%Y-%m-%d", started)),
                        ("CoreStartupTime", time.strftime("%H:%M:%S", started)),
                        ("CoreReloadDate", time.strftime("%Y-%m-%d", started)),
                        ("CoreReloadTime", time.strftime("%H:%M:%S", started)),
                        ("CoreCurrentCalls", len(self.channels)), ("CoreProcessedCalls", next(_ids)))

    def _core_show_channels(self, aid, _h):
        yield _response(aid, "Success", ("EventList", "start"), ("Message", "Channels will follow"))
        for ch in self.channels:
            yield message(("Event", "CoreShowChannel"), *_aid(aid), *self.channel_state(ch),
                          ("Application", ch.application), ("ApplicationData", ch.app_data),
                          ("Duration", _hms(time.time() - ch.started)), ("BridgeId", ""))
        yield message(("Event", "CoreShowChannelsComplete"), *_aid(aid), ("EventList", "Complete"),
                      ("ListItems", len(self.channels)))

    def _queue_status(self, aid, h):
        wanted = _one(h, "queue")
        yield _response(aid, "Success", ("EventList", "start"), ("Message", "Queue status will follow"))
        items = 0
        now = time.time()
        for q in self.queues:
            if wanted and wanted.lower() != q.name.lower():
                continue
            total = q.completed + q.abandoned
            yield message(("Event", "QueueParams"), ("Queue", q.name), ("Max", 0),
                          ("Strategy", q.strategy), ("Calls", len(q.entries)), ("Holdtime", q.holdtime),
                          ("TalkTime", q.talktime), ("Completed", q.completed), ("Abandoned", q.abandoned),
                          ("ServiceLevel", 60), ("ServicelevelPerf", "0.0"),
                          ("ServicelevelPerf2", f"{100.0 * q.completed / total if total else 0:.1f}"),
                          ("Weight", 0), *_aid(aid))
            items += 1
            for m in q.members:
                yield message(("Event", "QueueMember"), ("Queue", q.name), ("Name", m.name),
                              ("Location", m.interface), ("StateInterface", m.interface),
                              ("Membership", "static"), ("Penalty", 0), ("CallsTaken", m.calls),
                              ("LastCall", 0), ("LastPause", 0), ("LoginTime", int(_START)),
                              ("InCall", int(m.status == DEVICE_INUSE)), ("Status", m.status),
                              ("Paused", int(m.paused)), ("PausedReason", ""), ("Wrapuptime", 0),
                              *_aid(aid))
                items += 1
            for pos, (ch, joined) in enumerate(q.entries, 1):
                yield message(("Event", "QueueEntry"), ("Queue", q.name), ("Position", pos),
                              ("Channel", ch.name), ("Uniqueid", ch.uniqueid),
                              ("CallerIDNum", ch.caller_num), ("CallerIDName", ch.caller_name),
                              ("ConnectedLineNum", "unknown"), ("ConnectedLineName", "unknown"),
                              ("Wait", int(now - joined)), ("Priority", 0), *_aid(aid))
                items += 1
        yield message(("Event", "QueueStatusComplete"), *_aid(aid), ("EventList", "Complete"),
                      ("ListItems", items))

    def _queue_summary(self, aid, h):
        wanted = _one(h, "queue")
        yield _response(aid, "Success", ("EventList", "start"), ("Message", "Queue summary will follow"))
        items = 0
        now = time.time()
        for q in self.queues:
            if wanted and wanted.lower() != q.name.lower():
                continue
            logged_in = [m for m in q.members if m.status not in (DEVICE_UNAVAILABLE, 4)]
            available = [m for m in logged_in if m.status in (0, DEVICE_NOT_INUSE) and not m.paused]
            longest = max((int(now - joined) for _, joined in q.entries), default=0)
            yield message(("Event", "QueueSummary"), ("Queue", q.name), ("LoggedIn", len(logged_in)),
                          ("Available", len(available)), ("Callers", len(q.entries)),
                          ("HoldTime", q.holdtime), ("TalkTime", q.talktime),
                          ("LongestHoldTime", longest), *_aid(aid))
            items += 1
        yield message(("Event", "QueueSummaryComplete"), *_aid(aid), ("EventList", "Complete"),
                      ("ListItems", items))

    def _module_check(self, aid, h):
        # loader.c find_resource: names compared without case, with or without `.so`
        name = _one(h, "module").lower()
        name = name[:-3] if len(name) > 3 and name.endswith(".so") else name
        if name not in {m.lower() for m in self.modules}:
            yield _response(aid, "Error", ("Message", "Module not loaded"))
            return
        yield _response(aid, "Success", ("Version", ""))  # "Version: \r\n": empty since the move to git

    def _command(self, aid, h):
        ok, lines = self.cli(_one(h, "command"))
        yield _response(aid, "Success" if ok else "Error", ("Message", "Command output follows"),
                        *(("Output", line) for line in lines if line))

    # ---- the CLI behind Action: Command ----------------------------------------------------
    def cli(self, command: str) -> tuple[bool, list[str]]:
        words = command.split()
        if words[:2] == ["dialplan", "reload"]:
            self.reload_dialplan()
            return True, ["Dialplan reloaded."]
        if words[:2] == ["dialplan", "show"]:
            return self.show_dialplan(words[2] if len(words) > 2 else "")
        if words[:3] == ["core", "show", "version"]:
            return True, ["Asterisk 22.10.1 built by root @ vm on a x86_64 running Linux on "
                          "2026-11-27 21:50:33 UTC"]
        if words[:3] == ["core", "show", "channels"]:
            return True, [f"{'Channel':<64} {'Location':<32} {'State':<7} {'Application(Data)':<30}",
                          f"{len(self.channels)} active channels", f"{len(self.channels)} active calls",
                          f"{next(_ids)} calls processed"]
        return False, [f"No such command '{command}' (type 'core show help {command}' for other "
                       f"possible commands)"]

    def reload_dialplan(self) -> None:
        """pbx_config: read the files again; a file Asterisk cannot parse gives no context."""
        contexts: dict[str, list[dict]] = {}
        rejected = self.reject_reloads > 0
        self.reject_reloads -= rejected
        for path in self.dialplan_files:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            parsed = None if rejected else _parse_extensions(text, path.name)
            if parsed is not None:
                contexts.update(parsed)
        self.contexts = contexts

    def show_dialplan(self, what: str) -> tuple[bool, list[str]]:
        exten, _, context = what.rpartition("@") if "@" in what else ("", "", what)
        names = [context] if context else sorted(self.contexts)
        if context and context not in self.contexts:
            return False, [f"There is no existence of '{context}' context",
                           f"Command 'dialplan show {what}' failed."]
        out: list[str] = []
        n_ext = n_prio = 0
        for name in names:
            rows = [r for r in self.contexts[name] if not exten or r["exten"] == exten]
            if exten and not rows:
                return False, [f"There is no existence of {exten}@{context} extension",
                               f"Command 'dialplan show {what}' failed."]
            out.append(f"[ Context '{name}' created by 'pbx_config' ]")
            seen: set[str] = set()
            for r in rows:
                step = f"{r['priority']}. {r['app']}({r['data']})"
                if r["exten"] not in seen:
                    seen.add(r["exten"])
                    n_ext += 1
                    first = f"'{r['exten']}' =>"
                else:
                    first = f"   [{r['label']}]" if r["label"] else ""
                n_prio += 1
                out.append(f"  {first:<17} {step:<45} [{r['file']}:{r['line']}]")
        out.append(f"-= {n_ext} extension{'s' * (n_ext != 1)} ({n_prio} priorit{'ies' if n_prio != 1 else 'y'})"
                   f" in {len(names)} context{'s' * (len(names) != 1)}. =-")
        return True, out

    # ---- events -------------------------------------------------------------------------
    def channel_state(self, ch: SimChannel, prefix: str = "") -> list[tuple[str, object]]:
        """manager.c's channel state string, ChanVariable lines included."""
        pairs = [("Channel", ch.name), ("ChannelState", ch.state),
                 ("ChannelStateDesc", STATE_DESC.get(ch.state, "Unknown")),
                 ("CallerIDNum", ch.caller_num), ("CallerIDName", ch.caller_name),
                 ("ConnectedLineNum", "<unknown>"), ("ConnectedLineName", "<unknown>"),
                 ("Language", ch.language), ("AccountCode", ""), ("Context", ch.context),
                 ("Exten", ch.exten), ("Priority", ch.priority), ("Uniqueid", ch.uniqueid),
                 ("Linkedid", ch.linkedid)]
        pairs += [("ChanVariable", f"{v}={ch.variables.get(v, '')}") for v in self.channelvars]
        return [(prefix + k, v) for k, v in pairs]

    async def emit(self, *pairs: tuple[str, object]) -> None:
        """An event to every logged-in session that asked for events."""
        await self.emit_raw(message(*pairs))

    async def emit_raw(self, data: bytes) -> None:
        """Bytes (e.g. several events) to every session that asked for events, in one write."""
        for writer, session in list(self._sessions.items()):
            if session["user"] and session["events"] and not writer.is_closing():
                await self._write(writer, data)

    async def new_channel(self, ch: SimChannel) -> None:
        self.channels.append(ch)
        await self.emit(("Event", "Newchannel"), ("Privilege", "call,all"), *self.channel_state(ch))

    async def set_variable(self, ch: SimChannel, name: str, value: str) -> None:
        ch.variables[name] = value
        await self.emit(("Event", "VarSet"), ("Privilege", "dialplan,all"), *self.channel_state(ch),
                        ("Variable", name), ("Value", value))

    async def hangup(self, ch: SimChannel) -> None:
        if ch in self.channels:
            self.channels.remove(ch)
        for q in self.queues:
            q.entries = [(c, t) for c, t in q.entries if c is not ch]
        await self.emit(("Event", "Hangup"), ("Privilege", "call,all"), *self.channel_state(ch),
                        ("Cause", 16), ("Cause-txt", "Normal Clearing"))

    async def join_queue(self, queue: SimQueue, ch: SimChannel, waited: float = 0.0) -> None:
        queue.entries.append((ch, time.time() - waited))
        ch.application, ch.app_data = "Queue", queue.name
        await self.emit(("Event", "QueueCallerJoin"), ("Privilege", "agent,all"), *self.channel_state(ch),
                        ("Queue", queue.name), ("Position", len(queue.entries)),
                        ("Count", len(queue.entries)))

    async def abandon_queue(self, queue: SimQueue, ch: SimChannel) -> None:
        held = next((time.time() - t for c, t in queue.entries if c is ch), 0)
        queue.abandoned += 1
        await self.emit(("Event", "QueueCallerAbandon"), ("Privilege", "agent,all"),
                        *self.channel_state(ch), ("Queue", queue.name), ("Position", 1),
                        ("OriginalPosition", 1), ("HoldTime", int(held)))
        await self.hangup(ch)

    # ---- the socket -----------------------------------------------------------------------
    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if writer.is_closing():
            return
        cut = _inside_multibyte(data) if self.split_non_ascii else None
        try:
            if cut is None:
                writer.write(data)
                await writer.drain()
                return
            writer.write(data[:cut])  # the first half of a UTF-8 character ends this write
            await writer.drain()
            await asyncio.sleep(0.02)
            writer.write(data[cut:])
            await writer.drain()
        except ConnectionError:
            pass

    @staticmethod
    def _uptime() -> int:
        return int(time.time() - _START)


# ---- a peer on its own thread, for code that runs its own event loop (the CLI) -------------
class PeerThread:
    """Runs an AmiPeer on a private event loop in a thread: ``with PeerThread(peer) as port:``."""

    def __init__(self, peer: AmiPeer):
        self.peer = peer
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="ami-peer", daemon=True)

    def __enter__(self) -> int:
        self._thread.start()
        return self.run(self.peer.start())

    def run(self, coro):
        """Run a coroutine on the peer's loop (e.g. ``peer.new_channel(...)``) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def call(self, fn, *args):
        """Call a plain method of the peer on its loop."""
        async def _call():
            return fn(*args)
        return self.run(_call())

    def __exit__(self, *exc) -> None:
        self.run(self.peer.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


# ---- helpers --------------------------------------------------------------------------------
def _parse(block: bytes) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in block.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            out.setdefault(key.strip().lower(), []).append(value.strip())
    return out


def _one(h: dict[str, list[str]], key: str) -> str:
    return h.get(key, [""])[0]


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def _event_tv() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}+0000"


def _inside_multibyte(data: bytes) -> int | None:
    """An offset that falls inside the first multi-byte UTF-8 character, if there is one."""
    for i, b in enumerate(data):
        if b >= 0xC0:
            return i + 1
    return None


def _parse_extensions(text: str, file_name: str) -> dict[str, list[dict]] | None:
    """The contexts of one extensions file, or None when Asterisk would reject it."""
    contexts: dict[str, list[dict]] = {}
    current: str | None = None
    last_exten: str | None = None
    counters: dict[tuple[str, str], int] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            if "]" not in line:
                return None  # "parse error: no closing ']'"
            current = line[1:line.index("]")]
            contexts.setdefault(current, [])
            last_exten = None
            continue
        key, sep, value = line.partition("=")
        if not sep:
            return None  # "No '=' (equal sign) in line N"
        key, value = key.strip().lower(), value.lstrip(">").strip()
        if current is None or key not in ("exten", "same"):
            continue
        if key == "exten":
            exten, _, rest = value.partition(",")
            last_exten = exten.strip()
        elif last_exten is None:
            return None  # `same =>` without an extension before it
        else:
            exten, rest = last_exten, value
        prio, _, app = rest.partition(",")
        prio, label = prio.strip(), ""
        if "(" in prio:
            prio, _, label = prio.partition("(")
            label = label.rstrip(")")
        if prio == "n":
            number = counters.get((current, exten), 0) + 1
        elif prio.isdigit():
            number = int(prio)
        else:
            return None
        counters[(current, exten)] = number
        name, paren, data = app.strip().partition("(")
        if paren and not data.endswith(")"):
            return None
        contexts[current].append({"exten": exten, "priority": number, "label": label,
                                  "app": name.strip(), "data": data[:-1] if paren else "",
                                  "file": file_name, "line": lineno})
    return contexts


def _strip_comment(line: str) -> str:
    out, escaped = [], False
    for ch in line:
        if ch == ";" and not escaped:
            break
        escaped = ch == "\\" and not escaped
        out.append(ch)
    return "".join(out)
