"""`favad serve` as a process: a call in progress survives SIGTERM, then the server exits."""
from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time

from sqlalchemy import func, select

from conftest import favad_env
from db.models import Complaint
from pbxsim.caller import Caller
from pbxsim.fastagi import run_call


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc, timeout=20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not start")


def server_env(settings, port):
    return favad_env(settings, FAVAD_LISTEN_PORT=str(port), FAVAD_SHUTDOWN_GRACE="20",
                     FAVAD_DISPATCH_IN_SERVE="0")


def test_sigterm_lets_the_call_in_progress_finish(backend):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve"], env=server_env(backend.settings, port),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_listening(port, proc)
        groups = iter(["280101#", "1", "4", "2", "1", "-"])

        def person(prompt):
            if prompt.endswith("main-menu"):
                proc.send_signal(signal.SIGTERM)  # the admin stops the server mid-call
                time.sleep(1.0)
                return "1"
            return next(groups, None)

        result = asyncio.run(run_call("127.0.0.1", port, script="favad", args=("28",),
                                      caller=Caller("", interactive=person),
                                      sounds_dir=backend.settings.sounds_path))
        assert "favad/filed-code-is" in result.played
        assert proc.wait(timeout=20) == 0
        with backend.Session() as s:
            assert s.scalar(select(func.count()).select_from(Complaint)) == 1
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            refused = False
        except OSError:
            refused = True
        assert refused, "the stopped server still accepts calls"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
