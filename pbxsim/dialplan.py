"""The few dialplan variables and functions an AGI script can reach through GET/SET VARIABLE and
GET FULL VARIABLE (pbx_retrieve_variable, ast_func_read/write, variable substitution)."""
from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .channel import Channel


def _callerid_all(ch: Channel) -> str:
    """ast_callerid_merge(): `"name" <num>`, or whichever part exists."""
    if ch.calleridname and ch.callerid:
        return f'"{ch.calleridname}" <{ch.callerid}>'
    return ch.calleridname or ch.callerid or ""


def read_function(ch: Channel, expr: str) -> str | None:
    """ast_func_read() of `NAME(args)`; None when the function or its argument is unknown
    (Asterisk then fails the read, and GET VARIABLE answers `200 result=0`)."""
    name, _, arg = expr[:-1].partition("(")
    name, key = name.strip().upper(), arg.strip().lower()
    if name == "CALLERID":
        if key.startswith("all"):
            return _callerid_all(ch)
        if key.startswith("name"):
            return ch.calleridname
        if key.startswith("num"):
            return ch.callerid
    elif name == "CHANNEL":
        return {"language": ch.language, "channeltype": "Local", "state": "Up"}.get(key)
    elif name == "LEN":
        return str(len(arg))
    return None


def write_function(ch: Channel, expr: str, value: str) -> None:
    """ast_func_write() for the writable functions an IVR uses; others are ignored (Asterisk
    logs an error and SET VARIABLE still answers `200 result=1`)."""
    name, _, arg = expr[:-1].partition("(")
    name, key = name.strip().upper(), arg.strip().lower()
    if name == "CHANNEL" and key == "language":
        ch.language = value
    elif name == "CALLERID" and key.startswith("name"):
        ch.calleridname = value
    elif name == "CALLERID" and key.startswith("num"):
        ch.callerid = value


def _plain_name(name: str) -> str:
    """Variables set as _NAME / __NAME (inheritance marks) are read back as NAME."""
    return name[2:] if name.startswith("__") else name[1:] if name.startswith("_") else name


def read_variable(ch: Channel, name: str) -> str | None:
    """GET VARIABLE: a function when the name ends in ')', else builtins, then channel vars."""
    if name.endswith(")"):
        return read_function(ch, name)
    builtins = {
        "CHANNEL": ch.name, "UNIQUEID": ch.uniqueid, "EXTEN": ch.extension,
        "CONTEXT": ch.context, "PRIORITY": str(ch.priority), "CALLINGPRES": str(ch.callingpres),
        "CALLINGANI2": "0", "CALLINGTON": "0", "CALLINGTNS": "0",
    }
    if name in builtins:
        return builtins[name]
    if name == "EPOCH":
        return str(int(time.time()))
    return ch.vars.get(name)


def write_variable(ch: Channel, name: str, value: str) -> None:
    """pbx_builtin_setvar_helper(): functions are written, everything else is a channel var."""
    if name.endswith(")"):
        write_function(ch, name, value)
    else:
        ch.vars[_plain_name(name)] = value


def _lookup(ch: Channel, inner: str) -> str:
    """The value of one `${...}`: a function, or a variable with an optional :offset:length."""
    if inner.endswith(")"):
        return read_function(ch, inner) or ""
    m = re.fullmatch(r"([^:]*)(?::(-?\d+))?(?::(-?\d+))?", inner)
    name, offset, length = (m.group(1), m.group(2), m.group(3)) if m else (inner, None, None)
    value = read_variable(ch, name) or ""
    if offset is not None:
        value = value[int(offset):]
        if length is not None:
            value = value[:int(length)]  # a negative length drops that many from the end
    return value


def substitute(ch: Channel, text: str) -> str:
    """pbx_substitute_variables_helper() for `${...}` (nested); `$[...]` is not evaluated."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("${", i):
            depth, j = 1, i + 2
            while j < len(text) and depth:
                if text.startswith("${", j):
                    depth, j = depth + 1, j + 2
                    continue
                depth -= text[j] == "}"
                j += 1
            inner = text[i + 2:j - 1] if depth == 0 else text[i + 2:]
            out.append(_lookup(ch, substitute(ch, inner)))
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
