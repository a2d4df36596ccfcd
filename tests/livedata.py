"""Complaints and calls in three provinces and six agencies, for the supervisors' dashboard
tests: who should see what is known from the seed itself, not from the code under test."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update

from accountability.actions import Actor, resolve
from complaints.filing import file_complaint
from db.models import CallRecord, Complaint, Province
from dispatch.models import ComplaintRoute
from dispatch.units import load_demo_units
from ivr.events import ComplaintDraft

# (province area code, agency code, office code, indicator, minutes before now, what happened)
PLAN = [
    ("28", "101", "280101", "disrespect", 30, "overdue"),
    ("28", "101", "280101", "employee_absent", 60, "late_ack"),
    ("28", "101", "280101", "disrespect", 90, "resolved"),
    ("28", "102", "280102", "work_postponed", 120, ""),
    ("28", "105", "280105", "disrespect", 150, "overdue"),
    ("26", "101", "260101", "late_start_early_end", 40, "late_ack"),
    ("26", "104", "260104", "disrespect", 70, ""),
    ("26", "110", "260110", "equipment_out_of_order", 100, "resolved"),
    ("21", "101", "210101", "disrespect", 50, "overdue"),
    ("21", "103", "210103", "employee_absent", 80, ""),
    ("21", "108", "210108", "disrespect", 110, "late_ack"),
]
# (province area code, outcome, how many): calls carry a province, never an agency
CALLS = [("28", "complaint_filed", 5), ("28", "out_of_scope", 3), ("26", "complaint_filed", 3),
         ("26", "abandoned", 2), ("21", "complaint_filed", 3), ("21", "operator", 1)]


@dataclass(frozen=True)
class Seeded:
    case_number: str
    code_hash: str
    province: str
    agency: str
    office: str
    what: str


def seed(Session, now: dt.datetime) -> list[Seeded]:
    """File PLAN's complaints (a few minutes to hours before ``now``), then make some overdue,
    some late to be acknowledged, some resolved; and the calls. Commits."""
    out = []
    with Session() as s:
        load_demo_units(s)
        provinces = {p.area_code: p.id for p in s.scalars(select(Province))}
        for province, agency, office, indicator, minutes, what in PLAN:
            at = now - dt.timedelta(minutes=minutes)
            c = file_complaint(s, ComplaintDraft(province, agency, office, indicator, None), at, 3)
            if what == "overdue":
                s.execute(update(Complaint).where(Complaint.id == c.id).values(sla_due_at=now - dt.timedelta(minutes=5)))
            elif what == "late_ack":
                s.execute(update(ComplaintRoute).where(ComplaintRoute.complaint_id == c.id)
                          .values(escalate_at=now - dt.timedelta(minutes=5)))
            elif what == "resolved":
                resolve(s, c, Actor.staff("seed"), "written_warning", "", at + dt.timedelta(minutes=10))
            s.commit()
            out.append(Seeded(c.case_number, c.code_hash, province, agency, office, what))
        for province, outcome, n in CALLS:
            s.add_all(CallRecord(started_at=now - dt.timedelta(minutes=20), province_id=provinces[province],
                                 outcome=outcome, duration_s=40, language="fa") for _ in range(n))
        s.commit()
    return out


def calls(province: str | None = None) -> dict[str, int]:
    """The seeded calls per outcome, in one province or all."""
    out: dict[str, int] = {}
    for p, outcome, n in CALLS:
        if province is None or p == province:
            out[outcome] = out.get(outcome, 0) + n
    return out
