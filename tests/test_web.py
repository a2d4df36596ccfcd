"""The inspection units' page: signed links, the page itself (Werkzeug's test client and a real
headless Chromium over loopback), tampered, expired and reused links, CSRF, and the links in
the messages the dispatcher sends."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import mailbox
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.test import Client

from db.engine import make_engine, make_sessionmaker
from db.models import Complaint, ComplaintEvent
from complaints.filing import file_complaint
from dispatch.models import ComplaintRoute, InspectionUnit, OutboxMessage
from dispatch.render import ucs2_len
from dispatch.units import load_demo_units
from ivr.events import ComplaintDraft
from common import links
from web.app import UnitsPage
from tests.staffweb import chromium  # noqa: F401  (a fixture: the browser below)

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
KEY, OLD_KEY = "k2-" + "a" * 40, "k1-" + "b" * 40


def utcnow():
    return dt.datetime.now(dt.timezone.utc)


# ---- the links, pure ------------------------------------------------------------------------
def test_a_link_names_its_complaint_unit_and_expiry_and_fits_an_sms():
    now = dt.datetime(2025, 10, 11, 10, 0, tzinfo=dt.timezone.utc)
    token = links.sign(KEY.encode(), 123456, 789, now + dt.timedelta(days=14))
    assert re.fullmatch(r"[A-Za-z0-9_-]{20,32}", token)
    link = links.verify([KEY.encode()], token, now)
    assert (link.complaint_id, link.unit_id) == (123456, 789)
    assert link.expires == now + dt.timedelta(days=14)


def test_every_changed_character_is_refused_as_tampered():
    now = dt.datetime(2025, 10, 11, 10, 0, tzinfo=dt.timezone.utc)
    token = links.sign(KEY.encode(), 42, 7, now + dt.timedelta(days=1))
    for i in range(len(token)):
        for c in ("A", "z", "-"):
            forged = token[:i] + c + token[i + 1:]
            if forged == token:
                continue
            with pytest.raises(links.LinkError) as e:
                links.verify([KEY.encode()], forged, now)
            assert e.value.code == "tampered"
    for junk in ("", "abc", "!!!!", "é" * 30, token + "A", token[:-1]):
        with pytest.raises(links.LinkError):
            links.verify([KEY.encode()], junk, now)


def test_a_genuine_link_past_its_time_is_expired_not_tampered():
    now = dt.datetime(2025, 10, 11, 10, 0, tzinfo=dt.timezone.utc)
    token = links.sign(KEY.encode(), 42, 7, now)
    with pytest.raises(links.LinkError) as e:
        links.verify([KEY.encode()], token, now)
    assert e.value.code == "expired" and e.value.expired_at == now


def test_rotation_newest_key_signs_older_keys_still_verify_unknown_keys_do_not(tmp_path):
    from config import Settings

    settings = Settings(data_dir=str(tmp_path))
    now = utcnow()
    first = links.keys(settings)  # generated on first use, mode 0600
    assert len(first) == 1 and (Path(tmp_path, "link-keys").stat().st_mode & 0o777) == 0o600
    old_token = links.url(settings, 1, 2, now).rsplit("/", 1)[1]
    assert links.rotate(settings) == 2
    assert links.keys(settings)[1] == first[0]
    new_token = links.url(settings, 1, 2, now).rsplit("/", 1)[1]
    assert links.verify(links.keys(settings), old_token, now).complaint_id == 1
    assert links.verify([links.keys(settings)[0]], new_token, now).unit_id == 2
    with pytest.raises(links.LinkError):
        links.verify([links.keys(settings)[0]], old_token, now)  # signed by the older key only
    configured = Settings(data_dir=str(tmp_path), link_keys=f"{KEY}, {OLD_KEY}")
    assert links.keys(configured) == [KEY.encode(), OLD_KEY.encode()]
    with pytest.raises(ValueError):
        links.rotate(configured)


# ---- a complaint waiting for its unit -----------------------------------------------------
@dataclasses.dataclass
class Desk:
    settings: object
    engine: object
    Session: object

    def file(self, agency="101", office="280101") -> tuple[Complaint, int]:
        with self.Session() as s:
            c = file_complaint(s, ComplaintDraft("28", agency, office, "disrespect", None), utcnow(), 3)
            return c, s.get(ComplaintRoute, c.id).unit_id

    def path(self, complaint_id: int, unit_id: int, expires: dt.datetime | None = None) -> str:
        expires = expires or utcnow() + dt.timedelta(days=1)
        return "/u/" + links.sign(KEY.encode(), complaint_id, unit_id, expires)

    def complaint(self, cid: int) -> Complaint:
        with self.Session() as s:
            return s.get(Complaint, cid)

    def events(self, cid: int) -> list[tuple[str, str]]:
        with self.Session() as s:
            return [(e.kind, e.actor) for e in s.scalars(
                select(ComplaintEvent).where(ComplaintEvent.complaint_id == cid).order_by(ComplaintEvent.id))]


@pytest.fixture
def desk(migrated):
    settings = dataclasses.replace(migrated, link_keys=f"{KEY},{OLD_KEY}")
    engine = make_engine(settings.db_url)
    Session = make_sessionmaker(engine)
    with Session() as s:
        load_demo_units(s)
    yield Desk(settings, engine, Session)
    engine.dispose()


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', html)[1]


@SQLITE_ONLY
def test_the_page_acknowledges_resolves_and_then_says_the_complaint_is_closed(desk):
    c, unit_id = desk.file()
    client, path = Client(UnitsPage(desk.settings, desk.engine)), desk.path(c.id, unit_id)
    page = client.get(path)
    assert page.status_code == 200 and 'dir="rtl"' in page.text and f'dir="ltr">{c.case_number}<' in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    csrf = _csrf(page.text)
    r = client.post(path, data={"csrf": csrf, "action": "ack"}, headers={"Origin": "null"})
    assert r.status_code == 303 and r.headers["Location"].endswith("?done=ack")
    again = client.post(path, data={"csrf": csrf, "action": "ack"})
    assert again.headers["Location"].endswith("?done=ack_again")  # a second click records nothing
    bad = client.post(path, data={"csrf": csrf, "action": "resolve", "outcome": "fired", "note": ""})
    assert bad.status_code == 409 and "یکی از نتیجه‌ها را انتخاب کنید" in bad.text
    r = client.post(path, data={"csrf": csrf, "action": "resolve", "outcome": "written_warning",
                                "note": "به کارمند تذکر کتبی داده شد"})
    assert r.status_code == 303
    closed = client.get(path)
    assert 'id="closed"' in closed.text and "<form" not in closed.text and "تذکر کتبی به کارمند" in closed.text
    reuse = client.post(path, data={"csrf": csrf, "action": "resolve", "outcome": "commendation"})
    assert reuse.status_code == 409 and "پیش‌تر بسته شده" in reuse.text
    assert desk.events(c.id) == [("filed", "ivr"), ("acknowledged", f"unit p28-101"),
                                 ("resolved", "unit p28-101")]
    got = desk.complaint(c.id)
    assert (got.status, got.outcome) == ("resolved", "written_warning")  # what the IVR reads


@SQLITE_ONLY
def test_posts_without_the_form_token_or_from_another_site_change_nothing(desk):
    c, unit_id = desk.file()
    client, path = Client(UnitsPage(desk.settings, desk.engine)), desk.path(c.id, unit_id)
    csrf = _csrf(client.get(path).text)
    for data, headers in (({"action": "ack"}, {}),
                          ({"action": "ack", "csrf": "0" * 32}, {}),
                          ({"action": "ack", "csrf": csrf}, {"Origin": "https://evil.example"}),
                          ({"action": "ack", "csrf": csrf}, {"Sec-Fetch-Site": "cross-site"})):
        r = client.post(path, data=data, headers=headers)
        assert r.status_code == 403 and 'data-code="forbidden"' in r.text
    # a form token belongs to its own link
    other, other_unit = desk.file()
    r = client.post(desk.path(other.id, other_unit), data={"action": "ack", "csrf": csrf})
    assert r.status_code == 403
    assert desk.complaint(c.id).status == "received"


@SQLITE_ONLY
def test_a_link_opens_only_its_complaint_for_its_unit_and_bad_links_get_clear_pages(desk):
    c, unit_id = desk.file()
    app = UnitsPage(desk.settings, desk.engine)
    client = Client(app)
    with desk.Session() as s:
        stranger = s.scalar(select(InspectionUnit.id).where(InspectionUnit.code == "hq-105"))
    cases = {
        desk.path(c.id, stranger): (403, "not_yours"),
        desk.path(c.id + 999, unit_id): (404, "not_found"),
        desk.path(c.id, unit_id)[:-2] + "xx": (403, "tampered"),
        desk.path(c.id, unit_id, expires=utcnow() - dt.timedelta(minutes=1)): (410, "expired"),
        "/u/" + links.sign(b"someone else's key", c.id, unit_id, utcnow() + dt.timedelta(days=1)): (403, "tampered"),
        "/anything/else": (404, "missing"),
    }
    for path, (status, code) in cases.items():
        r = client.get(path)
        assert (r.status_code, re.search(r'data-code="(\w+)"', r.text)[1]) == (status, code), path
        assert "Traceback" not in r.text and 'lang="fa"' in r.text
    assert client.get("/healthz").text == "ok\n"
    # signed with the older key (before a rotation): still works
    old = "/u/" + links.sign(OLD_KEY.encode(), c.id, unit_id, utcnow() + dt.timedelta(days=1))
    assert client.get(old).status_code == 200


@SQLITE_ONLY
def test_a_database_that_is_away_gives_a_calm_page_not_a_trace(desk):
    app = UnitsPage(desk.settings, make_engine("postgresql://nobody@127.0.0.1:1/none"))
    r = Client(app).get(desk.path(1, 1))
    # 503, not 500: the database is away (or failing over, tests/test_failover.py), not broken
    assert r.status_code == 503 and 'data-code="unavailable"' in r.text and "Traceback" not in r.text
    assert r.headers["Retry-After"] == "30" and "OperationalError" not in r.text


@SQLITE_ONLY
def test_forwarding_moves_the_complaint_and_the_old_link_stops_acting(desk):
    c, unit_id = desk.file()
    client, path = Client(UnitsPage(desk.settings, desk.engine)), desk.path(c.id, unit_id)
    csrf = _csrf(client.get(path).text)
    assert client.post(path, data={"csrf": csrf, "action": "reassign", "to": "hq-101", "reason": ""}).status_code == 409
    r = client.post(path, data={"csrf": csrf, "action": "reassign", "to": "hq-101",
                                "reason": "موضوع در حوزهٔ ستاد است"})
    assert r.status_code == 303
    after = client.get(path)
    assert after.status_code == 403 and "دفتر بازرسی و رسیدگی به شکایات سازمان تأمین اجتماعی" in after.text
    with desk.Session() as s:
        hq = s.scalar(select(InspectionUnit).where(InspectionUnit.code == "hq-101"))
        assert s.get(ComplaintRoute, c.id).unit_id == hq.id
        queued = s.scalars(select(OutboxMessage).where(OutboxMessage.complaint_id == c.id,
                                                       OutboxMessage.kind == "reassigned")).all()
        assert {(m.channel, m.recipient) for m in queued} == {(x.channel, x.address) for x in hq.contacts}
    assert client.get(desk.path(c.id, hq.id)).status_code == 200
    assert desk.complaint(c.id).status == "forwarded"


# ---- the messages carry the link ------------------------------------------------------------
@SQLITE_ONLY
def test_the_email_and_the_sms_carry_the_units_link_whole(desk):
    from dispatch.runner import Dispatcher

    c, unit_id = desk.file()
    settings = dataclasses.replace(desk.settings, public_url="https://128.example.ir")
    d = Dispatcher(settings, engine=desk.engine)
    assert d.drain() == 2
    d.close()
    [mail] = list(mailbox.Maildir(Path(settings.data_dir, "maildir"), create=False))
    text = mail.get_payload()[0].get_payload(decode=True).decode()
    url = re.search(r"https://128\.example\.ir/u/[A-Za-z0-9_-]+", text)[0]
    link = links.verify(links.keys(settings), url.rsplit("/", 1)[1], utcnow())
    assert (link.complaint_id, link.unit_id) == (c.id, unit_id)
    assert link.expires > utcnow() + dt.timedelta(days=settings.link_ttl_days - 1)
    assert f'href="{url}"' in mail.get_payload()[1].get_payload(decode=True).decode()
    [line] = Path(settings.data_dir, "sms.log").read_text(encoding="utf-8").splitlines()
    sms = json.loads(line)["text"]
    assert ucs2_len(sms) <= 134 and sms.endswith(url.rsplit("/", 1)[0] + "/" + url.rsplit("/", 1)[1])


# ---- a real browser ---------------------------------------------------------------------------
@pytest.fixture
def browser(chromium):
    return chromium


def _shown(browser, element_id: str):
    """The element once the page that has it has loaded (a click that posts a form returns
    before the next page is there)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 10).until(ec.visibility_of_element_located((By.ID, element_id)))


@SQLITE_ONLY
def test_a_unit_acknowledges_resolves_and_forwards_from_its_link_in_chromium(desk, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from web.server import WebServer

    server = WebServer(desk.settings, host="127.0.0.1", port=0, app=UnitsPage(desk.settings, desk.engine)).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        c, unit_id = desk.file()
        link = base + desk.path(c.id, unit_id)
        browser.get(link)
        assert browser.find_element(By.ID, "status").get_attribute("data-status") == "received"
        assert browser.execute_script("return getComputedStyle(document.body).direction") == "rtl"
        browser.save_screenshot(str(tmp_path / "open.png"))
        browser.find_element(By.ID, "ack").click()
        _shown(browser, "flash")
        assert browser.find_element(By.ID, "status").get_attribute("data-status") == "under_review"
        assert not browser.find_elements(By.ID, "ack")
        browser.find_element(By.CSS_SELECTOR, "input[name=outcome][value=fixed_on_spot]").click()
        browser.find_element(By.ID, "note").send_keys("صف دوباره باز شد و کار مراجعان انجام شد")
        browser.find_element(By.ID, "resolve").click()
        _shown(browser, "closed")
        assert browser.find_element(By.ID, "outcome").text == "تأیید و در همان محل برطرف شد"
        browser.save_screenshot(str(tmp_path / "resolved.png"))
        browser.get(link)  # the same link again, after resolution: a clear page, no form
        assert browser.find_element(By.ID, "closed") and not browser.find_elements(By.TAG_NAME, "form")
        assert desk.events(c.id)[-1] == ("resolved", "unit p28-101")

        other, other_unit = desk.file()
        browser.get(base + desk.path(other.id, other_unit))
        browser.find_element(By.CSS_SELECTOR, "details summary").click()
        Select(browser.find_element(By.ID, "to")).select_by_value("hq-101")
        browser.find_element(By.ID, "reason").send_keys("موضوع در حوزهٔ ستاد سازمان است")
        browser.find_element(By.ID, "reassign").click()
        assert "ارجاع شد" in _shown(browser, "flash").text
        browser.get(base + desk.path(other.id, other_unit))
        assert browser.find_element(By.ID, "message").get_attribute("data-code") == "not_yours"

        token = desk.path(c.id, unit_id).rsplit("/", 1)[1]
        for path, code in ((f"/u/{token[:5]}{'B' if token[5] != 'B' else 'C'}{token[6:]}", "tampered"),
                           (desk.path(c.id, unit_id, utcnow() - dt.timedelta(days=1)), "expired")):
            browser.get(base + path)
            message = browser.find_element(By.ID, "message")
            assert message.get_attribute("data-code") == code and message.is_displayed()
            assert "Traceback" not in browser.page_source
        browser.save_screenshot(str(tmp_path / "expired.png"))
    finally:
        server.stop()


@SQLITE_ONLY
def test_the_server_answers_on_loopback_and_stops_cleanly(desk):
    import urllib.request

    from web.server import WebServer

    server = WebServer(desk.settings, host="127.0.0.1", port=0).start()
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=5) as r:
        assert r.read() == b"ok\n"
    server.stop()
    assert not server.thread.is_alive()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=2)


# ---- a public page under attack (issue 12, item 5) -------------------------------------------
@SQLITE_ONLY
def test_150_silent_connections_do_not_take_the_page_offline(desk):
    import socket
    import time
    import urllib.request

    from web.server import WebServer

    server = WebServer(desk.settings, host="127.0.0.1", port=0, channel_timeout=3, cleanup_interval=1).start()
    idle = []
    try:
        for _ in range(150):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        time.sleep(0.5)  # all of them accepted and held
        started = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=5) as r:
            assert r.read() == b"ok\n"
        assert time.monotonic() - started < 2
        # and silence is not kept for long: the server closes them (EOF) after channel_timeout
        deadline = time.monotonic() + 10
        closed = 0
        for s in idle:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                closed += s.recv(1) == b""
            except (TimeoutError, ConnectionResetError):
                pass
        assert closed == len(idle)
    finally:
        for s in idle:
            s.close()
        server.stop()


@SQLITE_ONLY
def test_the_public_page_limits_are_set_not_waitresss_defaults(desk):
    from web.server import WebServer

    server = WebServer(desk.settings, host="127.0.0.1", port=0)
    try:
        adj = server.server.adj
        assert adj.connection_limit >= 1000 and adj.channel_timeout <= 30 and adj.asyncore_use_poll
        assert adj.max_request_body_size <= 64 * 1024 and adj.max_request_header_size <= 16 * 1024
    finally:
        server.stop()


@SQLITE_ONLY
def test_a_forged_host_does_not_pass_the_origin_check(desk):
    c, unit_id = desk.file()
    settings = dataclasses.replace(desk.settings, public_url="https://128.example.ir")
    client, path = Client(UnitsPage(settings, desk.engine)), desk.path(c.id, unit_id)
    csrf = _csrf(client.get(path).text)
    # the attacker's page at evil.example posts to the page with Host: evil.example (a DNS
    # rebinding, a proxy that passes Host through): the origin matches the Host, not public_url
    for origin, host in (("http://evil.example", "evil.example"), ("https://evil.example", "evil.example"),
                         ("http://localhost", "localhost")):
        r = client.post(path, data={"csrf": csrf, "action": "ack"}, headers={"Origin": origin, "Host": host})
        assert r.status_code == 403 and 'data-code="forbidden"' in r.text
    assert desk.complaint(c.id).status == "received"
    # the configured origin passes, its default port written or not
    r = client.post(path, data={"csrf": csrf, "action": "ack"}, headers={"Origin": "https://128.Example.ir:443"})
    assert r.status_code == 303 and desk.complaint(c.id).status == "under_review"


@SQLITE_ONLY
def test_a_large_body_is_refused_before_it_is_read(desk):
    import socket

    from web.server import WebServer

    server = WebServer(desk.settings, host="127.0.0.1", port=0).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(b"POST /u/x HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n" + b"a" * 1000)
            head = s.recv(200)
        assert head.startswith(b"HTTP/1.1 413")
    finally:
        server.stop()
