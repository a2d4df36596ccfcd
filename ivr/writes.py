"""What the group writer (db/writer.py) does with the IVR's jobs: complaints, ratings and call
records, as the backend queues them and the journal keeps them (plain JSON-ready dicts).

A batch goes in through ``batch``: the complaints of the whole batch in one ``filing.write``;
one job at a time through ``one``, the careful path, which tells a replayed complaint from a
new one. Both take their ids and routes from the one reference cache (ivr/reference.py).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.orm import Session

from complaints import filing
from db import store
from ivr.events import ComplaintDraft
from ivr.reference import Reference
from common.tracking import new_code

KINDS = ("complaint", "rating", "call")


class Writes:
    def __init__(self, reference: Reference, calendar, sla_hours: float, code_hash: Callable[[str], str]):
        self.reference = reference
        self.calendar = calendar
        self.sla_hours = sla_hours
        self.code_hash = code_hash

    def one(self, s: Session, kind: str, entry: dict):
        """Add one job to the writer's transaction, carefully: a replayed complaint stored
        already is found, not stored twice. A complaint's result is its code hash."""
        if kind == "complaint":
            try:
                c = self._complaint(entry, self.reference.ids(s))
            except LookupError:  # added since the cache was loaded, or gone: look again
                c = self._complaint(entry, self.reference.ids(s, reload=True), office_gone_ok=True)
            redraw = (lambda: self._redraw(entry)) if "code" in entry else None
            return filing.file_one(s, c, self._plan(s), redraw)[1]
        if kind == "rating":
            return store.add_rating(s, entry["code_hash"], entry["rating"], dt.datetime.fromisoformat(entry["at"]))
        if kind == "call":
            return store.add_call_records(s, [_call_row(entry)], self.reference.ids(s))
        raise ValueError(f"not a journal kind: {kind!r}")

    def batch(self, s: Session, jobs: list[tuple[str, dict]]) -> list:
        """A whole batch in a few multi-row statements: what every call's writes go through.
        Raises IntegrityError if any complaint's code is taken (the writer then goes careful)."""
        ids = self.reference.ids(s)
        results: list = [None] * len(jobs)
        fresh: list[tuple[int, dict, filing.NewComplaint]] = []
        calls = []
        for i, (kind, entry) in enumerate(jobs):
            try:
                if kind == "complaint":
                    try:
                        fresh.append((i, entry, self._complaint(entry, ids)))
                    except LookupError:  # not in the cache: the careful path looks again
                        results[i] = self.one(s, kind, entry)
                elif kind == "call":
                    calls.append(_call_row(entry))
                else:
                    results[i] = self.one(s, kind, entry)
            except (LookupError, TypeError, ValueError) as e:
                # refused before any write (reference data gone for good, or a malformed journal
                # entry): this job alone fails, not the callers batched with it
                results[i] = e
        filing.write(s, [c for _, _, c in fresh], self._plan(s))
        for i, entry, _ in fresh:
            results[i] = entry["code_hash"]
        store.add_call_records(s, calls, ids)
        return results

    def _complaint(self, entry: dict, ids: dict, office_gone_ok: bool = False) -> filing.NewComplaint:
        created = dt.datetime.fromisoformat(entry["created_at"])
        return filing.new_complaint(ComplaintDraft(**entry["draft"]), created,
                                    filing.sla_due(self.calendar, created, self.sla_hours),
                                    entry["code_hash"], entry["case_number"], ids, office_gone_ok)

    def _plan(self, s: Session) -> filing.PlanFor:
        return lambda agency_id, province_id: self.reference.plan(s, agency_id, province_id)

    def _redraw(self, entry: dict) -> str:
        """Another code for a caller still on the line whose code's hash is taken."""
        entry["code"] = new_code()
        entry["code_hash"] = self.code_hash(entry["code"])
        return entry["code_hash"]


def _call_row(entry: dict) -> dict:
    return {**entry, "started_at": dt.datetime.fromisoformat(entry["started_at"])}
