"""A month of simulated traffic for demos and measurements: calls, complaints, and what units
did with them (acknowledged, resolved with an outcome, rated), written as the real rows and
events would be. Deterministic for a seed. Not for production databases.
"""
from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from accountability.actions import OUTCOMES
from accountability.calendar import OfficeCalendar
from accountability.models import UnitAction
from db.models import (Agency, CallRecord, Complaint, ComplaintEvent, ComplaintRating, Indicator,
                       Office, Province)
from ivr.tracking import new_code
from presentation import TEHRAN
from reports.months import Month

OUTCOME_WEIGHTS = (30, 30, 6, 10, 24)
CALL_OUTCOMES = {"out_of_scope": 0.14, "followup": 0.10, "abandoned": 0.07, "operator": 0.03,
                 "failed_input": 0.02}


def _filed_at(rng: random.Random, month: Month) -> dt.datetime:
    """A moment in the month, mostly in office hours as calls to 128 are."""
    span = (month.end - month.start).total_seconds()
    while True:
        at = month.start + dt.timedelta(seconds=rng.random() * span)
        local = at.astimezone(TEHRAN)
        if 7 <= local.hour < 15 or rng.random() < 0.25:
            return at


def simulate(s: Session, month: Month, complaints: int, cal: OfficeCalendar, seed: int = 1) -> int:
    """Add ``complaints`` complaints filed in ``month`` and their calls and handling. Commits."""
    rng = random.Random(seed)
    today = month.end.astimezone(TEHRAN).date()
    provinces = [p for p in s.scalars(select(Province)) if p.activated_on and p.activated_on <= today]
    provinces = provinces or list(s.scalars(select(Province)))[:3]
    agencies = list(s.scalars(select(Agency).order_by(Agency.code)))
    indicators = list(s.scalars(select(Indicator).order_by(Indicator.id)))
    offices: dict[tuple[int, int], list[int]] = {}
    for o in s.scalars(select(Office)):
        offices.setdefault((o.agency_id, o.province_id), []).append(o.id)
    quality = {a.id: rng.uniform(0.5, 1.6) for a in agencies}  # some agencies are slower
    popular = [rng.uniform(0.3, 3.0) for _ in agencies]
    taken = set(s.scalars(select(Complaint.tracking_code)))
    rows, plans = [], []
    for _ in range(complaints):
        code = new_code()
        while code in taken:  # codes are random: a large month draws some twice
            code = new_code()
        taken.add(code)
        pr, ag = rng.choice(provinces), rng.choices(agencies, popular)[0]
        at = _filed_at(rng, month)
        rows.append({"tracking_code": code, "created_at": at, "province_id": pr.id, "agency_id": ag.id,
                     "office_id": rng.choice(offices.get((ag.id, pr.id), [None])),
                     "indicator_id": rng.choices(indicators, (5, 4, 3, 3, 4, 3, 4)[:len(indicators)])[0].id,
                     "status": "forwarded", "sla_due_at": cal.add(at, 180)})
        plans.append(quality[ag.id])
    if not rows:
        return 0
    ids = s.scalars(insert(Complaint).returning(Complaint.id, sort_by_parameter_order=True), rows).all()
    events, actions, ratings, updates = [], [], [], []
    for cid, row, q in zip(ids, rows, plans):
        events.append({"complaint_id": cid, "at": row["created_at"], "kind": "filed", "status": "received", "actor": "ivr"})
        if rng.random() > 0.9:
            continue
        acked = cal.add(row["created_at"], rng.expovariate(1 / (35 * q)))
        events.append({"complaint_id": cid, "at": acked, "kind": "acknowledged", "status": "under_review",
                       "actor": "unit sim"})
        if rng.random() > 0.85:
            updates.append((cid, "under_review", None))
            continue
        done = cal.add(acked, rng.expovariate(1 / (110 * q)))
        outcome = rng.choices(OUTCOMES, OUTCOME_WEIGHTS)[0]
        events.append({"complaint_id": cid, "at": done, "kind": "resolved", "status": "resolved",
                       "actor": "unit sim", "note": None, "_outcome": outcome})
        updates.append((cid, "resolved", outcome))
        if rng.random() < 0.45:
            base = 4.2 if outcome != "not_confirmed" else 2.6
            ratings.append({"complaint_id": cid, "rating": max(1, min(5, round(rng.gauss(base / q ** 0.3, 0.9)))),
                            "at": done + dt.timedelta(days=rng.uniform(0.2, 3))})
    E = ComplaintEvent
    plain = [{k: v for k, v in e.items() if k != "_outcome"} | {"note": e.get("note")} for e in events]
    event_ids = s.scalars(insert(E).returning(E.id, sort_by_parameter_order=True), plain).all()
    actions = [{"event_id": eid, "complaint_id": e["complaint_id"], "unit_id": None,
                "outcome": e.get("_outcome"), "to_unit_id": None}
               for eid, e in zip(event_ids, events) if e["kind"] in ("acknowledged", "resolved")]
    if actions:
        s.execute(insert(UnitAction), actions)
    if ratings:
        s.execute(insert(ComplaintRating), ratings)
    C = Complaint.__table__
    for status in ("under_review", "resolved"):
        for outcome in (None, *OUTCOMES):
            batch = [cid for cid, st, oc in updates if st == status and oc == outcome]
            if batch:
                s.execute(C.update().where(C.c.id.in_(batch)).values(status=status, outcome=outcome))
    calls = [{"started_at": r["created_at"] - dt.timedelta(minutes=3), "province_id": r["province_id"],
              "outcome": "complaint_filed", "duration_s": rng.randint(90, 300)} for r in rows]
    for outcome, ratio in CALL_OUTCOMES.items():
        calls += [{"started_at": _filed_at(rng, month), "province_id": rng.choice(provinces).id,
                   "outcome": outcome, "duration_s": rng.randint(10, 200)} for _ in range(int(ratio * complaints))]
    s.execute(insert(CallRecord), calls)
    s.commit()
    return len(rows)
