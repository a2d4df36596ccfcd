"""The failover drill: under a steady stream of calls, kill in turn the database primary, a
FastAGI server, a dispatcher and the mail server, bring each back, and check the promises.

Every code a caller heard must be stored exactly once, every message of every complaint
accepted once by the mail server or the SMS provider, every journal empty at the end, and no
caller may lose a call unless the server holding it died.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from drill.calls import Callers
from drill.cluster import Cluster, ClusterError, missing_tools
from drill.fleet import Fleet, hashed

PHASES = ("primary", "server", "dispatcher", "mail server")
EXTRA = ("switchover",)  # on request only: a planned switch, the old primary staying up as a standby
console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)  # a log keeps whole lines


def say(what: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {what}")
    sys.stdout.flush()  # progress shows as it happens, in a pipe or a log too


@dataclass
class Phase:
    name: str
    killed_at: float = 0.0
    writes_back: float = 0.0  # seconds from the kill until a write went through again
    journals_empty: float = 0.0  # seconds from the kill until no journal held an entry


@dataclass
class Monitor:
    """Samples, every 0.2 s, whether a write succeeds through the multi-host URL and how many
    entries the journals hold: when each came back is read from these samples."""
    cluster: Cluster
    fleet: Fleet
    samples: list[tuple[float, bool, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            writable = self.cluster.writable()
            self.samples.append((t, writable, sum(self.fleet.journals().values())))
            self._stop.wait(0.2)

    def stop(self) -> None:
        self._stop.set()

    def since(self, t0: float) -> tuple[float, float]:
        """(seconds until writes succeeded again, seconds until the journals were empty) after t0."""
        after = [s for s in self.samples if s[0] >= t0]
        last_down = max((t for t, w, _ in after if not w), default=t0)
        last_full = max((t for t, _, j in after if j), default=t0)
        later = [t for t, _, _ in after]
        nxt = lambda t: min((u for u in later if u > t), default=t)  # noqa: E731 - the next sample
        return (nxt(last_down) - t0 if last_down > t0 else 0.0,
                nxt(last_full) - t0 if last_full > t0 else 0.0)


def _kill(proc) -> str:
    proc.kill()
    return proc.name


class Drill:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.cluster = Cluster.create(synchronous=not args.asynchronous)
        self.work = Path(tempfile.mkdtemp(prefix="favad-drill-fleet-"))
        self.fleet = Fleet(self.cluster.url(), self.work)
        self.phases: list[Phase] = []
        self.result: Tally | None = None
        self.server_kills: list[tuple[int, float]] = []  # (port, when)
        self.callers: Callers | None = None
        self.monitor = Monitor(self.cluster, self.fleet)

    def run(self) -> int:
        try:
            self.setup()
            for name in self.args.phases:
                self.phases.append(self.phase(name))
            return self.finish()
        finally:
            self.teardown()

    def setup(self) -> None:
        mode = "asynchronous" if self.args.asynchronous else "synchronous"
        say(f"starting etcd and two PostgreSQL under Patroni ({mode} replication) in {self.cluster.root}")
        t = time.monotonic()
        self.cluster.start()
        say(f"cluster up in {time.monotonic() - t:.1f} s: primary {self.cluster.leader().name}, "
            f"the other streaming; URL {self.cluster.url()}")
        say("migrating, loading the demo units, building prompts")
        self.fleet.prepare()
        self.fleet.start()
        say(f"two favad serve on {self.fleet.ports}, two favad dispatch, a mail server on "
            f"{self.fleet.smtp.port}, an SMS provider on {self.fleet.sms.port}")
        self.monitor.start()
        self.callers = Callers(self.fleet.ports, str(self.fleet.sounds), self.args.callers, self.args.think)
        self.callers.start()
        self._until(lambda: self.callers.answered("steady") >= self.args.callers, "the first calls")
        say(f"{self.args.callers} callers calling; {self.callers.answered('steady')} codes heard so far")

    def phase(self, name: str) -> Phase:
        ph = Phase(name)
        self.callers.phase = name
        kill, revive = {"primary": (self._kill_primary, self._revive_primary),
                        "server": (self._kill_server, self.fleet.servers[0].start),
                        "dispatcher": (lambda: _kill(self.fleet.dispatchers[0]), self.fleet.dispatchers[0].start),
                        "mail server": (self.fleet.smtp.stop, self.fleet.restart_smtp),
                        "switchover": (lambda: "%s to %s" % self.cluster.switchover(), None)}[name]
        ph.killed_at = time.monotonic()
        victim = kill()
        done = "switched the primary over" if name == "switchover" else f"killed the {name}"
        say(f"{done}{f' ({victim})' if victim else ''}")
        if name in ("primary", "switchover"):
            self._until(self.cluster.writable, "a new primary")
            say(f"writes succeed again after {time.monotonic() - ph.killed_at:.1f} s "
                f"(new primary {self.cluster.leader().name})")
        time.sleep(self.args.down)  # calls go on while it is away
        if name != "switchover":  # the old primary never went away: it follows the new one
            revive()
            say(f"brought the {name} back after {time.monotonic() - ph.killed_at:.1f} s")
        self._until(lambda: not sum(self.fleet.journals().values()) and self.cluster.streaming(),
                    "empty journals and a streaming standby")
        time.sleep(1.0)  # a sample or two after the journals emptied
        ph.writes_back, ph.journals_empty = self.monitor.since(ph.killed_at)
        say(f"{name}: journals empty {ph.journals_empty:.1f} s after it began; "
            f"{self.callers.answered(name)} codes heard in this phase")
        return ph

    def _kill_server(self) -> str:
        """Server a, SIGKILL: the calls it holds end (on Asterisk: the apology, then the operator)."""
        self.server_kills.append((self.fleet.ports[0], time.monotonic()))
        return _kill(self.fleet.servers[0])

    def _kill_primary(self) -> str:
        leader = self.cluster.leader()
        self._old_primary = leader
        self.cluster.kill_node(leader)
        return leader.name

    def _revive_primary(self) -> None:
        self.cluster.start_node(self._old_primary)
        self._until(self.cluster.streaming, "the old primary to rejoin as a standby")

    def finish(self) -> int:
        self.callers.phase = "after"
        self.callers.stop()
        say(f"callers stopped after {len(self.callers.calls)} calls; waiting for the outbox to drain")
        self._until(lambda: not self.fleet.unsent() and not sum(self.fleet.journals().values()),
                    "every message sent and every journal empty")
        time.sleep(1.0)
        self.monitor.stop()
        self.result = tally(self)
        show(self.result)
        return 1 if self.result.broken else 0

    def teardown(self) -> None:
        if self.callers is not None and self.callers._thread.is_alive():
            self.callers.stop()
        self.monitor.stop()
        self.fleet.stop()
        self.cluster.stop()
        if self.args.keep:
            say(f"kept {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    def _until(self, done, what: str) -> None:
        end = time.monotonic() + self.args.patience
        while not done():
            if time.monotonic() > end:
                raise ClusterError(f"gave up waiting for {what} after {self.args.patience:.0f} s\n"
                                   + self.fleet.tails())
            time.sleep(0.2)


@dataclass
class Row:
    phase: str
    placed: int
    failed: int
    cut: int  # of the failed: cut off because the server holding them was killed
    heard: int
    stored_once: int  # heard codes stored exactly once
    messages: int  # messages their complaints queued
    messages_once: int  # of those, accepted exactly once
    writes_back: float | None
    journals_empty: float | None


@dataclass
class Tally:
    rows: list[Row]
    stored: int  # complaints stored in all
    unheard: int  # stored, never heard: calls cut off as a server died
    accepted: int
    journals: dict[str, int]
    broken: list[str]


def tally(d: Drill) -> Tally:
    """Each phase's calls against what the database stored and the sinks accepted."""
    stored = d.fleet.stored()
    queued, accepted = d.fleet.queued(), d.fleet.accepted()
    case_of = d.fleet.case_numbers()
    timing = {p.name: p for p in d.phases}
    rows, broken = [], []
    for name in ["steady", *(p.name for p in d.phases), "after", "all"]:
        calls = [c for c in d.callers.calls if name == "all" or c.phase == name]
        if not calls and name != "all":
            continue
        heard = [hashed(c.code) for c in calls if c.code]
        # a phase's messages: those of the complaints its callers heard; "all": every complaint's
        cases = set(case_of.values()) if name == "all" else {case_of[h] for h in heard if h in case_of}
        want = [k for k in queued if k[0] in cases]
        failed = [c for c in calls if not c.code]
        ph = timing.get(name)
        row = Row(name, len(calls), len(failed),
                  sum(1 for c in failed if any(c.held_by(port, at) for port, at in d.server_kills)),
                  len(heard), sum(1 for h in heard if stored[h] == 1),
                  sum(queued[k] for k in want), sum(queued[k] for k in want if accepted[k] == queued[k]),
                  ph.writes_back if ph else None, ph.journals_empty if ph else None)
        rows.append(row)
        broken += broken_promises(row)
    heard_all = [hashed(c.code) for c in d.callers.calls if c.code]
    if len(set(heard_all)) != len(heard_all):
        broken.append("two callers heard the same code")
    if set(accepted) - set(queued):
        broken.append(f"{len(set(accepted) - set(queued))} messages accepted that no complaint queued")
    journals = d.fleet.journals()
    if any(journals.values()):
        broken.append(f"journals not empty at the end: {journals}")
    return Tally(rows, sum(stored.values()), len(set(stored) - set(heard_all)), sum(accepted.values()),
                 journals, broken)


def broken_promises(row: Row) -> list[str]:
    out = []
    if row.stored_once != row.heard:
        out.append(f"{row.phase}: {row.heard - row.stored_once} heard codes not stored exactly once")
    if row.messages_once != row.messages:
        out.append(f"{row.phase}: {row.messages - row.messages_once} messages lost or accepted twice")
    if row.failed > row.cut:  # the caller must never be stranded by anything but its own server's death
        out.append(f"{row.phase}: {row.failed - row.cut} calls failed though no server holding them died")
    return out


def show(t: Tally) -> None:
    table = Table(title="failover drill")
    for col in ("phase", "calls placed", "calls failed", "codes heard", "stored once", "messages once",
                "writes back (s)", "journals empty (s)"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for r in t.rows:
        failed = f"{r.failed} ({r.cut} cut off)" if r.cut else str(r.failed)
        table.add_row(r.phase, str(r.placed), failed, str(r.heard), f"{r.stored_once}/{r.heard}",
                      f"{r.messages_once}/{r.messages}",
                      "-" if r.writes_back is None else f"{r.writes_back:.1f}",
                      "-" if r.journals_empty is None else f"{r.journals_empty:.1f}",
                      end_section=r.phase == t.rows[-2].phase)
    console.print(table)
    console.print(f"complaints stored: {t.stored} ({t.unheard} never heard: a call cut off by its server's "
                  f"death after the complaint was filed); "
                  f"messages accepted: {t.accepted}; entries left in the journals: {t.journals}")
    for b in t.broken:
        console.print(f"[red]BROKEN[/red] {b}")
    if not t.broken:
        console.print("[green]every promise held[/green]")


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="scripts/drill", description=__doc__.splitlines()[0])
    ap.add_argument("--callers", type=int, default=6, help="callers calling at once (default 6)")
    ap.add_argument("--think", type=float, default=0.3, help="seconds a caller takes before each answer")
    ap.add_argument("--down", type=float, default=8.0, help="seconds each killed part stays down")
    ap.add_argument("--phases", type=lambda s: [p.strip() for p in s.split(",")], default=list(PHASES),
                    help=f"comma-separated, from: {', '.join(PHASES + EXTRA)} (default: all but "
                         f"{', '.join(EXTRA)}, in that order)")
    ap.add_argument("--async", dest="asynchronous", action="store_true",
                    help="asynchronous replication (the default is synchronous)")
    ap.add_argument("--patience", type=float, default=180.0, help="seconds to wait for any one thing")
    ap.add_argument("--keep", action="store_true", help="keep the fleet's temporary directory")
    a = ap.parse_args(argv)
    bad = [p for p in a.phases if p not in PHASES + EXTRA]
    if bad:
        ap.error(f"unknown phase {', '.join(bad)}; choose from: {', '.join(PHASES + EXTRA)}")
    if a.callers < 1 or a.down < 0 or a.think < 0:
        ap.error("--callers must be at least 1, --down and --think not negative")
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    need = missing_tools()
    if need:
        console.print(f"drill: missing Debian packages: {' '.join(need)} (scripts/drill installs them)")
        return 2
    try:
        return Drill(args).run()
    except (ClusterError, RuntimeError) as e:
        console.print(f"[red]drill: {e}[/red]")
        return 1
    except KeyboardInterrupt:
        return 130
