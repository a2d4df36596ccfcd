"""`/healthz` and `/metrics` of a real `favad serve`, scraped while calls go on: the figures
move, and no label carries a number, a tracking code or a recording's name."""
from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import favad_env
from pbxsim.caller import Caller
from pbxsim.fastagi import run_call
from test_crash import FILE_ONE, heard_code
from test_dispatch_processes import Proc
from test_serve import free_port

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def scrape(port: int) -> dict[tuple, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def health(port: int) -> tuple[int, dict]:
    try:
        r = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10)
        return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def total(figures: dict, name: str) -> float:
    return sum(v for (n, _), v in figures.items() if n == name)


@sqlite_only
def test_metrics_move_during_calls_and_no_label_names_a_number_code_or_recording(migrated):
    agi, port = free_port(), free_port()
    env = favad_env(migrated, FAVAD_LISTEN_PORT=str(agi), FAVAD_METRICS_PORT=str(port),
                    FAVAD_WEB_IN_SERVE="0", FAVAD_DISPATCH_IN_SERVE="0")
    server = Proc(["serve"], env, ready="favad: FastAGI on")
    try:
        assert health(port) == (200, {"ready": True, "database": True, "writer": True, "fastagi": True}), health(port)
        before = scrape(port)
        assert total(before, "favad_calls_total") == 0

        codes, during = [], []

        async def calls():
            def mid_call(prompt):  # the last call hears its code: it is still going on
                if prompt == "favad/filed-code-is" and not during:
                    during.append(scrape(port))

            async def one(i):
                r = await run_call("127.0.0.1", agi, args=("28",), caller=Caller(FILE_ONE),
                                   sounds_dir=migrated.sounds_path, callerid=f"0912000{i:04d}", timeout=60,
                                   on_prompt=mid_call if i == 7 else None)
                codes.append(heard_code(r.played))
            await asyncio.gather(*(one(i) for i in range(7)))
            await one(7)
        asyncio.run(calls())

        after = scrape(port)
        assert all(codes) and len(codes) == 8
        filed = ("favad_calls_total", (("outcome", "complaint_filed"), ("province", "qazvin")))
        assert (during[0][filed], after[filed]) == (7, 8)
        assert total(after, "favad_agi_turnaround_seconds_count") > total(during[0], "favad_agi_turnaround_seconds_count") > 0
        assert total(after, "favad_writer_batch_size_count") >= 1
        assert after[("favad_writer_batch_size_sum", ())] >= 8  # 8 complaints and 8 call records
        assert after[("favad_outbox_pending", (("channel", "email"),))] >= 0  # no units in the demo data
        assert after[("favad_outbox_oldest_unsent_seconds", (("channel", "email"),))] >= 0
        assert after[("favad_database_up", ())] == 1 and after[("favad_journal_backlog", ())] == 0
        assert {after[("favad_ready", (("part", part),))] for part in ("database", "writer", "fastagi")} == {1}
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        labels = re.findall(r'="([^"]*)"', text)
        assert labels and not [v for v in labels if re.search(r"\d", v) and not re.fullmatch(r"[\d.e+]+|\+Inf", v)]
        for code in codes:
            assert code not in text
        assert "0912" not in text and ".wav" not in text and "recording" not in text.replace("# HELP", "")
    finally:
        server.stop()


@sqlite_only
def test_healthz_names_what_is_not_ready(backend, tmp_path):
    """The database away, and a server that stopped listening (it drains before it exits)."""
    from sqlalchemy import create_engine

    from service.metrics import Metrics, MetricsServer

    figures = Metrics(backend)
    web = MetricsServer(figures, "127.0.0.1", 0).start()
    try:
        assert health(web.port) == (503, {"ready": False, "database": True, "writer": True, "fastagi": False})
        assert scrape(web.port)[("favad_ready", (("part", "fastagi"),))] == 0  # what the alert reads
        assert scrape(web.port)[("favad_ready", (("part", "database"),))] == 1
        good, backend.engine = backend.engine, create_engine(f"sqlite:///{tmp_path}/no/such/folder.db")
        try:
            assert health(web.port)[1]["database"] is False
            assert scrape(web.port)[("favad_database_up", ())] == 0
        finally:
            backend.engine.dispose()
            backend.engine = good
    finally:
        web.stop()
