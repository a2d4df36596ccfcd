"""The supervisors' dashboard, complaint list, export, complaint page and archive on the real
server (waitress, PostgreSQL): a national, a province and an agency user each see exactly their
scope on every list, count, map and export; a supervisor acts from a complaint's page in
Chromium and the database and the audit trail show it; an analyst sees no form and cannot post;
no page carries a caller's code hash."""
from __future__ import annotations

import codecs
import csv
import io
import re

import pytest
from sqlalchemy import select

from accountability.staff import StaffAudit
from db.models import Complaint, ComplaintEvent
from dispatch.models import ComplaintRoute, Document, InspectionUnit, OutboxMessage
from tests.livedata import seed
from tests.staffweb import chromium, login, shown, staff, submit  # noqa: F401  (fixtures)

PG_ONLY = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
_LATIN = str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")
ROLES = [  # (role, its scope's keywords, which seeded complaints it sees, whose calls)
    ("national", {}, lambda r: True, "all"),
    ("province", {"province": "28"}, lambda r: r.province == "28", "28"),
    ("agency", {"agency": "101"}, lambda r: r.agency == "101", None),
]
CALLS = {"all": 17, "28": 8, None: 0}  # tests/livedata.CALLS, summed


def _number(html: str, element_id: str) -> int:
    m = re.search(rf'id="{element_id}"[^>]*>(?:<a [^>]*>)?([۰-۹0-9]+)<', html)
    assert m, f"no number in #{element_id}"
    return int(m[1].translate(_LATIN))


def _keys(html: str, table_id: str) -> set[str]:
    body = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)[1]
    return set(re.findall(r'data-key="([^"]+)"', body))


def _logged_in(staff, role, **scope):
    name, password, secret = staff.user(role, **scope)
    http = staff.http()
    assert http.login(name, password, staff.totp(secret)).status == 303
    return http, name


@PG_ONLY
def test_each_role_sees_exactly_its_scope_on_every_list_count_map_and_export(staff):
    seeded = seed(staff.Session, staff.clock())
    hashes = [r.code_hash for r in seeded]
    for role, scope, mine, calls in ROLES:
        http, _ = _logged_in(staff, role, **scope)
        rows = [r for r in seeded if mine(r)]
        cases = {r.case_number for r in rows}
        page = http.get("/staff/dashboard")
        assert page.status == 200, (role, page.text[:300])
        html = page.text
        assert _number(html, "complaints-month") == len(rows), role
        assert _number(html, "open") == sum(r.what != "resolved" for r in rows), role
        assert _number(html, "overdue") == sum(r.what == "overdue" for r in rows), role
        assert _keys(html, "agencies") == {r.agency for r in rows}, role
        assert _keys(html, "offices") == {r.office for r in rows}, role
        assert _keys(html, "provinces") == {r.province for r in rows}, role
        assert _keys(html, "hotspots") == {r.office for r in rows}, role
        late = re.findall(r'data-unit="[^"]+">.*?class="waiting"><a [^>]*>([۰-۹]+)<', html, re.S)
        assert sum(int(n.translate(_LATIN)) for n in late) == sum(r.what == "late_ack" for r in rows), role
        if calls is None:
            assert 'id="calls-none"' in html and 'id="calls"' not in html
        else:
            counted = re.findall(r'class="month">(?:<a [^>]*>)?([۰-۹]+)<', html.split('id="calls"')[1].split("</table>")[0])
            assert sum(int(n.translate(_LATIN)) for n in counted) == CALLS[calls], role
        for chart in ("provinces", "hotspots", "trend"):
            svg = http.get(f"/staff/dashboard/{chart}.svg")
            assert svg.status == 200 and svg.headers["Content-Type"].startswith("image/svg+xml"), chart
            assert "<svg" in svg.text
        listed = http.get("/staff/complaints")
        assert set(re.findall(r'data-case="([^"]+)"', listed.text)) == cases, role
        assert 'data-total="%d"' % len(cases) in listed.text
        # a filter naming what lies outside the scope finds nothing: it never widens the scope
        outside = http.get("/staff/complaints?province=26")
        assert set(re.findall(r'data-case="([^"]+)"', outside.text)) <= cases, role
        exported = http.get("/staff/complaints.csv")
        assert exported.status == 200 and exported.headers["Content-Type"].startswith("text/csv")
        raw = exported.text.encode("utf-8")
        assert raw.startswith(codecs.BOM_UTF8), "Excel needs the byte order mark to read Persian"
        table = list(csv.DictReader(io.StringIO(raw[3:].decode("utf-8"))))
        assert {r["case_number"] for r in table} == cases, role
        assert set(table[0]) == {"case_number", "filed_at", "province", "agency_code", "agency", "office_code",
                                 "office", "city", "indicator", "status", "outcome", "deadline", "overdue"}
        for r in seeded:
            shown_page = http.get(f"/staff/complaints/{r.case_number}")
            assert shown_page.status == (200 if r.case_number in cases else 404), (role, r)
            assert not any(h in shown_page.text for h in hashes)
        bad = http.get("/staff/complaints?date_from=yesterday")
        assert bad.status == 400 and 'id="filter-error"' in bad.text, role
        assert http.get("/staff/complaints.csv?status=lost").status == 400, role
        for text in (html, listed.text, exported.text):
            assert not any(h in text for h in hashes), role
            assert "built-in method" not in text  # a label named like a dict method


@PG_ONLY
def test_an_analyst_sees_the_page_without_forms_and_cannot_post(staff):
    seeded = seed(staff.Session, staff.clock())
    http, _ = _logged_in(staff, "analyst", province="28")
    case = next(r.case_number for r in seeded if r.province == "28" and r.what == "")
    page = http.get(f"/staff/complaints/{case}")
    assert page.status == 200 and 'id="read-only"' in page.text and "<form method=\"post\" action=\"/staff/complaints" not in page.text
    token = http.get("/staff/dashboard").csrf()  # the logout form's token: valid for this session
    for action, form in (("resolve", {"outcome": "written_warning"}), ("reassign", {"to": "hq-102", "reason": "x"}),
                         ("escalate", {"reason": "x"})):
        r = http.post(f"/staff/complaints/{case}/{action}", {"csrf": token, **form})
        assert r.status == 403, action
    with staff.Session() as s:
        c = s.scalar(select(Complaint).where(Complaint.case_number == case))
        assert c.status != "resolved"
        assert s.scalar(select(ComplaintEvent.id).where(ComplaintEvent.complaint_id == c.id,
                                                         ComplaintEvent.actor.like("staff %"))) is None
        assert len(s.scalars(select(StaffAudit).where(StaffAudit.kind == "refused")).all()) == 3
    # out of scope is not found, for reading and for acting alike (no hint that it exists)
    other = next(r.case_number for r in seeded if r.province == "21")
    assert http.get(f"/staff/complaints/{other}").status == 404


@PG_ONLY
def test_a_supervisor_reassigns_escalates_and_closes_from_the_page_in_chromium(staff, chromium):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    seeded = seed(staff.Session, staff.clock())
    name, password, secret = staff.user("province", province="28")
    login(chromium, staff.base, name, password, secret, clock=staff.clock)
    chromium.get(f"{staff.base}/staff/dashboard")
    assert shown(chromium, "open").text.translate(_LATIN) == str(sum(r.province == "28" and r.what != "resolved"
                                                                    for r in seeded))
    chromium.find_element(By.CSS_SELECTOR, "#open a").click()  # the figure opens the complaints behind it
    shown(chromium, "complaints")
    listed = {e.get_attribute("data-case") for e in chromium.find_elements(By.CSS_SELECTOR, "#complaints tr[data-case]")}
    assert listed == {r.case_number for r in seeded if r.province == "28" and r.what != "resolved"}
    case = next(r.case_number for r in seeded if r.office == "280102")  # agency 102: hq-102, escalates to p28
    chromium.get(f"{staff.base}/staff/complaints/{case}")
    Select(shown(chromium, "reassign-to")).select_by_value("hq-101")
    chromium.find_element(By.ID, "reassign-reason").send_keys("مربوط به تأمین اجتماعی است")
    submit(chromium, "reassign")
    assert "ارجاع شد" in shown(chromium, "done").text
    assert shown(chromium, "unit").get_attribute("data-unit") == "hq-101"
    chromium.find_element(By.ID, "escalate-reason").send_keys("بی‌پاسخ مانده")
    submit(chromium, "escalate")
    shown(chromium, "done")
    Select(shown(chromium, "resolve-outcome")).select_by_value("manager_dismissed")
    chromium.find_element(By.ID, "resolve-note").send_keys("مدیر جابه‌جا شد")
    submit(chromium, "resolve")
    shown(chromium, "closed")
    assert shown(chromium, "status").get_attribute("data-status") == "resolved"
    kinds = [e.get_attribute("data-kind") for e in chromium.find_elements(By.CSS_SELECTOR, "#timeline li")]
    assert kinds[-3:] == ["reassigned", "escalated", "resolved"]
    assert not any(r.code_hash in chromium.page_source for r in seeded)
    with staff.Session() as s:
        c = s.scalar(select(Complaint).where(Complaint.case_number == case))
        assert (c.status, c.outcome) == ("resolved", "manager_dismissed")
        route = s.get(ComplaintRoute, c.id)
        hq101 = s.scalar(select(InspectionUnit).where(InspectionUnit.code == "hq-101"))
        assert route.unit_id == hq101.id and route.escalated_at is not None
        actors = s.scalars(select(ComplaintEvent.actor).where(ComplaintEvent.complaint_id == c.id,
                                                              ComplaintEvent.kind.in_(("reassigned", "escalated", "resolved")))
                           .order_by(ComplaintEvent.id)).all()
        assert actors == [f"staff {name} (web)"] * 3
        kinds = {m.kind for m in s.scalars(select(OutboxMessage).where(OutboxMessage.complaint_id == c.id))}
        assert {"reassigned", "escalation"} <= kinds
        trail = s.execute(select(StaffAudit.kind, StaffAudit.case_number).where(StaffAudit.complaint_id == c.id)
                          .order_by(StaffAudit.id)).all()
        assert trail == [("complaint_reassigned", case), ("complaint_escalated", case), ("complaint_resolved", case)]


@PG_ONLY
def test_national_province_and_agency_users_see_their_scope_in_chromium(staff, chromium):
    from selenium.webdriver.common.by import By

    seeded = seed(staff.Session, staff.clock())
    for i, (role, scope, mine, _) in enumerate(ROLES):
        name, password, secret = staff.user(role, **scope)
        chromium.delete_all_cookies()
        login(chromium, staff.base, name, password, secret, clock=staff.clock)
        chromium.get(f"{staff.base}/staff/dashboard")
        assert int(shown(chromium, "complaints-month").text.translate(_LATIN)) == sum(map(mine, seeded)), role
        rows = chromium.find_elements(By.CSS_SELECTOR, "#agencies tr[data-key]")
        assert {r.get_attribute("data-key") for r in rows} == {r.agency for r in seeded if mine(r)}, role
        for img in ("map", "hotspots-chart", "trend-chart"):  # the pictures load, from this site
            assert chromium.execute_script(f"return document.getElementById('{img}').naturalWidth") > 0, (role, img)
        chromium.get(f"{staff.base}/staff/complaints")
        listed = {e.get_attribute("data-case") for e in chromium.find_elements(By.CSS_SELECTOR, "#complaints tr[data-case]")}
        assert listed == {r.case_number for r in seeded if mine(r)}, role
        assert not any(r.code_hash in chromium.page_source for r in seeded)


@PG_ONLY
def test_the_archive_gives_each_scope_only_the_files_it_may_see(staff):
    import datetime as dt
    from pathlib import Path

    root = Path(staff.settings.data_dir, "reports", "1404-07")
    (root / "cards").mkdir(parents=True)
    for n in ("monthly.pdf", "monthly.csv"):
        (root / n).write_bytes(b"national " + n.encode())
    for code in ("101", "102"):
        (root / "cards" / f"{code}.pdf").write_bytes(f"card {code}".encode())
    with staff.Session() as s:
        s.add(Document(kind="report_card", key="card.1404-07.101", subject="s", text="t", html="h",
                       pdf=b"%PDF sent 101", filename="128-card-101-1404-07.pdf",
                       created_at=dt.datetime.now(dt.timezone.utc)))
        s.commit()
    national, _ = _logged_in(staff, "national")
    page = national.get("/staff/archive").text
    assert "monthly.pdf" in page and 'data-agency="101"' in page and 'data-agency="102"' in page
    assert national.get("/staff/archive/1404-07/monthly.csv").text == "national monthly.csv"
    assert national.get("/staff/archive/1404-07/cards/102.pdf").text == "card 102"
    agency, _ = _logged_in(staff, "agency", agency="101")
    page = agency.get("/staff/archive").text
    assert "monthly.pdf" not in page and 'data-agency="101"' in page and 'data-agency="102"' not in page
    assert agency.get("/staff/archive/1404-07/cards/101.pdf").text == "card 101"
    assert agency.get("/staff/archive/1404-07/sent/101.pdf").text == "%PDF sent 101"
    for path in ("/staff/archive/1404-07/cards/102.pdf", "/staff/archive/1404-07/monthly.pdf",
                 "/staff/archive/1404-07/sent/102.pdf", "/staff/archive/1404-07/..%2f..%2fkeys"):
        assert agency.get(path).status == 404, path
    province, _ = _logged_in(staff, "province", province="28")
    page = province.get("/staff/archive").text
    assert 'id="province-note"' in page and 'id="archive-none"' in page
    assert province.get("/staff/archive/1404-07/monthly.pdf").status == 404
