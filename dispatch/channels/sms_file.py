"""The embedded default for SMS: one JSON line per message appended to a local file."""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from pathlib import Path

from dispatch.channels.base import SENT, TEMPORARY, Result, Sms


class SmsFile:
    kind = "sms"

    def __init__(self, path: str):
        self.path = Path(path)

    def send(self, sms: Sms) -> Result:
        line = json.dumps({"at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                           "to": sms.recipient, "text": sms.text}, ensure_ascii=False) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # 0600 whatever the umask: each line holds a unit's live signed link
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with open(fd, "a", encoding="utf-8") as f:
                fcntl.flock(f, fcntl.LOCK_EX)  # several dispatchers may share the file
                f.write(line)
        except OSError as e:
            return Result(TEMPORARY, f"sms file: {e.strerror or e}")
        return Result(SENT)

    def close(self) -> None:
        pass
