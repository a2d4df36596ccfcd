"""No log line, traceback or uncaught exception carries a telephone number, in any spelling."""
from __future__ import annotations

import io
import os
import logging
import subprocess
import sys
import threading

import pytest

from conftest import ROOT
from config import Settings
from config.cli import setup_logging
from common.redact import RedactNumbers, guard_stderr, redact

SPELLINGS = ["09121234567", "0912 123 4567", "0912-123-4567", "0912.123.4567", "0912/123/4567",
             "0912_123_4567", "0912—123—4567", "0912–123–4567", "0912 - 123 - 4567",
             "۰۹۱۲۱۲۳۴۵۶۷", "۰۹۱۲ ۱۲۳ ۴۵۶۷", "٠٩١٢١٢٣٤٥٦٧", "０９１２１２３４５６７", "+98 912 123 4567",
             "+98 (912) 123-4567", "0098-912-123-4567", "۰۹۱۲\u200f۱۲۳\u200f۴۵۶۷", "9121234567"]


def logged(emit) -> str:
    """What a redacting handler writes for the records ``emit(log)`` makes."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactNumbers())
    log = logging.getLogger(f"test.redact.{id(out)}")
    log.propagate, log.handlers = False, [handler]
    emit(log)
    return out.getvalue()


@pytest.mark.parametrize("number", SPELLINGS)
def test_a_number_in_any_spelling_is_removed_from_the_message(number):
    out = logged(lambda log: log.warning("caller %s pressed 1", number))
    assert out == "caller [REMOVED] pressed 1\n"


@pytest.mark.parametrize("number", SPELLINGS)
def test_a_number_in_an_exception_is_removed_from_the_traceback(number):
    def emit(log):
        try:
            raise ValueError(f"no office for {number}")
        except ValueError:
            log.exception("lookup failed")
    out = logged(emit)
    assert "ValueError: no office for [REMOVED]" in out and "Traceback" in out
    assert number not in out


def test_a_number_in_a_chained_exception_and_in_the_stack_is_removed():
    def emit(log):
        try:
            try:
                int("09121234567x")
            except ValueError as e:
                raise RuntimeError("caller 0912 123 4567") from e
        except RuntimeError:
            log.error("failed", exc_info=True, stack_info=True)
    out = logged(emit)
    assert "0912" not in out and "[REMOVED]x" in out and "RuntimeError: caller [REMOVED]" in out
    assert "Stack (most recent call last)" in out


def test_short_numbers_times_and_addresses_stay():
    text = "call 42 took 1234 ms at 18:05:35 from 192.168.100.200:4573, tries 3/5"
    assert redact(text) == text


def test_a_date_in_a_message_goes_too_rather_than_risk_a_number():
    assert redact("due 2026-12-04") == "due [REMOVED]"


def test_the_cli_handler_and_the_last_resort_both_redact(monkeypatch):
    setup_logging(Settings(), io.StringIO())
    assert all(any(isinstance(f, RedactNumbers) for f in h.filters) for h in logging.getLogger().handlers)
    monkeypatch.setattr(logging.lastResort, "filters", [])
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    guard_stderr()
    assert any(isinstance(f, RedactNumbers) for f in logging.lastResort.filters)


def test_an_uncaught_exception_in_a_favad_process_is_redacted_on_stderr(tmp_path):
    code = ("import sys, threading; sys.argv = ['favad', 'config', 'show']\n"
            "import cli\n"
            "try: cli.main()\n"
            "except SystemExit: pass\n"
            "import logging; logging.getLogger('x').warning('last resort 0912 123 4567')\n"
            "t = threading.Thread(target=lambda: int('in a thread ۰۹۱۲۱۲۳۴۵۶۷')); t.start(); t.join()\n"
            "raise ValueError('caller +98 912 123 4567')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    err = done.stderr.decode()
    assert done.returncode == 1
    assert "last resort [REMOVED]" in err
    assert "Exception in thread" in err and "'in a thread [REMOVED]'" in err
    assert "ValueError: caller [REMOVED]" in err
    assert "+98" not in err and "۰۹۱۲" not in err and "0912" not in err
