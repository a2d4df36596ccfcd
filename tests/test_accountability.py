"""Office time across a night, a weekend and a holiday; the unit actions as append-only events
on both databases; `favad complaints ack|resolve|reassign`."""
from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from accountability import actions
from clock.calendar import CalendarError, load, parse
from accountability.figures import MET, MISSED, PENDING, clocks, p90, share, timeline
from accountability.commands import os_user
from accountability.models import UnitAction
from db.engine import make_engine, make_sessionmaker
from db.models import Complaint, ComplaintEvent
from complaints.filing import file_complaint
from dispatch.models import ComplaintRoute, InspectionUnit, OutboxMessage
from dispatch.units import load_demo_units
from ivr.events import ComplaintDraft
from clock import TEHRAN

# 1404-07-21 (Monday 13 October 2025) is a holiday in this calendar; the week is Sat-Wed 07-14
CALENDAR = parse('hours = "sat-wed 07:00-14:00"\n[holidays]\n"1404-07-21" = "test holiday"\n')


def tehran(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TEHRAN)


# ---- office time, by hand -------------------------------------------------------------------
@pytest.mark.parametrize("start, end, minutes", [
    (tehran(2025, 10, 11, 9, 0), tehran(2025, 10, 11, 10, 30), 90),      # same morning
    (tehran(2025, 10, 11, 13, 30), tehran(2025, 10, 12, 8, 30), 30 + 90),  # across a night
    (tehran(2025, 10, 15, 13, 0), tehran(2025, 10, 18, 8, 0), 60 + 60),    # Wed -> Sat: Thu, Fri off
    (tehran(2025, 10, 12, 13, 0), tehran(2025, 10, 14, 9, 0), 60 + 120),   # Sun -> Tue over Monday's holiday
    (tehran(2025, 10, 14, 20, 0), tehran(2025, 10, 15, 7, 30), 30),        # filed at night: clock starts at 07:00
    (tehran(2025, 10, 16, 10, 0), tehran(2025, 10, 17, 12, 0), 0),         # all within a weekend
    (tehran(2025, 10, 11, 10, 0), tehran(2025, 10, 11, 9, 0), 0),          # backwards
    (tehran(2025, 10, 11, 7, 0), tehran(2025, 10, 18, 7, 0), 4 * 420),     # a week with a holiday
])
def test_office_minutes_count_only_open_hours(start, end, minutes):
    assert CALENDAR.minutes(start, end) == minutes


def test_deadlines_are_three_office_hours_later_skipping_nights_weekends_and_holidays():
    def due(*start):
        return CALENDAR.add(tehran(*start), 180).astimezone(TEHRAN).replace(tzinfo=None)

    assert due(2025, 10, 11, 9, 0) == dt.datetime(2025, 10, 11, 12, 0)
    assert due(2025, 10, 11, 13, 0) == dt.datetime(2025, 10, 12, 9, 0)     # night
    assert due(2025, 10, 15, 12, 30) == dt.datetime(2025, 10, 18, 8, 30)   # weekend
    assert due(2025, 10, 12, 13, 0) == dt.datetime(2025, 10, 14, 9, 0)     # holiday
    assert due(2025, 10, 16, 22, 0) == dt.datetime(2025, 10, 18, 10, 0)    # filed on Thursday night
    assert CALENDAR.add(tehran(2025, 10, 11, 9, 0), 0) == tehran(2025, 10, 11, 9, 0)


def test_the_packaged_calendar_loads_and_bad_files_say_what_to_fix(tmp_path):
    cal = load()
    assert cal.spec == "sat-wed 07:00-14:00" and dt.date(2025, 3, 21) in cal.holidays  # 1404-01-01
    for text, words in (("hours = 'mon-fri 9-17'", "cannot read working hours"),
                        ('[holidays]\n"1404-13-01" = "x"', "not a date"),
                        ("colour = 1", "unknown key"),
                        ("hours = ", "not valid TOML")):
        with pytest.raises(CalendarError, match=words):
            parse(text)
    with pytest.raises(CalendarError, match="not found"):
        load(str(tmp_path / "missing.toml"))
    always = parse('hours = "24/7"')
    assert always.minutes(tehran(2025, 10, 16, 0, 0), tehran(2025, 10, 17, 0, 0)) == 1440


def test_clocks_judge_the_sla_and_the_ack_target_and_leave_the_undecided_pending():
    filed = tehran(2025, 10, 11, 13, 30)
    t = timeline(1, filed, [(tehran(2025, 10, 12, 8, 30), "resolved", "fixed_on_spot"),
                            (tehran(2025, 10, 11, 13, 45), "acknowledged", None)])
    c = clocks(t, CALENDAR, 180, 60, tehran(2025, 10, 20, 0, 0))
    assert (c.ack_minutes, c.resolve_minutes, c.sla, c.ack_target) == (15, 120, MET, MET)
    assert t.outcome == "fixed_on_spot"
    resolved_at_once = timeline(2, filed, [(tehran(2025, 10, 11, 13, 50), "resolved", "commendation")])
    assert resolved_at_once.acknowledged_at == tehran(2025, 10, 11, 13, 50)
    open_ = timeline(3, tehran(2025, 10, 15, 13, 0), [])
    assert clocks(open_, CALENDAR, 180, 60, tehran(2025, 10, 18, 7, 59)).sla == PENDING  # 119 minutes
    late = clocks(open_, CALENDAR, 180, 60, tehran(2025, 10, 18, 9, 1))
    assert (late.sla, late.ack_target, late.resolve_minutes) == (MISSED, MISSED, None)


def test_statistics_refuse_small_counts():
    assert share(4, 4) is None and share(4, 5) == 80.0
    assert p90([1, 2, 3, 4]) is None
    assert p90([15, 20, 30, 40, 50, 120]) == 85.0  # linear between ranks: 50 + 0.5 * 70



@pytest.mark.parametrize("cal", [CALENDAR, parse('hours = "sat-wed 07:00-14:00, thu 08:00-12:30"'),
                                 parse('hours = "24/7"')], ids=["holiday", "thursday", "always"])
def test_the_reports_column_clocks_are_the_one_complaint_clocks_to_the_bit(cal):
    """accountability.bulk (numpy, for the monthly report) against figures.clocks, complaint by
    complaint: same office minutes (float for float), same judgements, open ones included."""
    import random

    import numpy as np

    from accountability import bulk

    rng = random.Random(7)
    start = tehran(2025, 9, 20, 0, 0)
    filed = [start + dt.timedelta(seconds=rng.random() * 86400 * 41) for _ in range(3000)]  # to past as_of

    def later(f):  # not yet, at once, before filing (a skewed clock), soon, days or weeks later
        r = rng.random()
        if r < 0.2:
            return None
        if r < 0.3:
            return f - dt.timedelta(minutes=rng.random() * 90) if r < 0.25 else f
        return f + dt.timedelta(seconds=rng.expovariate(1 / (3600 * rng.choice([0.5, 5, 48, 500]))))

    events = [[(at, kind, None) for at, kind in ((later(f), "acknowledged"), (later(f), "resolved")) if at]
              for f in filed]
    lines = [timeline(i, f, e) for i, (f, e) in enumerate(zip(filed, events))]
    as_of = tehran(2025, 10, 30, 10, 17)

    def us(times):
        return np.array([bulk.micros(t) if t else bulk.NONE for t in times], dtype=np.int64)

    got = bulk.clocks(us(filed), us([t.acknowledged_at for t in lines]), us([t.resolved_at for t in lines]),
                      cal, 180.0, 60.0, as_of)
    judged = set()
    for i, t in enumerate(lines):
        want = clocks(t, cal, 180.0, 60.0, as_of)
        ack, res = (None if np.isnan(x) else float(x) for x in (got.ack_minutes[i], got.resolve_minutes[i]))
        assert (ack, res, bulk.JUDGEMENTS[got.sla[i]], bulk.JUDGEMENTS[got.ack_target[i]]) == \
            (want.ack_minutes, want.resolve_minutes, want.sla, want.ack_target), t
        judged.add(want.sla)
    assert judged == {MET, MISSED, PENDING}
    for minutes in (0.0, 1.5, 180.0, 5000.0):  # deadlines, to the microsecond
        stamps = us(filed)
        w = None if cal.hours.always else bulk._span(cal, [stamps])
        assert bulk._deadlines(cal, w, stamps, minutes).tolist() == [bulk.micros(cal.add(f, minutes)) for f in filed]

# ---- actions on a stored complaint, both databases -------------------------------------------
@pytest.fixture
def office(migrated):
    engine = make_engine(migrated.db_url)
    Session = make_sessionmaker(engine)
    with Session() as s:
        load_demo_units(s)
    yield migrated, Session
    engine.dispose()


def _file(Session, now):
    with Session() as s:
        return file_complaint(s, ComplaintDraft("28", "101", "280101", "disrespect", None), now, 3)


def _unit(s, code) -> InspectionUnit:
    return s.scalar(select(InspectionUnit).where(InspectionUnit.code == code))


def test_each_action_appends_one_event_with_its_actor_and_details(office):
    _, Session = office
    t0 = dt.datetime(2025, 10, 11, 6, 0, tzinfo=dt.timezone.utc)
    c = _file(Session, t0)
    with Session() as s:
        c = s.get(Complaint, c.id)
        unit = _unit(s, "p28-101")
        me = actions.Actor.unit(unit)
        assert actions.acknowledge(s, c, me, t0 + dt.timedelta(minutes=10)) is True
        s.commit()
        assert actions.acknowledge(s, c, me, t0 + dt.timedelta(minutes=20)) is False  # once
        with pytest.raises(actions.ActionError) as e:
            actions.resolve(s, c, me, "sacked", "", t0)
        assert e.value.code == "bad_outcome"
        actions.resolve(s, c, me, "manager_dismissed", "مدیر شعبه جابه‌جا شد", t0 + dt.timedelta(hours=2))
        s.commit()
        for act in (lambda: actions.resolve(s, c, me, "commendation", "", t0),
                    lambda: actions.acknowledge(s, c, me, t0),
                    lambda: actions.reassign(s, c, me, _unit(s, "hq-101"), "x", t0)):
            with pytest.raises(actions.ActionError) as e:
                act()
            assert e.value.code == "resolved"
        s.rollback()
        events = s.execute(select(ComplaintEvent.kind, ComplaintEvent.status, ComplaintEvent.actor,
                                  ComplaintEvent.note, UnitAction.unit_id, UnitAction.outcome)
                           .outerjoin(UnitAction, UnitAction.event_id == ComplaintEvent.id)
                           .where(ComplaintEvent.complaint_id == c.id).order_by(ComplaintEvent.id)).all()
        assert [tuple(e) for e in events] == [
            ("filed", "received", "ivr", None, None, None),
            ("acknowledged", "under_review", "unit p28-101", None, unit.id, None),
            ("resolved", "resolved", "unit p28-101", "مدیر شعبه جابه‌جا شد", unit.id, "manager_dismissed")]
        assert s.get(ComplaintRoute, c.id).acknowledged_at == t0 + dt.timedelta(minutes=10)
        assert (c.status, c.outcome) == ("resolved", "manager_dismissed")


def test_a_forward_reroutes_requeues_and_restarts_the_escalation_clock(office):
    _, Session = office
    t0 = dt.datetime(2025, 10, 11, 6, 0, tzinfo=dt.timezone.utc)
    c = _file(Session, t0)
    with Session() as s:
        c = s.get(Complaint, c.id)
        first, hq = _unit(s, "p28-101"), _unit(s, "hq-101")
        actions.acknowledge(s, c, actions.Actor.unit(first), t0)
        with pytest.raises(actions.ActionError, match="say why"):
            actions.reassign(s, c, actions.Actor.unit(first), hq, "  ", t0)
        later = t0 + dt.timedelta(minutes=30)
        actions.reassign(s, c, actions.Actor.unit(first), hq, "در حوزهٔ ستاد است", later)
        s.commit()
        route = s.get(ComplaintRoute, c.id)
        assert (route.unit_id, route.acknowledged_at, route.clock_from) == (hq.id, None, later)
        assert actions.responsible_units(s, c.id) == {hq.id}
        assert c.status == "forwarded"
        with pytest.raises(actions.ActionError) as e:
            actions.reassign(s, c, actions.Actor.staff("ali"), hq, "again", later)
        assert e.value.code == "same_unit"
        # back to the first unit and on to headquarters again: its messages go again, once each
        actions.reassign(s, c, actions.Actor.staff("ali"), first, "برگشت", later)
        actions.reassign(s, c, actions.Actor.staff("ali"), hq, "دوباره ستاد", later)
        s.commit()
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "reassigned",
                                                     OutboxMessage.complaint_id == c.id)).all()
        assert sorted((m.recipient, m.status) for m in rows if m.unit_id == hq.id) == sorted(
            (x.address, "pending") for x in hq.contacts)
        assert s.scalar(select(func.count()).select_from(ComplaintEvent)
                        .where(ComplaintEvent.kind == "reassigned")) == 3


def test_complaints_ack_resolve_reassign_from_the_cli(office, monkeypatch):
    from cli import main

    settings, Session = office
    c = _file(Session, dt.datetime.now(dt.timezone.utc))
    env = {"FAVAD_DATABASE_URL": settings.db_url, "FAVAD_DATA_DIR": settings.data_dir}
    run = CliRunner().invoke
    r = run(main, ["complaints", "ack", c.case_number, "--unit", "p28-101"], env=env)
    assert r.exit_code == 0 and "acknowledged" in r.output, r.output
    r = run(main, ["complaints", "reassign", c.case_number, "--to", "hq-101", "--reason", "ستاد"], env=env)
    assert r.exit_code == 0 and "forwarded to unit hq-101" in r.output, r.output
    r = run(main, ["complaints", "resolve", c.case_number, "--outcome", "commendation", "--note", "خوب"], env=env)
    assert r.exit_code == 0 and "resolved" in r.output, r.output
    r = run(main, ["complaints", "resolve", c.case_number, "--outcome", "commendation"], env=env)
    assert r.exit_code == 1 and "resolved already" in r.output and "Traceback" not in r.output
    r = run(main, ["complaints", "ack", "0000000000"], env=env)
    assert r.exit_code == 1 and "no complaint" in r.output
    r = run(main, ["complaints", "reassign", c.case_number, "--to", "nowhere", "--reason", "x"], env=env)
    assert r.exit_code == 1 and "no inspection unit" in r.output
    with Session() as s:
        actors = s.scalars(select(ComplaintEvent.actor).where(ComplaintEvent.complaint_id == c.id)
                           .order_by(ComplaintEvent.id)).all()
    me = os_user()
    assert actors == ["ivr", f"unit p28-101, staff {me} (os {me})", f"staff {me} (os {me})",
                      f"staff {me} (os {me})"]


# ---- who may act from the command line (issue 12, item 8) -------------------------------------
def test_the_staff_actor_is_the_os_user_not_the_user_environment_variable(office):
    from cli import main

    settings, Session = office
    c = _file(Session, dt.datetime.now(dt.timezone.utc))
    env = {"FAVAD_DATABASE_URL": settings.db_url, "FAVAD_DATA_DIR": settings.data_dir,
           "USER": "evil\ninjected", "LOGNAME": "evil\ninjected", "USERNAME": "evil"}
    r = CliRunner().invoke(main, ["complaints", "ack", c.case_number], env=env)
    assert r.exit_code == 0, r.output
    with Session() as s:
        [actor] = s.scalars(select(ComplaintEvent.actor).where(ComplaintEvent.complaint_id == c.id,
                                                              ComplaintEvent.kind == "acknowledged")).all()
    me = os_user()
    assert actor == f"staff {me} (os {me})" and "\n" not in actor and "evil" not in actor


def test_staff_names_and_os_users_come_from_the_configuration(office):
    from cli import main

    settings, Session = office
    c = _file(Session, dt.datetime.now(dt.timezone.utc))
    me = os_user()
    base = {"FAVAD_DATABASE_URL": settings.db_url, "FAVAD_DATA_DIR": settings.data_dir}
    run = CliRunner(mix_stderr=False).invoke
    # an OS user not on the list acts in no way, for no unit, and makes no link
    env = {**base, "FAVAD_STAFF_OS_USERS": "someone-else, other"}
    for args in (["complaints", "ack", c.case_number], ["complaints", "ack", c.case_number, "--unit", "p28-101"],
                 ["web", "link", c.case_number, "--unit", "p28-101"]):
        r = run(main, args, env=env)
        assert r.exit_code == 1 and f"OS user {me!r} may not act" in r.stderr, r.stderr
    # a staff list: --as names one of it; anything else (a forged name, two lines) is refused
    env = {**base, "FAVAD_STAFF_OS_USERS": f"other, {me}", "FAVAD_STAFF": "zahra.ahmadi, ali_k"}
    for name in ("mallory", "evil\ninjected", "zahra.ahmadi (os root)"):
        r = run(main, ["complaints", "ack", c.case_number, "--as", name], env=env)
        assert r.exit_code == 1 and "must be one of the staff names" in r.stderr, r.stderr
    r = run(main, ["complaints", "ack", c.case_number], env=env)
    assert r.exit_code == 1 and "use --as" in r.stderr
    r = run(main, ["complaints", "ack", c.case_number, "--as", "zahra.ahmadi"], env=env)
    assert r.exit_code == 0, r.stderr
    # without a staff list, --as is refused: nobody names themselves
    r = run(main, ["complaints", "resolve", c.case_number, "--outcome", "commendation", "--as", "zahra"],
            env=base)
    assert r.exit_code == 1 and "--as needs the staff setting" in r.stderr
    # a bad list is a configuration error, like any other
    r = run(main, ["complaints", "ack", c.case_number], env={**base, "FAVAD_STAFF": "ok, bad name"})
    assert r.exit_code == 2 and "'bad name' is not a user name" in r.stderr
    with Session() as s:
        actors = s.scalars(select(ComplaintEvent.actor).where(ComplaintEvent.complaint_id == c.id)
                           .order_by(ComplaintEvent.id)).all()
    assert actors == ["ivr", f"staff zahra.ahmadi (os {me})"]


def test_a_staff_actor_holds_user_names_only():
    assert actions.Actor.staff("zahra", "favad").label == "staff zahra (os favad)"
    for name, user in (("evil\ninjected", "favad"), ("zahra", "root\n"), ("", "favad"), ("a" * 33, "favad"),
                       ("zahra (os root)", "favad")):
        with pytest.raises(ValueError):
            actions.Actor.staff(name, user)

