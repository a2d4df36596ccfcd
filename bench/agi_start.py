"""Classic AGI's start: from spawning `favad agi` to its first AGI command, as Asterisk sees it.

    .venv/bin/python -m bench.agi_start                    # 20 spawns on PostgreSQL
    .venv/bin/python -m bench.agi_start --db sqlite --spawns 50
    .venv/bin/python -m bench.agi_start --no-snapshot      # the fallback: reference data from the database
    .venv/bin/python -m bench.agi_start --no-pyc           # favad's modules compiled at every spawn

Each spawn runs what Asterisk runs for ``AGI(favad-agi,28)``: the agi-bin wrapper README.md
describes (``FAVAD_CONFIG=... exec .venv/bin/favad agi "$@"``), with Asterisk's environment
variables and its ``agi_*`` lines on stdin (pbxsim's Channel writes them as Asterisk 22 does).
The clock starts just before the fork and stops when the first command line arrives on the
script's stdout; the kernel's account of the process at that moment (/proc/<pid>/schedstat)
tells its own CPU time from the time it waited for a CPU, which on a busy machine is most of
the difference; the call then goes on against pbxsim until its first prompt (STREAM FILE or
GET DATA), where the caller hangs up (SIGHUP, as Asterisk does), and the process is reaped
before the next spawn. Nothing half-written: the call leaves its "abandoned" record.
The reference snapshot is written once before the spawns (`favad reference snapshot`, as
`favad serve` or a timer keeps it); ``--no-snapshot`` removes it before every spawn.
One unrecorded spawn first warms the page cache and writes the bytecode of every module it
imports (in a folder of the benchmark's own, PYTHONPYCACHEPREFIX), as an installation has it
from `scripts/install` and pip. ``--no-pyc`` measures a checkout nobody compiled whose folders
the calling user cannot write (or PYTHONDONTWRITEBYTECODE set): each spawn then compiles
favad's own modules from source, which costs more than everything else before the first command.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pbxsim.caller import Caller
from pbxsim.channel import Channel
from pbxsim.classic import AST_ENV, LINE_LIMIT, ClassicTransport
from pbxsim.session import CallResult, Session, bounded

ROOT = Path(__file__).resolve().parent.parent
FAVAD = Path(sys.executable).parent / "favad"  # the installed entry point (setup.cfg: favad = cli:main)
MEDIA = (b"STREAM FILE", b"GET DATA", b"CONTROL STREAM FILE")


class _Timed(ClassicTransport):
    """Notes when the first command and the first prompt arrive."""

    def __init__(self, *a, t0: float, **kw):
        super().__init__(*a, **kw)
        self.t0, self.first, self.prompt = t0, None, None
        self.first_line = b""
        self.cpu = self.waited = None

    async def readline(self) -> bytes:
        line = await super().readline()
        now = time.perf_counter()
        if line and self.first is None:
            self.first, self.first_line = now - self.t0, line
            self.cpu, self.waited = _schedstat(self.proc.pid)
        if line and self.prompt is None and line.upper().startswith(MEDIA):
            self.prompt = now - self.t0
        return line


def _schedstat(pid: int) -> tuple[float | None, float | None]:
    """(seconds on a CPU, seconds waiting for one) of the process's main thread so far."""
    try:
        on_cpu, waiting, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return None, None
    return int(on_cpu) / 1e9, int(waiting) / 1e9


async def one_spawn(wrapper: Path, sounds_dir: str, env: dict) -> dict:
    """One call through the wrapper; seconds to its first command and first prompt, and to exit."""
    chan = Channel(Caller("", hangup_at=1, hangup_ms=100), sounds_dir=sounds_dir, language="fa")
    result = CallResult()
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        str(wrapper), "28", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**env, **AST_ENV}, limit=LINE_LIMIT)
    stderr = asyncio.ensure_future(proc.stderr.read())
    transport = _Timed(proc, result, 5.0, t0=t0)
    try:
        for line in chan.env(wrapper.name, ("28",)):
            await transport.send(line)
        await bounded(Session(chan, transport, result, close_timeout=10.0, hangup_delay=0.04), 60, "favad-agi")
    finally:
        if proc.returncode is None:
            await transport.abandon()
        err = await stderr
    return {"first": transport.first, "first_line": transport.first_line.decode(errors="replace").strip(),
            "prompt": transport.prompt, "exit": time.perf_counter() - t0, "status": proc.returncode,
            "cpu": transport.cpu, "waited": transport.waited,
            "stderr": err.decode(errors="replace")}


def _prepare(work: Path, url: str, pyc: bool) -> tuple[Path, str, dict]:
    """The config file, the agi-bin wrapper and the sounds, as an installation has them."""
    from ivr.catalog import static_catalog
    from prompts.build import build

    sounds = work / "sounds"
    build(static_catalog(), [p for p in static_catalog()], str(sounds), engine="tone", language="fa")
    (work / "rec").mkdir()
    config = work / "favad.toml"
    config.write_text(f'database_url = "{url}"\ndata_dir = "{work}"\nsounds_dir = "{sounds}"\n'
                      f'recordings_dir = "{work / "rec"}"\ncaller_hash_key = "bench-key"\n'
                      f'log_level = "WARNING"\n')
    config.chmod(0o600)
    agi_bin = work / "agi-bin"
    agi_bin.mkdir()
    wrapper = agi_bin / "favad-agi"
    wrapper.write_text(f'#!/bin/sh\nFAVAD_CONFIG="{config}" exec "{FAVAD}" agi "$@"\n')
    wrapper.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAVAD_")}
    if pyc:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    return wrapper, str(sounds), env


def _figures(seconds: list[float]) -> dict:
    ms = sorted(1000 * s for s in seconds)
    p90 = ms[min(len(ms) - 1, max(0, round(0.9 * len(ms)) - 1))]
    return {"median_ms": round(statistics.median(ms), 1), "p90_ms": round(p90, 1),
            "min_ms": round(ms[0], 1), "max_ms": round(ms[-1], 1)}


def measure(spawns: int = 20, db: str = "postgresql", snapshot: bool = True, pyc: bool = True) -> dict:
    """Spawn `favad agi` ``spawns`` times (after one warm-up); ms to the first command (median,
    p90, min, max at the top level), to the first prompt and to the process's exit."""
    from bench.run import database

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with database(db, work) as url:
            wrapper, sounds, env = _prepare(work, url, pyc)
            snap = work / "reference.json"
            if snapshot:
                subprocess.run([str(FAVAD), "--config", str(work / "favad.toml"), "reference", "snapshot"],
                               env=env, check=True, capture_output=True, cwd=work)
            runs = []
            for i in range(spawns + 1):
                if not snapshot:
                    with contextlib.suppress(FileNotFoundError):
                        snap.unlink()
                r = asyncio.run(one_spawn(wrapper, sounds, env))
                if r["first"] is None or r["status"] != 0:
                    raise RuntimeError(f"favad-agi did not take the call (exit {r['status']}): {r['stderr'][-500:]}")
                if i:
                    runs.append(r)
    out = {"spawns": spawns, "db": db, "snapshot": snapshot, "pyc": pyc, "first_command": runs[0]["first_line"],
           "load_avg": round(os.getloadavg()[0], 2), **_figures([r["first"] for r in runs])}
    out["first_prompt"] = _figures([r["prompt"] for r in runs if r["prompt"] is not None])
    out["exit"] = _figures([r["exit"] for r in runs])
    if all(r["cpu"] is not None for r in runs):  # before the first command: the process's own work
        out["cpu"] = _figures([r["cpu"] for r in runs])
        out["waited_for_cpu"] = _figures([r["waited"] for r in runs])
    return out


def table(results: list[dict]) -> str:
    head = ("database", "snapshot", "bytecode", "spawns", "first cmd median", "p90", "min", "max",
            "its CPU", "its wait for a CPU", "first prompt", "exit", "load")
    rows = [head] + [(r["db"], "yes" if r["snapshot"] else "no", "compiled" if r["pyc"] else "from source",
                      str(r["spawns"]), f"{r['median_ms']} ms",
                      f"{r['p90_ms']} ms", f"{r['min_ms']} ms", f"{r['max_ms']} ms",
                      f"{r.get('cpu', {}).get('median_ms', '-')} ms",
                      f"{r.get('waited_for_cpu', {}).get('median_ms', '-')} ms",
                      f"{r['first_prompt'].get('median_ms', '-')} ms", f"{r['exit']['median_ms']} ms",
                      str(r["load_avg"])) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Classic AGI: ms from spawning `favad agi` to its first command.")
    ap.add_argument("--spawns", type=int, default=20)
    ap.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    ap.add_argument("--no-snapshot", action="store_true", help="no reference snapshot: the database fallback")
    ap.add_argument("--no-pyc", action="store_true", help="favad's modules compiled from source at each spawn")
    ap.add_argument("--all", action="store_true", help="with and without the snapshot and the bytecode")
    a = ap.parse_args(argv)
    modes = ([(snap, pyc) for pyc in (True, False) for snap in (True, False)] if a.all
             else [(not a.no_snapshot, not a.no_pyc)])
    results = [measure(a.spawns, a.db, snap, pyc) for snap, pyc in modes]
    print(table(results))
    print("(medians; CPU and waiting: the process's main thread until its first command, from "
          "/proc/<pid>/schedstat; load: the 1-minute load average after the spawns)")
    print(f"target: first command under 150 ms (median of {a.spawns}): "
          + ("met" if results[0]["median_ms"] < 150 else "NOT met") + f" ({results[0]['first_command']})")


if __name__ == "__main__":
    main()
