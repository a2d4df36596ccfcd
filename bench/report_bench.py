"""The monthly report over large databases: how long `favad report monthly` takes, and how it grows.

    .venv/bin/python -m bench.report_bench [--sizes 100000 1000000] [--backends sqlite postgresql]

For each backend and size: a fresh database (bench/run.py's ``database()``: `favad db upgrade`,
`favad db demo`), filled with N simulated complaints spread evenly over the twelve months of
Jalali 1404 with their events, unit actions, ratings and calls (``reports.simulate``, written
with COPY on PostgreSQL, Core executemany on SQLite), then ANALYZEd on PostgreSQL as autovacuum
would soon do. Then the report for 1404-07 (Mehr), measured at a fixed moment a week after:

- ``build``: ``reports.monthly.from_db`` in this process (the queries and the figures);
- ``html`` and ``html,pdf,csv`` (the default): the real command, `python -m cli report monthly`,
  in a fresh process, wall clock (so interpreter start and imports are included);
- ``floor``: the same default command for a month with no complaints (1403-07), on the same
  database: what drawing the heat maps and the PDF costs whatever the data.

A benchmark, not a test. Results go to bench/results/report.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import text

from bench.run import PY, ROOT, database

YEAR = 1404
REPORT_MONTH = "1404-07"
EMPTY_MONTH = "1403-07"  # before the simulated year: the fixed cost of the report's files
BATCH = 20_000  # complaints generated and written at a time
FORMATS = ("html", "html,pdf,csv")
RESULTS = Path(__file__).with_name("results") / "report.json"
console = Console(width=None if sys.stdout.isatty() else 120)


def _months():
    from reports.months import Month

    return [Month(YEAR, m, True) for m in range(1, 13)]


def _as_of(month: str = REPORT_MONTH) -> dt.datetime:
    from reports import months

    return months.parse(month).end + dt.timedelta(days=7)


def fill(url: str, n: int, progress: Progress, label: str) -> float:
    """N complaints over the year, with everything the report reads; the seconds it took."""
    from clock.calendar import load
    from db.engine import make_engine, make_sessionmaker
    from reports.simulate import Simulator, write

    started = time.monotonic()
    task = progress.add_task(f"{label}: filling", total=n)
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            sim = Simulator(s, load(), seed=1)
            months = _months()
            for i, month in enumerate(months):
                count = n // len(months) + (i < n % len(months))
                parts = max(1, -(-count // BATCH))  # the month in stretches of time, in order
                for part in range(parts):
                    k = count * (part + 1) // parts - count * part // parts
                    write(s, sim.month(month, k, part, parts))
                    s.commit()
                    progress.advance(task, k)
            if engine.dialect.name == "postgresql":
                progress.update(task, description=f"{label}: ANALYZE")
                s.execute(text("ANALYZE"))
                s.commit()
    finally:
        engine.dispose()
    progress.update(task, description=f"{label}: filled")
    return time.monotonic() - started


def build_time(url: str) -> tuple[float, int, int]:
    """(seconds, complaints in the month, complaints in the database) of ``from_db``."""
    from sqlalchemy import func, select

    from clock.calendar import load
    from db.engine import make_engine, make_sessionmaker
    from db.models import Complaint
    from reports import months
    from reports.monthly import Params, from_db

    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            total = s.scalar(select(func.count()).select_from(Complaint))
            started = time.perf_counter()
            rep = from_db(s, months.parse(REPORT_MONTH), Params(load()), _as_of())
            took = time.perf_counter() - started
    finally:
        engine.dispose()
    return took, rep.total.complaints, total


def cli_time(url: str, workdir: Path, formats: str, month: str = REPORT_MONTH) -> float:
    """Wall clock of `python -m cli report monthly --format FORMATS` in a fresh process."""
    env = {**os.environ, "FAVAD_DATABASE_URL": url, "FAVAD_DATA_DIR": str(workdir), "FAVAD_CONFIG": ""}
    out = workdir / f"out-{month}-{formats.replace(',', '-')}"
    argv = [PY, "-m", "cli", "report", "monthly", "--month", month, "--as-of", _as_of(month).isoformat(),
            "--out", str(out), "--format", formats]
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def run(backend: str, n: int, repeat: int, progress: Progress) -> dict:
    label = f"{backend} {n:,}"
    with tempfile.TemporaryDirectory(prefix="favad-report-bench-") as tmp, \
            database("sqlite" if backend == "sqlite" else "postgresql", Path(tmp)) as url:
        filled = fill(url, n, progress, label)
        task = progress.add_task(f"{label}: reports", total=repeat * (2 + len(FORMATS)))
        builds, clis, floor = [], {f: [] for f in FORMATS}, []
        for _ in range(repeat):
            took, in_month, in_db = build_time(url)
            builds.append(took)
            progress.advance(task)
            for f in FORMATS:
                clis[f].append(cli_time(url, Path(tmp), f))
                progress.advance(task)
            floor.append(cli_time(url, Path(tmp), FORMATS[-1], EMPTY_MONTH))
            progress.advance(task)
    return {"backend": backend, "size": n, "complaints_in_db": in_db, "complaints_in_month": in_month,
            "fill_s": round(filled, 1), "build_s": round(min(builds), 3),
            **{f"cli_{f.replace(',', '_')}_s": round(min(v), 3) for f, v in clis.items()},
            "floor_s": round(min(floor), 3),
            "runs": {"build_s": builds, **{f: v for f, v in clis.items()}, "floor_s": floor}}


def growth(rows: list[dict], row: dict, key: str) -> str:
    smaller = [r for r in rows if r["backend"] == row["backend"] and r["size"] < row["size"]]
    if not smaller:
        return ""
    base = max(smaller, key=lambda r: r["size"])
    return f"×{row[key] / base[key]:.1f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--backends", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    ap.add_argument("--repeat", type=int, default=2, help="report runs per cell; the best is kept")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where the JSON results go")
    args = ap.parse_args(argv)
    rows = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        for backend in args.backends:
            for n in sorted(args.sizes):
                rows.append(run(backend, n, args.repeat, progress))
    table = Table(title=f"favad report monthly {REPORT_MONTH}: seconds (best of {args.repeat})")
    for col in ("backend", "complaints in DB", "in the month", "fill s", "build s", "growth",
                "CLI html s", "growth", "CLI html,pdf,csv s", "growth", "floor s"):
        table.add_column(col, justify="left" if col == "backend" else "right")
    for r in rows:
        table.add_row(r["backend"], f"{r['complaints_in_db']:,}", f"{r['complaints_in_month']:,}",
                      f"{r['fill_s']:.0f}", f"{r['build_s']:.2f}", growth(rows, r, "build_s"),
                      f"{r['cli_html_s']:.2f}", growth(rows, r, "cli_html_s"),
                      f"{r['cli_html_pdf_csv_s']:.2f}", growth(rows, r, "cli_html_pdf_csv_s"),
                      f"{r['floor_s']:.2f}")
    console.print("build: reports.monthly.from_db in this process. CLI: `python -m cli report monthly "
                  f"--month {REPORT_MONTH}` in a fresh process (html; the default html,pdf,csv). "
                  f"floor: the default for an empty month ({EMPTY_MONTH}), same database.")
    console.print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps({
        "command": " ".join(["python -m bench.report_bench", *(sys.argv[1:] if argv is None else argv)]),
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "report_month": REPORT_MONTH, "as_of": _as_of().isoformat(), "results": rows}, indent=2) + "\n")
    console.print(f"results: {args.out}")


if __name__ == "__main__":
    main()
