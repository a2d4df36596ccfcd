"""The group writer's fast path (a batch in a few multi-row INSERTs, cached routes) stores what
the careful path stores, and falls back to it for replays and taken codes: exactly once."""
from __future__ import annotations

import dataclasses
import datetime as dt
from concurrent.futures import Future

from sqlalchemy import func, select

from db.models import CallerCount, CallRecord, Complaint, ComplaintEvent
from dispatch.models import ComplaintRoute, OutboxMessage
from dispatch.units import load_demo_units
from ivr.events import ComplaintDraft
from common.keyring import code_hash
from common.tracking import new_case_number, new_code

AT = dt.datetime(2026, 11, 28, 6, 0, tzinfo=dt.timezone.utc)
DRAFTS = [
    ComplaintDraft("28", "101", "280101", "disrespect", None),  # a headquarters unit
    ComplaintDraft("28", "112", None, "employee_absent", "/rec/x.wav"),  # no agency unit: escalation, flagged
    ComplaintDraft("21", "103", None, "late_start_early_end", None),
]


def entry(draft: ComplaintDraft, code: str | None = None, at: dt.datetime = AT) -> dict:
    """A writer job as the backend makes it: the code itself only for a caller on the line."""
    code = code or new_code()
    return {"draft": dataclasses.asdict(draft), "created_at": at.isoformat(),
            "code_hash": code_hash(b"test", code), "case_number": new_case_number(), "code": code}


def stored(backend, code_hash: str) -> tuple:
    """Everything stored for one complaint, without ids, its case number or its code."""
    with backend.Session() as s:
        c = s.scalars(select(Complaint).where(Complaint.code_hash == code_hash)).one()
        events = s.execute(select(ComplaintEvent.at, ComplaintEvent.kind, ComplaintEvent.status,
                                  ComplaintEvent.actor, ComplaintEvent.note)
                           .where(ComplaintEvent.complaint_id == c.id)).all()
        route = s.execute(select(ComplaintRoute.unit_id, ComplaintRoute.escalation_unit_id,
                                 ComplaintRoute.flag, ComplaintRoute.clock_from)
                          .where(ComplaintRoute.complaint_id == c.id)).one()
        M = OutboxMessage
        messages = sorted(s.execute(select(M.unit_id, M.kind, M.channel, M.recipient, M.status, M.tries,
                                           M.created_at, M.next_attempt_at)
                                    .where(M.complaint_id == c.id)).all())
        complaint = (c.created_at, c.province_id, c.agency_id, c.office_id, c.indicator_id, c.status,
                     c.outcome, c.recording_path, c.sla_due_at)
        return complaint, events, route, messages


def count(backend, model) -> int:
    with backend.Session() as s:
        return s.scalar(select(func.count()).select_from(model))


def commit(backend, jobs: list[tuple[str, dict]]) -> list:
    """Hand the writer one batch, as its thread would, and return what each waiter got."""
    batch = [(kind, e, Future()) for kind, e in jobs]
    backend.writer._commit(batch)
    return [f.result(5) for _, _, f in batch]


def test_the_fast_path_stores_what_the_careful_path_stores(backend):
    with backend.Session() as s:
        assert load_demo_units(s) > 0
    fast = commit(backend, [("complaint", entry(d)) for d in DRAFTS])
    careful = []
    for d in DRAFTS:
        with backend.Session() as s:
            careful.append(backend.writes.one(s, "complaint", entry(d)))
            s.commit()
    assert len(set(fast + careful)) == 6
    for f, c in zip(fast, careful):
        assert stored(backend, f) == stored(backend, c)
    complaint, events, route, messages = stored(backend, fast[1])
    assert route[2] == "no_agency_unit" and messages  # the escalation office got it, flagged
    assert [e[1] for e in events] == ["filed"]


def test_a_replayed_complaint_in_a_batch_is_stored_once_and_the_rest_go_in(backend):
    first = entry(DRAFTS[0])
    assert commit(backend, [("complaint", first)]) == [first["code_hash"]]
    # the journal replays `first` (it was stored before the crash) while new calls file
    others = [entry(d) for d in DRAFTS[1:]]
    codes = commit(backend, [("complaint", others[0]), ("complaint", first), ("complaint", others[1])])
    assert codes == [others[0]["code_hash"], first["code_hash"], others[1]["code_hash"]]
    assert count(backend, Complaint) == 3
    assert count(backend, ComplaintEvent) == 3 and count(backend, ComplaintRoute) == 3


def test_a_taken_code_is_drawn_again_not_lost(backend):
    taken = entry(DRAFTS[0])
    commit(backend, [("complaint", taken)])
    clash = entry(DRAFTS[2], code=taken["code"], at=AT + dt.timedelta(minutes=5))
    fresh = entry(DRAFTS[1])
    codes = commit(backend, [("complaint", fresh), ("complaint", clash)])
    assert codes[0] == fresh["code_hash"] and codes[1] != taken["code_hash"]
    # the caller on the line hears the new code, whose hash is the one stored
    assert clash["code"] != taken["code"] and codes[1] == backend.code_hash(clash["code"])
    assert count(backend, Complaint) == 3
    assert stored(backend, codes[1])[0][0] == AT + dt.timedelta(minutes=5)


def test_calls_in_a_batch_are_recorded_without_the_caller(backend):
    def call(outcome):
        return ("call", {"started_at": AT.isoformat(), "province_code": "28", "outcome": outcome,
                         "duration_s": 30})

    commit(backend, [call("complaint_filed"), call("out_of_scope"), call("abandoned")])
    commit(backend, [call("complaint_filed"), ("complaint", entry(DRAFTS[0]))])
    assert count(backend, CallRecord) == 4
    with backend.Session() as s:
        assert s.scalar(select(func.count()).select_from(CallerCount)) == 0


def test_routes_follow_a_unit_import_once_the_cache_expires(backend, monkeypatch):
    code = commit(backend, [("complaint", entry(DRAFTS[1]))])[0]
    assert stored(backend, code)[2][2] == "unrouted"  # no units at all yet
    with backend.Session() as s:
        load_demo_units(s)
    backend.reference.expire()  # as its TTL later
    code = commit(backend, [("complaint", entry(DRAFTS[1]))])[0]
    assert stored(backend, code)[2][2] == "no_agency_unit"


def test_a_complaint_about_a_vanished_office_is_filed_against_its_agency_and_province(backend):
    gone = ComplaintDraft("28", "101", "289999", "disrespect", None)  # no such office (any more)
    batch = [("complaint", entry(DRAFTS[0])), ("complaint", entry(gone)), ("complaint", entry(DRAFTS[2]))]
    assert commit(backend, batch) == [e["code_hash"] for _, e in batch]
    complaint, events, route, _ = stored(backend, batch[1][1]["code_hash"])
    assert complaint[1:4] == stored(backend, batch[0][1]["code_hash"])[0][1:3] + (None,)  # province, agency
    assert [(e.kind, e.note) for e in events] == [
        ("filed", "office 289999 no longer exists: filed against its agency and province")]
    assert count(backend, Complaint) == 3


def test_a_complaint_about_a_vanished_agency_fails_alone(backend):
    gone = ComplaintDraft("28", "999", None, "disrespect", None)
    batch = [("complaint", entry(DRAFTS[0])), ("complaint", entry(gone)), ("complaint", entry(DRAFTS[2]))]
    futures = [(kind, e, Future()) for kind, e in batch]
    backend.writer._commit(futures)
    assert isinstance(futures[1][2].exception(5), LookupError)
    assert [f.result(5) for _, _, f in (futures[0], futures[2])] == [batch[0][1]["code_hash"], batch[2][1]["code_hash"]]
    assert count(backend, Complaint) == 2


def test_an_office_added_after_the_cache_was_loaded_is_found_not_dropped(backend):
    from db.models import Agency, Office, Province

    with backend.Session() as s:
        agency_id = s.scalar(select(Agency.id).where(Agency.code == "101"))
        province_id = s.scalar(select(Province.id).where(Province.area_code == "28"))
        s.add(Office(code="280199", name_fa="-", city_fa="-", agency_id=agency_id, province_id=province_id))
        s.commit()
        office_id = s.scalar(select(Office.id).where(Office.code == "280199"))
    (code,) = commit(backend, [("complaint", entry(ComplaintDraft("28", "101", "280199", "disrespect", None)))])
    complaint, events, _, _ = stored(backend, code)
    assert complaint[3] == office_id and events[0].note is None


def test_a_malformed_replayed_entry_fails_alone_and_the_callers_beside_it_are_stored(backend):
    good = [entry(DRAFTS[0]), entry(DRAFTS[2])]
    bad_time = {**entry(DRAFTS[1]), "created_at": "yesterday"}
    bad_draft = {**entry(DRAFTS[1]), "draft": {"province": "28"}}
    bad_call = {"started_at": None, "province_code": "28", "outcome": "abandoned", "duration_s": 1}
    batch = [("complaint", good[0]), ("complaint", bad_time), ("complaint", bad_draft), ("call", bad_call),
             ("complaint", good[1])]
    futures = [(kind, e, Future()) for kind, e in batch]
    backend.writer._commit(futures)
    assert isinstance(futures[1][2].exception(5), ValueError)
    assert isinstance(futures[2][2].exception(5), TypeError)
    assert isinstance(futures[3][2].exception(5), TypeError)
    assert [futures[i][2].result(5) for i in (0, 4)] == [g["code_hash"] for g in good]
    assert count(backend, Complaint) == 2
