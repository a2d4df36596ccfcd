"""How long a claim must last, and keeping a batch's claims alive while it is sent.

A claimed message is a dispatcher's own until ``lease_until``; past it another dispatcher may
take it and send it again. So a send may start only while its claim will outlast the longest
send the settings allow (each network step may take its whole timeout), and while a batch is
in flight a thread renews its claims often enough that this stays true. A claim that could not
be renewed (the database was away, another dispatcher took it) is not sent.
"""
from __future__ import annotations

import logging
import threading
import time

from clock import utcnow
from config import ConfigError, Settings
from dispatch import outbox

log = logging.getLogger(__name__)


def smtp_steps(settings: Settings) -> int:
    """Network waits of one email on a new connection, each bounded by ``smtp_timeout``:
    connect and greeting, EHLO, (STARTTLS, handshake, EHLO), (AUTH, two for LOGIN), MAIL,
    RCPT, DATA, the body and the final reply (a kept connection the server closed fails at
    once and is opened again: no extra wait)."""
    steps = 2 + 1 + 4 + 1
    steps += {"starttls": 3, "tls": 1}.get(settings.smtp_security, 0)
    return steps + (2 if settings.smtp_user else 0)


def sms_steps(settings: Settings) -> int:
    """Connect, (TLS handshake), send the request, read the answer."""
    return 3 + (1 if settings.sms_url.startswith("https") else 0)


def worst_send(settings: Settings) -> dict[str, float]:
    """The longest one send may take, per channel (a local file: no network wait)."""
    return {"email": smtp_steps(settings) * settings.smtp_timeout if settings.smtp_host else 0.0,
            "sms": sms_steps(settings) * settings.sms_timeout if settings.sms_url else 0.0}


def check(settings: Settings) -> float:
    """Refuse a lease that one send can outlast; the seconds between renewals."""
    worst = worst_send(settings)
    channel = max(worst, key=worst.get)
    longest = worst[channel]
    if settings.dispatch_lease <= longest:
        timeout, steps = ((settings.smtp_timeout, smtp_steps(settings)) if channel == "email"
                          else (settings.sms_timeout, sms_steps(settings)))
        what = "smtp_timeout" if channel == "email" else "sms_timeout"
        raise ConfigError(
            f"dispatch_lease ({settings.dispatch_lease:g} s) must exceed the longest {channel} send: "
            f"{what} {timeout:g} s × {steps} network steps = {longest:g} s; raise dispatch_lease "
            f"above {longest:g} or lower {what} (else a slow server makes another dispatcher "
            f"send the same message again)")
    return max(0.05, (settings.dispatch_lease - longest) / 2)


class Keeper:
    """The claims of one batch, renewed every ``every`` seconds until each is done."""

    def __init__(self, engine, worker: str, lease: float, every: float, ids: list[int]):
        self.engine, self.worker, self.lease, self.every = engine, worker, lease, every
        self._lock = threading.Lock()
        self._held = {i: time.monotonic() + lease for i in ids}  # id -> local end of its claim
        self._lost: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dispatch-lease", daemon=True)
        if ids:
            self._thread.start()

    def usable(self, msg_id: int, needed: float) -> bool:
        """Whether the claim on ``msg_id`` is ours and lasts ``needed`` seconds more."""
        with self._lock:
            end = self._held.get(msg_id)
        return end is not None and end - time.monotonic() > needed

    def done(self, msg_id: int) -> None:
        with self._lock:
            self._held.pop(msg_id, None)

    def lost(self, msg_id: int) -> bool:
        with self._lock:
            return msg_id in self._lost

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            with self._lock:
                ids = list(self._held)
            if not ids:
                continue
            started = time.monotonic()
            try:
                with self.engine.connect() as conn:
                    kept = set(outbox.renew(conn, ids, self.worker, utcnow(), self.lease))
            except Exception as e:  # the database is away: the claims run down, sends stop
                log.warning("renewing %d claims failed (%s); they lapse in time", len(ids), type(e).__name__)
                continue
            with self._lock:
                for i in ids:
                    if i not in self._held:
                        continue
                    if i in kept:
                        self._held[i] = started + self.lease
                    else:
                        self._held.pop(i)
                        self._lost.add(i)
                        log.warning("message %d: the claim passed to another dispatcher; not sent "
                                    "from here", i)
