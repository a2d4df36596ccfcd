"""`/healthz` and `/metrics` of `favad serve`, on a local port (``metrics_host``/``metrics_port``).

Counters and histograms are fed by hooks the drivers call (a call's end, an AGI turnaround, a
group-writer batch); the rest is read when Prometheus scrapes: the journal's backlog from its
folder, the outbox and the overdue complaints from the database. No label carries a number, a
code or a file name: calls are labelled by outcome and by the province's English name, the
outbox by channel; anything else is a count.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select, text

log = logging.getLogger(__name__)
_LABEL = re.compile(r"[^a-z_]+")  # what survives into a label value: letters and _ only


def label(value: str | None) -> str:
    """A label value with no digit in it, whatever comes in: `Qazvin` -> `qazvin`."""
    return _LABEL.sub("_", (value or "").lower()).strip("_") or "unknown"


class Metrics:
    """The figures of one server process, and what its readiness depends on."""

    def __init__(self, backend, server=None):
        self.backend = backend
        self.server = server  # the FastAgiServer, once listening
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls = Counter("favad_calls", "Calls ended, by outcome and province",
                             ("outcome", "province"), registry=self.registry)
        self.turnaround = Histogram(
            "favad_agi_turnaround_seconds", "From Asterisk's reply to favad's next command",
            buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5),
            registry=self.registry)
        self.batch_seconds = Histogram("favad_writer_batch_seconds", "Group-writer batch latency",
                                       registry=self.registry)
        self.batch_size = Histogram("favad_writer_batch_size", "Group-writer batch size",
                                    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500), registry=self.registry)
        self.registry.register(_Scraped(self))
        self.province_names: dict[str, str] = {}
        try:
            self.read_province_names()
        except Exception:  # the database is away: calls count as province "unknown" until a scrape
            pass

    def attach(self, server) -> None:
        """Hook the figures into the server, its backend and the group writer."""
        self.server = server
        server.on_turnaround = self.turnaround.observe
        self.backend.on_call = self.on_call
        self.backend.writer.on_batch = self.on_batch

    def on_call(self, outcome: str, province_code: str | None) -> None:
        """On the event loop: no database here, the names were read at start and each scrape."""
        self.calls.labels(label(outcome), label(self.province_names.get(province_code or ""))).inc()

    def on_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def read_province_names(self) -> None:
        from db.models import Province

        with self.backend.Session() as s:
            self.province_names = dict(s.execute(select(Province.area_code, Province.name_en)).all())

    def health(self) -> dict[str, bool]:
        """Each part readiness needs, ready or not."""
        writer = self.backend.writer._thread
        return {"database": self._database_up(),
                "writer": writer is None or writer.is_alive(),  # started with the first write
                "fastagi": self.server is not None and self.server.server is not None
                and self.server.server.is_serving()}

    def _database_up(self) -> bool:
        try:
            with self.backend.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False


class _Scraped:
    """What is read at scrape time: the journal, the outbox, overdue complaints."""

    def __init__(self, metrics: Metrics):
        self.m = metrics

    def describe(self):
        return []

    def collect(self):
        journal = self.m.backend.journal
        yield GaugeMetricFamily("favad_journal_backlog", "Journaled entries waiting to be stored",
                                value=len(journal.pending()))
        yield GaugeMetricFamily("favad_journal_quarantined", "Journal entries an admin must look at",
                                value=len(journal.quarantined()))
        up = self.m._database_up()
        try:
            if up:
                yield from self._database()
        except Exception as e:
            log.warning("metrics: the database could not be read (%s)", type(e).__name__)
            up = False
        yield GaugeMetricFamily("favad_database_up", "The database answered the last scrape", value=int(up))
        ready = GaugeMetricFamily("favad_ready", "1 when the part /healthz needs is ready", labels=["part"])
        for part, ok in self.m.health().items():  # a stopping server drains with fastagi 0
            ready.add_metric([part], int(ok))
        yield ready

    def _database(self):
        from db.models import Complaint
        from dispatch.models import OutboxMessage as M

        now = dt.datetime.now(dt.timezone.utc)
        self.m.read_province_names()
        with self.m.backend.Session() as s:
            rows = s.execute(select(M.channel, M.status, func.count(), func.min(M.created_at))
                             .where(M.status.in_(("pending", "dead"))).group_by(M.channel, M.status)).all()
            overdue = s.scalar(select(func.count()).select_from(Complaint).where(
                Complaint.status.in_(("received", "forwarded")), Complaint.sla_due_at < now))
        depth = GaugeMetricFamily("favad_outbox_pending", "Messages not sent yet", labels=["channel"])
        oldest = GaugeMetricFamily("favad_outbox_oldest_unsent_seconds", "Age of the oldest unsent message",
                                   labels=["channel"])
        dead = GaugeMetricFamily("favad_outbox_dead", "Dead letters (`favad outbox retry`)", labels=["channel"])
        for channel in ("email", "sms"):
            found = {status: (n, first) for ch, status, n, first in rows if ch == channel}
            n, first = found.get("pending", (0, None))
            depth.add_metric([channel], n)
            oldest.add_metric([channel], (now - _utc(first)).total_seconds() if first else 0)
            dead.add_metric([channel], found.get("dead", (0, None))[0])
        yield from (depth, oldest, dead)
        yield GaugeMetricFamily("favad_complaints_overdue", "Complaints not taken up by their deadline",
                                value=overdue)


def _utc(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


class MetricsServer:
    """`GET /metrics` and `GET /healthz` (200 when ready, 503 naming what is not) in a thread."""

    def __init__(self, metrics: Metrics, host: str, port: int):
        self.metrics = metrics

        class Handler(BaseHTTPRequestHandler):
            def do_GET(handler):  # noqa: N805
                if handler.path == "/metrics":
                    body, status, kind = generate_latest(metrics.registry), 200, CONTENT_TYPE_LATEST
                elif handler.path == "/healthz":
                    parts = metrics.health()
                    status = 200 if all(parts.values()) else 503
                    body = json.dumps({"ready": status == 200, **parts}).encode()
                    kind = "application/json"
                else:
                    body, status, kind = b"not found\n", 404, "text/plain"
                handler.send_response(status)
                handler.send_header("Content-Type", kind)
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)

            def log_message(handler, *args):  # the access log would add nothing worth keeping
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="favad-metrics", daemon=True)

    def start(self) -> "MetricsServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
