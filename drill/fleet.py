"""favad's side of the drill: two `favad serve`, two `favad dispatch`, a mail server and an SMS
provider, all on loopback, all given the cluster's multi-host URL.

Each process has its own data_dir (its journal is its own); the keys are shared, as the README
says they must be across machines. A process is killed with SIGKILL and started again on the
same data_dir and port, as systemd would restart it on a machine that came back.
"""
from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from common.keyring import code_hash
from db.engine import make_engine, make_sessionmaker
from db.models import Complaint
from db.store import load_demo
from dispatch.loopback import SmsSink, SmtpSink, free_port
from dispatch.models import OutboxMessage
from dispatch.units import load_demo_units
from ivr.journal import Journal
from migrations.run import upgrade

FAVAD = str(Path(sys.executable).with_name("favad"))
ROOT = Path(__file__).resolve().parent.parent
PERSIAN = str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")
TRACKING_KEY = "drill-tracking-key"
SHARED = {"FAVAD_CALLER_HASH_KEY": "drill-caller-hash-key",  # one caller hashes alike on every server
          "FAVAD_TRACKING_KEY": TRACKING_KEY,  # a code heard from one server is found by any
          "FAVAD_LINK_KEYS": "drill-link-key",  # a unit's link opens on any page
          "FAVAD_LOG_LEVEL": "WARNING", "FAVAD_WEB_IN_SERVE": "0",
          # a send's worst case (8 SMTP steps x 2 s) stays under the lease, which a killed
          # dispatcher's messages wait out before another takes them
          "FAVAD_SMTP_TIMEOUT": "2", "FAVAD_SMS_TIMEOUT": "2", "FAVAD_DISPATCH_LEASE": "20",
          "FAVAD_DISPATCH_POLL": "0.1", "FAVAD_DISPATCH_BACKOFF_BASE": "0.5",
          "FAVAD_DISPATCH_BACKOFF_MAX": "4", "FAVAD_SHUTDOWN_GRACE": "30"}


def hashed(code: str) -> str:
    return code_hash(TRACKING_KEY.encode(), code)


def build_sounds(path: Path) -> None:
    """Tone prompts for every id a call can play, as the tests build them (pbxsim checks that
    each prompt exists)."""
    from ivr.catalog import offers, spoken, static_catalog, with_catalog
    from prompts.build import build

    texts = static_catalog()
    demo = tomllib.loads((ROOT / "db/demo.toml").read_text(encoding="utf-8"))
    ref = tomllib.loads((ROOT / "db/reference.toml").read_text(encoding="utf-8"))
    texts.update({f"agency-{a['code']}": a["name_fa"] for a in demo["agency"]})
    texts.update({f"indicator-{i['code']}": i["name_fa"] for i in ref["indicator"]})
    texts.update({pid: e.text for pid, e in offers().items()})
    for language in with_catalog():
        said = {pid: e.say for pid, e in spoken(language, texts).items()}
        build(said, said, str(path), engine="tone", language=language)


class Proc:
    """One favad process, its output kept (the last lines, for a failure's report)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], ready: str):
        self.name, self.args, self.env, self.ready = name, args, env, ready
        self.lines: list[str] = []
        self.p: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> "Proc":
        self.lines = []
        self.p = subprocess.Popen([FAVAD, *self.args], env={**os.environ, **self.env}, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=self._read, args=(self.p, self.lines), daemon=True).start()
        end = time.monotonic() + timeout
        while not any(self.ready in line for line in self.lines):
            if self.p.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"{self.name} did not start:\n" + "".join(self.lines[-30:]))
            time.sleep(0.05)
        return self

    @staticmethod
    def _read(p: subprocess.Popen, lines: list[str]) -> None:
        for line in p.stdout:
            lines.append(line)

    def kill(self) -> None:
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)
            self.p.wait()

    def stop(self) -> None:
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


class Fleet:
    def __init__(self, url: str, root: Path):
        self.url, self.root = url, root
        self.engine = make_engine(url, pool_size=2)
        self.Session = make_sessionmaker(self.engine)
        self.sounds = root / "sounds"
        self.smtp, self.sms = SmtpSink(), SmsSink()
        self.servers: list[Proc] = []
        self.dispatchers: list[Proc] = []
        self.ports: list[int] = []
        self.sinks_started = False

    def prepare(self) -> None:
        """The schema, the demo reference data and units, and the prompts."""
        upgrade(self.url)
        with self.Session() as s:
            load_demo(s)
            load_demo_units(s)
        build_sounds(self.sounds)
        (self.root / "recordings").mkdir(exist_ok=True)

    def start(self) -> None:
        self.smtp.start()
        self.sms.start()
        self.sinks_started = True
        mail = {"FAVAD_SMTP_HOST": "127.0.0.1", "FAVAD_SMTP_PORT": str(self.smtp.port),
                "FAVAD_SMTP_SECURITY": "none", "FAVAD_SMS_URL": self.sms.url, "FAVAD_SMS_API_KEY": "drill"}
        base = {**SHARED, **mail, "FAVAD_DATABASE_URL": self.url, "FAVAD_SOUNDS_DIR": str(self.sounds),
                "FAVAD_RECORDINGS_DIR": str(self.root / "recordings")}
        for name in ("a", "b"):
            self.ports.append(free_port())
            env = {**base, "FAVAD_DATA_DIR": str(self.root / f"serve-{name}"),
                   "FAVAD_LISTEN_PORT": str(self.ports[-1])}
            self.servers.append(Proc(f"server {name}", ["serve", "--no-dispatch"], env, "favad: FastAGI on"))
            env = {**base, "FAVAD_DATA_DIR": str(self.root / f"dispatch-{name}")}
            self.dispatchers.append(Proc(f"dispatcher {name}", ["dispatch"], env, "favad: dispatcher"))
        for proc in self.servers + self.dispatchers:
            proc.start()

    def stop(self) -> None:
        for proc in self.servers + self.dispatchers:
            proc.stop()
        self.smtp.stop()
        if self.sinks_started:  # shutdown() of a server never started would wait forever
            self.sms.stop()
        self.engine.dispose()

    def restart_smtp(self) -> None:
        """The mail server back on its port (its received messages are kept)."""
        self.smtp.start()

    # -- what the drill counts -----------------------------------------------------------------

    def journals(self) -> dict[str, int]:
        """Entries waiting (or quarantined) in each server's journal."""
        out = {}
        for proc in self.servers:
            j = Journal(Path(proc.env["FAVAD_DATA_DIR"]) / "journal")
            out[proc.name] = len(j.pending()) + len(j.quarantined())
        return out

    def stored(self) -> Counter:
        with self.Session() as s:
            return Counter(s.scalars(select(Complaint.code_hash)))

    def case_numbers(self) -> dict[str, str]:
        """code hash -> case number, to find the messages of the complaints a phase's callers heard."""
        with self.Session() as s:
            return {h: case for h, case in s.execute(select(Complaint.code_hash, Complaint.case_number))}

    def unsent(self) -> int:
        with self.Session() as s:
            return sum(1 for status in s.scalars(select(OutboxMessage.status)) if status != "sent")

    def queued(self) -> Counter:
        """(case number, channel, recipient) of every outbox message: what must arrive once."""
        with self.Session() as s:
            rows = s.execute(select(Complaint.case_number, OutboxMessage.channel, OutboxMessage.recipient)
                             .join(Complaint, OutboxMessage.complaint_id == Complaint.id))
            return Counter(tuple(r) for r in rows)

    def accepted(self) -> Counter:
        """The same triples from what the mail server and the SMS provider accepted."""
        found = Counter()
        for m in list(self.smtp.messages):
            msg = email.message_from_bytes(m.fields["content"], policy=email.policy.default)
            found[(msg["X-Favad-Case-Number"], "email", msg["To"])] += 1
        for r in list(self.sms.requests):
            case = r.fields["message"].translate(PERSIAN).split("پرونده ", 1)[1].split()[0]
            found[(case, "sms", r.fields["receptor"])] += 1
        return found

    def tails(self) -> str:
        return "\n".join(f"--- {p.name}\n" + "".join(p.lines[-15:]) for p in self.servers + self.dispatchers)
