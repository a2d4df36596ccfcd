"""SMS through a Kavenegar-style REST API: POST receptor, sender, message as a form to
``<sms_url>/v1/<api key>/sms/send.json``; the JSON reply's ``return.status`` 200 means sent.

Another provider is one more module like this one: build its request, map its answer to a
``Result``. The API key is part of the URL, so no URL is ever logged or kept in an error.
One HTTP(S) connection is kept open across messages: a TLS handshake per SMS would cost more
than the SMS.
"""
from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse

from config import Settings
from dispatch.channels.base import PERMANENT, SENT, TEMPORARY, Result, Sms

# 4xx statuses about the account, not the message: every message would fail alike until the
# operator acts (key, credit, allowed IP, sender line), so they are retried, never dead at once
ACCOUNT_STATUSES = {401, 403, 407, 412, 418, 429}


def classify(status: int, message: str) -> Result:
    if status == 200:
        return Result(SENT)
    detail = f"sms provider {status} {message}"[:300]
    if 400 <= status < 500 and status not in ACCOUNT_STATUSES:
        return Result(PERMANENT, detail)  # invalid number, empty or too long text, ...
    return Result(TEMPORARY, detail)


class Kavenegar:
    kind = "sms"

    def __init__(self, settings: Settings):
        url = urllib.parse.urlsplit(settings.sms_url.rstrip("/"))
        self.https = url.scheme == "https"
        self.host, self.port = url.hostname, url.port
        key = urllib.parse.quote(settings.sms_api_key, safe="")
        self.path = f"{url.path}/v1/{key}/sms/send.json"
        self.sender = settings.sms_sender
        self.timeout = settings.sms_timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def send(self, sms: Sms) -> Result:
        form = {"receptor": sms.recipient, "message": sms.text}
        if self.sender:
            form["sender"] = self.sender
        body = urllib.parse.urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                   "Accept": "application/json", "User-Agent": "favad"}
        for fresh in (self._conn is None, True):
            try:
                if self._conn is None:
                    self._conn = self._connect()
                self._conn.request("POST", self.path, body, headers)
                response = self._conn.getresponse()
                status, answer = response.status, response.read()
                if response.will_close:
                    self.close()
                return self._answer(status, answer)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                self.close()
                if fresh:
                    return Result(TEMPORARY, f"sms provider unreachable: {type(e).__name__}")
                # a kept connection the provider had closed while idle: open a new one at once
            except (OSError, http.client.HTTPException) as e:  # refused, timeout, DNS, TLS
                self.close()
                return Result(TEMPORARY, f"sms provider unreachable: {type(e).__name__} {e}"[:300])
        return Result(TEMPORARY, "sms provider: disconnected")

    @staticmethod
    def _answer(http_status: int, body: bytes) -> Result:
        try:
            answer = json.loads(body.decode("utf-8"))["return"]
            return classify(int(answer["status"]), str(answer.get("message", "")))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            # no JSON (a proxy's error page): the HTTP status decides
            return classify(http_status if http_status != 200 else 502, "unreadable reply")

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
