"""An attacker on the FastAGI port, for measuring calls' turnaround while it runs: idle
connections that never send headers (slowloris, re-opened when dropped) and a stream of
random bytes. Bounded in count and time; loopback only.

    python -m bench.attack --port 4573 --idle 500 --duration 15
"""
from __future__ import annotations

import argparse
import asyncio
import os
import time


async def idle_forever(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"agi_network: yes\n")  # then nothing: the header timeout must drop us
            await asyncio.wait_for(r.read(), max(0.1, deadline - time.monotonic()))
            w.close()
        except (OSError, asyncio.TimeoutError):
            await asyncio.sleep(0.1)


async def garbage(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(os.urandom(4096) + b"\n\n")
            await asyncio.wait_for(r.read(), 2)
            w.close()
        except (OSError, asyncio.TimeoutError):
            pass
        await asyncio.sleep(0.01)


async def main_async(port: int, idle: int, duration: float) -> None:
    deadline = time.monotonic() + duration
    await asyncio.gather(*(idle_forever(port, deadline) for _ in range(idle)), garbage(port, deadline))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--idle", type=int, default=500)
    ap.add_argument("--duration", type=float, default=15.0)
    a = ap.parse_args()
    asyncio.run(main_async(a.port, a.idle, a.duration))


if __name__ == "__main__":
    main()
