"""The embedded default for email: each message becomes a file in a local Maildir, so the whole
path can be watched working without a mail server (any mail client opens the folder)."""
from __future__ import annotations

import mailbox
import os

from dispatch.channels.base import SENT, TEMPORARY, Mail, Result


class Maildir:
    kind = "email"

    def __init__(self, path: str):
        self.path = path

    def send(self, mail: Mail) -> Result:
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            # Maildir writes into tmp/ and renames into new/: no reader sees half a message
            mailbox.Maildir(self.path, create=True).add(mail.data.replace(b"\r\n", b"\n"))
        except OSError as e:
            return Result(TEMPORARY, f"maildir: {e.strerror or e}")
        return Result(SENT)

    def close(self) -> None:
        pass
