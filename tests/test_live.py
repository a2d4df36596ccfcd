"""The supervisors' live figures and the complaint search (reports.live, accountability.search)
on PostgreSQL, with complaints and calls in three provinces and six agencies: each scope sees
exactly its own, in every count, table, map figure and list."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from accountability.scope import Scope
from accountability.search import FilterError, Filters, choices, every, parse_date, search, visible
from clock.calendar import load
from db.engine import make_engine, make_sessionmaker
from db.models import Agency, Province
from reports import live
from reports.monthly import Params
from tests.livedata import PLAN, calls, seed

PG_ONLY = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
NOW = dt.datetime(2025, 11, 5, 8, 0, tzinfo=dt.timezone.utc)  # 1404/08/14, 11:30 in Tehran


@pytest.fixture
def world(migrated):
    engine = make_engine(migrated.db_url)
    Session = make_sessionmaker(engine)
    seeded = seed(Session, NOW)
    with Session() as s:
        provinces = {p.area_code: p.id for p in s.scalars(select(Province))}
        agencies = {a.code: a.id for a in s.scalars(select(Agency))}
    yield Session, seeded, provinces, agencies
    engine.dispose()


def _scopes(provinces, agencies):
    """(name, scope, which seeded rows it should see, which province's calls: None all, '' none)."""
    return [("national", Scope.national(), lambda r: True, None),
            ("province 28", Scope(province_id=provinces["28"]), lambda r: r.province == "28", "28"),
            ("province 21", Scope(province_id=provinces["21"]), lambda r: r.province == "21", "21"),
            ("agency 101", Scope(agency_id=agencies["101"]), lambda r: r.agency == "101", ""),
            ("agency 104", Scope(agency_id=agencies["104"]), lambda r: r.agency == "104", "")]


@PG_ONLY
def test_each_scope_sees_exactly_its_own_in_every_figure(world):
    Session, seeded, provinces, agencies = world
    params = Params(load(None), 3, 1)
    for name, scope, mine, call_province in _scopes(provinces, agencies):
        rows = [r for r in seeded if mine(r)]
        with Session() as s:
            f = live.figures(s, scope, NOW, params)
        expected_calls = {} if call_province == "" else calls(call_province)
        assert f.calls_today == expected_calls and f.calls_month == expected_calls, name
        assert f.complaints_today == f.complaints_month == len(rows), name
        assert f.open == sum(r.what != "resolved" for r in rows), name
        assert f.overdue == sum(r.what == "overdue" for r in rows), name
        assert sum(u.waiting for u in f.late_units) == sum(r.what == "late_ack" for r in rows), name
        assert {a.key: a.month.complaints for a in f.agencies} == _count(r.agency for r in rows), name
        assert {a.key: a.open for a in f.agencies if a.open} == _count(r.agency for r in rows if r.what != "resolved"), name
        assert {o.key: o.month.complaints for o in f.offices} == _count(r.office for r in rows), name
        assert {p.area_code: n for p, n, _ in f.provinces if n} == _count(r.province for r in rows), name
        assert sum(h.complaints for h in f.hotspots) == len(rows), name
        assert sum(n for _, n, _ in f.weeks) == len(rows) and len(f.weeks) == live.WEEKS, name
        assert f.weeks[-1][0] == dt.date(2025, 11, 1)  # a Saturday: the Iranian week
        assert f.weeks[-1][2] == sum(r.what == "resolved" for r in rows), name


def _count(keys) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in keys:
        out[k] = out.get(k, 0) + 1
    return out


@PG_ONLY
def test_each_scope_lists_and_exports_exactly_its_own_and_out_of_scope_is_not_found(world):
    Session, seeded, provinces, agencies = world
    for name, scope, mine, _ in _scopes(provinces, agencies):
        want = {r.case_number for r in seeded if mine(r)}
        with Session() as s:
            page = search(s, scope, Filters(), NOW, per_page=4)
            listed = set()
            for n in range(1, page.pages + 1):
                listed |= {f.case_number for f in search(s, scope, Filters(), NOW, n, per_page=4).rows}
            assert listed == want and page.total == len(want), name
            assert {f.case_number for f in every(s, scope, Filters(), NOW, chunk=3)} == want, name
            for r in seeded:
                assert (visible(s, scope, r.case_number) is not None) == (r.case_number in want), name
            # a filter naming something outside the scope finds nothing, never widens it
            outside = search(s, scope, Filters(province="26"), NOW)
            assert {f.case_number for f in outside.rows} <= want, name
            offered = choices(s, scope)
            assert {o for o, _ in offered["office"]} >= {r.office for r in seeded if mine(r)}, name
            if scope.province_id:
                assert {p for p, _ in offered["province"]} == {name.split()[1]}
            if scope.agency_id:
                assert {a for a, _ in offered["agency"]} == {name.split()[1]}


@PG_ONLY
def test_filters_narrow_by_status_agency_office_indicator_province_date_and_case(world):
    Session, seeded, _, _ = world
    scope = Scope.national()

    def found(**kw) -> set[str]:
        with Session() as s:
            return {f.case_number for f in every(s, scope, Filters.from_args(kw), NOW)}

    def want(pred) -> set[str]:
        return {r.case_number for r in seeded if pred(r)}

    assert found(status="resolved") == want(lambda r: r.what == "resolved")
    assert found(status="open") == want(lambda r: r.what != "resolved")
    assert found(agency="101") == want(lambda r: r.agency == "101")
    assert found(office="260104") == want(lambda r: r.office == "260104")
    assert found(indicator="disrespect") == {r.case_number for r, p in zip(seeded, PLAN) if p[3] == "disrespect"}
    assert found(province="21", agency="101") == want(lambda r: r.province == "21" and r.agency == "101")
    assert found(overdue="1") == want(lambda r: r.what == "overdue")
    assert found(late_ack="1") == want(lambda r: r.what == "late_ack")
    first = seeded[0].case_number
    assert found(case=first.lower()) == {first}
    # the same day written in Jalali (Persian digits too) and in ISO: filed 1404/08/14 in Tehran
    assert found(date_from="۱۴۰۴/۰۸/۱۴", date_to="1404-08-14") == want(lambda r: True)
    assert found(date_from="2025-11-05", date_to="2025-11-05") == want(lambda r: True)
    assert found(date_from="1404/08/15") == set() and found(date_to="2025-11-04") == set()
    for bad in ({"status": "lost"}, {"date_from": "yesterday"}, {"date_to": "1404/13/01"}, {"agency": "1'; --"}):
        with pytest.raises(FilterError):
            Filters.from_args(bad)
    assert parse_date("1404/08/14") == dt.date(2025, 11, 5)


@PG_ONLY
def test_no_list_row_carries_a_code_hash(world):
    Session, seeded, _, _ = world
    with Session() as s:
        rows = list(every(s, Scope.national(), Filters(), NOW))
    text = repr(rows)
    assert len(rows) == len(seeded)
    assert not any(r.code_hash in text for r in seeded)


@PG_ONLY
def test_escalate_from_the_cli_queues_the_escalation_office_once(migrated):
    from click.testing import CliRunner

    from accountability.commands import os_user
    from cli import main
    from db.models import Complaint, ComplaintEvent
    from dispatch.models import ComplaintRoute, InspectionUnit, OutboxMessage

    engine = make_engine(migrated.db_url)
    Session = make_sessionmaker(engine)
    case = seed(Session, NOW)[3].case_number  # province 28, agency 102: hq-102, escalated to p28's office
    env = {"FAVAD_DATABASE_URL": migrated.db_url, "FAVAD_DATA_DIR": migrated.data_dir}
    run = CliRunner().invoke
    r = run(main, ["complaints", "escalate", case, "--reason", "سه روز بی‌پاسخ"], env=env)
    assert r.exit_code == 0 and "escalated to unit" in r.output, r.output
    r = run(main, ["complaints", "escalate", case, "--reason", "again"], env=env)
    assert r.exit_code == 1 and "escalated already" in r.output and "Traceback" not in r.output
    r = run(main, ["complaints", "escalate", case, "--reason", " "], env=env)
    assert r.exit_code == 1 and "say why" in r.output
    with Session() as s:
        c = s.scalar(select(Complaint).where(Complaint.case_number == case))
        route = s.get(ComplaintRoute, c.id)
        unit = s.get(InspectionUnit, route.escalation_unit_id)
        assert route.escalated_at is not None and unit.kind == "escalation"
        sent = s.scalars(select(OutboxMessage.recipient).where(OutboxMessage.complaint_id == c.id,
                                                               OutboxMessage.kind == "escalation")).all()
        assert sorted(sent) == sorted(x.address for x in unit.contacts)
        events = s.execute(select(ComplaintEvent.kind, ComplaintEvent.actor, ComplaintEvent.note)
                           .where(ComplaintEvent.complaint_id == c.id, ComplaintEvent.kind == "escalated")).all()
        me = os_user()
        assert events == [("escalated", f"staff {me} (os {me})", "سه روز بی‌پاسخ")]
    engine.dispose()
