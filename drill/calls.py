"""Callers that keep calling through a failover list of two FastAGI servers, as Asterisk's
[favad-ivr] does: the next server while none took the call (refused, or closed before the IVR
set FAVAD_STEP); a call a server took and lost is not started over. pbxsim plays Asterisk's
side; each caller thinks a little before each answer, so calls are in progress when a part dies."""
from __future__ import annotations

import asyncio
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pbxsim.caller import FILE_ONE, Caller, heard_code
from pbxsim.fastagi import run_call


@dataclass
class Call:
    phase: str  # what was being done to the system when the call began
    began: float = 0.0  # time.monotonic()
    ended: float | None = None
    port: int | None = None  # the server it went to last
    code: str | None = None

    def held_by(self, port: int, at: float) -> bool:
        """This call was on that server at that moment."""
        return self.port == port and self.began <= at <= (self.ended or float("inf"))


class Callers:
    """``concurrency`` callers on a thread of their own, each calling again when its call ends."""

    def __init__(self, ports: list[int], sounds: str, concurrency: int, think: float):
        self.ports, self.sounds, self.concurrency, self.think = ports, sounds, concurrency, think
        self.phase = "steady"
        self.calls: list[Call] = []
        self._stop = threading.Event()
        self._numbers = (f"0913{n:07d}" for n in itertools.count())  # one each: no limit is reached
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def answered(self, phase: str) -> int:
        return sum(1 for c in self.calls if c.phase == phase and c.code)

    def _caller(self) -> Caller:
        groups = iter(FILE_ONE.split())

        def answer(_prompt: str) -> str | None:
            time.sleep(self.think)  # in pbxsim's thread, not on the event loop
            return next(groups, None)
        return Caller(interactive=answer)

    async def _dial(self, call: Call, order: list[int]) -> None:
        for port in order:
            call.port = port
            try:
                r = await run_call("127.0.0.1", port, script="favad", args=("28",), caller=self._caller(),
                                   sounds_dir=self.sounds, callerid=next(self._numbers), timeout=120)
            except (ConnectionError, OSError):  # refused: AGISTATUS=FAILURE, FAVAD_STEP empty
                continue
            except Exception:  # noqa: BLE001 - a call that timed out or broke: failed, counted
                break
            call.code = heard_code(r.played)
            if call.code or r.variables.get("FAVAD_STEP"):
                break  # taken by this server
        call.ended = time.monotonic()

    async def _line(self, k: int) -> None:
        for n in itertools.count():
            if self._stop.is_set():
                return
            order = self.ports if (k + n) % 2 == 0 else self.ports[::-1]  # two boxes, two primaries
            call = Call(self.phase, time.monotonic())
            self.calls.append(call)
            await self._dial(call, list(order))

    async def _run(self) -> None:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(4 * self.concurrency))
        lines = []
        for k in range(self.concurrency):
            lines.append(asyncio.create_task(self._line(k)))
            await asyncio.sleep(0.2)  # callers arrive one after another, not in lockstep
        await asyncio.gather(*lines)
