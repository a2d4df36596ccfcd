"""log_format = "json": one JSON object per line, through the same redaction as text lines."""
from __future__ import annotations

import dataclasses
import io
import json
import logging

from config import Settings
from config.cli import setup_logging


def test_json_lines_are_redacted_like_text_lines():
    out = io.StringIO()
    setup_logging(dataclasses.replace(Settings(), log_format="json"), stream=out)
    log = logging.getLogger("favad.test")
    log.warning("caller %s rang", "0912 123 4567")
    try:
        raise ValueError("number 09121234567 in a traceback")
    except ValueError:
        log.exception("failed for %s", "+98 (912) 123-4567")
    first, second = [json.loads(line) for line in out.getvalue().splitlines()]
    assert first["message"] == "caller [REMOVED] rang" and first["level"] == "WARNING"
    assert first["logger"] == "favad.test" and first["time"].endswith("Z")
    assert second["message"] == "failed for [REMOVED]"
    assert "09121234567" not in second["traceback"] and "[REMOVED]" in second["traceback"]
