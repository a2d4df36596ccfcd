"""The writes and reads the call flow and the CLI need; each takes a Session, none commits
unless its docstring says so. Filing a complaint is complaints/filing.py's (above db/)."""
from __future__ import annotations

import datetime as dt
import logging
import tomllib
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from db.models import Agency, CallRecord, Complaint, ComplaintRating, Indicator, Office, Province

HERE = Path(__file__).parent
log = logging.getLogger(__name__)


def _toml(name: str) -> dict:
    return tomllib.loads((HERE / name).read_text(encoding="utf-8"))


def load_reference(s: Session) -> None:
    """Insert missing provinces and indicators; existing activation dates are kept. Commits."""
    data = _toml("reference.toml")
    have = {p.area_code: p for p in s.scalars(select(Province))}
    for row in data["province"]:
        if row["area_code"] not in have:
            s.add(Province(**row))
    have_ind = {i.id: i for i in s.scalars(select(Indicator))}
    for row in data["indicator"]:
        if row["id"] in have_ind:
            for k, v in row.items():
                setattr(have_ind[row["id"]], k, v)
        else:
            s.add(Indicator(**row))
    s.commit()


def load_demo(s: Session) -> tuple[int, int]:
    """Insert the demo agencies and offices that are missing; (agencies, offices) added. Commits."""
    load_reference(s)
    data = _toml("demo.toml")
    agencies = {a.code: a for a in s.scalars(select(Agency))}
    added_a = added_o = 0
    for row in data["agency"]:
        if row["code"] not in agencies:
            agencies[row["code"]] = Agency(**row)
            s.add(agencies[row["code"]])
            added_a += 1
    s.flush()
    provinces = {p.area_code: p for p in s.scalars(select(Province))}
    offices = set(s.scalars(select(Office.code)))
    for row in data["office"]:
        if row["code"] in offices:
            continue
        s.add(Office(code=row["code"], name_fa=row["name_fa"], city_fa=row["city_fa"],
                     agency=agencies[row["agency"]], province=provinces[row["province"]]))
        added_o += 1
    s.commit()
    return added_a, added_o


def reference_ids(s: Session) -> dict[tuple[str, str], int]:
    """(kind, code) -> id for provinces, agencies, offices and indicators: looked up once,
    not in every call's transaction."""
    ids: dict[tuple[str, str], int] = {}
    for kind, model, col in (("province", Province, Province.area_code), ("agency", Agency, Agency.code),
                             ("office", Office, Office.code), ("indicator", Indicator, Indicator.code)):
        ids.update({(kind, code): id_ for id_, code in s.execute(select(model.id, col))})
    return ids


def undisguised_recordings(s: Session) -> frozenset[str]:
    """Recordings of complaints filed before voices were disguised (ivr/voice.py)."""
    return frozenset(s.scalars(select(Complaint.recording_path).where(
        Complaint.recording_path.is_not(None), Complaint.recording_path.not_like("%.v.wav"))))


def complaint_status(s: Session, code_hash: str) -> tuple[str, str | None, bool] | None:
    """(status, outcome, rated already) of the complaint a caller's code hash names, or None."""
    row = s.execute(select(Complaint.status, Complaint.outcome, ComplaintRating.id)
                    .outerjoin(ComplaintRating, ComplaintRating.complaint_id == Complaint.id)
                    .where(Complaint.code_hash == code_hash)).first()
    return (row[0], row[1], row[2] is not None) if row else None


def add_rating(s: Session, code_hash: str, rating: int, now: dt.datetime) -> bool:
    """Keep the first rating of a complaint; False if it was rated already. No commit."""
    complaint_id = s.scalar(select(Complaint.id).where(Complaint.code_hash == code_hash))
    if complaint_id is None or s.scalar(select(ComplaintRating.id)
                                        .where(ComplaintRating.complaint_id == complaint_id)):
        return False
    s.add(ComplaintRating(complaint_id=complaint_id, rating=rating, at=now))
    s.flush()
    return True


def add_call_record(s: Session, started_at: dt.datetime, province_code: str | None, outcome: str,
                    duration_s: int, ids: dict | None = None) -> None:
    """The call's anonymous record; no commit."""
    add_call_records(s, [{"started_at": started_at, "province_code": province_code, "outcome": outcome,
                          "duration_s": duration_s}], reference_ids(s) if ids is None else ids)


def add_call_records(s: Session, calls: list[dict], ids: dict) -> None:
    """Many calls' records in one statement (Core; runs for every call, on the writer thread).
    The start is kept to the minute: the complaint keeps its exact time, and a call record must
    not single out which call of its minute filed it."""
    if not calls:
        return
    s.connection().execute(insert(CallRecord.__table__), [
        {"started_at": c["started_at"].replace(second=0, microsecond=0), "outcome": c["outcome"],
         "duration_s": c["duration_s"], "province_id": ids.get(("province", c["province_code"])),
         "language": c.get("language")}
        for c in calls])


def record_call(s: Session, *args) -> None:
    """``add_call_record`` and commit."""
    add_call_record(s, *args)
    s.commit()
