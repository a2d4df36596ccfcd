"""A lean load generator that plays Asterisk's side of FastAGI for many callers at once.

Each simulated caller files a new complaint (no voice message) and hangs up the way Asterisk
does (``200 result=1``, then ``HANGUP``, then waits for the script to close). Replies follow
shared/asterisk/TRANSCRIPTS.md; prompt playback can be simulated (``--playback 1 3``: each
STREAM FILE / GET DATA takes 1-3 s). Turnaround = from writing a reply to reading the next
command: the time the server spends on its side, as the generator sees it. Runs in processes of
its own (``--processes``, each with its own event loop and share of the calls) and prints JSON:
percentiles from the merged raw samples, and each process's command rate, CPU and loop lag, so
the output shows whether the generator itself kept up.

    python -m bench.loadgen --port 4573 --concurrency 100 --duration 20 [--playback 1 3] [--processes 3]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import resource
import shlex
import time

HEADERS = (
    "agi_network: yes\nagi_network_script: {script}\nagi_request: agi://127.0.0.1:{port}/{script}\n"
    "agi_channel: Local/128@favad-inbound-{n:08x};2\nagi_language: en\nagi_type: Local\n"
    "agi_uniqueid: 1795816935.{n}\nagi_version: 22.10.1\nagi_callerid: 0912{n:07d}\n"
    "agi_calleridname: Caller {n}\nagi_callingpres: 0\nagi_callingani2: 0\nagi_callington: 0\n"
    "agi_callingtns: 0\nagi_dnid: unknown\nagi_rdnis: unknown\nagi_context: favad-inbound\n"
    "agi_extension: 128\nagi_priority: 3\nagi_enhanced: 0.0\nagi_accountcode: \n"
    "agi_threadid: 139690603693760\nagi_arg_1: 28\n\n"
)
# what the caller types at each question (the GET DATA prompt); anything else: silence
KEYS = {"main-menu": "1", "enter-office-code": "280101", "confirm-or-reenter": "1",
        "indicator-menu": "4", "record-offer": "2", "submit-or-restart": "1"}


class Stats:
    def __init__(self):
        self.turnaround: list[float] = []
        self.by_step: dict[str, list[float]] = {}  # turnaround after each kind of command
        self.commands = 0
        self.completed = 0
        self.failed = 0
        self.errors: dict[str, int] = {}

    def fail(self, why: str) -> None:
        self.failed += 1
        self.errors[why] = self.errors.get(why, 0) + 1


def reply_to(command: str, playback) -> tuple[bytes, float]:
    """(reply bytes, simulated seconds the command takes) for one AGI command."""
    verb = command.split(" ", 2)
    delay = random.uniform(*playback) if playback else 0.0
    if verb[0] == "STREAM":
        return b"200 result=0 endpos=8000\n", delay
    if verb[0] == "GET" and verb[1] == "DATA":
        prompt = verb[2].split(" ", 1)[0].rsplit("/", 1)[-1]
        keys = KEYS.get(prompt)
        return (f"200 result={keys}\n".encode() if keys else b"200 result= (timeout)\n"), delay
    if verb[0] == "SET":
        return b"200 result=1\n", 0.0
    if verb[0] in ("ANSWER", "NOOP"):
        return b"200 result=0\n", 0.0
    if verb[0] == "CHANNEL":
        return b"200 result=6\n", 0.0
    if verb[0] == "HANGUP":
        return b"200 result=1\nHANGUP\n", 0.0
    return b"510 Invalid or unknown command\n", 0.0


async def one_call(host, port, script, n, playback, stats: Stats, timeout=120.0,
                   capture: list | None = None) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        stats.fail("connect")
        return
    try:
        writer.write(HEADERS.format(script=script, port=port, n=n).encode())
        sent_at = None
        step = ""
        heard_code = hung_up = False
        while True:
            line = await asyncio.wait_for(reader.readline(), timeout)
            if sent_at is not None:
                took = time.perf_counter() - sent_at
                stats.turnaround.append(took)
                stats.by_step.setdefault(step, []).append(took)
            if not line:
                break
            stats.commands += 1
            command = line.decode().rstrip("\n")
            step = " ".join(command.split(" ")[:3])[:40]
            if capture is not None:
                capture.append(command)
            if "filed-code-is" in command:
                heard_code = True
            reply, delay = reply_to(command, playback)
            if delay:
                await asyncio.sleep(delay)
            writer.write(reply)
            sent_at = time.perf_counter()
            if command == "HANGUP":
                hung_up = True
                sent_at = None
        if heard_code and hung_up:
            stats.completed += 1
        else:
            stats.fail("incomplete call")
    except (asyncio.TimeoutError, ConnectionError, OSError) as e:
        stats.fail(type(e).__name__)
    finally:
        writer.close()


CLASSIC_HEADERS = HEADERS.replace("agi_network: yes\nagi_network_script: {script}\n", "").replace(
    "agi_request: agi://127.0.0.1:{port}/{script}", "agi_request: {script}")


async def one_classic_call(argv, n, playback, stats: Stats, timeout=120.0) -> None:
    """The same call, as Asterisk runs a classic AGI script: a new process per call."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    proc.stdin.write(CLASSIC_HEADERS.format(script="favad-agi", port=0, n=n).encode())
    heard_code = hung_up = False
    sent_at = None
    try:
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout)
            if sent_at is not None:
                stats.turnaround.append(time.perf_counter() - sent_at)
            if not line:
                break
            stats.commands += 1
            command = line.decode().rstrip("\n")
            heard_code = heard_code or "filed-code-is" in command
            reply, delay = reply_to(command, playback)
            if delay:
                await asyncio.sleep(delay)
            if command == "HANGUP":
                reply, hung_up, sent_at = b"200 result=1\n", True, None
            proc.stdin.write(reply)
            sent_at = None if hung_up else time.perf_counter()
        await asyncio.wait_for(proc.wait(), timeout)
        if heard_code and hung_up and proc.returncode == 0:
            stats.completed += 1
        else:
            stats.fail("incomplete call")
    except (asyncio.TimeoutError, ConnectionError, OSError) as e:
        stats.fail(type(e).__name__)
        proc.kill()


SUBMIT_STEP = "GET DATA favad/submit-or-restart"  # the turnaround after the caller presses submit
# the turnaround after the prompt played while the complaint is written: what is left of the
# write to wait for before the code is read (nothing, when it was durable within the prompt)
DURABLE_STEP = "STREAM FILE favad/filed-wait"
LAG_EVERY = 0.02  # seconds between two looks at this generator's own loop


async def _watch_loop(lags: list[float], done: asyncio.Event) -> None:
    """How late this generator's own loop wakes up: a late loop inflates every turnaround."""
    while not done.is_set():
        t = time.perf_counter()
        await asyncio.sleep(LAG_EVERY)
        lags.append(time.perf_counter() - t - LAG_EVERY)


async def run(host, port, script, concurrency, duration, playback, calls=None, ramp=0.0,
              classic=None, numbers: tuple[int, int] | None = None, raw: bool = False) -> dict:
    """One generator process's share. ``numbers``: (first, stride) of its callers' numbers;
    ``raw``: return the samples themselves (merged by ``run_processes``)."""
    stats = Stats()
    # each call from a number of its own, across the loads of a run too: the server limits
    # complaints per number (complaints/callers.py), as it would a prank caller
    first, stride = numbers or (random.randrange(10**7 - 10**6), 1)
    counter = iter(range(first, 10**7, stride))
    deadline = time.monotonic() + duration
    started = time.monotonic()
    cpu0 = _cpu()
    lags: list[float] = []
    done = asyncio.Event()
    watcher = asyncio.ensure_future(_watch_loop(lags, done))
    budget = [calls]

    async def line(i: int):
        if ramp:
            await asyncio.sleep(ramp * i / concurrency)  # do not let every caller ring at once
        while time.monotonic() < deadline:
            if budget[0] is not None:
                if budget[0] <= 0:
                    return
                budget[0] -= 1
            if classic:
                await one_classic_call(classic, next(counter), playback, stats)
            else:
                await one_call(host, port, script, next(counter), playback, stats)

    await asyncio.gather(*(line(i) for i in range(concurrency)))
    done.set()
    await watcher
    elapsed = time.monotonic() - started
    own = {"concurrency": concurrency, "commands_per_s": round(stats.commands / elapsed, 1),
           "cpu_pct": round(100 * (_cpu() - cpu0) / elapsed, 1),
           "loop_lag_p99_ms": _pct(sorted(lags), 0.99)}
    if raw:
        return {"stats": stats, "elapsed": elapsed, "generator": own}
    return summary([stats], elapsed, concurrency, [own])


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _pct(t: list[float], q: float) -> float | None:
    """The q-quantile of sorted seconds, in ms."""
    return round(t[min(len(t) - 1, int(q * len(t)))] * 1000, 3) if t else None


def summary(parts: list[Stats], elapsed: float, concurrency: int, generators: list[dict]) -> dict:
    """The figures of a load, from every process's raw samples merged (never averaged percentiles)."""
    t = sorted(x for s in parts for x in s.turnaround)
    steps: dict[str, list[float]] = {}
    for s in parts:
        for k, v in s.by_step.items():
            steps.setdefault(k, []).extend(v)
    by_step = {k: (_pct(sorted(v), 0.5), _pct(sorted(v), 0.99)) for k, v in steps.items()}
    commands = sum(s.commands for s in parts)
    completed = sum(s.completed for s in parts)
    errors: dict[str, int] = {}
    for s in parts:
        for k, n in s.errors.items():
            errors[k] = errors.get(k, 0) + n
    submit = by_step.get(SUBMIT_STEP, (None, None))
    durable = by_step.get(DURABLE_STEP, (None, None))
    return {"concurrency": concurrency, "elapsed_s": round(elapsed, 2), "commands": commands,
            "commands_per_s": round(commands / elapsed, 1), "completed": completed,
            "calls_per_s": round(completed / elapsed, 2), "failed": sum(s.failed for s in parts),
            "errors": errors, "p50_ms": _pct(t, 0.50), "p99_ms": _pct(t, 0.99),
            "max_ms": round(t[-1] * 1000, 3) if t else None,
            "submit_p50_ms": submit[0], "submit_p99_ms": submit[1],
            "durable_p50_ms": durable[0], "durable_p99_ms": durable[1],
            # [step, p50 ms, p99 ms] of the five steps with the highest p99
            "slowest_steps": sorted(([k, p50, p99] for k, (p50, p99) in by_step.items()),
                                    key=lambda kv: -kv[2])[:5],
            "generator": generators}


def _share(args: tuple) -> dict:
    """A generator process: its own loop, its share of the calls (``run_processes``)."""
    kwargs = args[-1]
    return asyncio.run(run(*args[:-1], **kwargs, raw=True))


def run_processes(host, port, script, concurrency, duration, playback, calls=None, ramp=0.0,
                  classic=None, processes: int = 1) -> dict:
    """The load split over ``processes`` generators; the figures from their merged samples."""
    processes = max(1, min(processes, concurrency))
    if processes == 1:
        return asyncio.run(run(host, port, script, concurrency, duration, playback, calls, ramp, classic))
    first = random.randrange(10**7 - 10**6)
    jobs = []
    for i in range(processes):
        share = concurrency // processes + (i < concurrency % processes)
        budget = None if calls is None else calls // processes + (i < calls % processes)
        jobs.append((host, port, script, share, duration, playback, budget, ramp, classic,
                     {"numbers": (first + i, processes)}))
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        parts = pool.map(_share, jobs, chunksize=1)
    return summary([p["stats"] for p in parts], max(p["elapsed"] for p in parts), concurrency,
                   [p["generator"] for p in parts])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--classic", default=None, metavar="COMMAND",
                    help="run this AGI program per call (a shell-quoted command line) instead of FastAGI")
    ap.add_argument("--script", default="favad")
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--calls", type=int, default=None, help="stop after this many calls")
    ap.add_argument("--playback", type=float, nargs=2, default=None, metavar=("MIN", "MAX"))
    ap.add_argument("--ramp", type=float, default=0.0, help="seconds over which callers start")
    ap.add_argument("--processes", type=int, default=1,
                    help="generator processes, each with its own loop and share of the calls")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the processes
    result = run_processes(a.host, a.port, a.script, a.concurrency, a.duration,
                           tuple(a.playback) if a.playback else None, a.calls, a.ramp,
                           shlex.split(a.classic) if a.classic else None, a.processes)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
