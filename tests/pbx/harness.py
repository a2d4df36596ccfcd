"""A real Asterisk 22 on loopback for the tests: found, started in a scratch folder, driven over AMI.

Everything Asterisk writes (config as rendered, logs, CDR, spool, sounds, agi-bin) lives under the
run folder; the install itself is only read. AMI listens on a free loopback port chosen at start.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_PREFIX = "/opt/favad-asterisk"  # scripts/asterisk installs here unless AST_PREFIX says otherwise
AMI_USER, AMI_SECRET = "favad", "favad-test-secret"


def find_prefix() -> str | None:
    """The Asterisk install to test against: $AST_PREFIX, `asterisk` on PATH, the default prefix."""
    candidates = [os.environ.get("AST_PREFIX", "")]
    found = shutil.which("asterisk")
    if found:
        candidates.append(str(Path(found).resolve().parent.parent))
    candidates.append(DEFAULT_PREFIX)
    for prefix in candidates:
        if prefix and os.access(Path(prefix, "sbin", "asterisk"), os.X_OK):
            return prefix
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Pbx:
    """One Asterisk process, its files under ``run``, stopped by its own pid."""

    def __init__(self, prefix: str, run: Path):
        self.prefix, self.run = prefix, run
        self.etc, self.log_dir = run / "etc", run / "log"
        self.sounds = run / "data" / "sounds"
        self.agi_bin = run / "agi-bin"
        self.recordings = run / "rec"
        self.ami_port = free_port()
        self.binary = str(Path(prefix, "sbin", "asterisk"))
        self.conf = str(self.etc / "asterisk.conf")
        self.proc: subprocess.Popen | None = None

    @property
    def full_log(self) -> Path:
        return self.log_dir / "full"

    @property
    def cdr_csv(self) -> Path:
        return self.log_dir / "cdr-csv" / "Master.csv"

    def _render(self) -> None:
        for d in (self.etc, self.log_dir / "cdr-csv", self.run / "run", self.run / "db", self.run / "cache",
                  self.run / "spool" / "outgoing", self.run / "spool" / "tmp", self.sounds, self.agi_bin,
                  self.recordings):
            d.mkdir(parents=True, exist_ok=True)
        values = {"@ETC@": str(self.etc), "@PREFIX@": self.prefix, "@RUN@": str(self.run),
                  "@AMI_PORT@": str(self.ami_port)}
        for src in sorted((HERE / "etc").iterdir()):
            text = src.read_text()
            for k, v in values.items():
                text = text.replace(k, v)
            (self.etc / src.name.removesuffix(".in")).write_text(text)
        (self.etc / "favad-128.conf").touch()
        english = Path(self.prefix, "var", "lib", "asterisk", "sounds", "en")
        if not (self.sounds / "en").exists():
            (self.sounds / "en").symlink_to(english if english.exists()
                                            else "/usr/share/asterisk/sounds/en_US_f_Allison")
        for name in ("documentation", "moh", "keys"):  # the rest of the data dir, read-only from the install
            src = Path(self.prefix, "var", "lib", "asterisk", name)
            if src.exists() and not (self.run / "data" / name).exists():
                (self.run / "data" / name).symlink_to(src)

    def start(self, timeout: float = 60) -> None:
        self._render()
        out = open(self.log_dir / "console.out", "ab")
        # -f: no fork, so this process is the one we stop; -c is not given, so no console either
        self.proc = subprocess.Popen([self.binary, "-C", self.conf, "-f", "-n"], stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()

        def booted():
            if self.proc.poll() is not None:
                raise RuntimeError(f"asterisk exited ({self.proc.returncode}); see {self.log_dir}")
            return (self.run / "run" / "asterisk.ctl").exists() and \
                self.cli("core waitfullybooted", check=False, timeout=5).returncode == 0
        wait_for(booted, timeout, "Asterisk to boot", interval=0.3)
        wait_for(lambda: port_open(self.ami_port), 10, "AMI to listen")

    def cli(self, command: str, check: bool = True, timeout: float = 15) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, "-C", self.conf, "-rx", command], capture_output=True,
                              text=True, timeout=timeout, check=check)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.cli("core stop now", check=False, timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_text(self) -> str:
        return self.full_log.read_text(errors="replace") if self.full_log.exists() else ""


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


# -- AMI -----------------------------------------------------------------------------------------
@dataclass
class Message:
    headers: dict[str, str]
    lines: list[str] = field(default_factory=list)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.headers.get(key, default)


class Ami:
    """A blocking AMI client; a reader thread keeps every event for the test to look through."""

    def __init__(self, port: int, user: str = AMI_USER, secret: str = AMI_SECRET):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.settimeout(None)
        self.file = self.sock.makefile("rb")
        self.banner = self.file.readline().decode().strip()
        self.events: list[Message] = []
        self.responses: dict[str, Message] = {}
        self.cond = threading.Condition()
        self.closed = False
        self._n = 0
        threading.Thread(target=self._reader, daemon=True).start()
        r = self.action({"Action": "Login", "Username": user, "Secret": secret})
        if r.get("Response") != "Success":
            raise RuntimeError(f"AMI login refused: {r.headers}")

    def _reader(self) -> None:
        msg: dict[str, str] = {}
        lines: list[str] = []
        try:
            for raw in self.file:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line:
                    lines.append(line)
                    if ": " in line:
                        k, v = line.split(": ", 1)
                        msg.setdefault(k, v)
                    continue
                if not lines:
                    continue
                m = Message(msg, lines)
                with self.cond:
                    if "Event" in msg:
                        self.events.append(m)
                    elif "ActionID" in msg:
                        self.responses[msg["ActionID"]] = m
                    self.cond.notify_all()
                msg, lines = {}, []
        except (OSError, ValueError):
            pass
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def send(self, headers: dict[str, str], variables: dict[str, str] | None = None) -> str:
        self._n += 1
        aid = headers.setdefault("ActionID", f"t{self._n}-{time.monotonic_ns()}")
        out = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        out += "".join(f"Variable: {k}={v}\r\n" for k, v in (variables or {}).items())
        self.sock.sendall((out + "\r\n").encode())
        return aid

    def action(self, headers: dict[str, str], variables: dict[str, str] | None = None,
               timeout: float = 15) -> Message:
        aid = self.send(headers, variables)
        with self.cond:
            if not self.cond.wait_for(lambda: aid in self.responses or self.closed, timeout):
                raise TimeoutError(f"no AMI response to {headers.get('Action')}")
            if aid not in self.responses:
                raise ConnectionError("AMI connection closed")
            return self.responses.pop(aid)

    def command(self, command: str) -> str:
        r = self.action({"Action": "Command", "Command": command})
        return "\n".join(line.removeprefix("Output: ") for line in r.lines
                         if not line.startswith(("Response:", "ActionID:", "Message:")))

    def wait_event(self, match, timeout: float, what: str) -> Message:
        """The first kept event (past or future) for which ``match(event)`` is true."""
        with self.cond:
            def found_or_closed():
                return next((e for e in self.events if match(e)), None) or self.closed
            found = self.cond.wait_for(found_or_closed, timeout)
            if not isinstance(found, Message):
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            return found

    def close(self) -> None:
        try:
            self.send({"Action": "Logoff"})
        except OSError:
            pass
        self.sock.close()
