"""An AMI client on panoramisk 1.4's ``Manager``, with what it lacks for a service that must
keep running: every action has a timeout, a failing event handler costs nothing but a log line,
the connection comes back with exponential backoff (and a Ping that gets no answer forces it),
a refused login is reported as such, and nothing a caller can be identified by is ever kept
(see ``protocol.py`` and ``scrub.py``).
"""
from __future__ import annotations

import asyncio
import logging
import random

from panoramisk import actions
from panoramisk.manager import Manager

from ami.protocol import ConnectionLost, SafeProtocol

log = logging.getLogger("ami")


class AmiError(Exception):
    """Asterisk answered, but not as hoped (an error response)."""


class AmiUnavailable(AmiError):
    """No usable AMI session: Asterisk is down, unreachable, or refused the login."""


class AmiTimeout(AmiError):
    """Asterisk did not answer an action in time."""


class AmiClient(Manager):
    def __init__(self, host: str = "127.0.0.1", port: int = 5038, username: str = "",
                 secret: str = "", *, timeout: float = 5.0, events: bool = True,
                 ping_interval: float = 20.0, min_backoff: float = 0.5, max_backoff: float = 30.0):
        super().__init__(host=host, port=port, username=username, secret=secret,
                         events="on" if events else "off", protocol_factory=SafeProtocol,
                         loop=asyncio.get_running_loop(), log=log, ping_delay=ping_interval,
                         ping_interval=ping_interval)
        self.timeout = timeout
        self.ping_interval = ping_interval
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self.state = "disconnected"  # connecting | connected | down | refused | closed
        self.error = ""
        self.retry_in: float | None = None
        self.logins = 0
        self._failures = 0
        self._closing = False
        self._leaving = False
        self._retry: asyncio.TimerHandle | None = None
        self._attempt: asyncio.Future | None = None
        # panoramisk re-sends actions cut by a disconnect once Asterisk is FullyBooted again;
        # here they fail at once instead (a `dialplan reload` must not run twice unasked)
        self.callbacks["FullyBooted"].remove(self.send_awaiting_actions)

    @classmethod
    def from_settings(cls, settings, **kw) -> "AmiClient":
        return cls(settings.ami_host, settings.ami_port, settings.ami_username, settings.ami_secret,
                   timeout=settings.ami_timeout, **kw)

    async def __aenter__(self) -> "AmiClient":
        self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.logoff()

    # ---- connection ------------------------------------------------------------------
    def connect(self, run_forever=False, on_startup=None, on_shutdown=None):
        if self._closing:
            return None
        self._retry = None
        self.state = "connecting"
        self._attempt = self.loop.create_future()
        task = self.loop.create_task(asyncio.wait_for(
            self.loop.create_connection(SafeProtocol, self.config["host"], self.config["port"]),
            self.timeout))
        task.add_done_callback(self.connection_made)
        return task

    def connection_made(self, f) -> None:
        try:
            transport, protocol = f.result()
        except (OSError, asyncio.TimeoutError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
            self._down(f"cannot connect to Asterisk AMI at {self.config['host']}:{self.config['port']}"
                       f" ({reason})")
            return
        except asyncio.CancelledError:
            return
        if self._closing:
            transport.close()
            return
        self.protocol = protocol
        protocol.factory = self
        protocol.config = self.config
        protocol.encoding = self.encoding = "utf-8"
        self.responses = protocol.responses
        login = actions.Action({"Action": "Login", "Username": self.config["username"],
                                "Secret": self.config["secret"], "Events": self.config["events"]})
        self.loop.create_task(self._login(protocol, protocol.send(login, as_list=None)))

    async def _login(self, protocol, future) -> None:
        try:
            resp = await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except asyncio.TimeoutError:
            self.error = "Asterisk did not answer the AMI login"
            protocol.transport.abort()
            return
        except ConnectionLost:
            return
        if not resp.success:
            # Asterisk closes the connection itself after a refused login (TRANSCRIPTS.md §11)
            self.state = "refused"
            self.error = f"Asterisk refused the AMI login for {self.config['username']!r}: {resp.message}"
            log.error("%s", self.error)
            self._settle(AmiUnavailable(self.error))
            return
        self.state, self.error, self.retry_in = "connected", "", None
        self._failures = 0
        self.logins += 1
        self.authenticated = True
        log.debug("AMI: logged in to %s:%s", self.config["host"], self.config["port"])
        self._settle(None)
        self.loop.call_soon(self.on_login, self)
        if self.pinger:
            self.pinger.cancel()
        self.pinger = self.loop.call_later(self.ping_interval, self.ping)

    def connection_lost(self, exc) -> None:
        self.authenticated = False
        if self.pinger:
            self.pinger.cancel()
            self.pinger = None
        if self._closing or self._leaving:
            return
        if self.state != "refused":
            self.error = self.error or "the connection to Asterisk AMI was lost"
        log.warning("AMI: %s", self.error or "connection lost")
        self._down(self.error)

    def _down(self, error: str) -> None:
        if self.state != "refused":
            self.state = "down"
        self.error = error if self.state != "refused" else self.error
        self._settle(AmiUnavailable(self.error))
        if self._closing or self._retry is not None:
            return
        delay = min(self.max_backoff, self.min_backoff * 2 ** self._failures)
        delay *= random.uniform(0.8, 1.2)
        self._failures += 1
        self.retry_in = delay
        self._retry = self.loop.call_later(delay, self.connect)

    def _settle(self, error: Exception | None) -> None:
        if self._attempt is not None and not self._attempt.done():
            if error is None:
                self._attempt.set_result(True)
            else:
                self._attempt.set_exception(error)
                self._attempt.exception()

    def ping(self) -> None:
        """panoramisk fires Pings and never looks at the answer; one that times out reconnects."""
        self.pinger = self.loop.call_later(self.ping_interval, self.ping)
        self.loop.create_task(self._ping())

    async def _ping(self) -> None:
        protocol = self.protocol
        try:
            await self.send({"Action": "Ping"})
        except AmiTimeout:
            log.warning("AMI: Asterisk did not answer a Ping; reconnecting")
            if protocol is not None and not protocol.closed:
                protocol.transport.abort()
        except AmiError:
            pass

    async def ready(self, timeout: float | None = None) -> None:
        """Wait for a logged-in session; AmiUnavailable if the attempt under way fails."""
        timeout = self.timeout if timeout is None else timeout
        if self.state == "connected":
            return
        if self._closing:
            raise AmiUnavailable("the AMI client is closed")
        if self._attempt is None:
            self.connect()
        attempt = self._attempt
        if attempt.done() and attempt.exception() is not None:
            raise AmiUnavailable(self.error)
        try:
            await asyncio.wait_for(asyncio.shield(attempt), timeout)
        except asyncio.TimeoutError:
            raise AmiUnavailable(self.error or "Asterisk AMI is not answering") from None
        except AmiUnavailable:
            raise AmiUnavailable(self.error) from None
        if self.state != "connected":
            raise AmiUnavailable(self.error or "the AMI connection was lost")

    # ---- actions -----------------------------------------------------------------------
    async def send(self, action: dict, timeout: float | None = None):
        """Send one action; its response (a list for EventList actions) or AmiTimeout."""
        timeout = self.timeout if timeout is None else timeout
        await self.ready(timeout)
        act = actions.Action(dict(action))
        protocol = self.protocol
        future = protocol.send(act, as_list=None)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            protocol.responses.pop(act.id, None)
            future.cancel()
            raise AmiTimeout(f"Asterisk did not answer {action.get('Action')} within {timeout:g} s") from None
        except ConnectionLost:
            raise AmiUnavailable("the AMI connection was lost during "
                                 f"{action.get('Action')}") from None

    async def list_action(self, action: dict, timeout: float | None = None) -> list:
        """The events of an EventList action (CoreShowChannels, QueueStatus ...), without the
        start response and the ...Complete event."""
        resp = await self.send(action, timeout)
        if not isinstance(resp, list):
            raise AmiError(f"{action.get('Action')}: {resp.get('Message', 'error')}")
        return [m for m in resp if "event" in m and not m.event.endswith("Complete")]

    async def command(self, command: str, timeout: float | None = None) -> tuple[bool, list[str]]:
        """A CLI command over AMI: (Asterisk reported success, the Output lines)."""
        resp = await self.send({"Action": "Command", "Command": command}, timeout)
        output = resp.get("Output", [])
        lines = output if isinstance(output, list) else [output]
        if resp.content:
            lines += resp.content.splitlines()
        return resp.response == "Success", lines

    # ---- events ------------------------------------------------------------------------
    def dispatch(self, event):
        """Run the handlers of an event, each on its own: one that raises is logged, no more."""
        if "actionid" in event:
            return []  # the tail of an action that timed out: nobody is waiting for it
        event.manager = self
        matches = []
        for pattern, regexp in self.patterns:
            if regexp.match(event.event) is None:
                continue
            matches.append(pattern)
            for callback in list(self.callbacks[pattern]):
                try:
                    ret = callback(self, event)
                except Exception:
                    log.exception("AMI: a handler of %s failed; the connection stays up", event.event)
                    continue
                if asyncio.iscoroutine(ret) or isinstance(ret, asyncio.Future):
                    asyncio.ensure_future(ret).add_done_callback(_report)
        return matches

    # ---- the end -------------------------------------------------------------------------
    async def logoff(self) -> None:
        if self.state == "connected" and self.protocol is not None:
            self._leaving = True  # Asterisk closes after Goodbye: not a loss to recover from
            try:
                await self.send({"Action": "Logoff"}, min(self.timeout, 2.0))
            except AmiError:
                pass
        self.close()

    def close(self) -> None:
        self._closing = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self.pinger:
            self.pinger.cancel()
            self.pinger = None
        if self.protocol is not None:
            self.protocol.close()
        self._settle(AmiUnavailable("the AMI client is closed"))
        self.state = "closed"


def _report(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("AMI: an event handler failed", exc_info=task.exception())
