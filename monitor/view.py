"""The monitor on a terminal: one snapshot (dict) -> rich renderables. Jalali time in Tehran
and Persian names here only; the snapshot itself stays plain data (what `--json` prints)."""
from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from presentation import jalali

STATUS_ORDER = ("received", "forwarded", "under_review", "resolved")


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return ""
    sign, seconds = ("-" if seconds < 0 else ""), abs(int(seconds))
    h, rem = divmod(seconds, 3600)
    return f"{sign}{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{sign}{rem // 60}:{rem % 60:02d}"


def _hours(minutes: int) -> str:
    sign, minutes = ("-" if minutes < 0 else ""), abs(minutes)
    return f"{sign}{minutes // 60}:{minutes % 60:02d}"


def _table(title: str, columns: list[str], rows: list[list], empty: str = "none") -> Group:
    t = Table(*columns, expand=False)
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    if not rows:
        t.add_row(empty, *[""] * (len(columns) - 1))
    return Group(Text(title, style="bold"), t)


def render(snap: dict) -> Group:
    parts = [Text(f"128 monitor · {jalali(snap['at'], fmt='%Y/%m/%d %H:%M:%S')} (Tehran)", style="bold")]
    parts += _ami(snap["ami"])
    parts += _database(snap["database"])
    return Group(*parts)


def _ami(ami: dict) -> list:
    if ami["status"] == "connecting":
        return [Text("Asterisk (AMI): connecting...", style="dim")]
    if ami["status"] != "ok":
        retry = f"; retrying in {ami['retry_in_s']:.0f} s" if ami.get("retry_in_s") else ""
        return [Text(f"Asterisk (AMI): unavailable: {ami['error']}{retry}. Live calls are not shown; "
                     f"the complaints below are current.", style="bold red")]
    ivr = ami["ivr"]
    steps = ", ".join(f"{k} {v}" for k, v in sorted(ivr["by_step"].items())) or "none"
    calls = _table(f"In the IVR: {ivr['calls']} call(s) ({steps})", ["step", "province", "for"],
                   [[c["step"], c["province"], _duration(c["seconds"])] for c in ivr["list"][:20]])
    return [calls, *_queues(ami)]


def _queues(ami: dict) -> list:
    """The queue section, on its own: absent without app_queue unless a queue is configured."""
    status = ami.get("queues_status", "ok")
    if status == "no_module":
        if not ami.get("operator_queue"):
            return []
        return [Text(f"Operator queue {ami['operator_queue']}: Asterisk has no queue module (app_queue "
                     f"is not loaded); callers who press 0 cannot reach an operator", style="bold red")]
    if status != "ok":
        return [Text(f"Operator queue: unavailable: {ami['queues_error']}", style="bold red")]
    queues = _table("Operator queue", ["queue", "waiting", "longest wait", "agents logged in",
                                       "agents free", "abandoned*", "answered*"],
                    [[q["queue"], q["waiting"], _duration(q["longest_wait_s"]), q["agents_logged_in"],
                      q["agents_free"], q["abandoned"], q["completed"]] for q in ami["queues"]],
                    empty="no queue")
    note = Text("* since the queue statistics were last reset (`queue reset stats`, run at midnight)",
                style="dim")
    return [queues, note]


def _database(db: dict) -> list:
    if db["status"] == "loading":
        return [Text("Database: loading...", style="dim")]
    if db["status"] != "ok":
        return [Text(f"Database: unavailable: {db['error']}", style="bold red")]
    by_status = db["by_status"]
    status = _table("Complaints by status", list(STATUS_ORDER) + [s for s in by_status if s not in STATUS_ORDER],
                    [[by_status.get(s, 0) for s in STATUS_ORDER] +
                     [v for s, v in by_status.items() if s not in STATUS_ORDER]])
    board = _table("SLA board: open complaints nearest to or past the deadline",
                   ["case number", "agency", "province", "status", "due", "left (h:mm)"],
                   [[c["case_number"], c["agency_name"], c["province_name"], c["status"],
                     jalali(c["sla_due_at"], fmt="%m/%d %H:%M"),
                     _hours(c["minutes_left"]) + (" OVERDUE" if c["minutes_left"] < 0 else "")]
                    for c in db["nearest"]], empty="no open complaint")
    agencies = _table("Open complaints by agency", ["agency", "open", "overdue", "due within 1 h"],
                      [[g["name"], g["open"], g["overdue"], g["due_within_1h"]] for g in db["by_agency"][:10]])
    provinces = _table("Open complaints by province", ["province", "open", "overdue", "due within 1 h"],
                       [[g["name"], g["open"], g["overdue"], g["due_within_1h"]] for g in db["by_province"][:10]])
    calls = ", ".join(f"{k} {v}" for k, v in sorted(db["calls_today"].items())) or "none yet"
    out = db["outbox"]
    if out.get("status") == "ok":
        age = f", oldest pending {_duration(out['oldest_pending_s'])}" if out["oldest_pending_s"] else ""
        outbox = (f"Outbox: {out['pending']} pending ({out['retrying']} retrying), {out['dead']} dead "
                  f"letters, {out['sent']} sent{age}")
        style = "bold red" if out["dead"] else ""
    else:
        outbox, style = "Outbox: n/a", "dim"
    return [status, board, agencies, provinces, Text(f"Calls today: {calls}"), Text(outbox, style=style)]
