"""Email over SMTP: STARTTLS, implicit TLS or plain; login if configured; one connection kept
open across messages and opened again when the server has dropped it."""
from __future__ import annotations

import smtplib
import ssl

from config import Settings
from dispatch.channels.base import PERMANENT, SENT, TEMPORARY, Mail, Result

SECURITY = ("starttls", "tls", "none")
DEFAULT_PORT = {"starttls": 587, "tls": 465, "none": 25}
# errors of our own configuration: every message would fail alike, so none is dead-lettered at
# once; they wait (and after N tries die) until the operator fixes the settings
_CONFIG_ERRORS = (smtplib.SMTPAuthenticationError, smtplib.SMTPSenderRefused,
                  smtplib.SMTPNotSupportedError, smtplib.SMTPHeloError, ssl.SSLError)


def _reply(code: int, text) -> Result:
    text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return Result(PERMANENT if 500 <= code < 600 else TEMPORARY, f"smtp {code} {text}"[:300])


class Smtp:
    kind = "email"

    def __init__(self, settings: Settings):
        self.host = settings.smtp_host
        self.security = settings.smtp_security
        self.port = settings.smtp_port or DEFAULT_PORT[self.security]
        self.user, self.password = settings.smtp_user, settings.smtp_password
        self.timeout = settings.smtp_timeout
        self.ca_file = settings.smtp_ca_file or None
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.security == "tls":
            conn = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ctx)
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.security == "starttls":
                conn.starttls(context=ctx)
            if self.user:
                conn.login(self.user, self.password)
        except BaseException:
            conn.close()
            raise
        return conn

    def send(self, mail: Mail) -> Result:
        for fresh in (self._conn is None, True):
            try:
                if self._conn is None:
                    self._conn = self._connect()
                self._conn.sendmail(mail.sender, [mail.recipient], mail.data)
                return Result(SENT)
            except smtplib.SMTPRecipientsRefused as e:
                self.close()
                return _reply(*e.recipients.get(mail.recipient, (550, b"refused")))
            except _CONFIG_ERRORS as e:
                self.close()
                return Result(TEMPORARY, f"smtp configuration: {type(e).__name__} {e}"[:300])
            except smtplib.SMTPResponseException as e:  # 4xx/5xx to MAIL or DATA
                self.close()
                return _reply(e.smtp_code, e.smtp_error)
            except (smtplib.SMTPServerDisconnected, ConnectionError) as e:
                self.close()
                if fresh:  # a new connection failed: the server is down
                    return Result(TEMPORARY, f"smtp: {type(e).__name__} {e}"[:300])
                # a kept connection the server had closed while idle: open a new one at once
            except (smtplib.SMTPException, OSError) as e:  # refused, timeout, DNS
                self.close()
                return Result(TEMPORARY, f"smtp: {type(e).__name__} {e}"[:300])
        return Result(TEMPORARY, "smtp: disconnected")

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()
