"""What is due to be deleted, and deleting it: one small function per kind.

``plan`` lists everything due at ``now`` and touches nothing; ``apply`` deletes what a plan
lists, each item checked again as it goes, and returns a plan of what it did delete, so a dry
run and the real run that follows print the same summary.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from config import Settings
from db.models import CallerCount, Complaint, ComplaintEvent
from complaints.callers import forget_month
from common.keyring import month_of

log = logging.getLogger(__name__)
ACTOR = "retention"
TEMP_MAX_AGE = dt.timedelta(days=1)  # a journal write takes milliseconds: older is a crash's leftover


@dataclass(frozen=True)
class Recording:
    complaint_id: int
    case_number: str
    path: str


@dataclass(frozen=True)
class Month:
    period: str  # YYYY-MM
    counts: int  # caller_counts rows made with its key
    key: bool  # its key file is still here


@dataclass
class Plan:
    recordings: list[Recording] = field(default_factory=list)
    months: list[Month] = field(default_factory=list)
    temp_files: list[Path] = field(default_factory=list)

    def summary(self) -> dict:
        """Counts per kind, the case numbers of the recordings and the months: never a code or hash."""
        return {"recordings": len(self.recordings),
                "recording_cases": sorted(r.case_number for r in self.recordings),
                "caller_months": [m.period for m in self.months],
                "caller_counts": sum(m.counts for m in self.months),
                "caller_keys": sum(m.key for m in self.months),
                "journal_temp_files": len(self.temp_files)}


def plan(settings: Settings, s: Session, now: dt.datetime) -> Plan:
    """Everything due at ``now``; nothing is changed."""
    return Plan(due_recordings(settings, s, now), due_months(settings, s, now),
                due_temp_files(settings, now))


def apply(settings: Settings, s: Session, due: Plan, now: dt.datetime) -> Plan:
    """Delete what ``due`` lists; what was deleted. Commits."""
    return Plan(delete_recordings(settings, s, due.recordings, now), forget_months(settings, s, due.months, now),
                delete_temp_files(due.temp_files, now))


# ---- recordings, N days after their complaint was resolved ------------------------------------
def due_recordings(settings: Settings, s: Session, now: dt.datetime) -> list[Recording]:
    cutoff = now - dt.timedelta(days=settings.retention_recording_days)
    q = (select(Complaint.id, Complaint.case_number, Complaint.recording_path)
         .join(ComplaintEvent, (ComplaintEvent.complaint_id == Complaint.id) & (ComplaintEvent.kind == "resolved"))
         .where(Complaint.status == "resolved", Complaint.recording_path.is_not(None))
         .group_by(Complaint.id, Complaint.case_number, Complaint.recording_path)
         .having(func.max(ComplaintEvent.at) <= cutoff).order_by(Complaint.id))
    return [Recording(*row) for row in s.execute(q)]


def _local(settings: Settings, path: str) -> Path:
    # only ever a file in our recordings folder: the stored path is Asterisk's, possibly on
    # another host, and a row must never name a file anywhere else for us to delete
    return settings.recordings_path / Path(path).name


def delete_recordings(settings: Settings, s: Session, due: list[Recording], now: dt.datetime) -> list[Recording]:
    """Delete each file (one already gone is fine), then forget its path and say so in the
    complaint's history; the status stays."""
    done = []
    for r in due:
        try:
            os.unlink(_local(settings, r.path))
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("retention: could not delete the recording of %s (%s)", r.case_number, e.strerror)
            continue
        status = s.scalar(update(Complaint).where(Complaint.id == r.complaint_id, Complaint.recording_path == r.path)
                          .values(recording_path=None).returning(Complaint.status))
        if status is None:  # changed meanwhile: another run took it
            continue
        s.add(ComplaintEvent(complaint_id=r.complaint_id, at=now, kind="recording_deleted", status=status,
                             actor=ACTOR, note=None))
        done.append(r)
    s.commit()
    return done


# ---- caller counts, with their month's key ----------------------------------------------------
def due_months(settings: Settings, s: Session, now: dt.datetime) -> list[Month]:
    """Months whose key is due to go (the month and the grace are over), and any such month
    whose counts are still stored though its key is gone or was never on this host."""
    last = month_of(now - dt.timedelta(days=settings.key_grace_days))  # months before this are over
    keys = set(settings.keyring().expired(now))
    counts = dict(s.execute(select(CallerCount.period, func.count()).where(CallerCount.period < last)
                            .group_by(CallerCount.period)).tuples().all())
    return [Month(p, counts.get(p, 0), p in keys) for p in sorted(keys | counts.keys())]


def forget_months(settings: Settings, s: Session, due: list[Month], now: dt.datetime) -> list[Month]:
    """The counts first (committed), then the key: a key is never gone while its counts stay
    readable under a month that could be re-keyed."""
    keyring = settings.keyring()
    done = []
    for m in due:
        n = forget_month(s, m.period)
        s.commit()
        keyring.forget(m.period)
        done.append(Month(m.period, n, m.key))
    # forgetting a month makes the next one's key (the ratchet goes on); if nobody called in
    # that month its key is due as soon as it exists, and it has nothing to count: it goes too
    planned = {m.period for m in due}
    while extra := [p for p in keyring.expired(now) if p not in planned]:
        for p in extra:
            keyring.forget(p)
            planned.add(p)
    return done


# ---- the journal's leftovers ------------------------------------------------------------------
def _journal_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "journal"


def due_temp_files(settings: Settings, now: dt.datetime) -> list[Path]:
    """Temporary files of journal writes a crash interrupted, older than a day. Entries
    (``*.json``) are never due: they are complaints not yet stored, and replay removes them."""
    folder = _journal_dir(settings)
    if not folder.is_dir():
        return []
    cutoff = (now - TEMP_MAX_AGE).timestamp()
    return sorted(p for p in folder.glob(".*.tmp") if _mtime(p) is not None and _mtime(p) <= cutoff)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


def delete_temp_files(due: list[Path], now: dt.datetime) -> list[Path]:
    done = []
    for p in due:
        try:
            p.unlink()
        except FileNotFoundError:
            continue
        except OSError as e:
            log.warning("retention: could not delete a journal temp file (%s)", e.strerror)
            continue
        done.append(p)
    return done
