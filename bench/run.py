"""The 128 benchmarks in one command: the IVR table (every figure from the same run), then the report table.

    .venv/bin/python -m bench.run                  # everything (about 30 minutes)
    .venv/bin/python -m bench.run --skip-reports   # the IVR only (about 15 minutes)
    .venv/bin/python -m bench.run --quick          # smaller loads, for a smoke test
    .venv/bin/python -m bench.run --from-json bench/results/latest.json   # the tables again

1. realistic load (2,000 and 5,000 concurrent calls, 1-3 s per prompt): turnaround as the load
   generator sees it, the submit step's own, failed calls, server RSS and CPU; the floor (a
   bare panoramisk FastAGI app sending the same commands) under the same 2,000 calls;
2. saturation (no playback) at 10 / 100 / 1,000 concurrent calls: AGI commands/s and calls/s
   of `favad serve`, beside the floor and classic AGI (a `favad agi` process per call), and
   classic AGI's start (bench/agi_start.py, where it exists);
3. storage: complaints filed per second under concurrent calls, SQLite and PostgreSQL;
4. reports: `favad report monthly` over 100,000 and 1,000,000 complaints (bench/report_bench.py).
The load generator runs in processes of its own (bench/loadgen.py, ``--generators``), each
printing its command rate, CPU and loop lag: the proof that it was not the bottleneck. Each
target is printed beside its figure, and the README's table in Markdown. Results also go to
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

from bench.loadgen import SUBMIT_STEP, Stats, one_call

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
            "FAVAD_DISPATCH_IN_SERVE": "0", "FAVAD_SHUTDOWN_GRACE": "5",
            "FAVAD_MAX_CONNECTIONS": str(MAX_CONNECTIONS)}


ARRIVALS = 200  # callers a second while a realistic load starts, at every level


def ramp(concurrency: int, duration: float) -> float:
    """Seconds over which a realistic load's callers start: at ARRIVALS a second (2,000 calls
    over 10 s, 5,000 over 25 s), not all within the same 10 s whatever their number; at most
    half the load's duration. A quick run's loads start as fast as 200 a second allows."""
    return min(concurrency / ARRIVALS, duration / 2)


MAX_CONNECTIONS = 6000  # room for the 5,000-call load (the default, 4,000, is one Asterisk box's worth)
GENERATORS = 2  # load generator processes (bench/loadgen.py --processes)


def load(port: int, concurrency: int, duration: float, playback=None, ramp=0.0, classic=None,
         calls=None, processes: int = 1) -> dict:
    argv = [PY, "-m", "bench.loadgen", "--port", str(port), "--concurrency", str(concurrency),
            "--duration", str(duration), "--ramp", str(ramp), "--processes", str(processes)]
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


def run(quick: bool, generators: int = GENERATORS) -> dict:
    console = Console(stderr=True)
    results: dict = {"machine": f"{os.cpu_count()} cores", "quick": quick, "generators": generators}
    realistic_levels = (200, 500) if quick else (2000, 5000)
    saturation_levels = (10, 100) if quick else (10, 100, 1000)
    realistic_s, saturation_s = (20, 5) if quick else (60, 10)
    gen = generators
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
                                r = load(port, n, realistic_s, playback=(1, 3), ramp=ramp(n, realistic_s),
                                         processes=gen)
                            r.update(rss_mb=round(sample.rss_peak / 2**20, 1),
                                     cpu_pct=round(100 * sample.cpu_share, 1))
                            results[f"realistic_{n}"] = r
                        for n in saturation_levels:
                            console.print(f"saturation, {n} concurrent calls...")
                            results[f"saturation_{n}"] = load(port, n, saturation_s, processes=gen)
                        console.print("10 concurrent calls under attack (500 idle + garbage)...")
                        attacker = subprocess.Popen([PY, "-m", "bench.attack", "--port", str(port),
                                                     "--idle", "500", "--duration", str(saturation_s + 5)],
                                                    cwd=ROOT)
                        time.sleep(2)
                        results["under_attack_10"] = load(port, 10, saturation_s, processes=gen)
                        attacker.wait()
                    console.print(f"storage on {kind}...")
                    results[f"storage_{kind}"] = load(port, 100, saturation_s, processes=gen)
        seq_file = work / "sequence.json"
        seq_file.write_text(json.dumps(sequence))
        port = free_port()
        with process([PY, "-m", "bench.floor", "--port", str(port), "--sequence", str(seq_file)],
                     dict(os.environ), port, probe=False):
            n = realistic_levels[0]
            console.print(f"floor (bare panoramisk), realistic load, {n} concurrent calls ({realistic_s} s)...")
            results[f"floor_realistic_{n}"] = load(port, n, realistic_s, playback=(1, 3),
                                                   ramp=ramp(n, realistic_s), processes=gen)
            for n in saturation_levels:
                console.print(f"floor (bare panoramisk), {n} concurrent calls...")
                results[f"floor_{n}"] = load(port, n, saturation_s, processes=gen)
        env_agi = favad_env(f"sqlite:///{work}/sqlite/bench.sqlite3", work / "sqlite", 0)
        os.environ.update({k: v for k, v in env_agi.items() if k.startswith("FAVAD_")})
        for n in saturation_levels[:2]:  # 1,000 Python processes at once would not fit in memory
            console.print(f"classic AGI, {n} concurrent calls...")
            results[f"classic_{n}"] = load(0, n, saturation_s, classic=[PY, "-m", "cli", "agi"])
    start = classic_start(3 if quick else 20)
    if start is not None:
        results["classic_start"] = start
    return results


def classic_start(spawns: int) -> dict | None:
    """Classic AGI's first command (bench/agi_start.py), where that benchmark exists."""
    try:
        from bench import agi_start
    except ImportError:
        return None
    Console(stderr=True).print(f"classic AGI's start, {spawns} spawns...")
    return agi_start.measure(spawns)


def report(results: dict) -> None:
    console = Console(width=max(Console().width, 132))  # the whole table, also in a log
    t = Table(title="128 IVR benchmark (figures from one run)")
    for col in ("load", "concurrent", "cmds/s", "calls/s", "p50 ms", "p99 ms", "max ms", "submit p99",
                "code wait p99", "failed", "RSS MB", "CPU %", "generators: CPU % / lag p99"):
        t.add_column(col, justify="right" if col != "load" else "left")
    for key, r in results.items():
        if not isinstance(r, dict) or "commands_per_s" not in r:
            continue
        t.add_row(key, str(r["concurrency"]), str(r["commands_per_s"]), str(r["calls_per_s"]),
                  str(r["p50_ms"]), str(r["p99_ms"]), str(r["max_ms"]), str(r.get("submit_p99_ms", "")),
                  str(r.get("durable_p99_ms", "")), str(r["failed"]), str(r.get("rss_mb", "")), str(r.get("cpu_pct", "")), _generators(r))
    console.print(t)
    targets = Table(title="Targets (issue 17 and before), each beside its figure")
    for col in ("target", "figure", ""):
        targets.add_column(col)
    for target, figure, ok in verdicts(results):
        targets.add_row(target, figure, "[green]met[/]" if ok else "[red]NOT met[/]")
    console.print(targets)
    for r in ("realistic", "floor_realistic"):
        top = _top(results, r + "_")
        if top:
            console.print(f"{r} {top}: slowest steps (p50 / p99 ms): " + "; ".join(
                f"{step} {p50} / {p99}" for step, p50, p99 in results[f"{r}_{top}"].get("slowest_steps", [])[:3]))
    console.print(f"{results.get('commands_per_call')} AGI commands per complaint call")
    print("\n" + markdown(results))  # for the README's Performance section, as it is


def _generators(r: dict) -> str:
    """The load generator's processes in a few words: how many, the busiest's CPU, the worst lag."""
    gens = r.get("generator", [])
    if not gens:
        return ""
    return (f"{len(gens)} x <= {max(g['cpu_pct'] for g in gens)} % / "
            f"{max(g['loop_lag_p99_ms'] or 0 for g in gens)} ms")


def _top(results: dict, prefix: str) -> int | None:
    levels = [int(k[len(prefix):]) for k in results if k.startswith(prefix) and k[len(prefix):].isdigit()]
    return max(levels, default=None)


def verdicts(results: dict) -> list[tuple[str, str, bool]]:
    """Each target beside the figure measured for it: (target, figure, met)."""
    out = []
    low = min((int(k.split("_")[1]) for k in results if k.startswith("realistic_")), default=None)
    floor = results.get(f"floor_realistic_{low}")
    if low and floor:
        r = results[f"realistic_{low}"]
        limit = 2 * floor["p99_ms"] + 2
        out.append((f"{low:,} realistic calls: p99 <= 2 x the floor's + 2 ms",
                    f"{r['p99_ms']} ms (floor {floor['p99_ms']} ms: at most {limit:.1f})", r["p99_ms"] <= limit))
    if low:
        r = results[f"realistic_{low}"]
        p50, p99 = r.get("submit_p50_ms"), r.get("submit_p99_ms")
        if p99 is None:  # a run from before the loadgen reported it: among the slowest steps
            p50, p99 = next(((a, b) for step, a, b in r.get("slowest_steps", []) if step == SUBMIT_STEP), (None, None))
        out.append((f"{low:,} realistic calls: the submit step's p99 < 2 ms", f"{p99} ms (p50 {p50})",
                    p99 is not None and p99 < 2))
    top = _top(results, "realistic_")
    if top and top != low:
        r = results[f"realistic_{top}"]
        out += [(f"{top:,} realistic calls: p99 < 5 ms", f"{r['p99_ms']} ms", r["p99_ms"] < 5),
                (f"{top:,} realistic calls: no failed call", f"{r['failed']} of {r['completed'] + r['failed']}",
                 r["failed"] == 0),
                (f"{top:,} realistic calls: server RSS < 300 MB", f"{r['rss_mb']} MB", r["rss_mb"] < 300)]
    gens = [(k, g) for k, r in results.items() if isinstance(r, dict) and k.startswith(("realistic", "floor_real"))
            for g in r.get("generator", [])]
    if gens:
        busiest = max(g["cpu_pct"] for _, g in gens)
        out.append(("load generator not the bottleneck: each process < 70 % of a core",
                    f"busiest {busiest} % (loop lag p99 at most {max(g['loop_lag_p99_ms'] or 0 for _, g in gens)} ms)",
                    busiest < 70))
    start = results.get("classic_start")
    if start:
        out.append(("classic AGI: first command < 150 ms (median of spawns)",
                    f"{start['median_ms']} ms (p90 {start['p90_ms']})", start["median_ms"] < 150))
    sat = _top(results, "saturation_")
    if sat:
        ours, floor = results[f"saturation_{sat}"], results.get(f"floor_{sat}")
        if floor:
            share = 100 * ours["commands_per_s"] / max(floor["commands_per_s"], 1e-9)
            out.append((f"saturation {sat:,}: >= 70 % of the floor's commands/s", f"{share:.0f} %", share >= 70))
        classic = [results[k] for k in results if k.startswith("classic_") and k[8:].isdigit()]
        if classic:
            best = max(c["calls_per_s"] for c in classic)
            times = ours["calls_per_s"] / max(best, 1e-9)
            out.append((f"saturation {sat:,}: >= 20x classic AGI's best calls/s",
                        f"{times:.0f}x ({ours['calls_per_s']} / {best})", times >= 20))
    return out


def markdown(results: dict) -> str:
    """The README's table and targets, in Markdown, from a run's results."""
    def row(*cells):
        return "| " + " | ".join(str(c) for c in cells) + " |"

    def joined(prefix, levels, field):
        return " / ".join(f"{results[f'{prefix}_{n}'][field]:,}" for n in levels if f"{prefix}_{n}" in results)

    lines = [row("load", "concurrent", "AGI cmds/s", "calls/s", "p50 ms", "p99 ms", "submit p99 ms",
                 "code wait p99 ms", "failed", "server RSS", "server CPU",
                 "generators: busiest CPU / worst loop lag p99"),
             row(*["---"] * 12)]
    for key, name in (("realistic", "realistic (1-3 s per prompt), `favad serve`"),
                      ("floor_realistic", "floor: bare panoramisk, same commands, realistic")):
        for n in sorted(int(k[len(key) + 1:]) for k in results
                        if k.startswith(key + "_") and k[len(key) + 1:].isdigit()):
            r = results[f"{key}_{n}"]
            lines.append(row(name, f"{n:,}", r["commands_per_s"], r["calls_per_s"], r["p50_ms"], r["p99_ms"],
                             r.get("submit_p99_ms", ""), r.get("durable_p99_ms", ""), r["failed"],
                             f"{r['rss_mb']} MB" if "rss_mb" in r else "",
                             f"{r['cpu_pct']} %" if "cpu_pct" in r else "", _generators(r)))
    sat = sorted(int(k.split("_")[1]) for k in results if k.startswith("saturation_"))
    for prefix, name in (("saturation", "saturation, `favad serve`"), ("floor", "floor: bare panoramisk, saturation"),
                         ("classic", "classic AGI, a `favad agi` process per call")):
        levels = [n for n in sat if f"{prefix}_{n}" in results]
        if levels:
            failed = sum(results[f"{prefix}_{n}"]["failed"] for n in levels)
            lines.append(row(name, " / ".join(f"{n:,}" for n in levels), joined(prefix, levels, "commands_per_s"),
                             joined(prefix, levels, "calls_per_s"), "", "", "", "", failed, "", "", ""))
    start = results.get("classic_start")
    if start:
        lines.append(row(f"classic AGI's start: spawn to first command, median of {start['spawns']}", "1", "", "",
                         start["median_ms"], "", "", "", "", "", "", ""))
    if "storage_sqlite" in results and "storage_postgresql" in results:
        lines.append(row("storage, 100 concurrent", "SQLite / PostgreSQL", "",
                         f"{results['storage_sqlite']['calls_per_s']} / {results['storage_postgresql']['calls_per_s']} "
                         "complaints/s", "", "", "", "", results["storage_sqlite"]["failed"]
                         + results["storage_postgresql"]["failed"], "", "", ""))
    lines += ["", row("target", "figure", ""), row("---", "---", "---")]
    lines += [row(target, figure, "**met**" if ok else "**NOT met**") for target, figure, ok in verdicts(results)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description="The 128 benchmarks: the IVR, then the monthly report.")
    ap.add_argument("--quick", action="store_true", help="smaller loads (a smoke test)")
    ap.add_argument("--skip-reports", action="store_true",
                    help="only the IVR (the report benchmark fills 100,000 and 1,000,000 complaints)")
    ap.add_argument("--generators", type=int, default=GENERATORS,
                    help="load generator processes, each with its own loop and share of the calls")
    ap.add_argument("--from-json", metavar="PATH", help="print the tables of an earlier run's results")
    a = ap.parse_args()
    if a.from_json:
        try:
            report(json.loads(Path(a.from_json).read_text()))
        except (OSError, ValueError, KeyError) as e:
            sys.exit(f"bench.run: cannot read results from {a.from_json}: {e}")
        return
    results = run(a.quick, a.generators)
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
