"""panoramisk's AMI protocol with its input side replaced.

panoramisk 1.4 decodes every TCP read on its own with errors ignored (a Persian character cut
between two reads is lost), and lets an exception from any handler escape ``data_received``,
which makes asyncio drop the connection and every other message of that read. Here bytes are
reassembled first (``wire.Reader``), each message is scrubbed of caller identity before it
becomes a panoramisk ``Message``, and each is handled on its own. When the connection ends,
actions still waiting fail at once instead of being re-sent after a reconnect.
"""
from __future__ import annotations

import logging

from panoramisk import actions
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from ami import wire
from ami.scrub import scrub

log = logging.getLogger("ami")


class ConnectionLost(ConnectionError):
    """The AMI connection ended before the answer came."""


def to_message(headers: wire.Headers) -> Message | None:
    """A panoramisk Message (repeated keys become lists, body lines become ``content``)."""
    fields: dict = {}
    body = []
    for key, value in headers:
        if not key:
            body.append(value)
        elif key in fields:
            prev = fields[key]
            fields[key] = (prev if isinstance(prev, list) else [prev]) + [value]
        else:
            fields[key] = value
    if "Event" not in fields and "Response" not in fields:
        return None
    return Message(fields, "\n".join(body))


class SafeProtocol(AMIProtocol):
    def connection_made(self, transport):
        super().connection_made(transport)
        self.log = log
        self.reader = wire.Reader()

    def send(self, data, as_list=False):
        """panoramisk's send, minus its log line that would print the whole action (the Login's
        Secret included) if the write failed."""
        if not isinstance(data, actions.Action):
            data = (actions.Command if "Command" in data else actions.Action)(data, as_list=as_list)
        data.as_list = as_list
        self.responses[data.id] = data
        if data.action_id:
            self.responses[data.action_id] = data
        try:
            self.transport.write(str(data).encode(getattr(self, "encoding", "utf-8")))
        except Exception as e:
            log.error("could not send an AMI %s action (%s)", data.get("Action"), type(e).__name__)
        return data.future

    def data_received(self, data: bytes) -> None:
        try:
            items = self.reader.feed(data)
        except wire.RemoteProtocolError as e:
            log.warning("closing the AMI connection: %s", e)
            self.transport.abort()
            return
        for item in items:
            if isinstance(item, wire.Banner):
                self.version = item.version
                continue
            message = to_message(scrub(item))
            if message is None:
                continue
            try:
                self.handle_message(message)
            except Exception:  # one bad message must not cost the connection
                log.exception("an AMI message could not be handled; the connection stays up")

    def close(self) -> None:
        pending = {id(a): a for a in self.responses.values()}.values()
        self.responses.clear()
        for action in pending:
            if not action.future.done():
                action.future.set_exception(ConnectionLost("the AMI connection closed"))
                action.future.exception()  # retrieved: no "never retrieved" noise if nobody waits
        if not self.closed:
            try:
                self.transport.close()
            finally:
                self.closed = True
