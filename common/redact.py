"""No log line carries a telephone number, however a later change happens to write one.

Defence in depth behind ``anonymity.scrub``: every handler passes its records through
``RedactNumbers``, which replaces any run of 7 or more digits with ``[REMOVED]``. A run is
digits of any script (``\\d`` is Unicode: Latin, Persian, Arabic-Indic, fullwidth ...) with up
to three separators between them (spaces, ``-``, ``.``, ``/``, ``_``, dashes, brackets,
invisible direction marks), so ``0912 123 4567`` and ``+98 (912) 123-4567`` go as surely as
``09121234567``; only a run shaped like an IPv4 address (``192.168.100.20``) is kept.
The message, the traceback and the stack are redacted; the formatter's own timestamp is added
afterwards and stays. A date inside a message (``2026-12-04``, 8 digits) goes too: too much
is safer than too little.
"""
from __future__ import annotations

import logging
import re
import sys
import threading
import traceback

_SEPARATOR = (r"[\s\-./_()\[\]"
              "\u00ad\u066b\u066c\u2010-\u2015\u2212\u200b-\u200f\u202a-\u202e\u2066-\u2069"
              "\ufe58\ufe63\uff08\uff09\uff0d\uff0e\uff0f\uff3f]")
_LONG_NUMBER = re.compile(rf"[+\uff0b]?(?:\d{_SEPARATOR}{{0,3}}){{6,}}\d")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])"
_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
REMOVED = "[REMOVED]"
_TRACEBACK = logging.Formatter()


def redact(text: str) -> str:
    """``text`` with every run of 7+ digits (separators allowed) replaced by ``[REMOVED]``."""
    return _LONG_NUMBER.sub(_removed, text)


def _removed(run: re.Match) -> str:
    # an IPv4 address is 4-12 digits and dots; callers' numbers do not fit (0912 > 255)
    return run[0] if _IPV4.fullmatch(run[0]) else REMOVED


class RedactNumbers(logging.Filter):
    """Redacts a record's message, traceback and stack in place; lets every record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _LONG_NUMBER.search(message):
            record.msg, record.args = redact(message), ()
        if record.exc_info:
            # the formatter would print the live exception, unredacted: print it here instead
            record.exc_text = record.exc_text or _TRACEBACK.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def guard_stderr() -> None:
    """What reaches stderr outside the configured handlers is redacted too: the last-resort
    handler (commands that set no logging up) and uncaught exceptions, in any thread."""
    if not any(isinstance(f, RedactNumbers) for f in logging.lastResort.filters):
        logging.lastResort.addFilter(RedactNumbers())
    sys.excepthook = _print_redacted
    threading.excepthook = lambda a: _print_redacted(a.exc_type, a.exc_value, a.exc_traceback,
                                                      a.thread)


def _print_redacted(kind, value, tb, thread=None) -> None:
    if kind is SystemExit:
        return
    where = f"Exception in thread {thread.name}:\n" if thread is not None else ""
    sys.stderr.write(redact(where + "".join(traceback.format_exception(kind, value, tb))))
    sys.stderr.flush()
