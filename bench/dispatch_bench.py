"""Dispatch benchmark (not a test): complaints filed at a steady rate reach a real SMTP server
(aiosmtpd) and a stand-in SMS provider (http.server) on loopback, through 1 and 4 `favad
dispatch` processes sharing one database.

For each number of dispatchers it prints the delivery rate (messages per second: emails and
SMS, while complaints arrive at --rate, then draining a backlog of --backlog complaints filed
with no dispatcher running) and the delay from "complaint stored" (its transaction committed)
to "email accepted by the SMTP server" (250 to DATA), p50 and p95.

    .venv/bin/python -m bench.dispatch_bench                       # PostgreSQL at 127.0.0.1
    .venv/bin/python -m bench.dispatch_bench --db sqlite --complaints 300 --rate 50
    .venv/bin/python -m bench.dispatch_bench --smtp-delay 0.03    # a mail relay that takes 30 ms
"""
from __future__ import annotations

import argparse
import datetime as dt
import email
import email.policy
import os
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import func, select, update

from bench.run import database as fresh_database
from db.engine import make_engine, make_sessionmaker
from complaints.filing import file_complaint
from dispatch.loopback import SmsSink, SmtpSink
from dispatch.models import OutboxMessage
from ivr.events import ComplaintDraft

FAVAD = str(Path(sys.executable).with_name("favad"))
DRAFTS = [ComplaintDraft("28", "101", "280101", "disrespect", None),
          ComplaintDraft("26", "104", "260104", "work_postponed", None),
          ComplaintDraft("21", "108", "210108", "employee_absent", None),
          ComplaintDraft("28", "105", "280105", "late_start_early_end", None)]


@contextmanager
def database(kind: str, workdir: Path):
    """bench.run's fresh database (migrated, demo data and units), with an engine on it."""
    workdir.mkdir(parents=True, exist_ok=True)
    with fresh_database("postgresql" if kind == "postgres" else kind, workdir) as url:
        engine = make_engine(url)
        try:
            yield url, engine
        finally:
            engine.dispose()


class Sinks:
    """The SMTP server and the SMS provider in a process of their own, so that the benchmark's
    own threads (filing complaints) do not slow the servers down through the GIL."""

    def __init__(self, smtp_delay: float = 0.0):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve_sinks, args=(child, smtp_delay), daemon=True)
        self.proc.start()
        self.smtp_port, self.sms_url = self.conn.recv()

    def received(self) -> tuple[list[tuple[str, float]], list[float]]:
        """(case number, time accepted) of every email; time accepted of every SMS."""
        self.conn.send("report")
        return self.conn.recv()

    def stop(self) -> None:
        self.conn.send("stop")
        self.proc.join(10)


def _serve_sinks(conn, smtp_delay: float) -> None:
    smtp, sms = SmtpSink().start(), SmsSink().start()
    smtp.delay = smtp_delay
    conn.send((smtp.port, sms.url))
    while conn.recv() == "report":
        conn.send(([(case_number(m), m.at) for m in smtp.messages], [r.at for r in sms.requests]))
    smtp.stop()
    sms.stop()


def start_dispatchers(n: int, url: str, workdir: Path, sinks: Sinks) -> list:
    env = {**os.environ, "FAVAD_DATABASE_URL": url, "FAVAD_DATA_DIR": str(workdir / "var"),
           "FAVAD_SMTP_HOST": "127.0.0.1", "FAVAD_SMTP_PORT": str(sinks.smtp_port),
           "FAVAD_SMTP_SECURITY": "none", "FAVAD_SMS_URL": sinks.sms_url, "FAVAD_SMS_API_KEY": "bench",
           "FAVAD_LOG_LEVEL": "WARNING"}
    procs = [subprocess.Popen([FAVAD, "dispatch"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    for p in procs:  # ready once it has printed its banner; then its warnings pass through
        if "dispatcher" not in p.stderr.readline():
            raise SystemExit(f"favad dispatch did not start: {p.stderr.read()}")
        threading.Thread(target=lambda p=p: [sys.stderr.write(line) for line in p.stderr],
                         daemon=True).start()
    return procs


def stop(procs: list) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=30)


def all_sent(Session) -> bool:
    with Session() as s:
        return not s.scalar(select(func.count()).where(OutboxMessage.status != "sent"))


def file_at_rate(Session, n: int, rate: float) -> dict[str, float]:
    """File ``n`` complaints at ``rate`` per second; case number -> time stored (committed)."""
    stored: dict[str, float] = {}
    lock = threading.Lock()

    def one(i):
        with Session() as s:
            c = file_complaint(s, DRAFTS[i % len(DRAFTS)], dt.datetime.now(dt.timezone.utc), 3)
        with lock:
            stored[c.case_number] = time.time()

    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:  # a few calls store at once, as on a live server
        for i in range(n):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            pool.submit(one, i)
    return stored


def case_number(received) -> str:
    msg = email.message_from_bytes(received.fields["content"], policy=email.policy.default)
    return msg["X-Favad-Case-Number"]


def wait_sent(Session, timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    while not all_sent(Session):
        if time.monotonic() > end:
            with Session() as s:
                left = s.execute(select(OutboxMessage.status, OutboxMessage.tries, OutboxMessage.last_error)
                                 .where(OutboxMessage.status != "sent").limit(5)).all()
            raise SystemExit(f"messages were not all sent in time: {left}")
        time.sleep(0.05)


def run(kind: str, dispatchers: int, complaints: int, rate: float, backlog: int, workdir: Path,
        smtp_delay: float) -> dict:
    sinks = Sinks(smtp_delay)
    try:
        with database(kind, workdir) as (url, engine):
            Session = make_sessionmaker(engine)
            procs = start_dispatchers(dispatchers, url, workdir, sinks)
            try:
                t0 = time.monotonic()
                stored = file_at_rate(Session, complaints, rate)
                filing = complaints / (time.monotonic() - t0)
                wait_sent(Session)
            finally:
                stop(procs)
            emails, sms = sinks.received()
            if {code for code, _ in emails} != set(stored):
                raise SystemExit("some complaints never reached the SMTP server")
            delays = sorted(at - stored[code] for code, at in emails)
            first = min(stored.values())
            sent = len(emails) + len(sms)
            steady = sent / (max([at for _, at in emails] + sms) - first)
            # capacity: a backlog, held back until every dispatcher is up, then released at once
            file_at_rate(Session, backlog, 10_000)
            T = OutboxMessage.__table__
            later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
            with engine.begin() as c:
                waiting = c.execute(update(T).where(T.c.status == "pending")
                                    .values(next_attempt_at=later)).rowcount
            procs = start_dispatchers(dispatchers, url, workdir, sinks)
            try:
                t0 = time.monotonic()
                with engine.begin() as c:
                    c.execute(update(T).values(next_attempt_at=dt.datetime.now(dt.timezone.utc)))
                wait_sent(Session)
                drained = waiting / (time.monotonic() - t0)
            finally:
                stop(procs)
    finally:
        sinks.stop()
    q = statistics.quantiles(delays, n=100)
    return {"dispatchers": dispatchers, "steady": steady, "drain": drained, "filing": filing,
            "p50": q[49], "p95": q[94], "max": delays[-1], "sent": sent}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--complaints", type=int, default=500)
    ap.add_argument("--rate", type=float, default=50.0, help="complaints per second")
    ap.add_argument("--backlog", type=int, default=500, help="complaints drained at full speed")
    ap.add_argument("--dispatchers", default="1,4")
    ap.add_argument("--smtp-delay", type=float, default=0.0,
                    help="seconds the SMTP server takes to accept a message (a real relay: 0.01-0.1)")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in a.dispatchers.split(",")):
            rows.append(run(a.db, n, a.complaints, a.rate, a.backlog, Path(tmp) / f"{n}-dispatchers",
                            a.smtp_delay))
    print(f"\n{a.complaints} complaints at {a.rate:g}/s (filed at {rows[0]['filing']:.1f}/s; "
          f"{rows[0]['sent']} messages: email + SMS), {a.db}, {os.cpu_count()} CPUs; "
          f"then a backlog of {a.backlog} complaints drained; SMTP accepts in {a.smtp_delay * 1000:g} ms")
    head = f"{'dispatchers':>11} | {'msg/s at rate':>13} | {'msg/s drain':>11} | " \
           f"{'p50 stored->SMTP':>16} | {'p95':>7} | {'max':>7}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['dispatchers']:>11} | {r['steady']:>13.1f} | {r['drain']:>11.1f} | "
              f"{r['p50'] * 1000:>13.0f} ms | {r['p95'] * 1000:>4.0f} ms | {r['max'] * 1000:>4.0f} ms")


if __name__ == "__main__":
    main()
