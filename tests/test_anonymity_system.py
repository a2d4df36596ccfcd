"""The whole system, as one process would run in production (`favad serve` with its embedded
dispatcher), fed calls from known numbers and names through every path; then every byte it
wrote is scanned: the data directory (database, journal, Maildir, SMS file, recordings), the
server's log, the generated dialplan, and the monitor's output."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from pbxsim.caller import Caller
from pbxsim.fastagi import run_call
from test_anonymity import CALLERS, PATHS, database_bytes, scan
from test_serve import free_port, server_env, wait_listening


def favad(env, *args) -> bytes:
    done = subprocess.run([sys.executable, "-m", "cli", *args], env=env, capture_output=True, timeout=120)
    return done.stdout + done.stderr


def test_nothing_the_running_system_writes_or_shows_identifies_a_caller(backend, tmp_path):
    s = backend.settings
    port = free_port()
    env = {**server_env(s, port), "FAVAD_DISPATCH_IN_SERVE": "1", "FAVAD_WEB_IN_SERVE": "0",
           "FAVAD_OPERATOR_QUEUE": "favad-operators", "FAVAD_LOG_LEVEL": "DEBUG",
           "FAVAD_DISPATCH_POLL": "0.05", "FAVAD_DIALPLAN_FILE": str(tmp_path / "favad-128.conf")}
    favad(env, "db", "demo")  # the inspection units, so that messages go out
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cli", "serve"], env=env, stdout=out, stderr=out)
    try:
        wait_listening(port, proc)

        async def calls():
            for number, name in CALLERS:
                for keys in PATHS:
                    await run_call("127.0.0.1", port, script="favad", args=("28",),
                                   caller=Caller(keys, speak=True), sounds_dir=s.sounds_path,
                                   callerid=number, calleridname=name)
        asyncio.run(calls())
        maildir = Path(s.data_dir) / "maildir"
        for _ in range(100):  # the dispatcher delivers within moments
            if maildir.exists() and len(list(maildir.rglob("new/*"))) >= 10:
                break
            time.sleep(0.1)
        shown = favad(env, "monitor", "--once") + favad(env, "monitor", "--once", "--json")
        shown += favad(env, "complaints", "list", "--json") + favad(env, "outbox", "list", "--json")
        shown += favad(env, "dialplan", "render")
    finally:
        proc.terminate()
        proc.wait(30)

    assert len(list(maildir.rglob("new/*"))) >= 10, "the messages were not delivered"
    assert (Path(s.data_dir) / "sms.log").exists()
    scan(log.read_bytes(), "the server's log")
    scan(shown, "what the CLI shows")
    scan(database_bytes(s), "the database")
    files = [p for p in [*Path(s.data_dir).rglob("*"), *s.recordings_path.rglob("*")] if p.is_file()]
    assert len(files) > 10  # the database, messages, SMS file, recordings, keys
    for path in files:
        scan(str(path).encode(), "a file name")
        scan(path.read_bytes(), str(path))
