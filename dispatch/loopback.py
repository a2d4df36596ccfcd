"""Loopback stand-ins for the mail server and the SMS provider: a real SMTP server (aiosmtpd)
and a real HTTP server, each recording every byte it receives and answering as scripted.
For the tests and the benchmark; aiosmtpd comes with the test extra."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    at: float  # time.time() when the server accepted it
    raw: bytes  # everything the client sent that matters: envelope, headers, body
    fields: dict = field(default_factory=dict)


class SmtpSink:
    """aiosmtpd on 127.0.0.1. ``replies``: answers to DATA taken one by one ("451 ..."), then
    250; ``refuse``: recipient -> answer to RCPT; ``delay``: seconds before answering DATA."""

    def __init__(self, port: int | None = None, **smtp_kwargs):
        self.port = port or free_port()
        self.kwargs = smtp_kwargs
        self.messages: list[Received] = []
        self.replies: list[str] = []
        self.refuse: dict[str, str] = {}
        self.delay = 0.0
        self.lock = threading.Lock()
        self.controller = None

    def start(self) -> "SmtpSink":
        from aiosmtpd.controller import Controller

        self.controller = Controller(_SmtpHandler(self), hostname="127.0.0.1", port=self.port,
                                     **self.kwargs)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Received]:
        end = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < end:
            time.sleep(0.005)
        return list(self.messages)


class _SmtpHandler:
    def __init__(self, sink: SmtpSink):
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address in self.sink.refuse:
            return self.sink.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.sink.delay:
            await asyncio.sleep(self.sink.delay)
        with self.sink.lock:
            reply = self.sink.replies.pop(0) if self.sink.replies else None
            if reply:
                return reply
            raw = (f"EHLO {session.host_name}\r\nMAIL FROM:<{envelope.mail_from}>\r\n".encode()
                   + b"".join(f"RCPT TO:<{r}>\r\n".encode() for r in envelope.rcpt_tos)
                   + envelope.original_content)
            self.sink.messages.append(Received(time.time(), raw, {
                "mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                "content": envelope.original_content}))
        return "250 2.0.0 queued"


class SmsSink:
    """A Kavenegar-style provider on 127.0.0.1: ``statuses`` are answered one by one (HTTP
    status = ``return.status``), then 200; ``invalid`` receptors get 411; ``delay``: seconds
    before answering."""

    def __init__(self):
        self.delay = 0.0
        self.requests: list[Received] = []
        self.statuses: list[int] = []
        self.invalid: set[str] = set()
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like a real provider
            disable_nagle_algorithm = True  # headers and body go in two writes

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
                if sink.delay:
                    time.sleep(sink.delay)
                with sink.lock:
                    status = sink.statuses.pop(0) if sink.statuses else 200
                    if status == 200 and form.get("receptor") in sink.invalid:
                        status = 411
                    if status == 200:
                        sink.requests.append(Received(time.time(), (
                            self.requestline + "\r\n" + str(self.headers)).encode() + body,
                            {"path": self.path, **form}))
                answer = json.dumps({"return": {"status": status, "message": "ok" if status == 200 else "error"},
                                     "entries": []}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> "SmsSink":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Received]:
        end = time.monotonic() + timeout
        while len(self.requests) < n and time.monotonic() < end:
            time.sleep(0.005)
        return list(self.requests)
