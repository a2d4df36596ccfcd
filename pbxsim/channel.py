"""A sans-IO model of one Asterisk 22 channel running AGI: feed it command lines, get reply bytes.

The drivers (fastagi.py, classic.py) own the I/O and the timing; this class owns what res_agi.c
decides: the command table and its dead-channel column, argument checks (520), the replies, the
channel variables, and AGISTATUS.  After a hangup (`needhup`), the driver must deliver the
hangup notice (`HANGUP\\n` or SIGHUP) before anything else and then call enter_dead().
"""
from __future__ import annotations

from typing import Callable

from . import dialplan, media
from .agiparse import match_command, parse_args, scan_float, scan_int
from .caller import Caller
from .media import USAGE
from .usage import usage_reply

UNKNOWN = b"510 Invalid or unknown command\n"
DEAD = b"511 Command Not Permitted on a dead channel or intercept routine\n"
STATE_UP = 6


def _fixed(reply: str, *argcs: int):
    """A handler that only checks the argument count (argc as res_agi counts it)."""
    def handler(ch: Channel, argv: list[str]):
        return (reply, True) if not argcs or len(argv) in argcs else USAGE
    return handler


def _channel_status(ch: Channel, argv: list[str]):
    if len(argv) == 2:
        return f"200 result={STATE_UP}", True
    if len(argv) == 3:
        return f"200 result={STATE_UP if argv[2] == ch.name else -1}", True
    return USAGE


def _hangup(ch: Channel, argv: list[str]):
    if len(argv) > 2:
        return USAGE
    if len(argv) == 2 and argv[1] != ch.name:
        return "200 result=-1", True  # no such channel
    ch.hang_up(by_caller=False)
    return "200 result=1", True


def _get_variable(ch: Channel, argv: list[str]):
    if len(argv) != 3:
        return USAGE
    value = dialplan.read_variable(ch, argv[2]) if argv[2] else None
    return (f"200 result=1 ({value})" if value is not None else "200 result=0"), True


def _get_full_variable(ch: Channel, argv: list[str]):
    if len(argv) not in (4, 5):
        return USAGE
    if len(argv) == 5 and argv[4] != ch.name:
        return "200 result=0", True
    return f"200 result=1 ({dialplan.substitute(ch, argv[3])})", True


def _set_variable(ch: Channel, argv: list[str]):
    if len(argv) != 4:
        return USAGE
    dialplan.write_variable(ch, argv[2], argv[3])
    return "200 result=1", True


def _verbose(ch: Channel, argv: list[str]):
    return ("200 result=1", True) if len(argv) >= 2 else USAGE


def _db_get(ch: Channel, argv: list[str]):
    if len(argv) != 4:
        return USAGE
    value = ch.db.get((argv[2], argv[3]))
    return (f"200 result=1 ({value})" if value is not None else "200 result=0"), True


def _db_put(ch: Channel, argv: list[str]):
    if len(argv) != 5:
        return USAGE
    ch.db[(argv[2], argv[3])] = argv[4]
    return "200 result=1", True


def _db_del(ch: Channel, argv: list[str]):
    if len(argv) != 4:
        return USAGE
    return f"200 result={1 if ch.db.pop((argv[2], argv[3]), None) is not None else 0}", True


def _db_deltree(ch: Channel, argv: list[str]):
    if not 3 <= len(argv) <= 4:
        return USAGE
    tree = argv[3] if len(argv) == 4 else None
    gone = [k for k in ch.db if k[0] == argv[2]
            and (tree is None or k[1] == tree or k[1].startswith(tree + "/"))]
    for k in gone:
        del ch.db[k]
    return f"200 result={0 if gone else 1}", True  # sic: res_agi prints '0' when it deleted


def _set_callerid(ch: Channel, argv: list[str]):
    if len(argv) > 2:
        name, _, rest = argv[2].rpartition("<")
        if rest:
            ch.callerid = "".join(c for c in rest.rstrip(">") if c not in " ()-.")
            ch.calleridname = name.strip().strip('"')
        else:
            ch.callerid, ch.calleridname = "".join(c for c in argv[2] if c not in " ()-."), ""
    return "200 result=1", True


def _set_attr(attr: str):
    def handler(ch: Channel, argv: list[str]):
        if len(argv) != 3:
            return USAGE
        setattr(ch, attr, argv[2])
        return "200 result=0", True
    return handler


def _set_priority(ch: Channel, argv: list[str]):
    # a label would need the real dialplan; not finding one is Asterisk's 520 as well
    if len(argv) != 3 or scan_int(argv[2]) is None:
        return USAGE
    ch.priority = scan_int(argv[2])
    return "200 result=0", True


def _set_autohangup(ch: Channel, argv: list[str]):
    return ("200 result=0", True) if len(argv) == 3 and scan_float(argv[2]) is not None else USAGE


def _receive_char(ch: Channel, argv: list[str]):
    # no text ever arrives on the Local channel: ast_recvchar() returns -1 and res_agi calls
    # that a hangup (and a failure)
    return ("200 result=-1 (hangup)", False) if len(argv) == 3 else USAGE


def _say_alpha_ok(argv: list[str]) -> bool:
    return 4 <= len(argv) <= 5 and (len(argv) == 4 or argv[4][:1] in ("", *"aAlLnNuU"))


# (words, handler, allowed on a dead channel) in res_agi's registration order
COMMANDS: list[tuple[tuple[str, ...], Callable, bool]] = [
    (("answer",), _fixed("200 result=0"), False),
    (("asyncagi", "break"), _fixed("200 result=0"), True),
    (("channel", "status"), _channel_status, False),
    (("database", "del"), _db_del, True),
    (("database", "deltree"), _db_deltree, True),
    (("database", "get"), _db_get, True),
    (("database", "put"), _db_put, True),
    (("exec",), media.exec_app, True),
    (("get", "data"), media.get_data, False),
    (("get", "full", "variable"), _get_full_variable, True),
    (("get", "option"), media.get_option, False),
    (("get", "variable"), _get_variable, True),
    (("hangup",), _hangup, False),
    (("noop",), _fixed("200 result=0"), True),
    (("receive", "char"), _receive_char, False),
    (("receive", "text"), _fixed("200 result=-1", 3), False),
    (("record", "file"), media.record_file, False),
    (("say", "alpha"), media.say(_say_alpha_ok), False),
    (("say", "digits"), media.say(lambda a: len(a) == 4 and scan_int(a[2]) is not None), False),
    (("say", "number"), media.say(lambda a: 4 <= len(a) <= 5 and scan_int(a[2]) is not None),
     False),
    (("say", "phonetic"), media.say(lambda a: len(a) == 4), False),
    (("say", "date"), media.say(lambda a: len(a) == 4 and scan_int(a[2]) is not None), False),
    (("say", "time"), media.say(lambda a: len(a) == 4 and scan_int(a[2]) is not None), False),
    (("say", "datetime"), media.say(lambda a: len(a) >= 4 and scan_int(a[2]) is not None),
     False),
    (("send", "image"), _fixed("200 result=0", 3), False),
    (("send", "text"), _fixed("200 result=0", 3), False),
    (("set", "autohangup"), _set_autohangup, False),
    (("set", "callerid"), _set_callerid, False),
    (("set", "context"), _set_attr("context"), False),
    (("set", "extension"), _set_attr("extension"), False),
    (("set", "music"), _fixed("200 result=0", *range(3, 129)), False),
    (("set", "priority"), _set_priority, False),
    (("set", "variable"), _set_variable, True),
    (("stream", "file"), media.stream_file, False),
    (("control", "stream", "file"), media.control_stream_file, False),
    (("tdd", "mode"), _fixed("200 result=0", 3), False),
    (("verbose",), _verbose, True),
    (("wait", "for", "digit"), media.wait_for_digit, False),
    # no speech engine is loaded: every speech command finds no speech object
    (("speech", "create"), _fixed("200 result=0"), False),
    (("speech", "set"), _fixed("200 result=0", 4), False),
    (("speech", "destroy"), _fixed("200 result=0"), True),
    (("speech", "load", "grammar"), _fixed("200 result=0", 5), False),
    (("speech", "unload", "grammar"), _fixed("200 result=0", 4), True),
    (("speech", "activate", "grammar"), _fixed("200 result=0", 4), False),
    (("speech", "deactivate", "grammar"), _fixed("200 result=0", 4), False),
    (("speech", "recognize"), _fixed("200 result=0", *range(4, 129)), False),
]


class Channel:
    """One `;2` Local channel, answered by the dialplan, running AGI()."""

    def __init__(self, caller: Caller | None = None, *, sounds_dir: str = ".",
                 callerid: str = "09121234567", calleridname: str = "Test",
                 language: str = "en", channel: str = "Local/128@favad-inbound-00000000;2",
                 uniqueid: str = "1795816935.1", context: str = "favad-inbound",
                 extension: str = "128", priority: int = 3, threadid: int = 139690603693760,
                 callingpres: int = 0, variables: dict[str, str] | None = None,
                 astdb: dict | None = None, on_prompt: Callable[[str], None] | None = None,
                 on_heard: Callable[[str, str], None] | None = None):
        self.caller = caller if caller is not None else Caller()
        self.sounds_dir = sounds_dir
        self.callerid, self.calleridname, self.language = callerid, calleridname, language
        self.name, self.uniqueid, self.threadid = channel, uniqueid, threadid
        self.context, self.extension, self.priority = context, extension, priority
        self.callingpres = callingpres
        self.vars: dict[str, str] = dict(variables or {})
        self.db = astdb if astdb is not None else {}
        self.on_prompt = on_prompt
        self.on_heard = on_heard  # (name, the channel's language when it played)
        self.up = True          # the caller is still there
        self.dead = False       # AGI runs in dead mode (the hangup notice was delivered)
        self.needhup = False    # hung up, notice not yet delivered
        self.hungup_by_caller = False
        self.status = "SUCCESS"  # res_agi's returnstatus, becomes AGISTATUS
        self.played: list[str] = []
        self.recordings: list[str] = []
        self.commands: list[str] = []
        self.last_prompt = ""

    # -- what the drivers call ---------------------------------------------------------------
    def env(self, request: str, args=()) -> list[bytes]:
        """setup_env(): the agi_* lines (agi_request first), agi_arg_N, then the blank line."""
        items = [("request", request), ("channel", self.name), ("language", self.language),
                 ("type", "Local"), ("uniqueid", self.uniqueid), ("version", "22.10.1"),
                 ("callerid", self.callerid or "unknown"),
                 ("calleridname", self.calleridname or "unknown"),
                 ("callingpres", self.callingpres), ("callingani2", 0), ("callington", 0),
                 ("callingtns", 0), ("dnid", "unknown"), ("rdnis", "unknown"),
                 ("context", self.context), ("extension", self.extension),
                 ("priority", self.priority), ("enhanced", "0.0"), ("accountcode", ""),
                 ("threadid", self.threadid)]
        items += [(f"arg_{n}", a) for n, a in enumerate(args, 1)]
        return [_enc(f"agi_{k}: {v}\n") for k, v in items] + [b"\n"]

    def execute(self, line: bytes) -> bytes:
        """agi_handle_command() for one line (with or without its LF); returns the reply."""
        text = line[:-1] if line.endswith(b"\n") else line
        command = text.decode("utf-8", "surrogateescape")
        self.commands.append(command)
        argv = parse_args(command)
        entry = next((e for e in COMMANDS if match_command(argv, e[0])), None)
        if entry is None:
            return UNKNOWN
        words, handler, dead_ok = entry
        if self.dead and not dead_ok:
            return DEAD
        was_up = self.up
        out = handler(self, argv)
        if out is USAGE:
            reply = usage_reply(" ".join(words))
        else:
            reply, ok = out
            reply += "\n"
            if not ok and (self.dead or self.up):
                self.status = "FAILURE"  # a failure that was not caused by the hangup
        if was_up and not self.up:
            self.needhup = True
            self._hangup_seen()
        return _enc(reply)

    def caller_hangs_up(self) -> None:
        """The caller hangs up while no command runs (the script is idle)."""
        if self.up:
            self.hang_up(by_caller=True)
            self.needhup = True
            self._hangup_seen()

    def enter_dead(self) -> None:
        self.needhup, self.dead = False, True

    def final_status(self) -> str:
        self.vars["AGISTATUS"] = self.status
        return self.status

    # -- what the handlers call --------------------------------------------------------------
    def hang_up(self, by_caller: bool) -> None:
        self.up = False
        self.hungup_by_caller = self.hungup_by_caller or by_caller

    def played_prompt(self, name: str) -> None:
        self.played.append(name)
        self.last_prompt = name
        if self.on_prompt is not None:
            self.on_prompt(name)
        if self.on_heard is not None:
            self.on_heard(name, self.language)

    def _hangup_seen(self) -> None:
        # run_agi: ast_read() returns NULL -> returnstatus = HANGUP unless already set
        if self.status == "SUCCESS":
            self.status = "HANGUP"


def _enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")
