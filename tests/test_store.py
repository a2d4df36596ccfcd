"""Storage on SQLite and PostgreSQL: migrations in step with the models, complaints, calls."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from complaints.filing import file_complaint
from db.engine import make_engine, make_sessionmaker
from migrations.run import drift
from db.models import CallRecord, Complaint, Province
from db.store import complaint_status, load_demo, load_reference, record_call
from common.anonymity import caller_hash, normalize_number, scrub
from ivr.events import ComplaintDraft
from common.keyring import code_hash
from ivr.reference import load_directory as directory
from common.tracking import CASE_ALPHABET

NOW = dt.datetime(2026, 11, 27, 8, 30, tzinfo=dt.timezone.utc)


def _session(settings):
    engine = make_engine(settings.db_url)
    return engine, make_sessionmaker(engine)()


def test_migrations_match_the_models(migrated):
    engine = make_engine(migrated.db_url)
    try:
        assert drift(engine) == []
    finally:
        engine.dispose()


def test_reference_data_31_provinces_3_active_and_demo_is_idempotent(migrated):
    engine, s = _session(migrated)
    with s:
        assert s.scalar(select(func.count()).select_from(Province)) == 31
        d = directory(s, dt.date(2026, 1, 1))
        assert d.active_provinces == {"28", "26", "21"}
        assert directory(s, dt.date(2025, 6, 1)).active_provinces == {"28"}
        assert load_demo(s) == (0, 0)
        load_reference(s)
        assert s.scalar(select(func.count()).select_from(Province)) == 31
    engine.dispose()


def test_file_complaint_stores_utc_times_office_hours_sla_and_first_event(migrated):
    engine, s = _session(migrated)
    h = code_hash(b"k", "1234567890")
    with s:
        c = file_complaint(s, ComplaintDraft("28", "101", "280101", "disrespect", None), NOW, 3, code_hash=h)
        number = c.case_number
        assert len(number) == 9 and number[4] == "-" and set(number) - {"-"} <= set(CASE_ALPHABET)
        back = s.scalar(select(Complaint).where(Complaint.case_number == number))
        s.refresh(back)
        assert back.created_at == NOW and back.created_at.tzinfo is not None
        # filed on a Friday noon in Tehran: the three hours are Saturday's first office hours
        assert back.sla_due_at == dt.datetime(2026, 11, 28, 6, 30, tzinfo=dt.timezone.utc)
        assert [e.kind for e in back.events] == ["filed"]
        assert complaint_status(s, h) == ("received", None, False)
        assert complaint_status(s, code_hash(b"k", "0000000000")) is None
    engine.dispose()


def test_call_records_keep_the_minute_and_nothing_of_the_caller(migrated):
    engine, s = _session(migrated)
    with s:
        record_call(s, NOW.replace(second=41, microsecond=5), "28", "complaint_filed", 95)
        record_call(s, NOW, None, "abandoned", 3)
        assert s.scalar(select(func.count()).select_from(CallRecord)) == 2
        assert set(s.scalars(select(CallRecord.started_at))) == {NOW.replace(second=0)}
        assert not {"caller_hash", "period"} & set(CallRecord.__table__.columns.keys())
    engine.dispose()


def test_numbers_in_every_spelling_hash_alike_and_rotate_by_period():
    key = b"k"
    spellings = ["09121234567", "+989121234567", "00989121234567", "9121234567",
                 "۰۹۱۲۱۲۳۴۵۶۷", "+98 912 123 4567"]
    assert {normalize_number(n) for n in spellings} == {"9121234567"}
    assert len({caller_hash(n, key, "2026-11") for n in spellings}) == 1
    assert caller_hash("09121234567", key, "2026-11") != caller_hash("09121234567", key, "2026-12")
    assert caller_hash("09121234567", key, "2026-11") != caller_hash("09121234567", b"other", "2026-11")
    assert caller_hash("unknown", key, "2026-11") is None


def test_scrub_keeps_nothing_identifying():
    headers = {"agi_callerid": "09121234567", "agi_calleridname": "علی رضایی",
               "agi_channel": "PJSIP/09121234567-00000001", "agi_uniqueid": "1795816935.1",
               "agi_rdnis": "02188887777", "agi_dnid": "128", "agi_threadid": "1",
               "agi_network_script": "favad", "agi_arg_1": "28", "agi_language": "en"}
    safe, h = scrub(headers, b"k", "2026-11")
    assert set(safe) == {"agi_network_script", "agi_arg_1", "agi_language"}
    assert h and "9121234567" not in h
