"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production).

A PostgreSQL engine follows the primary across a failover without a restart: a pooled
connection is pinged before use (a dead one is replaced), and an error that says this server
no longer takes our writes (a standby, a server shutting down or starting) is treated as a lost
connection, so SQLAlchemy discards the whole pool and the next attempt connects afresh, which
libpq's ``target_session_attrs=read-write`` sends to whichever host is the primary now.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import sessionmaker

from config.dburl import normalise

# SQLSTATEs after which no statement on this connection can succeed, though it is still open:
# 25006 read_only_sql_transaction (a standby, or a primary demoted under us), 57P01
# admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now (starting, or in recovery)
SWITCHED = frozenset({"25006", "57P01", "57P02", "57P03"})
# libpq settings. Fail fast when a server is away: the IVR then journals instead of keeping a
# caller waiting (the connect timeout applies to each host of a multi-host list in turn). A
# primary whose machine vanished sends no reset: without a bound, a pooled connection's next
# statement (the pre-ping itself) would wait out TCP's retransmissions, about 15 minutes, and
# every write queued behind it. Unacknowledged data gives up after 10 s, a silent idle one after
# about 20 s (keepalives).
PG_DEFAULTS = {"connect_timeout": 3, "tcp_user_timeout": 10_000, "keepalives": 1,
               "keepalives_idle": 10, "keepalives_interval": 3, "keepalives_count": 3}


def make_engine(url: str, **kw) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kw)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        return engine
    url = normalise(url)  # a multi-host list in the spelling SQLAlchemy reads
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    # what the URL sets itself wins over these defaults
    given = set(make_url(url).query)
    engine = create_engine(url, pool_pre_ping=True,
                           connect_args={k: v for k, v in PG_DEFAULTS.items() if k not in given}, **kw)
    event.listen(engine, "handle_error", _switched)
    return engine


def _switched(ctx) -> None:
    """Treat "this server is not the primary any more" as a disconnect: the pool is emptied."""
    if getattr(ctx.original_exception, "sqlstate", None) in SWITCHED:
        ctx.is_disconnect = True


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
