"""The embedded default for email: each message becomes a file in a local Maildir, so the whole
path can be watched working without a mail server (any mail client opens the folder)."""
from __future__ import annotations

import mailbox
import os
import threading

from dispatch.channels.base import SENT, TEMPORARY, Mail, Result

# every sender thread has a channel of its own, and mailbox.Maildir is not safe across them: it
# names a new file from the time, the pid and a class-wide counter it bumps without a lock, and
# creates its folders with a check then a mkdir; two threads at once got "File exists"
_ADD = threading.Lock()


class Maildir:
    kind = "email"

    def __init__(self, path: str):
        self.path = path
        self._box: mailbox.Maildir | None = None

    def _maildir(self) -> mailbox.Maildir:
        # created once, under the lock: two threads creating it at the same moment collide on mkdir
        with _ADD:
            if self._box is None:
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
                self._box = mailbox.Maildir(self.path, create=True)
            return self._box

    def send(self, mail: Mail) -> Result:
        try:
            # Maildir writes into tmp/ and renames into new/: no reader sees half a message
            box, data = self._maildir(), mail.data.replace(b"\r\n", b"\n")
            with _ADD:
                box.add(data)
        except OSError as e:
            return Result(TEMPORARY, f"maildir: {e.strerror or e}")
        return Result(SENT)

    def close(self) -> None:
        pass
