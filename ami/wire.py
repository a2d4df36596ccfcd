"""The AMI wire, sans I/O: bytes in, messages out.

Asterisk sends one banner line (``Asterisk Call Manager/11.0.0\\r\\n``), then messages made of
``Key: Value\\r\\n`` lines, each message ended by an empty line. TCP may cut anywhere, even inside
a UTF-8 character of a Persian name, so bytes are kept until a whole message is there and only
then decoded (panoramisk decodes each read on its own and drops what does not decode).
"""
from __future__ import annotations

from dataclasses import dataclass

BANNER_PREFIX = b"Asterisk Call Manager/"
END = b"\r\n\r\n"
MAX_MESSAGE = 1 << 20  # a peer that never ends a message is not Asterisk


class RemoteProtocolError(Exception):
    """The peer broke the AMI framing (its fault, not ours)."""


@dataclass(frozen=True)
class Banner:
    version: str


Headers = list[tuple[str, str]]  # in wire order; a key may repeat (Output, ChanVariable)


class Reader:
    """Reassembles the byte stream into the banner and whole messages."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.version: str | None = None

    def feed(self, data: bytes) -> list[Banner | Headers]:
        self._buf += data
        out: list[Banner | Headers] = []
        if self.version is None:
            banner = self._banner()
            if banner is None:
                return out
            out.append(banner)
        while (end := self._buf.find(END)) >= 0:
            block = bytes(self._buf[:end])
            del self._buf[:end + len(END)]
            headers = parse(block)
            if headers:
                out.append(headers)
        if len(self._buf) > MAX_MESSAGE:
            raise RemoteProtocolError(f"no end of message after {len(self._buf)} bytes")
        return out

    def _banner(self) -> Banner | None:
        if BANNER_PREFIX.startswith(bytes(self._buf[:len(BANNER_PREFIX)])) and b"\r\n" not in self._buf:
            if len(self._buf) > 200:
                raise RemoteProtocolError("banner line too long")
            return None  # the banner is still arriving
        if not self._buf.startswith(BANNER_PREFIX):
            self.version = ""  # no banner: read messages anyway
            return Banner("")
        line, _, rest = bytes(self._buf).partition(b"\r\n")
        self._buf[:] = rest
        self.version = line[len(BANNER_PREFIX):].decode("ascii", "replace").strip()
        return Banner(self.version)


def parse(block: bytes) -> Headers:
    """``Key: Value`` lines of one message; a line without a colon is kept as body text."""
    headers: Headers = []
    for raw in block.split(b"\r\n"):
        line = raw.decode("utf-8", "replace")
        if not line.strip():
            continue  # Asterisk sometimes sends a lone CRLF before a message
        key, sep, value = line.partition(":")
        if sep and key and " " not in key.strip():
            headers.append((key.strip(), value[1:] if value.startswith(" ") else value))
        else:
            headers.append(("", line))
    return headers


def format_action(headers: Headers) -> bytes:
    """One action on the wire (used by tests and the peer; panoramisk formats its own)."""
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in headers) + b"\r\n"
