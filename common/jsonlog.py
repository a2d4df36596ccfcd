"""One JSON object per log line, for journald and log shippers.

Only the formatter changes: the handler's ``RedactNumbers`` filter has already redacted the
message, the traceback and the stack in place, and this formatter prints those fields and the
record's fixed ones, never an argument or an ``extra`` a later change might add."""
from __future__ import annotations

import datetime as dt
import json
import logging


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc)
                .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["traceback"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False)
