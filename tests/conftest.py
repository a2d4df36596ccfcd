"""Shared fixtures: both databases (SQLite file, the machine's PostgreSQL), real prompt audio,
a migrated and demo-loaded backend, and a FastAGI server on a free loopback port."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from config import Settings
from db.engine import make_engine, make_sessionmaker
from migrations.run import upgrade
from db.store import load_demo

PG_URL = os.environ.get("FAVAD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parent.parent
CALLER_NUMBER = "09121234567"
CALLER_NAME = "Test"


@pytest.fixture(scope="session")
def sounds_dir(tmp_path_factory) -> str:
    """Real WAV prompts for every id a call can play, built by the project's own builder."""
    from drill.fleet import build_sounds

    path = tmp_path_factory.mktemp("sounds")
    build_sounds(path)  # every language a province may speak, each in its folder
    return str(path)


@contextlib.contextmanager
def pg_schema():
    """A fresh schema in the PostgreSQL test database, dropped afterwards."""
    name = f"favad_{secrets.token_hex(4)}"
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{name}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/favad.sqlite3"
    else:
        with pg_schema() as url:
            yield url


@pytest.fixture
def settings(db_url, tmp_path, sounds_dir) -> Settings:
    (tmp_path / "rec").mkdir()
    return Settings(data_dir=str(tmp_path / "var"), database_url=db_url, sounds_dir=sounds_dir,
                    recordings_dir=str(tmp_path / "rec"), caller_hash_key="test-hash-key",
                    # the tests call from one number again and again; the limits have tests of their own
                    limit_complaints_day=0, limit_complaints_month=0, limit_guesses_day=0,
                    limit_guesses_month=0,
                    listen_port=0)


@pytest.fixture
def migrated(settings) -> Settings:
    upgrade(settings.db_url)
    engine = make_engine(settings.db_url)
    with make_sessionmaker(engine)() as s:
        load_demo(s)
    engine.dispose()
    return settings


@pytest.fixture
def backend(migrated):
    from ivr.backend import Backend

    b = Backend(migrated)
    yield b
    b.close()
    b.engine.dispose()


@contextlib.asynccontextmanager
async def running_server(backend, **kw):
    """A FastAGI server on a free loopback port; yields (server, port)."""
    from ivr.fastagi import FastAgiServer

    server = FastAgiServer(backend, backend.settings.script, **kw)
    srv = await server.start("127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    task = asyncio.create_task(server.serve_until(stop, grace=5))
    try:
        yield server, port
    finally:
        stop.set()
        await task


def favad_env(s: Settings, **extra) -> dict:
    """The environment a `favad` subprocess needs to run on the test's settings."""
    return {**os.environ, "FAVAD_DATABASE_URL": s.db_url, "FAVAD_DATA_DIR": s.data_dir,
            "FAVAD_SOUNDS_DIR": s.sounds_path, "FAVAD_RECORDINGS_DIR": str(s.recordings_path),
            "FAVAD_CALLER_HASH_KEY": s.caller_hash_key,
            **{f"FAVAD_LIMIT_{k.upper()}": str(getattr(s, f"limit_{k}"))
               for k in ("complaints_day", "complaints_month", "guesses_day", "guesses_month")}, **extra}


@pytest.fixture(autouse=True)
def _root_logger_restored():
    """The CLI sets up logging for the process; leave the test session's as it was."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _process_state_restored():
    """The CLI makes the process's files private and its stderr redacted; undo it after each test."""
    umask = os.umask(0o022)
    os.umask(umask)
    hooks, last_resort = (sys.excepthook, threading.excepthook), logging.lastResort.filters[:]
    yield
    os.umask(umask)
    sys.excepthook, threading.excepthook = hooks
    logging.lastResort.filters[:] = last_resort
