"""Helpers for tests of the staff web interface (issue 16): accounts made by the real account
code, the combined server (units' page + /staff) on a free loopback port, a cookie-keeping HTTP
client without a browser, and a Chromium login.

    from staffweb import staff, chromium, make_user, login   # fixtures are imported by name

    def test_x(staff, chromium):
        name, password, secret = staff.user("province", province="28")
        login(chromium, staff.base, name, password, secret, clock=staff.clock)
        http = staff.http(); http.login(name, password, staff.totp(secret, 1))

``staff`` runs on both databases (it builds on conftest's ``migrated``); narrow it with
``@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)``. A TOTP code is accepted once:
a second login of the same account within 30 s passes ``step=1`` (the next code, which the
server accepts as the one after).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import html
import http.client
import re
import threading
import urllib.parse
from http.cookies import SimpleCookie

import pyotp
import pytest

from accountability import accounts
from accountability.accounts import Policy
from db.engine import make_engine, make_sessionmaker
from dispatch.units import load_demo_units

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run")


class Clock:
    """A clock the app reads (``create_app(clock=...)``): the real time plus a shift tests move."""

    def __init__(self):
        self.shift = dt.timedelta()
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return dt.datetime.now(dt.timezone.utc) + self.shift

    def advance(self, **delta) -> None:
        with self._lock:
            self.shift += dt.timedelta(**delta)


def make_user(engine, role: str, *, province: str | None = None, agency: str | None = None,
              unit: str | None = None, name: str | None = None, now: dt.datetime | None = None
              ) -> tuple[str, str, str]:
    """An account made by accountability.accounts.add: (name, password, totp_secret). Scopes are
    codes: a province's area code ("28"), an agency's code ("101"), a unit's code ("p28-101")."""
    import secrets

    name = name or f"{role}-{secrets.token_hex(3)}"
    with make_sessionmaker(engine)() as s:
        issued = accounts.add(s, name, role, now or dt.datetime.now(dt.timezone.utc),
                              province=province, agency=agency, unit=unit)
        s.commit()
    return name, issued.password, issued.totp_secret


def totp_now(secret: str, step: int = 0, at: dt.datetime | None = None) -> str:
    """The code an authenticator shows now (``at``), or ``step`` codes later (each is used once)."""
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(at or dt.datetime.now(dt.timezone.utc)) + step)


def start_server(settings, engine=None, **staff):
    """A started web.server.WebServer (units' page and /staff) on 127.0.0.1, a free port; the
    caller stops it. ``staff``: create_app's clock and policy."""
    from web.server import Site, WebServer

    return WebServer(settings, host="127.0.0.1", port=0, app=Site(settings, engine, **staff)).start()


@dataclasses.dataclass
class StaffSite:
    """A running server with the demo data and units; ``base`` is http://127.0.0.1:<port>."""
    settings: object
    engine: object
    Session: object
    server: object
    clock: Clock

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def user(self, role: str, **kw) -> tuple[str, str, str]:
        return make_user(self.engine, role, now=self.clock(), **kw)

    def totp(self, secret: str, step: int = 0) -> str:
        return totp_now(secret, step, self.clock())

    def http(self) -> "Http":
        return Http(self.base)


@pytest.fixture
def staff(migrated):
    """The combined server on a migrated, demo-loaded database (both databases), a movable clock."""
    engine = make_engine(migrated.db_url)
    Session = make_sessionmaker(engine)
    with Session() as s:
        load_demo_units(s)
    clock = Clock()
    server = start_server(migrated, engine, clock=clock, policy=Policy())
    try:
        yield StaffSite(migrated, engine, Session, server, clock)
    finally:
        server.stop()  # disposes the engine


@pytest.fixture
def chromium():
    """Debian's headless Chromium through selenium, phone-sized."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in CHROMIUM_FLAGS + ("--window-size=412,1400", "--lang=fa"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def shown(driver, element_id: str, timeout: float = 10):
    """The element once the page that has it has loaded (a click returns before the next page)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(ec.visibility_of_element_located((By.ID, element_id)))


def submit(driver, element_id: str, timeout: float = 10) -> None:
    """Click a form's button and wait until the page it posts to has replaced this one: an
    element looked up right after the click could still be the old page's (a flash, a form)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, element_id).click()
    WebDriverWait(driver, timeout).until(ec.staleness_of(old))


def login(driver, base_url: str, name: str, password: str, secret: str, *, step: int = 0, clock=None) -> None:
    """Log in through the login form; returns once the next page (not the login form) is shown."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base_url}/staff/login")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "code").send_keys(totp_now(secret, step, clock() if clock else None))
    driver.find_element(By.ID, "login").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "who") or d.find_elements(By.ID, "login-error"))


# ---- HTTP without a browser -------------------------------------------------------------------
@dataclasses.dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    text: str

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def csrf(self) -> str:
        """The CSRF token of the first form on the page."""
        return html.unescape(re.search(r'name="csrf" value="([^"]+)"', self.text)[1])


class Http:
    """An HTTP/1.1 client keeping the cookies it is given (whatever their path), following no
    redirect; ``get``/``post`` take paths like "/staff/login"."""

    def __init__(self, base: str):
        parts = urllib.parse.urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Reply:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            headers = dict(headers or {})
            if self.cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            text = r.read().decode("utf-8", "replace")
            for line in r.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(line).items():
                    if morsel["max-age"] == "0" or "1970" in morsel["expires"]:
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = morsel.value
            return Reply(r.status, r.headers, text)
        finally:
            conn.close()

    def get(self, path: str, headers: dict | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, data: dict | None = None, headers: dict | None = None) -> Reply:
        body = urllib.parse.urlencode(data or {}).encode()
        return self.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})

    def login(self, name: str, password: str, code: str) -> Reply:
        """GET the form (its token), POST it; the reply is the 303 (success) or the form again (401)."""
        token = self.get("/staff/login").csrf()
        return self.post("/staff/login", {"csrf": token, "name": name, "password": password, "code": code})
