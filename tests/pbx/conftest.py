"""The PBX suite's fixtures: one real Asterisk and one 128 installation for the whole session.

The session starts Asterisk in a scratch folder, builds the prompts into its sounds folder,
deploys the generated dialplan over AMI and runs `favad serve` on a free port; every test then
places real calls through the generated contexts. Skipped (one reason) when no Asterisk is
installed: scripts/asterisk builds one.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .calls import place, wait_all
from .harness import Ami, Pbx, port_open, find_prefix, free_port, wait_for
from .scenarios import WAVE

ROOT = Path(__file__).resolve().parents[2]
FAVAD = str(Path(sys.executable).with_name("favad"))
PREFIX = find_prefix()


# Without an Asterisk nothing here is collected, so the rest of the suite runs exactly as before;
# scripts/test says so in one line.
collect_ignore_glob = ["test_*.py"] if PREFIX is None else []


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.pbx)


class Favad:
    """The 128 side: a config file, its database, `favad serve`, and the `favad` command."""

    def __init__(self, pbx: Pbx, home: Path):
        self.pbx, self.home = pbx, home
        self.port = free_port()
        self.config = home / "favad.toml"
        self.data_dir = home / "var"
        self.db_path = self.data_dir / "favad.sqlite3"
        self.serve_proc: subprocess.Popen | None = None
        settings = {
            "data_dir": str(self.data_dir), "listen_port": self.port,
            "sounds_dir": str(pbx.sounds), "recordings_dir": str(pbx.recordings),
            "caller_hash_key": "pbx-suite-key", "operator_queue": "favad-operators",
            "classic_agi": "favad-agi", "ami_port": pbx.ami_port, "ami_username": "favad",
            "ami_secret": "favad-test-secret", "dialplan_file": str(pbx.etc / "favad-128.conf"),
            "limit_complaints_day": 0, "limit_complaints_month": 0, "limit_guesses_day": 0,
            "limit_guesses_month": 0, "dispatch_in_serve": 0, "web_in_serve": 0,
            "shutdown_grace": 2.0,
        }
        home.mkdir(parents=True, exist_ok=True)
        self.config.write_text("".join(f"{k} = {_toml(v)}\n" for k, v in settings.items()))
        self.config.chmod(0o600)
        # the same installation without an operator queue, for classic AGI's favad-agi-plain
        plain = home / "favad-plain.toml"
        plain.write_text("".join(f"{k} = {_toml(v)}\n" for k, v in settings.items() if k != "operator_queue"))
        plain.chmod(0o600)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FAVAD_")}
        self.env["FAVAD_CONFIG"] = str(self.config)
        # classic AGI: the wrapper README.md describes, in this PBX's agi-bin
        for name, config in (("favad-agi", self.config), ("favad-agi-plain", plain)):
            wrapper = pbx.agi_bin / name
            wrapper.write_text(f'#!/bin/sh\nFAVAD_CONFIG="{config}" exec "{FAVAD}" agi "$@"\n')
            wrapper.chmod(0o755)

    def run(self, *args, check: bool = True, timeout: float = 120, env: dict | None = None
            ) -> subprocess.CompletedProcess:
        r = subprocess.run([FAVAD, *args], env={**self.env, **(env or {})}, cwd=self.home,
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"favad {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    def complaints(self) -> list[dict]:
        return json.loads(self.run("complaints", "list", "--json", "--limit", "100000").stdout)

    def start_serve(self) -> None:
        if self.serve_proc and self.serve_proc.poll() is None:
            return
        log = open(self.home / "serve.log", "ab")
        self.serve_proc = subprocess.Popen([FAVAD, "serve"], env=self.env, cwd=self.home, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

        def listening():
            if self.serve_proc.poll() is not None:
                raise RuntimeError(f"favad serve exited; see {self.home / 'serve.log'}")
            return port_open(self.port)
        wait_for(listening, 60, "favad serve to listen")

    def stop_serve(self) -> None:
        proc, self.serve_proc = self.serve_proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _toml(v) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(v)


@pytest.fixture(scope="session")
def pbx(tmp_path_factory):
    """A running Asterisk 22 with AGI debug on; stopped at the end of the session, whatever happens."""
    if PREFIX is None:
        pytest.skip("no Asterisk installed")
    p = Pbx(PREFIX, tmp_path_factory.mktemp("ast-run"))
    try:
        p.start()
        p.cli("agi set debug on")
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="session")
def favad(pbx, tmp_path_factory):
    """128 installed on that PBX: database, prompts, the deployed dialplan and `favad serve`."""
    f = Favad(pbx, tmp_path_factory.mktemp("favad"))
    try:
        f.run("db", "upgrade")
        f.run("db", "demo")
        f.run("prompts", "build", timeout=600)
        f.run("dialplan", "deploy")
        f.start_serve()
        yield f
    finally:
        f.stop_serve()


@pytest.fixture(scope="session")
def ami(pbx):
    a = Ami(pbx.ami_port)
    yield a
    a.close()


@pytest.fixture
def serving(favad):
    """`favad serve` up (a test that stopped it leaves it to be restarted here)."""
    favad.start_serve()
    return favad


@contextlib.contextmanager
def serve_stopped(favad):
    favad.stop_serve()
    try:
        yield
    finally:
        favad.start_serve()


@dataclass
class Wave:
    calls: dict
    before: list[dict]
    after: list[dict]
    monitor: dict
    seconds: float


@pytest.fixture(scope="session")
def wave(favad, pbx, ami) -> Wave:
    """Every independent scenario at once (scenarios.WAVE), `favad monitor --json` taken mid-way."""
    favad.start_serve()
    before = favad.complaints()
    start = time.monotonic()
    calls = {name: place(pbx, ami, keys, **opts) for name, (keys, opts) in WAVE.items()}
    for c in calls.values():
        c.wait_answered(60)
    time.sleep(8)  # every caller is past the welcome
    monitor = json.loads(favad.run("monitor", "--json").stdout)
    wait_all(list(calls.values()), timeout=400)
    return Wave(calls, before, favad.complaints(), monitor, time.monotonic() - start)
