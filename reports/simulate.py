"""A month of simulated traffic for demos and measurements: calls, complaints, and what units
did with them (acknowledged, resolved with an outcome, rated), written as the real rows and
events would be. Deterministic for a seed (case numbers aside: they are random, as real ones).
Not for production databases: complaint and event ids are given here, after the highest in use,
so nothing else may write complaints meanwhile.

``simulate`` fills one month; ``Simulator`` keeps its state (agencies' speed and popularity, the
codes in use, the next ids) across many months and batches, for large measurement databases
(``bench/report_bench.py``). ``write`` uses PostgreSQL's COPY, else Core executemany.
"""
from __future__ import annotations

import datetime as dt
import itertools
import random
from dataclasses import dataclass, field

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from accountability.actions import OUTCOMES
from clock.calendar import OfficeCalendar
from accountability.models import UnitAction
from db.models import (Agency, CallRecord, Complaint, ComplaintEvent, ComplaintRating, Indicator,
                       Office, Province)
from common.tracking import CASE_ALPHABET
from clock import TEHRAN
from reports.months import Month

OUTCOME_WEIGHTS = (30, 30, 6, 10, 24)
INDICATOR_WEIGHTS = (5, 4, 3, 3, 4, 3, 4)
CALL_OUTCOMES = {"out_of_scope": 0.14, "followup": 0.10, "abandoned": 0.07, "operator": 0.03,
                 "failed_input": 0.02}


def _filed_at(rng: random.Random, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    """A moment between ``start`` and ``end``, mostly in office hours as calls to 128 are."""
    span = (end - start).total_seconds()
    while True:
        at = start + dt.timedelta(seconds=rng.random() * span)
        local = at.astimezone(TEHRAN)
        if 7 <= local.hour < 15 or rng.random() < 0.25:
            return at


@dataclass
class Batch:
    """Rows to insert, as dicts keyed by column name; complaints and events carry their ids."""

    complaints: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    actions: list[dict] = field(default_factory=list)
    ratings: list[dict] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)

    def tables(self):
        return ((Complaint.__table__, self.complaints), (ComplaintEvent.__table__, self.events),
                (UnitAction.__table__, self.actions), (ComplaintRating.__table__, self.ratings),
                (CallRecord.__table__, self.calls))


class Simulator:
    """Simulated months over the reference data in ``s`` (read once)."""

    def __init__(self, s: Session, cal: OfficeCalendar, seed: int = 1):
        self.cal, self.rng = cal, random.Random(seed)
        self.provinces = list(s.scalars(select(Province).order_by(Province.id)))
        self.agencies = list(s.scalars(select(Agency).order_by(Agency.code)))
        indicators = list(s.scalars(select(Indicator).order_by(Indicator.id)))
        self.indicator_ids = [i.id for i in indicators]
        self.indicator_cum = list(itertools.accumulate(INDICATOR_WEIGHTS[:len(indicators)]))
        self.offices: dict[tuple[int, int], list[int]] = {}
        for o in s.scalars(select(Office).order_by(Office.id)):
            self.offices.setdefault((o.agency_id, o.province_id), []).append(o.id)
        rng = self.rng
        self.quality = {a.id: rng.uniform(0.5, 1.6) for a in self.agencies}  # some agencies are slower
        self.agency_cum = list(itertools.accumulate(rng.uniform(0.3, 3.0) for _ in self.agencies))
        self.outcome_cum = list(itertools.accumulate(OUTCOME_WEIGHTS))
        self.taken = set(s.scalars(select(Complaint.case_number)))
        self.next_complaint = (s.scalar(select(func.max(Complaint.id))) or 0) + 1
        self.next_event = (s.scalar(select(func.max(ComplaintEvent.id))) or 0) + 1

    def _live(self, month: Month) -> list:
        today = month.end.astimezone(TEHRAN).date()
        return [p for p in self.provinces if p.activated_on and p.activated_on <= today] or self.provinces[:3]

    def _case(self) -> str:
        while True:  # random: a large database draws some twice
            body = "".join(self.rng.choices(CASE_ALPHABET, k=8))
            if (case := f"{body[:4]}-{body[4:]}") not in self.taken:
                self.taken.add(case)
                return case

    def month(self, month: Month, complaints: int, part: int = 0, parts: int = 1) -> Batch:
        """``complaints`` complaints filed in ``month`` (in its ``part``-th of ``parts`` equal
        stretches of time), their handling and their calls. Rows come in the order the system
        would have written them: complaints and events by time, so ids follow time."""
        rng, cal, b = self.rng, self.cal, Batch()
        span = (month.end - month.start) / parts
        start, end = month.start + span * part, month.start + span * (part + 1)
        provinces = self._live(month)
        events = []
        for at in sorted(_filed_at(rng, start, end) for _ in range(complaints)):
            pr = rng.choice(provinces)
            ag = rng.choices(self.agencies, cum_weights=self.agency_cum)[0]
            cid, self.next_complaint = self.next_complaint, self.next_complaint + 1
            row = {"id": cid, "case_number": self._case(),
                   "code_hash": f"{rng.getrandbits(256):064x}", "created_at": at, "province_id": pr.id,
                   "agency_id": ag.id, "office_id": rng.choice(self.offices.get((ag.id, pr.id), [None])),
                   "indicator_id": rng.choices(self.indicator_ids, cum_weights=self.indicator_cum)[0],
                   "status": "forwarded", "outcome": None, "recording_path": None,
                   "sla_due_at": cal.add(at, 180)}
            b.complaints.append(row)
            b.calls.append({"started_at": (at - dt.timedelta(minutes=3)).replace(second=0, microsecond=0),
                            "province_id": pr.id,
                            "outcome": "complaint_filed", "duration_s": rng.randint(90, 300)})
            events.append((at, cid, "filed", "received", "ivr", False, None))
            if rng.random() > 0.9:
                continue
            q = self.quality[ag.id]
            acked = cal.add(at, rng.expovariate(1 / (35 * q)))
            events.append((acked, cid, "acknowledged", "under_review", "unit sim", True, None))
            row["status"] = "under_review"
            if rng.random() > 0.85:
                continue
            done = cal.add(acked, rng.expovariate(1 / (110 * q)))
            outcome = rng.choices(OUTCOMES, cum_weights=self.outcome_cum)[0]
            events.append((done, cid, "resolved", "resolved", "unit sim", True, outcome))
            row["status"], row["outcome"] = "resolved", outcome
            if rng.random() < 0.45:
                base = 4.2 if outcome != "not_confirmed" else 2.6
                b.ratings.append({"complaint_id": cid,
                                  "rating": max(1, min(5, round(rng.gauss(base / q ** 0.3, 0.9)))),
                                  "at": done + dt.timedelta(days=rng.uniform(0.2, 3))})
        events.sort(key=lambda e: e[0])  # stable: a complaint's events stay in their order
        for at, cid, kind, status, actor, action, outcome in events:
            eid, self.next_event = self.next_event, self.next_event + 1
            b.events.append({"id": eid, "complaint_id": cid, "at": at, "kind": kind, "status": status,
                             "actor": actor, "note": None})
            if action:
                b.actions.append({"event_id": eid, "complaint_id": cid, "unit_id": None,
                                  "outcome": outcome, "to_unit_id": None})
        for outcome, ratio in CALL_OUTCOMES.items():
            b.calls += [{"started_at": _filed_at(rng, start, end).replace(second=0, microsecond=0), "province_id": rng.choice(provinces).id,
                         "outcome": outcome, "duration_s": rng.randint(10, 200)}
                        for _ in range(int(ratio * complaints))]
        b.calls.sort(key=lambda c: c["started_at"])
        return b


def write(s: Session, batch: Batch) -> None:
    """Insert the batch in the session's transaction (not committed): COPY on PostgreSQL."""
    conn = s.connection()
    if conn.dialect.name != "postgresql":
        for table, rows in batch.tables():
            if rows:
                conn.execute(insert(table), rows)
        return
    with conn.connection.driver_connection.cursor() as cur:
        for table, rows in batch.tables():
            if not rows:
                continue
            cols = list(rows[0])
            with cur.copy(f'COPY "{table.name}" ({", ".join(cols)}) FROM STDIN') as copy:
                for r in rows:
                    copy.write_row([r[c] for c in cols])
    for table in (Complaint.__table__, ComplaintEvent.__table__):  # ids were given: move the sequences on
        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                          f"(SELECT max(id) FROM \"{table.name}\"))"))


def simulate(s: Session, month: Month, complaints: int, cal: OfficeCalendar, seed: int = 1) -> int:
    """Add ``complaints`` complaints filed in ``month`` and their calls and handling. Commits."""
    if complaints <= 0:
        return 0
    write(s, Simulator(s, cal, seed).month(month, complaints))
    s.commit()
    return complaints
