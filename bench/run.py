"""The 128 benchmarks in one command: the IVR table (every figure from the same run), then the report table.

    .venv/bin/python -m bench.run                  # everything (about 25 minutes)
    .venv/bin/python -m bench.run --skip-reports   # the IVR only (about 10 minutes)
    .venv/bin/python -m bench.run --quick          # smaller loads, for a smoke test

1. realistic load (1,000 and 2,000 concurrent calls, 1-3 s per prompt): per-command turnaround
   inside the server, failed calls, server RSS and CPU;
2. saturation (no playback) at 10 / 100 / 1,000 concurrent calls: AGI commands/s and calls/s
   of `favad serve`, beside the floor (a bare panoramisk FastAGI app sending the same commands)
   and classic AGI (a `favad agi` process per call);
3. storage: complaints filed per second under concurrent calls, SQLite and PostgreSQL;
4. reports: `favad report monthly` over 100,000 and 1,000,000 complaints (bench/report_bench.py).
The load generator runs in its own process (bench/loadgen.py). Results also go to
bench/results/latest.json.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.loadgen import Stats, one_call

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PG_URL = os.environ.get("FAVAD_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


class Sampler:
    """CPU share and peak RSS of a process, read from /proc while a load runs."""

    def __init__(self, pid: int):
        self.pid, self.rss_peak, self._stop = pid, 0, threading.Event()

    def _cpu(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def _rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def __enter__(self):
        self.t0, self.c0 = time.monotonic(), self._cpu()
        threading.Thread(target=self._watch, daemon=True).start()
        return self

    def _watch(self):
        while not self._stop.wait(0.5):
            self.rss_peak = max(self.rss_peak, self._rss())

    def __exit__(self, *exc):
        self._stop.set()
        self.cpu_share = (self._cpu() - self.c0) / (time.monotonic() - self.t0)
        self.rss_peak = max(self.rss_peak, self._rss())


@contextlib.contextmanager
def database(kind: str, workdir: Path):
    """A fresh, migrated database with the demo data; yields its URL."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir}/bench.sqlite3"
        schema = None
    else:
        from sqlalchemy import create_engine, text

        schema = f"favad_bench_{secrets.token_hex(3)}"
        admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
        with admin.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    env = {**os.environ, "FAVAD_DATABASE_URL": url, "FAVAD_DATA_DIR": str(workdir)}
    for cmd in (["db", "upgrade"], ["db", "demo"]):
        subprocess.run([PY, "-m", "cli", *cmd], env=env, check=True, capture_output=True, cwd=ROOT)
    try:
        yield url
    finally:
        if schema:
            with admin.begin() as c:
                c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


@contextlib.contextmanager
def process(argv: list[str], env: dict, port: int, probe: bool = True):
    """A server process, ready; ``probe=False`` waits for its first stdout line instead of
    connecting (a probe that connects and closes freezes panoramisk 1.4's own handler)."""
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        if probe:
            wait_port(port)
        else:
            proc.stdout.readline()
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def favad_env(url: str, workdir: Path, port: int) -> dict:
    return {**os.environ, "FAVAD_DATABASE_URL": url, "FAVAD_DATA_DIR": str(workdir),
            "FAVAD_LISTEN_PORT": str(port), "FAVAD_LOG_LEVEL": "WARNING",
            "FAVAD_DISPATCH_IN_SERVE": "0", "FAVAD_SHUTDOWN_GRACE": "5"}


def load(port: int, concurrency: int, duration: float, playback=None, ramp=0.0, classic=None,
         calls=None) -> dict:
    argv = [PY, "-m", "bench.loadgen", "--port", str(port), "--concurrency", str(concurrency),
            "--duration", str(duration), "--ramp", str(ramp)]
    if playback:
        argv += ["--playback", *map(str, playback)]
    if classic:
        argv += ["--classic", shlex.join(classic)]
    if calls:
        argv += ["--calls", str(calls)]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def capture_sequence(port: int) -> list[str]:
    commands: list[str] = []
    asyncio.run(one_call("127.0.0.1", port, "favad", 1, None, Stats(), capture=commands))
    return commands


def run(quick: bool) -> dict:
    console = Console(stderr=True)
    results: dict = {"machine": f"{os.cpu_count()} cores", "quick": quick}
    realistic_levels = (100, 200) if quick else (1000, 2000)
    saturation_levels = (10, 100) if quick else (10, 100, 1000)
    realistic_s, saturation_s = (20, 5) if quick else (60, 10)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for kind in ("sqlite", "postgresql"):
            (work / kind).mkdir()
            with database(kind, work / kind) as url:
                port = free_port()
                with process([PY, "-m", "cli", "serve"], favad_env(url, work / kind, port), port) as srv:
                    if kind == "sqlite":
                        sequence = capture_sequence(port)
                        results["commands_per_call"] = len(sequence)
                        for n in realistic_levels:
                            console.print(f"realistic load, {n} concurrent calls ({realistic_s} s)...")
                            with Sampler(srv.pid) as sample:
                                r = load(port, n, realistic_s, playback=(1, 3), ramp=min(10, realistic_s / 3))
                            r.update(rss_mb=round(sample.rss_peak / 2**20, 1),
                                     cpu_pct=round(100 * sample.cpu_share, 1))
                            results[f"realistic_{n}"] = r
                        for n in saturation_levels:
                            console.print(f"saturation, {n} concurrent calls...")
                            results[f"saturation_{n}"] = load(port, n, saturation_s)
                        console.print("10 concurrent calls under attack (500 idle + garbage)...")
                        attacker = subprocess.Popen([PY, "-m", "bench.attack", "--port", str(port),
                                                     "--idle", "500", "--duration", str(saturation_s + 5)],
                                                    cwd=ROOT)
                        time.sleep(2)
                        results["under_attack_10"] = load(port, 10, saturation_s)
                        attacker.wait()
                    console.print(f"storage on {kind}...")
                    results[f"storage_{kind}"] = load(port, 100, saturation_s)
        seq_file = work / "sequence.json"
        seq_file.write_text(json.dumps(sequence))
        port = free_port()
        with process([PY, "-m", "bench.floor", "--port", str(port), "--sequence", str(seq_file)],
                     dict(os.environ), port, probe=False):
            for n in saturation_levels:
                console.print(f"floor (bare panoramisk), {n} concurrent calls...")
                results[f"floor_{n}"] = load(port, n, saturation_s)
        env_agi = favad_env(f"sqlite:///{work}/sqlite/bench.sqlite3", work / "sqlite", 0)
        os.environ.update({k: v for k, v in env_agi.items() if k.startswith("FAVAD_")})
        for n in saturation_levels[:2]:  # 1,000 Python processes at once would not fit in memory
            console.print(f"classic AGI, {n} concurrent calls...")
            results[f"classic_{n}"] = load(0, n, saturation_s, classic=[PY, "-m", "cli", "agi"])
    return results


def report(results: dict) -> None:
    console = Console(width=max(Console().width, 132))  # the whole table, also in a log
    t = Table(title="128 IVR benchmark (figures from one run)")
    for col in ("load", "concurrent", "cmds/s", "calls/s", "p50 ms", "p99 ms", "max ms", "failed",
                "RSS MB", "CPU %"):
        t.add_column(col, justify="right" if col != "load" else "left")
    for key, r in results.items():
        if not isinstance(r, dict):
            continue
        t.add_row(key, str(r["concurrency"]), str(r["commands_per_s"]), str(r["calls_per_s"]),
                  str(r["p50_ms"]), str(r["p99_ms"]), str(r["max_ms"]), str(r["failed"]),
                  str(r.get("rss_mb", "")), str(r.get("cpu_pct", "")))
    console.print(t)
    for line in verdicts(results):
        console.print(line)
    console.print(f"{results.get('commands_per_call')} AGI commands per complaint call; "
                  f"storage: SQLite {results['storage_sqlite']['calls_per_s']} and PostgreSQL "
                  f"{results['storage_postgresql']['calls_per_s']} complaints/s at 100 concurrent calls")


def verdicts(results: dict) -> list[str]:
    """Each of the issue's targets beside the figure measured for it."""
    def mark(ok: bool) -> str:
        return "[green]met[/]" if ok else "[red]NOT met[/]"

    out = []
    top_real = max((int(k.split("_")[1]) for k in results if k.startswith("realistic_")), default=None)
    if top_real:
        r = results[f"realistic_{top_real}"]
        out.append(f"realistic {top_real}: p99 {r['p99_ms']} ms (target < 5) {mark(r['p99_ms'] < 5)}; "
                   f"failed {r['failed']} (target 0) {mark(r['failed'] == 0)}; "
                   f"RSS {r['rss_mb']} MB (target < 200) {mark(r['rss_mb'] < 200)}")
        out.append("  slowest steps there (p50 / p99 ms): " + "; ".join(
            f"{step} {p50} / {p99}" for step, p50, p99 in r.get("slowest_steps", [])[:3]))
    top = max((int(k.split("_")[1]) for k in results if k.startswith("saturation_")), default=None)
    if top:
        ours, floor = results[f"saturation_{top}"], results.get(f"floor_{top}")
        if floor:
            share = 100 * ours["commands_per_s"] / max(floor["commands_per_s"], 1e-9)
            out.append(f"saturation {top}: {share:.0f}% of the bare panoramisk floor's commands/s "
                       f"(target >= 70%) {mark(share >= 70)}")
        classic = [results[k] for k in results if k.startswith("classic_")]
        if classic:
            best = max(c["calls_per_s"] for c in classic)
            times = ours["calls_per_s"] / max(best, 1e-9)
            out.append(f"saturation {top}: {times:.1f}x classic AGI's best calls/s ({best}) "
                       f"(target >= 20x) {mark(times >= 20)}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="The 128 benchmarks: the IVR, then the monthly report.")
    ap.add_argument("--quick", action="store_true", help="smaller loads (a smoke test)")
    ap.add_argument("--skip-reports", action="store_true",
                    help="only the IVR (the report benchmark fills 100,000 and 1,000,000 complaints)")
    a = ap.parse_args()
    results = run(a.quick)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / ("quick.json" if a.quick else "latest.json")).write_text(json.dumps(results, indent=2))
    report(results)
    if not a.skip_reports:
        from bench import report_bench

        quick = ["--sizes", "3000", "--repeat", "1", "--out", str(out / "report-quick.json")]
        report_bench.main(quick if a.quick else [])


if __name__ == "__main__":
    main()
