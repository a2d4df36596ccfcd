"""A lean load generator that plays Asterisk's side of FastAGI for many callers at once.

Each simulated caller files a new complaint (no voice message) and hangs up the way Asterisk
does (``200 result=1``, then ``HANGUP``, then waits for the script to close). Replies follow
shared/asterisk/TRANSCRIPTS.md; prompt playback can be simulated (``--playback 1 3``: each
STREAM FILE / GET DATA takes 1-3 s). Turnaround = from writing a reply to reading the next
command: the time the server spends on its side. Runs in its own process and prints JSON.

    python -m bench.loadgen --port 4573 --concurrency 100 --duration 20 [--playback 1 3]
"""
from __future__ import annotations

import argparse
import asyncio
import json
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


async def run(host, port, script, concurrency, duration, playback, calls=None, ramp=0.0,
              classic=None) -> dict:
    stats = Stats()
    # each call from a number of its own, across the loads of a run too: the server limits
    # complaints per number (complaints/callers.py), as it would a prank caller
    first = random.randrange(10**7 - 10**6)
    counter = iter(range(first, 10**7))
    deadline = time.monotonic() + duration
    started = time.monotonic()
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
    elapsed = time.monotonic() - started
    t = sorted(stats.turnaround)

    def pct(q):
        return round(t[min(len(t) - 1, int(q * len(t)))] * 1000, 3) if t else None

    return {"concurrency": concurrency, "elapsed_s": round(elapsed, 2), "commands": stats.commands,
            "commands_per_s": round(stats.commands / elapsed, 1), "completed": stats.completed,
            "calls_per_s": round(stats.completed / elapsed, 2), "failed": stats.failed,
            "errors": stats.errors, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "max_ms": round(t[-1] * 1000, 3) if t else None,
            # [step, p50 ms, p99 ms] of the five steps with the highest p99
            "slowest_steps": sorted(([k, *(round(sorted(v)[int(q * (len(v) - 1))] * 1000, 2) for q in (0.5, 0.99))]
                                     for k, v in stats.by_step.items()), key=lambda kv: -kv[2])[:5]}


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
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    result = asyncio.run(run(a.host, a.port, a.script, a.concurrency, a.duration,
                             tuple(a.playback) if a.playback else None, a.calls, a.ramp,
                             shlex.split(a.classic) if a.classic else None))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
