"""The embedded default for email: each message becomes a file in a local Maildir, so the whole
path can be watched working without a mail server (any mail client opens the folder)."""
from __future__ import annotations

import mailbox
import os
import threading

from dispatch.channels.base import SENT, TEMPORARY, Mail, Result


class Maildir:
    kind = "email"

    def __init__(self, path: str):
        self.path = path
        self._box: mailbox.Maildir | None = None
        self._lock = threading.Lock()

    def _maildir(self) -> mailbox.Maildir:
        # created once: two sender threads creating it at the same moment collide on mkdir,
        # and the loser's message would wait for a retry
        with self._lock:
            if self._box is None:
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
                self._box = mailbox.Maildir(self.path, create=True)
            return self._box

    def send(self, mail: Mail) -> Result:
        try:
            # Maildir writes into tmp/ and renames into new/: no reader sees half a message
            self._maildir().add(mail.data.replace(b"\r\n", b"\n"))
        except OSError as e:
            return Result(TEMPORARY, f"maildir: {e.strerror or e}")
        return Result(SENT)

    def close(self) -> None:
        pass
