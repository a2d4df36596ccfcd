"""A unit's inbox as data (accountability/inbox.py) on both databases: what waits for a unit,
nearest deadline first on the office clock, what it resolved lately, and the inbox links
(issued, revoked, rotated out, never a complaint's link), with `favad web inbox-link|revoke`."""
from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys

import pytest
from sqlalchemy import select

from accountability import actions, inbox
from clock.calendar import load as load_calendar
from common import links
from complaints.filing import file_complaint
from db.engine import make_engine, make_sessionmaker
from db.models import Complaint
from dispatch import outbox
from dispatch.models import ComplaintRoute, InspectionUnit
from dispatch.units import load_demo_units
from ivr.events import ComplaintDraft
from tests.conftest import ROOT, favad_env

UTC = dt.timezone.utc
TEHRAN_1PM_SATURDAY = dt.datetime(2026, 11, 28, 9, 30, tzinfo=UTC)  # 13:00 in Tehran, offices open
KEY = "inbox-key-" + "c" * 40


@dataclasses.dataclass
class Units:
    Session: object
    calendar: object
    settings: object

    def file(self, at: dt.datetime, agency: str = "101", office: str | None = "280101") -> Complaint:
        with self.Session() as s:
            c = file_complaint(s, ComplaintDraft("28", agency, office, "disrespect", None), at, 3,
                               calendar=self.calendar)
            s.expunge(c)
            return c

    def unit(self, code: str) -> InspectionUnit:
        with self.Session() as s:
            u = s.scalar(select(InspectionUnit).where(InspectionUnit.code == code))
            s.expunge(u)
            return u


@pytest.fixture
def units(migrated):
    settings = dataclasses.replace(migrated, link_keys=KEY, public_url="https://128.example.ir")
    engine = make_engine(settings.db_url)
    Session = make_sessionmaker(engine)
    with Session() as s:
        load_demo_units(s)
    yield Units(Session, load_calendar(), settings)
    engine.dispose()


def _ago(office_hours: float) -> dt.datetime:
    return TEHRAN_1PM_SATURDAY - dt.timedelta(hours=office_hours)  # all within Saturday's hours


def test_a_unit_sees_its_open_complaints_nearest_deadline_first_on_the_office_clock(units):
    now = TEHRAN_1PM_SATURDAY
    fresh, older, late = units.file(_ago(0.5)), units.file(_ago(2.5)), units.file(_ago(4))
    other = units.file(_ago(3.5), agency="102", office="280102")  # hq-102's, not p28-101's
    closed = units.file(_ago(1))
    p28 = units.unit("p28-101")
    with units.Session() as s:
        actions.resolve(s, s.get(Complaint, closed.id), actions.Actor.unit(p28), "fixed_on_spot", "", now)
        s.commit()
        got = inbox.waiting(s, p28.id, units.calendar, now)
    assert [e.case_number for e in got] == [late.case_number, older.case_number, fresh.case_number]
    assert other.case_number not in {e.case_number for e in got}
    cal = units.calendar
    for e, c in zip(got, (late, older, fresh)):
        assert e.due_at == c.sla_due_at == cal.add(c.created_at, 180)  # the deadline filing stored
    # the same calendar's minutes: 13:00 -> Sunday 08:30 for the fresh one, one hour late for the oldest
    assert got[2].minutes_left == cal.minutes(now, fresh.sla_due_at) == 150
    assert got[1].minutes_left == 30 and not got[1].late
    assert got[0].minutes_left == -60 and got[0].late
    assert got[0].agency_fa and got[0].office_fa and got[0].indicator_fa and got[0].status == "received"
    assert inbox.clock_running(cal, now) and not inbox.clock_running(cal, now + dt.timedelta(hours=2))


def test_the_clock_stands_still_out_of_office_hours(units):
    cal, due = units.calendar, dt.datetime(2026, 11, 28, 10, 30, tzinfo=UTC)  # Saturday 14:00 Tehran
    friday_noon = dt.datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
    assert inbox.minutes_left(cal, due, friday_noon) == 7 * 60  # all of Saturday's hours
    after_closing = due + dt.timedelta(hours=5)
    assert inbox.minutes_left(cal, due, after_closing) < 0  # late, though no office minute passed
    assert inbox.minutes_left(cal, due, due + dt.timedelta(days=1)) == -7 * 60  # Sunday at 14:00


def test_the_escalation_office_sees_a_complaint_only_once_escalated_to_it(units):
    now = TEHRAN_1PM_SATURDAY
    c = units.file(_ago(2))
    gov, p28 = units.unit("gov-28"), units.unit("p28-101")
    with units.Session() as s:
        assert inbox.waiting(s, gov.id, units.calendar, now) == []
        assert inbox.find(s, gov.id, c.case_number) is None
        outbox.set_deadlines(s, dt.timedelta(hours=1), units.calendar)
        mine = inbox.waiting(s, p28.id, units.calendar, now)
        route = s.get(ComplaintRoute, c.id)
        assert mine[0].escalates_at == route.escalate_at == units.calendar.add(route.clock_from, 60)
        assert not mine[0].escalated
        assert outbox.escalate_due(s, now, dt.timedelta(hours=1), calendar=units.calendar) == 1
        theirs = inbox.waiting(s, gov.id, units.calendar, now)
        assert [e.case_number for e in theirs] == [c.case_number] and theirs[0].escalated_here
        assert inbox.find(s, gov.id, c.case_number.lower()).id == c.id
        mine = inbox.waiting(s, p28.id, units.calendar, now)
        assert mine[0].escalates_at is None and not mine[0].escalated_here and mine[0].escalated  # gone up
        kinds = [e.kind for e in inbox.history(s, c.id)]
        assert kinds[0] == "filed" and kinds[-1] == "escalated"


def test_resolved_ones_of_the_last_three_months_latest_first(units):
    now = TEHRAN_1PM_SATURDAY
    p28 = units.unit("p28-101")
    recent, old = units.file(now - dt.timedelta(days=20)), units.file(now - dt.timedelta(days=120))
    mid = units.file(now - dt.timedelta(days=60))
    with units.Session() as s:
        for c, days in ((recent, 19), (old, 119), (mid, 59)):
            actions.resolve(s, s.get(Complaint, c.id), actions.Actor.unit(p28), "written_warning", "done",
                            now - dt.timedelta(days=days))
        s.commit()
        got = inbox.resolved(s, p28.id, units.calendar, now)
        assert [e.case_number for e in got] == [recent.case_number, mid.case_number]
        assert got[0].resolved_at == now - dt.timedelta(days=19) and got[0].outcome == "written_warning"
        assert inbox.resolved(s, units.unit("hq-102").id, units.calendar, now) == []
        assert inbox.waiting(s, p28.id, units.calendar, now) == []


# ---- the links -------------------------------------------------------------------------------
def _token(url: str) -> str:
    assert url.startswith("https://128.example.ir/staff/inbox/")
    return url.rsplit("/", 1)[1]


def test_an_inbox_link_opens_its_unit_until_revoked_then_a_new_one_does(units):
    now, keys = TEHRAN_1PM_SATURDAY, [KEY.encode()]
    p28 = units.unit("p28-101")
    with units.Session() as s:
        first = _token(inbox.issue(s, units.settings, p28, now))
        second = _token(inbox.issue(s, units.settings, p28, now + dt.timedelta(minutes=1)))
        s.commit()
        assert inbox.open_link(s, keys, first, now).id == p28.id
        assert links.verify_inbox(keys, first, now).expires == now + dt.timedelta(days=180)
        assert inbox.revoke(s, p28, now) == 2
        s.commit()
        for token in (first, second):
            with pytest.raises(links.LinkError) as e:
                inbox.open_link(s, keys, token, now)
            assert e.value.code == "revoked"
        third = _token(inbox.issue(s, units.settings, p28, now))
        assert inbox.open_link(s, keys, third, now).id == p28.id
        with pytest.raises(links.LinkError) as e:
            inbox.open_link(s, keys, third, now + dt.timedelta(days=180))
        assert e.value.code == "expired"
        gone = s.get(InspectionUnit, p28.id)
        gone.active = False
        s.flush()
        with pytest.raises(links.LinkError) as e:
            inbox.open_link(s, keys, third, now)
        assert e.value.code == "revoked"


def test_a_complaint_link_never_opens_an_inbox_and_an_inbox_link_never_a_complaint(units):
    now, keys = TEHRAN_1PM_SATURDAY, [KEY.encode()]
    c, p28 = units.file(_ago(1)), units.unit("p28-101")
    with units.Session() as s:
        inbox.issue(s, units.settings, p28, now)
        s.commit()
        # the same numbers in both: a complaint link for complaint <unit id>, unit <generation 1>
        complaint_token = links.sign(keys[0], p28.id, 1, now + dt.timedelta(days=1))
        with pytest.raises(links.LinkError) as e:
            inbox.open_link(s, keys, complaint_token, now)
        assert e.value.code == "tampered"
        inbox_token = links.sign_inbox(keys[0], c.id, p28.id, now + dt.timedelta(days=1))
        with pytest.raises(links.LinkError) as e:
            links.verify(keys, inbox_token, now)
        assert e.value.code == "tampered"


def test_a_link_signed_with_a_retired_key_stops_like_a_complaint_link(units, tmp_path):
    settings = dataclasses.replace(units.settings, link_keys="", data_dir=str(tmp_path))
    now, p28 = TEHRAN_1PM_SATURDAY, units.unit("p28-101")
    with units.Session() as s:
        token = _token(inbox.issue(s, settings, p28, now))
        s.commit()
        for rotation in range(links.KEEP_KEYS):
            links.rotate(settings)
            assert inbox.open_link(s, links.keys(settings), token, now).id == p28.id  # still accepted
        links.rotate(settings)  # the key that signed it is retired now
        with pytest.raises(links.LinkError) as e:
            inbox.open_link(s, links.keys(settings), token, now)
        assert e.value.code == "tampered"


def _favad(settings, *args) -> subprocess.CompletedProcess:
    env = favad_env(settings, FAVAD_LINK_KEYS=KEY, FAVAD_PUBLIC_URL="https://128.example.ir")
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), "web", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=60)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_commands_print_a_link_revoke_it_and_refuse_unknown_units(units):
    out = _favad(units.settings, "inbox-link", "--unit", "p28-101")
    assert out.returncode == 0, out.stderr
    token = _token(out.stdout.strip())
    assert "180 days" in out.stderr and "Traceback" not in out.stderr
    now = dt.datetime.now(UTC)
    with units.Session() as s:
        assert inbox.open_link(s, [KEY.encode()], token, now).code == "p28-101"
    out = _favad(units.settings, "inbox-revoke", "--unit", "p28-101")
    assert out.returncode == 0 and "revoked" in out.stdout
    with units.Session() as s, pytest.raises(links.LinkError):
        inbox.open_link(s, [KEY.encode()], token, now)
    for args in (("inbox-link", "--unit", "nope"), ("inbox-revoke", "--unit", "nope")):
        out = _favad(units.settings, *args)
        assert out.returncode == 1 and "no inspection unit with code 'nope'" in out.stderr
        assert "Traceback" not in out.stderr and out.stdout == ""
    out = _favad(units.settings, "inbox-link")
    assert out.returncode == 2 and "--unit" in out.stderr
