"""A unit's inbox on the web (/staff/inbox): a unit opens it from its own link in Debian's
Chromium and acts, a unit's account logs in (TOTP) and sees the same; revoked links, links
signed with a retired key, expired ones and complaints' links are refused; no page carries a
caller's tracking code or its hash."""
from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select

from accountability import inbox
from accountability.staff import StaffAudit
from clock.calendar import load as load_calendar
from common import keyring, links
from complaints.filing import file_complaint
from db.engine import make_engine, make_sessionmaker
from db.models import Complaint, ComplaintEvent
from dispatch.models import InspectionUnit
from dispatch.units import load_demo_units
from ivr.events import ComplaintDraft
from tests.staffweb import Clock, Http, chromium, login, shown, start_server, submit  # noqa: F401  (chromium: a fixture)

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
TRACKING_KEY = b"inbox-test-tracking-key"


@dataclasses.dataclass
class Filed:
    case_number: str
    id: int
    code: str  # the caller's tracking code: never on a page
    code_hash: str


def _file(Session, at: dt.datetime, n: int, agency: str = "101", office: str = "280101", calendar=None) -> Filed:
    code = f"{48213900 + n:08d}"
    code_hash = keyring.code_hash(TRACKING_KEY, code)
    with Session() as s:
        c = file_complaint(s, ComplaintDraft("28", agency, office, "disrespect", None), at, 3,
                           code_hash=code_hash, calendar=calendar)
        return Filed(c.case_number, c.id, code, code_hash)


@pytest.fixture
def site(migrated, tmp_path):
    """The combined server on an always-open office calendar (so deadlines follow filing times
    at any hour the test runs), with p28-101's three complaints (one late) and hq-102's one."""
    always = tmp_path / "always.toml"
    always.write_text('hours = ""\n')
    settings = dataclasses.replace(migrated, office_calendar=str(always))
    engine = make_engine(settings.db_url)
    Session = make_sessionmaker(engine)
    with Session() as s:
        load_demo_units(s)
    cal, now = load_calendar(str(always)), dt.datetime.now(dt.timezone.utc)
    filed = [_file(Session, now - dt.timedelta(hours=h), i, calendar=cal) for i, h in enumerate((1, 4, 2))]
    other = _file(Session, now - dt.timedelta(hours=5), 9, agency="102", office="280102", calendar=cal)
    clock = Clock()
    server = start_server(settings, engine, clock=clock)
    try:
        yield Site(settings, Session, server, clock, filed, other)
    finally:
        server.stop()


@dataclasses.dataclass
class Site:
    settings: object
    Session: object
    server: object
    clock: Clock
    filed: list[Filed]  # filed 1, 4 and 2 hours ago: the 4-hour one is late
    other: Filed  # another unit's

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def unit(self, code: str) -> InspectionUnit:
        with self.Session() as s:
            u = s.scalar(select(InspectionUnit).where(InspectionUnit.code == code))
            s.expunge(u)
            return u

    def link_path(self, code: str = "p28-101") -> str:
        with self.Session() as s:
            url = inbox.issue(s, self.settings, self.unit(code), self.clock())
            s.commit()
        return url[len(links.base_url(self.settings)):]

    def expected_order(self) -> list[str]:
        late, older, fresh = self.filed[1], self.filed[2], self.filed[0]
        return [late.case_number, older.case_number, fresh.case_number]

    def complaint(self, filed: Filed) -> Complaint:
        with self.Session() as s:
            return s.get(Complaint, filed.id)

    def actors(self, filed: Filed) -> list[tuple[str, str]]:
        with self.Session() as s:
            return [(e.kind, e.actor) for e in s.scalars(
                select(ComplaintEvent).where(ComplaintEvent.complaint_id == filed.id).order_by(ComplaintEvent.id))]


def _no_caller_secrets(html: str, site: Site) -> None:
    for f in site.filed + [site.other]:
        assert f.code not in html and f.code_hash not in html and f.code_hash[:16] not in html


def _rows(driver) -> list[str]:
    return [tr.get_attribute("data-case") for tr in driver.find_elements(By.CSS_SELECTOR, "#waiting tbody tr")]


def _act_on_first(driver, site: Site) -> Filed:
    """From the list, open the nearest deadline, acknowledge it, resolve it with an outcome."""
    late = site.filed[1]
    driver.find_element(By.CSS_SELECTOR, f'tr[data-case="{late.case_number}"] a.case').click()
    assert shown(driver, "case").text == late.case_number
    assert [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#history li")][0].startswith("ثبت شکایت")
    _no_caller_secrets(driver.page_source, site)
    submit(driver, "ack")
    assert "در حال رسیدگی است" in shown(driver, "flash").text
    assert driver.find_element(By.ID, "status").get_attribute("data-status") == "under_review"
    driver.find_element(By.CSS_SELECTOR, 'input[name="outcome"][value="written_warning"]').click()
    driver.find_element(By.ID, "note").send_keys("تذکر کتبی داده شد")
    submit(driver, "resolve")
    assert "شکایت بسته شد" in shown(driver, "flash").text
    assert shown(driver, "closed") and not driver.find_elements(By.ID, "resolve-form")
    return late


@SQLITE_ONLY
def test_a_unit_opens_its_inbox_from_its_link_and_acts(site, chromium, tmp_path):
    chromium.set_window_size(1280, 1000)
    chromium.get(site.base + site.link_path())
    assert shown(chromium, "unit").text == site.unit("p28-101").name_fa
    assert _rows(chromium) == site.expected_order()  # nearest deadline first, the late one on top
    late_row = chromium.find_element(By.CSS_SELECTOR, "#waiting tbody tr")
    assert "late" in late_row.get_attribute("class") and "دیرکرد" in late_row.text
    assert "از مهلت گذشته" in late_row.text and re.search(r"[۰-۹]", late_row.text)
    assert chromium.find_element(By.ID, "open-count").text == "۳"  # Persian digits
    html = chromium.page_source
    assert site.other.case_number not in html  # another unit's complaint
    assert 'http-equiv="refresh"' in html and "<script" not in html
    _no_caller_secrets(html, site)
    chromium.save_screenshot(str(tmp_path / "inbox.png"))

    acted = _act_on_first(chromium, site)
    c = site.complaint(acted)
    assert (c.status, c.outcome) == ("resolved", "written_warning")
    assert site.actors(acted)[-2:] == [("acknowledged", "unit p28-101"), ("resolved", "unit p28-101")]
    chromium.find_element(By.ID, "back").click()
    assert _rows(chromium) == site.expected_order()[1:]
    assert chromium.find_element(By.CSS_SELECTOR, f'#resolved tr[data-case="{acted.case_number}"]')
    _no_caller_secrets(chromium.page_source, site)


@SQLITE_ONLY
def test_a_unit_account_logs_in_and_sees_the_same_inbox(site, chromium):
    from tests.staffweb import make_user

    name, password, secret = make_user(site.server.app.engine, "unit", unit="p28-101", now=site.clock())
    login(chromium, site.base, name, password, secret, clock=site.clock)
    assert shown(chromium, "unit").text == site.unit("p28-101").name_fa  # the inbox is its first page
    assert chromium.current_url == f"{site.base}/staff/inbox"
    assert _rows(chromium) == site.expected_order()
    assert chromium.find_element(By.ID, "nav-inbox").get_attribute("aria-current") == "page"
    _no_caller_secrets(chromium.page_source, site)
    acted = _act_on_first(chromium, site)
    label = f"unit p28-101, staff {name} (web)"
    assert site.actors(acted)[-2:] == [("acknowledged", label), ("resolved", label)]
    with site.Session() as s:
        kinds = [a.kind for a in s.scalars(select(StaffAudit).where(StaffAudit.case_number == acted.case_number)
                                           .order_by(StaffAudit.id))]
    assert kinds == ["inbox_ack", "inbox_resolve"]


def test_refused_links_and_other_units_complaints(site):
    http = Http(site.base)
    path = site.link_path()
    page = http.get(path)
    assert page.status == 200 and site.filed[0].case_number in page.text
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    _no_caller_secrets(page.text, site)
    detail = http.get(f"{path}/{site.filed[0].case_number}")
    assert detail.status == 200 and 'id="ack-form"' in detail.text
    _no_caller_secrets(detail.text, site)
    assert http.get(f"{path}/{site.other.case_number}").status == 404  # another unit's: not found here
    token = path.rsplit("/", 1)[1]
    no_csrf = http.post(f"{path}/{site.filed[0].case_number}", {"action": "ack"})
    assert no_csrf.status == 403 and site.complaint(site.filed[0]).status == "received"

    # a complaint's link does not open an inbox; an inbox link does not open the units' page
    unit_id = site.unit("p28-101").id
    complaint_token = links.sign(links.keys(site.settings)[0], site.filed[0].id, unit_id,
                                 site.clock() + dt.timedelta(days=1))
    refused = http.get(f"/staff/inbox/{complaint_token}")
    assert refused.status == 403 and 'data-code="tampered"' in refused.text
    assert http.get(f"/u/{complaint_token}").status == 200
    assert http.get(f"/u/{token}").status == 403

    site.clock.advance(days=181)
    expired = http.get(path)
    assert expired.status == 410 and 'data-code="expired"' in expired.text
    site.clock.advance(days=-181)

    with site.Session() as s:
        inbox.revoke(s, site.unit("p28-101"), site.clock())
        s.commit()
    revoked = http.get(path)
    assert revoked.status == 403 and 'data-code="revoked"' in revoked.text
    assert http.get(f"{path}/{site.filed[0].case_number}").status == 403
    fresh = site.link_path()
    assert http.get(fresh).status == 200

    for _ in range(links.KEEP_KEYS):
        links.rotate(site.settings)
        assert http.get(fresh).status == 200  # signed with a key still accepted
    links.rotate(site.settings)  # its key is retired now
    retired = http.get(fresh)
    assert retired.status == 403 and 'data-code="tampered"' in retired.text


def test_only_a_units_account_has_an_inbox(site):
    from tests.staffweb import make_user, totp_now

    http = Http(site.base)
    assert http.get("/staff/inbox").status == 303  # to the login page
    name, password, secret = make_user(site.server.app.engine, "province", province="28", now=site.clock())
    assert http.login(name, password, totp_now(secret, 0, site.clock())).status == 303
    assert http.get("/staff/inbox").status == 403
    assert http.get(f"/staff/inbox/complaint/{site.filed[0].case_number}").status == 403
    other = Http(site.base)
    name, password, secret = make_user(site.server.app.engine, "unit", unit="hq-102", now=site.clock())
    assert other.login(name, password, totp_now(secret, 0, site.clock())).status == 303
    page = other.get("/staff/inbox")
    assert page.status == 200 and site.other.case_number in page.text
    assert site.filed[0].case_number not in page.text
    assert other.get(f"/staff/inbox/complaint/{site.filed[0].case_number}").status == 404


def test_forwarding_from_the_inbox_takes_the_complaint_to_the_other_units_inbox(site):
    http, path, c = Http(site.base), site.link_path(), site.filed[0]
    detail = http.get(f"{path}/{c.case_number}")
    form = {"csrf": detail.csrf(), "action": "reassign", "to": "hq-101"}
    refused = http.post(f"{path}/{c.case_number}", form)  # no reason: the units' page's own error
    assert refused.status == 409 and 'id="form-error"' in refused.text
    done = http.post(f"{path}/{c.case_number}", {**form, "reason": "موضوع در حوزهٔ ستاد است"})
    assert done.status == 303 and done.location.endswith(f"{path}?done=reassign")
    after = http.get(done.location)
    assert after.status == 200 and 'id="flash"' in after.text and f'data-case="{c.case_number}"' not in after.text
    assert http.get(f"{path}/{c.case_number}").status == 404  # not this unit's any more
    assert site.actors(c)[-1] == ("reassigned", "unit p28-101")
    hq = Http(site.base).get(site.link_path("hq-101"))
    assert f'data-case="{c.case_number}"' in hq.text
