"""PostgreSQL URLs naming several servers, as libpq takes them, in the shape SQLAlchemy reads.

favad follows the primary of a replicated pair (or more) with libpq's own multi-host
connection: every host is tried in turn and, with ``target_session_attrs=read-write``, only the
one that takes writes is kept. SQLAlchemy 2.0's psycopg dialect reads the hosts from the query
(``?host=h1,h2&port=p1,p2`` or ``?host=h1:p1&host=h2:p2``) but not libpq's other spellings:
``postgresql://u@h1:p1,h2:p2/db`` (the port fails to parse) and ``?host=h1:p1,h2:p2`` (handed to
libpq as one host name). ``normalise`` rewrites those two into the first form and leaves every
other URL exactly as given. No SQLAlchemy here: the configuration loads without it.
"""
from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlsplit

SAFE_ATTRS = ("read-write", "primary")  # target_session_attrs that never land on a standby


class UrlError(ValueError):
    """A database URL that cannot be used; the message says what is wrong."""


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql:", "postgresql+", "postgres:"))


def normalise(url: str) -> str:
    """``url`` with a multi-host list moved into ``?host=…&port=…``; any other URL unchanged."""
    if not is_postgres(url):
        return url
    scheme, sep, rest = url.partition("://")
    authority, slash, tail = rest.partition("/")
    creds, at, hostlist = authority.rpartition("@")
    path, _, query = tail.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    moved: list[tuple[str, str]] = []
    if "," in hostlist:
        moved = _split_hosts(hostlist.split(","))
        authority = creds + at
    queried = [v for k, v in pairs if k == "host"]
    if len(queried) == 1 and "," in queried[0] and not _has(pairs, "port") and ":" in queried[0]:
        moved = _split_hosts(queried[0].split(","))
        pairs = [(k, v) for k, v in pairs if k != "host"]
    if not moved:
        return url
    if _has(pairs, "host") or _has(pairs, "port"):
        raise UrlError("the database URL names its hosts twice (in the address and in ?host=)")
    front = [("host", ",".join(h for h, _ in moved))]
    if any(p for _, p in moved):
        front.append(("port", ",".join(p for _, p in moved)))
    query = "&".join(f"{k}={quote(v, safe=',:/-_.')}" for k, v in front + pairs)
    return f"{scheme}{sep}{authority}{slash}{path}?{query}"


def _has(pairs: list[tuple[str, str]], key: str) -> bool:
    return any(k == key for k, _ in pairs)


def _split_hosts(items: list[str]) -> list[tuple[str, str]]:
    """``h1:p1`` items (``[::1]:p`` for IPv6) as (host, port or "")."""
    out = []
    for item in items:
        item = item.strip()
        if item.startswith("["):
            host, _, port = item[1:].partition("]")
            port = port.removeprefix(":")
        elif item.count(":") == 1:
            host, port = item.split(":")
        else:
            host, port = item, ""
        if not host:
            raise UrlError(f"the database URL's host list has an empty host ({item!r})")
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise UrlError(f"the database URL's port {port!r} (of {host}) is not a port number")
        out.append((host, port))
    return out


def hosts(url: str) -> list[tuple[str, int | None]]:
    """The servers a PostgreSQL URL names, in the order libpq tries them (empty: libpq's default)."""
    url = normalise(url)
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = [h for k, v in query if k == "host" for h in v.split(",")]
    ports = [p for k, v in query if k == "port" for p in v.split(",")]
    if not names:
        try:
            port = parts.port
        except ValueError as e:
            raise UrlError(f"the database URL's port is not a port number ({e})") from None
        return [(parts.hostname, port)] if parts.hostname else []
    if ports and len(ports) not in (1, len(names)):
        raise UrlError(f"the database URL names {len(names)} hosts but {len(ports)} ports")
    out = []
    for i, name in enumerate(names):
        host, port = _split_hosts([name])[0]  # the ?host=h1:p1&host=h2:p2 spelling
        port = port or (ports[0] if len(ports) == 1 else ports[i] if ports else "")
        if port and not port.isdigit():
            raise UrlError(f"the database URL's port {port!r} is not a port number")
        out.append((host, int(port) if port else None))
    return out


def session_attrs(url: str) -> str:
    return dict(parse_qsl(urlsplit(url).query)).get("target_session_attrs", "")


def advice(url: str) -> list[str]:
    """Warnings for a URL that works but may write to the wrong server."""
    if not is_postgres(url):
        return []
    try:
        named = hosts(url)
    except UrlError:
        return []  # said as a problem already
    if len(named) > 1 and session_attrs(url) not in SAFE_ATTRS:
        return [f"database_url names {len(named)} servers without target_session_attrs=read-write: "
                f"after a failover, favad may connect to a standby and its writes would be refused; "
                f"add &target_session_attrs=read-write"]
    return []


def problems(url: str) -> list[str]:
    if not is_postgres(url):
        return []
    try:
        normalise(url)
        hosts(url)
    except UrlError as e:
        return [str(e)]
    return []

