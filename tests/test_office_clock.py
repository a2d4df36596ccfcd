"""One office clock: SMS to a unit waits for its next working hour and escalation counts its
working time, holidays and nights skipped (issue 18), on the packaged calendar."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import select

import clock
from clock import TEHRAN
from complaints.filing import file_complaint
from db.engine import make_engine, make_sessionmaker
from dispatch import outbox
from dispatch.models import ComplaintRoute, InspectionUnit, OutboxMessage
from dispatch.units import load_demo_units
from ivr.events import ComplaintDraft

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
HOURS = "sat-wed 08:00-14:00"  # the unit works neither Thursday nor Friday
# Wednesday 1404-11-22 (2026-02-11) is a holiday in clock/calendar.toml


def tehran(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TEHRAN).astimezone(dt.timezone.utc)


@pytest.fixture
def Session(migrated):
    engine = make_engine(migrated.db_url)
    Session = make_sessionmaker(engine)
    with Session() as s:
        load_demo_units(s)
        s.scalar(select(InspectionUnit).where(InspectionUnit.code == "p28-101")).hours = HOURS
        s.commit()
    yield Session
    engine.dispose()


def _file(Session, at: dt.datetime) -> int:
    with Session() as s:
        return file_complaint(s, ComplaintDraft("28", "101", "280101", "disrespect", None), at, 3).id


def test_the_clock_module_is_the_one_home_of_the_zone_and_today():
    import presentation

    assert presentation.TEHRAN is TEHRAN
    assert clock.today(tehran(2026, 2, 10, 23, 59)) == dt.date(2026, 2, 10)
    assert clock.today(dt.datetime(2026, 2, 10, 20, 31, tzinfo=dt.timezone.utc)) == dt.date(2026, 2, 11)
    assert clock.utcnow().tzinfo is dt.timezone.utc


@SQLITE_ONLY
def test_sms_to_a_unit_waits_past_the_night_and_the_holiday_email_goes_at_once(Session):
    filed = tehran(2026, 2, 10, 22, 0)  # Tuesday night; Wednesday is a holiday
    cid = _file(Session, filed)
    with Session() as s:
        msgs = {m.channel: m.next_attempt_at for m in s.scalars(
            select(OutboxMessage).where(OutboxMessage.complaint_id == cid))}
        clock_from = s.get(ComplaintRoute, cid).clock_from
    assert msgs == {"email": filed, "sms": tehran(2026, 2, 14, 8, 0)}  # Saturday morning
    assert clock_from == tehran(2026, 2, 14, 8, 0)  # nor does the escalation clock start before


@SQLITE_ONLY
def test_escalation_counts_working_time_across_a_night_and_a_holiday(Session, migrated):
    cid = _file(Session, tehran(2026, 2, 10, 13, 30))  # 30 working minutes left on Tuesday
    after = dt.timedelta(hours=1)
    with Session() as s:
        # an hour of wall time later the unit has worked 30 minutes: not yet
        assert outbox.escalate_due(s, tehran(2026, 2, 10, 14, 31), after) == 0
        assert s.get(ComplaintRoute, cid).escalate_at == tehran(2026, 2, 14, 8, 30)
        # the holiday, Thursday and Friday count nothing
        assert outbox.escalate_due(s, tehran(2026, 2, 13, 23, 0), after) == 0
        assert outbox.escalate_due(s, tehran(2026, 2, 14, 8, 29), after) == 0
        assert outbox.escalate_due(s, tehran(2026, 2, 14, 8, 31), after) == 1
        assert outbox.escalate_due(s, tehran(2026, 2, 14, 9, 0), after) == 0  # once
        sms = s.scalar(select(OutboxMessage).where(OutboxMessage.complaint_id == cid,
                                                   OutboxMessage.kind == "escalation",
                                                   OutboxMessage.channel == "sms"))
        assert sms is not None


@SQLITE_ONLY
def test_a_reassignment_restarts_the_escalation_clock_at_the_new_units_opening(Session):
    from accountability.actions import Actor, reassign
    from db.models import Complaint

    cid = _file(Session, tehran(2026, 2, 10, 9, 0))
    with Session() as s:
        outbox.escalate_due(s, tehran(2026, 2, 10, 9, 1), dt.timedelta(hours=1))
        assert s.get(ComplaintRoute, cid).escalate_at == tehran(2026, 2, 10, 10, 0)
        to = s.scalar(select(InspectionUnit).where(InspectionUnit.code == "hq-101"))
        to.hours = HOURS
        reassign(s, s.get(Complaint, cid), Actor.staff("admin"), to, "wrong office", tehran(2026, 2, 10, 20, 0))
        s.commit()
        route = s.get(ComplaintRoute, cid)
        assert (route.clock_from, route.escalate_at) == (tehran(2026, 2, 14, 8, 0), None)
        outbox.escalate_due(s, tehran(2026, 2, 10, 20, 1), dt.timedelta(hours=1))
        s.expire_all()  # the deadline is written with Core
        assert s.get(ComplaintRoute, cid).escalate_at == tehran(2026, 2, 14, 9, 0)
