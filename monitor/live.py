"""The live half of the monitor, sans I/O: AMI lists and events folded into what operators see
(calls in the IVR and at which step, callers waiting for an operator, agents).

It only ever receives scrubbed messages (ami/scrub.py): channels are pseudonyms, there is no
number or name to keep. A 128 call is a channel in a ``favad-*`` context; its step is the
``FAVAD_STEP`` channel variable (manager.conf ``channelvars``, or the VarSet events).
"""
from __future__ import annotations

from dataclasses import dataclass, field

PREFIX = "favad-"


@dataclass
class Call:
    since: float
    step: str = ""
    province: str = ""
    application: str = ""


@dataclass
class Queue:
    name: str
    waiting: int = 0
    longest_wait_s: int = 0
    agents_logged_in: int = 0
    agents_free: int = 0
    abandoned: int = 0
    completed: int = 0
    waiting_since: dict[str, float] = field(default_factory=dict)  # channel pseudonym -> joined


def _vars(event) -> dict[str, str]:
    raw = event.get("ChanVariable", [])
    out = {}
    for item in raw if isinstance(raw, list) else [raw]:
        name, _, value = item.partition("=")
        out[name] = value
    return out


def _seconds(hms: str) -> int:
    try:
        h, m, s = (int(x) for x in hms.split(":"))
        return h * 3600 + m * 60 + s
    except ValueError:
        return 0


def _int(event, key: str) -> int:
    try:
        return int(event.get(key, 0) or 0)
    except ValueError:
        return 0


class LiveState:
    def __init__(self, queue: str = ""):
        self.queue_filter = queue.lower()
        self.calls: dict[str, Call] = {}
        self.queues: dict[str, Queue] = {}
        # the queue section stands alone: "ok", "no_module" (app_queue not loaded) or "unavailable"
        self.queues_status, self.queues_error = "ok", None

    def _wanted(self, name: str) -> bool:
        return not self.queue_filter or name.lower() == self.queue_filter

    # ---- whole lists (CoreShowChannels, QueueStatus, QueueSummary) -----------------------
    def load(self, channels: list, status: list, summary: list, now: float) -> None:
        self.load_calls(channels, now)
        self.load_queues(status, summary, now)

    def load_calls(self, channels: list, now: float) -> None:
        calls = {}
        for e in channels:
            if not e.get("Context", "").startswith(PREFIX):
                continue
            v = _vars(e)
            calls[e["Channel"]] = Call(now - _seconds(e.get("Duration", "")), v.get("FAVAD_STEP", ""),
                                       v.get("FAVAD_PROVINCE", ""), e.get("Application", ""))
        self.calls = calls

    def load_queues(self, status: list, summary: list, now: float) -> None:
        queues: dict[str, Queue] = {}
        for e in status:
            name = e.get("Queue", "")
            if not self._wanted(name):
                continue
            q = queues.setdefault(name, Queue(name))
            if e.event == "QueueParams":
                q.abandoned, q.completed = _int(e, "Abandoned"), _int(e, "Completed")
            elif e.event == "QueueEntry":
                q.waiting_since[e.get("Channel", "")] = now - _int(e, "Wait")
        for e in summary:
            name = e.get("Queue", "")
            if e.event != "QueueSummary" or not self._wanted(name):
                continue
            q = queues.setdefault(name, Queue(name))
            q.agents_logged_in, q.agents_free = _int(e, "LoggedIn"), _int(e, "Available")
            q.waiting, q.longest_wait_s = _int(e, "Callers"), _int(e, "LongestHoldTime")
        self.queues = queues
        self.queues_status, self.queues_error = "ok", None

    def queues_failed(self, error: str) -> None:
        """The queue lists could not be read; the calls already read stay."""
        absent = "Invalid/unknown command" in error  # manager.c, when app_queue is not loaded
        self.queues.clear()
        self.queues_status, self.queues_error = ("no_module" if absent else "unavailable"), error

    def clear(self) -> None:
        self.calls.clear()
        self.queues.clear()

    # ---- events between two lists --------------------------------------------------------
    def apply(self, event, now: float) -> None:
        name = event.event
        channel = event.get("Channel", "")
        if name == "Hangup":
            self.calls.pop(channel, None)
            for q in self.queues.values():
                if q.waiting_since.pop(channel, None) is not None:
                    q.waiting = len(q.waiting_since)
            return
        if name.startswith("QueueCaller") and self._wanted(event.get("Queue", "")):
            q = self.queues.setdefault(event["Queue"], Queue(event["Queue"]))
            if name == "QueueCallerJoin":
                q.waiting_since[channel] = now
            elif name in ("QueueCallerLeave", "QueueCallerAbandon"):
                q.waiting_since.pop(channel, None)
                q.abandoned += name == "QueueCallerAbandon"
            q.waiting = len(q.waiting_since)
        if not channel:
            return
        call = self.calls.get(channel)
        if call is None:
            if not event.get("Context", "").startswith(PREFIX) or name == "Hangup":
                return
            call = self.calls[channel] = Call(now)
        v = _vars(event)
        call.step = v.get("FAVAD_STEP", call.step) or call.step
        call.province = v.get("FAVAD_PROVINCE", call.province) or call.province
        if name == "VarSet" and event.get("Variable") in ("FAVAD_STEP", "FAVAD_PROVINCE"):
            setattr(call, "step" if event["Variable"] == "FAVAD_STEP" else "province", event.get("Value", ""))
        if event.get("Application"):
            call.application = event["Application"]

    # ---- what is shown -----------------------------------------------------------------
    def snapshot(self, now: float) -> dict:
        queued = {ch for q in self.queues.values() for ch in q.waiting_since}
        ivr = sorted((c for ch, c in self.calls.items() if ch not in queued and c.application != "Queue"),
                     key=lambda c: c.since)
        by_step: dict[str, int] = {}
        for c in ivr:
            by_step[c.step or "start"] = by_step.get(c.step or "start", 0) + 1
        queues = []
        for q in sorted(self.queues.values(), key=lambda q: q.name):
            waits = [now - t for t in q.waiting_since.values()]
            queues.append({"queue": q.name, "waiting": max(q.waiting, len(waits)),
                           "longest_wait_s": int(max([q.longest_wait_s, *waits])) if (waits or q.waiting) else 0,
                           "agents_logged_in": q.agents_logged_in, "agents_free": q.agents_free,
                           "abandoned": q.abandoned, "completed": q.completed})
        return {"ivr": {"calls": len(ivr), "by_step": by_step,
                        "list": [{"step": c.step or "start", "province": c.province or None,
                                  "seconds": int(now - c.since)} for c in ivr]},
                "queues": queues, "queues_status": self.queues_status, "queues_error": self.queues_error,
                "operator_queue": self.queue_filter or None}
