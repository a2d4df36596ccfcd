"""How res_agi.c reads a command line: parse_args(), find_command() and the C number scanners."""
from __future__ import annotations

import re

MAX_ARGS = 128
_INT = re.compile(r"[ \t\n\r\f\v]*([+-]?\d+)")


def parse_args(line: str) -> list[str]:
    """Split like res_agi's parse_args(): blanks separate, double quotes group (and a quote met on
    a blank starts a word, so `""` is an empty argument), a backslash makes the next char literal.
    A CR is not a blank: a CRLF line keeps it at the end of its last word, as in Asterisk."""
    argv: list[list[str]] = []
    quoted = escaped = False
    blank = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and blank:
                argv.append([])
                blank = False
            continue
        if ch in " \t" and not quoted and not escaped:
            blank = True
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if blank:
            if len(argv) >= MAX_ARGS - 1:
                continue  # "Too many arguments, truncating": the rest of the word is dropped
            argv.append([])
            blank = False
        argv[-1].append(ch)
        escaped = False
    return ["".join(word) for word in argv]


def match_command(argv: list[str], words: tuple[str, ...]) -> bool:
    """find_command(argv, 0): every word of the command, case-insensitively; extra args allowed."""
    if len(argv) < len(words):
        return False
    return all(a.lower() == w for a, w in zip(argv, words))


def scan_int(text: str) -> int | None:
    """sscanf(text, "%30d") == 1: a leading integer after optional blanks, or None."""
    m = _INT.match(text)
    return int(m.group(1)) if m else None


def atoi(text: str) -> int:
    """C atoi(): the leading integer, 0 when there is none."""
    value = scan_int(text)
    return 0 if value is None else value


def scan_float(text: str) -> float | None:
    """sscanf(text, "%30lf") == 1."""
    m = re.match(r"\s*([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)", text)
    return float(m.group(1)) if m else None
