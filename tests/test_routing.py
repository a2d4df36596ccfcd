"""Routing: the most specific unit, never none; working hours; the units file and its CLI."""
from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from db.engine import make_engine, make_sessionmaker
from complaints.filing import file_complaint
from clock import TEHRAN
from clock import hours as wh
from clock.calendar import OfficeCalendar
from dispatch.models import ComplaintRoute, InspectionUnit, OutboxMessage
from dispatch.routing import NO_AGENCY_UNIT, UNROUTED, route
from dispatch.units import UnitsError, UnitSpec, apply, current, load_demo_units, read, validate, write
from ivr.events import ComplaintDraft

NOW = dt.datetime(2026, 11, 28, 6, 0, tzinfo=dt.timezone.utc)  # a Saturday, 09:30 in Tehran


def unit(id, kind, agency=None, province=None, active=True):
    return InspectionUnit(id=id, code=f"u{id}", kind=kind, name_fa="-", agency_id=agency,
                          province_id=province, hours="", active=active)


# ---- route(): pure ------------------------------------------------------------------------
def test_agency_in_province_beats_headquarters_and_escalation_office_is_kept():
    units = [unit(1, "headquarters", agency=10), unit(2, "provincial", 10, 5), unit(3, "escalation", province=5)]
    r = route(units, 10, 5)
    assert (r.unit.id, r.escalation.id, r.flag) == (2, 3, None)
    r = route(units, 10, 6)  # another province: headquarters, no escalation office there
    assert (r.unit.id, r.escalation, r.flag) == (1, None, None)


def test_agency_without_unit_goes_to_escalation_office_flagged():
    units = [unit(1, "headquarters", agency=10), unit(3, "escalation", province=5)]
    r = route(units, 99, 5)
    assert (r.unit.id, r.escalation.id, r.flag) == (3, 3, NO_AGENCY_UNIT)


def test_nothing_at_all_is_unrouted_not_dropped_and_inactive_units_do_not_count():
    units = [unit(1, "headquarters", agency=10, active=False), unit(3, "escalation", province=5)]
    assert route(units, 10, 6).flag == UNROUTED
    assert route(units, 10, 5).flag == NO_AGENCY_UNIT


# ---- working hours ------------------------------------------------------------------------
def tehran(y, m, d, h, mi=0):
    return dt.datetime(y, m, d, h, mi, tzinfo=TEHRAN).astimezone(dt.timezone.utc)


def test_hours_follow_the_iranian_week_in_tehran_time():
    cal = OfficeCalendar(wh.parse("sat-wed 07:30-14:30, thu 07:30-12:30"), frozenset())
    assert cal.next_open(tehran(2026, 11, 28, 9)) == tehran(2026, 11, 28, 9)  # Saturday morning
    assert cal.next_open(tehran(2026, 11, 28, 15)) == tehran(2026, 11, 29, 7, 30)  # after hours
    assert cal.next_open(tehran(2026, 12, 3, 13)) == tehran(2026, 12, 5, 7, 30)  # Thu noon -> Sat
    assert cal.next_open(tehran(2026, 12, 4, 10)) == tehran(2026, 12, 5, 7, 30)  # Friday
    assert wh.parse("fri-sun 08:00-09:00").windows == ((4, 480, 540), (5, 480, 540), (6, 480, 540))
    always = cal.for_hours("")
    assert always.hours.always and always.next_open(NOW) == NOW


def test_a_units_next_working_hour_skips_a_night_and_then_a_holiday():
    # Tuesday 2026-12-01 at 22:00: the night, then Wednesday is a holiday: Saturday 07:30
    # (Thursday and Friday are not working days for this unit)
    cal = OfficeCalendar(wh.parse("sat-wed 07:30-14:30"), frozenset({dt.date(2026, 12, 2)}))
    assert cal.next_open(tehran(2026, 12, 1, 22)) == tehran(2026, 12, 5, 7, 30)
    assert cal.for_hours("sat-thu 08:00-12:00").next_open(tehran(2026, 12, 1, 22)) == tehran(2026, 12, 3, 8)


@pytest.mark.parametrize("spec", ["sat-wed", "mon 9-5", "xyz 08:00-09:00", "sat 14:00-08:00", "sat 08:00-25:00"])
def test_unreadable_hours_are_refused_with_an_example(spec):
    with pytest.raises(wh.HoursError):
        wh.parse(spec)


# ---- the units file -----------------------------------------------------------------------
YAML = """
units:
- code: hq-101
  kind: headquarters
  name_fa: دفتر بازرسی
  agency: "101"
  hours: sat-wed 07:30-14:30
  emails: [a@example.ir, b@example.ir]
  mobiles: ["+98 912 000 0101"]
- code: gov-28
  kind: escalation
  name_fa: استانداری
  province: "28"
  emails: g@example.ir
"""
AGENCIES, PROVINCES = {"101", "102"}, {"28", "26"}


def test_yaml_and_csv_carry_the_same_units():
    specs = read(YAML, "yaml")
    assert validate(specs, AGENCIES, PROVINCES) == []
    assert specs[0].mobiles == ["09120000101"] and specs[1].emails == ["g@example.ir"]
    assert read(write(specs, "csv"), "csv") == specs
    assert read(write(specs, "yaml"), "yaml") == specs


def test_validation_names_every_problem():
    bad = [UnitSpec("hq 1", "headquarters", "", agency="999", province="28", hours="sat 9-5",
                    emails=["nope"], mobiles=["0211234567"]),
           UnitSpec("gov-28", "escalation", "x", province="28", emails=["g@example.ir"]),
           UnitSpec("gov-28b", "escalation", "x", province="28", mobiles=["09120000000"]),
           UnitSpec("p", "provincial", "x", agency="101", emails=["p@example.ir"])]
    problems = "\n".join(validate(bad, AGENCIES, PROVINCES))
    for words in ("code must be", "name_fa is missing", "takes no province", "no agency with code 999",
                  "cannot read working hours", "'nope' is not an email", "not an Iranian mobile",
                  "same escalation place as unit gov-28", "a provincial unit needs province"):
        assert words in problems
    with pytest.raises(UnitsError, match="quote mobile"):
        read("- {code: a, kind: escalation, name_fa: x, province: '28', mobiles: [9120000000]}", "yaml")


@pytest.fixture
def session(migrated):
    engine = make_engine(migrated.db_url)
    with make_sessionmaker(engine)() as s:
        yield s
    engine.dispose()


def test_import_updates_by_code_prunes_and_never_shares_a_place(session):
    s = session
    assert load_demo_units(s) == 16 and load_demo_units(s) == 0
    specs = current(s)
    hq101 = next(sp for sp in specs if sp.code == "hq-101")
    hq101.emails = ["new@example.ir"]
    assert apply(s, [hq101]) == {"added": 0, "updated": 1, "deactivated": 0}
    s.commit()
    got = {sp.code: sp for sp in current(s)}
    assert got["hq-101"].emails == ["new@example.ir"] and got["hq-101"].mobiles == ["09120000101"]
    # a second headquarters unit for 101 under a new code collides with the one kept
    with pytest.raises(UnitsError, match="same headquarters place as unit"):
        apply(s, [UnitSpec("hq-101-bis", "headquarters", "x", agency="101", emails=["x@example.ir"])])
    s.rollback()
    assert apply(s, [hq101], prune=True)["deactivated"] == 15
    s.commit()
    assert [sp.code for sp in current(s) if sp.active] == ["hq-101"]


def test_complaint_without_any_unit_waits_flagged_then_import_routes_it(session):
    s = session
    c = file_complaint(s, ComplaintDraft("26", "104", None, "disrespect", None), NOW, 3)
    r = s.get(ComplaintRoute, c.id)
    assert (r.unit_id, r.flag) == (None, UNROUTED)
    assert s.scalars(select(OutboxMessage)).all() == []
    from dispatch.outbox import reroute_unrouted

    apply(s, read(YAML.replace('"28"', '"26"'), "yaml"))
    assert reroute_unrouted(s, NOW) == 1
    s.commit()
    s.refresh(r)
    assert r.flag == NO_AGENCY_UNIT  # 104 still has no unit: the province's office has it
    assert [m.recipient for m in s.scalars(select(OutboxMessage))] == ["g@example.ir"]


def test_demo_routes_most_specific_first_and_flags_agency_112(session):
    s = session
    load_demo_units(s)
    got = {}
    for code, draft in {"p28-101": ("28", "101", "280101"), "hq-101": ("26", "101", "260101"),
                        "gov-26": ("26", "112", None)}.items():
        c = file_complaint(s, ComplaintDraft(draft[0], draft[1], draft[2], "disrespect", None), NOW, 3)
        r = s.get(ComplaintRoute, c.id)
        got[code] = (s.get(InspectionUnit, r.unit_id).code, r.flag)
    assert got == {"p28-101": ("p28-101", None), "hq-101": ("hq-101", None),
                   "gov-26": ("gov-26", NO_AGENCY_UNIT)}


def test_units_cli_import_export_list_validate(migrated, tmp_path, monkeypatch):
    from cli import main

    monkeypatch.setenv("FAVAD_DATABASE_URL", migrated.db_url)
    monkeypatch.setenv("FAVAD_DATA_DIR", migrated.data_dir)
    run = CliRunner().invoke
    path = tmp_path / "units.yaml"
    path.write_text(YAML, encoding="utf-8")
    r = run(main, ["units", "validate", str(path)])
    assert r.exit_code == 0 and "ok, 2 units" in r.output and "agency 102 has no headquarters" in r.output
    r = run(main, ["units", "import", str(path), "--dry-run"])
    assert r.exit_code == 0 and "would import: 2 added" in r.output
    assert run(main, ["units", "import", str(path)]).exit_code == 0
    r = run(main, ["units", "export", str(tmp_path / "out.csv")])
    assert r.exit_code == 0
    expected = sorted(read(YAML, "yaml"), key=lambda sp: sp.code)
    validate(expected, AGENCIES, PROVINCES)  # normalizes the mobile number as the import did
    assert read((tmp_path / "out.csv").read_text(encoding="utf-8"), "csv") == expected
    r = run(main, ["units", "list", "--json"])
    assert '"hq-101"' in r.output and "دفتر بازرسی" in r.output
    (tmp_path / "bad.csv").write_text("code,kind,name_fa\nx,nonsense,\n", encoding="utf-8")
    r = run(main, ["units", "import", str(tmp_path / "bad.csv")])
    assert r.exit_code == 1 and "nothing imported" in r.output and "kind must be one of" in r.output
