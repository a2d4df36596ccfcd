"""The staff web interface's accounts (issue 16): login with a second factor in Chromium, one
answer for every failed login, lockout and its end, a TOTP code used once, idle and absolute
session ends, logout, disabled and reset accounts, CSRF, roles (an analyst may not act), the
append-only audit trail, `favad staff`, and 150 silent connections. Real servers, real
PostgreSQL and SQLite, Debian's Chromium."""
from __future__ import annotations

import hashlib
import logging
import socket
import time

import pytest
from click.testing import CliRunner
from flask import Blueprint
from sqlalchemy import select, text

from accountability import accounts
from accountability.staff import StaffAccount, StaffAudit, StaffSession
from cli import main
from conftest import favad_env
from staffweb import Http, chromium, login, make_user, shown, staff, start_server, totp_now  # noqa: F401
from web.staff.auth import audit, login_required

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
POSTGRES_ONLY = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)


def _kinds(site, name: str | None = None) -> list[str]:
    with site.Session() as s:
        stmt = select(StaffAudit.kind).order_by(StaffAudit.id)
        if name is not None:
            stmt = stmt.join(StaffAccount, StaffAccount.id == StaffAudit.account_id).where(StaffAccount.name == name)
        return list(s.scalars(stmt))


def _logged_in(site, role="national", **scope) -> tuple[Http, tuple[str, str, str]]:
    user = site.user(role, **scope)
    http = site.http()
    r = http.login(user[0], user[1], site.totp(user[2]))
    assert r.status == 303 and r.location == "/staff/", r.text[:300]
    return http, user


# ---- in a browser ---------------------------------------------------------------------------
def test_a_national_user_logs_in_with_the_second_factor_sees_the_audit_and_logs_out_in_chromium(staff, chromium, tmp_path):
    from selenium.webdriver.common.by import By

    name, password, secret = staff.user("national")
    chromium.get(f"{staff.base}/staff/audit")  # not logged in: to the login page, in Persian, right to left
    assert chromium.current_url.startswith(f"{staff.base}/staff/login")
    assert chromium.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fa"
    assert chromium.execute_script("return getComputedStyle(document.body).direction") == "rtl"
    assert "Noto Sans Arabic" in chromium.execute_script("return getComputedStyle(document.body).fontFamily")
    # the right password with a wrong code is refused
    chromium.find_element(By.ID, "name").send_keys(name)
    chromium.find_element(By.ID, "password").send_keys(password)
    wrong = "000000" if staff.totp(secret) != "000000" else "111111"
    chromium.find_element(By.ID, "code").send_keys(wrong)
    chromium.find_element(By.ID, "login").click()
    assert shown(chromium, "login-error").text.startswith("ورود انجام نشد")
    chromium.save_screenshot(str(tmp_path / "refused.png"))
    # with the code: in, and back where the login began (the form kept where that was)
    assert chromium.find_element(By.ID, "name").get_attribute("value") == name
    chromium.find_element(By.ID, "password").send_keys(password)
    chromium.find_element(By.ID, "code").send_keys(staff.totp(secret))
    chromium.find_element(By.ID, "login").click()
    shown(chromium, "who")
    assert chromium.find_element(By.ID, "who").get_attribute("data-role") == "national"
    assert chromium.current_url == f"{staff.base}/staff/audit"
    kinds = [row.get_attribute("data-kind") for row in chromium.find_elements(By.CSS_SELECTOR, "#audit tbody tr")]
    assert kinds[:3] == ["login_ok", "login_failed", "account_added"]
    assert chromium.find_element(By.ID, "nav-audit").get_attribute("aria-current") == "page"
    assert not chromium.find_elements(By.TAG_NAME, "script")
    chromium.save_screenshot(str(tmp_path / "audit.png"))
    # logout ends the session: the page is gone until the next login
    chromium.find_element(By.ID, "logout").click()
    assert shown(chromium, "login-notice").get_attribute("data-notice") == "logged_out"
    chromium.get(f"{staff.base}/staff/audit")
    assert chromium.find_elements(By.ID, "login-form") and not chromium.find_elements(By.ID, "who")
    assert _kinds(staff, name) == ["login_failed", "login_ok", "logout"]
    with staff.Session() as s:
        assert s.scalar(select(StaffSession.revoked_at)) is not None


# ---- failed logins --------------------------------------------------------------------------
def _failure_text(r) -> str:
    start = r.text.index('id="login-error"')
    return r.text[start:r.text.index("</p>", start)]


def test_every_failed_login_gets_one_answer_and_five_lock_the_account_for_fifteen_minutes(staff):
    name, password, secret = staff.user("province", province="28")
    http = staff.http()
    unknown = http.login("nobody-" + name, password, staff.totp(secret))
    answers = {(unknown.status, _failure_text(unknown))}
    for _ in range(5):
        r = http.login(name, "wrong " + password, staff.totp(secret))
        answers.add((r.status, _failure_text(r)))
    locked = http.login(name, password, staff.totp(secret))  # right, but locked
    answers.add((locked.status, _failure_text(locked)))
    assert len(answers) == 1 and answers.pop()[0] == 401
    assert "favad_staff" not in http.cookies
    staff.clock.advance(minutes=14)
    assert http.login(name, password, staff.totp(secret)).status == 401
    staff.clock.advance(minutes=1, seconds=1)
    ok = http.login(name, password, staff.totp(secret))
    assert ok.status == 303 and "favad_staff" in http.cookies
    assert _kinds(staff, name) == ["login_failed"] * 4 + ["login_locked"] + ["login_refused_locked"] * 2 + ["login_ok"]
    assert _kinds(staff).count("login_failed") == 5  # the unknown name's row has no account
    with staff.Session() as s:
        a = s.scalar(select(StaffAccount).where(StaffAccount.name == name))
        assert a.failed_attempts == 0 and a.locked_until is None


def test_a_code_is_accepted_once_and_the_next_one_is_accepted_early(staff):
    name, password, secret = staff.user("agency", agency="101")
    code = staff.totp(secret)
    first, second = staff.http(), staff.http()
    assert first.login(name, password, code).status == 303
    assert second.login(name, password, code).status == 401  # seen: a replayed code
    assert second.login(name, password, staff.totp(secret, 1)).status == 303
    assert staff.http().login(name, password, staff.totp(secret, -1)).status == 401  # older than one used
    assert staff.http().login(name, password, staff.totp(secret, 2)).status == 401  # too far ahead


# ---- sessions -------------------------------------------------------------------------------
def test_the_session_cookie_is_strict_and_the_database_keeps_only_its_hash(staff):
    http, (name, _, _) = _logged_in(staff)
    r = http.get("/staff/audit")
    assert r.status == 200
    sid = http.cookies["favad_staff"]
    with staff.Session() as s:
        assert list(s.scalars(select(StaffSession.id_hash))) == [hashlib.sha256(sid.encode()).hexdigest()]
    again = staff.http()
    cookie = [c for c in (again.login(name, *_creds_again(staff, name)).headers.get_all("Set-Cookie") or [])
              if c.startswith("favad_staff=")]
    assert cookie and all(f in cookie[0] for f in ("HttpOnly", "SameSite=Strict", "Path=/staff"))
    assert "Secure" not in cookie[0]  # public_url is http here; https makes it Secure (below)


def _creds_again(site, name):
    """New credentials for ``name`` (a reset), as (password, code)."""
    with site.Session() as s:
        issued = accounts.reset(s, name, site.clock())
        s.commit()
    return issued.password, site.totp(issued.totp_secret)


@SQLITE_ONLY
def test_the_cookie_is_secure_when_the_pages_are_public_over_https(migrated):
    import dataclasses

    settings = dataclasses.replace(migrated, public_url="https://128.example.ir")
    server = start_server(settings)
    try:
        name, password, secret = make_user(server.app.engine, "national")
        http = Http(f"http://127.0.0.1:{server.port}")
        token = http.get("/staff/login").csrf()
        r = http.post("/staff/login", {"csrf": token, "name": name, "password": password, "code": totp_now(secret)},
                      headers={"Origin": "https://128.example.ir"})
        [cookie] = [c for c in r.headers.get_all("Set-Cookie") if c.startswith("favad_staff=")]
        assert r.status == 303 and "Secure" in cookie
        r = http.post("/staff/login", {"csrf": token}, headers={"Origin": "http://127.0.0.1"})  # not the site's
        assert r.status == 403 and 'data-code="csrf"' in r.text
    finally:
        server.stop()


def test_an_idle_session_ends_after_thirty_minutes_and_any_session_after_twelve_hours(staff):
    idle, (name, _, _) = _logged_in(staff)
    staff.clock.advance(minutes=29)
    assert idle.get("/staff/audit").status == 200  # used: the idle clock starts again
    staff.clock.advance(minutes=30)
    r = idle.get("/staff/audit")
    assert r.status == 303 and r.location == "/staff/login?next=/audit&expired=1"
    assert "favad_staff" not in idle.cookies  # the dead cookie is deleted
    page = idle.get(r.location)
    assert 'data-notice="expired"' in page.text
    busy, (other, _, _) = _logged_in(staff)
    for _ in range(12 * 60 // 25 + 1):  # used every 25 minutes, never idle, past 12 hours
        assert busy.get("/staff/audit").status == 200
        staff.clock.advance(minutes=25)
    assert busy.get("/staff/audit").status == 303
    assert _kinds(staff, name)[-1] == _kinds(staff, other)[-1] == "session_expired"


def test_a_disabled_account_is_refused_at_once_and_a_reset_ends_sessions(staff):
    http, (name, password, secret) = _logged_in(staff, "analyst", province="28")
    with staff.Session() as s:
        accounts.set_disabled(s, name, True, staff.clock())
        s.commit()
    assert http.get("/staff/audit").status == 303  # the live session ended with the account
    assert staff.http().login(name, password, staff.totp(secret, 1)).status == 401
    with staff.Session() as s:
        accounts.set_disabled(s, name, False, staff.clock())
        s.commit()
    again = staff.http()
    assert again.login(name, password, staff.totp(secret, 1)).status == 303
    password2, code2 = _creds_again(staff, name)
    assert again.get("/staff/").status == 303 and again.get("/staff/").location.startswith("/staff/login")
    assert staff.http().login(name, password, code2).status == 401  # the old password is gone
    assert staff.http().login(name, password2, code2).status == 303
    assert "login_refused_disabled" in _kinds(staff, name)


# ---- forms and roles ------------------------------------------------------------------------
def test_a_post_without_the_csrf_token_or_from_another_site_is_refused(staff):
    http, (name, _, _) = _logged_in(staff)
    token = http.get("/staff/audit").csrf()
    for data, headers in (({}, {}), ({"csrf": "0" * 64}, {}), ({"csrf": token + "0"}, {}),
                          ({"csrf": token}, {"Sec-Fetch-Site": "cross-site"}),
                          ({"csrf": token}, {"Origin": "http://evil.example"})):
        r = http.post("/staff/logout", data, headers)
        assert r.status == 403 and 'data-code="csrf"' in r.text and 'dir="rtl"' in r.text, (data, headers)
    assert http.get("/staff/audit").status == 200  # still logged in: nothing was done
    stranger = staff.http()  # a token from another browser's cookie does not fit this one
    assert stranger.post("/staff/login", {"csrf": token, "name": name}).status == 403
    r = http.post("/staff/logout", {"csrf": token}, {"Origin": "null", "Sec-Fetch-Site": "same-origin"})
    assert r.status == 303 and http.get("/staff/audit").status == 303


def test_roles_an_analyst_may_read_but_not_act_and_only_national_reads_the_audit(migrated):
    from web.server import Site, WebServer

    site = Site(migrated)
    bp = Blueprint("probe", __name__)

    @bp.get("/probe/read")
    @login_required()
    def read():
        return "read"

    @bp.post("/probe/act")
    @login_required(act=True)
    def act():
        audit("probe", case_number="A-1", count=1)
        return "acted"

    site.staff.register_blueprint(bp)
    server = WebServer(migrated, host="127.0.0.1", port=0, app=site).start()
    try:
        results = {}
        for role, scope in (("analyst", {}), ("national", {}), ("province", {"province": "28"})):
            name, password, secret = make_user(site.engine, role, **scope)
            http = Http(f"http://127.0.0.1:{server.port}")
            assert http.login(name, password, totp_now(secret)).status == 303
            token = http.get("/staff/no-such-page").csrf()  # every page has the logout form
            results[role] = (http.get("/staff/probe/read").status,
                             http.post("/staff/probe/act", {"csrf": token}).status, http.get("/staff/audit").status)
        assert results == {"analyst": (200, 403, 403), "national": (200, 200, 200), "province": (200, 200, 403)}
        from db.engine import make_sessionmaker

        with make_sessionmaker(site.engine)() as s:
            rows = s.execute(select(StaffAccount.role, StaffAudit.kind, StaffAudit.case_number).join(
                StaffAccount, StaffAccount.id == StaffAudit.account_id).where(
                StaffAudit.kind.in_(("refused", "probe"))).order_by(StaffAudit.id)).all()
        assert rows == [("analyst", "refused", None), ("analyst", "refused", None),
                        ("national", "probe", "A-1"), ("province", "probe", "A-1"), ("province", "refused", None)]
    finally:
        server.stop()


# ---- the audit trail ------------------------------------------------------------------------
def test_the_audit_trail_refuses_updates_and_deletes_in_the_database_and_holds_no_secret(staff, caplog):
    caplog.set_level(logging.DEBUG)
    http, (name, password, secret) = _logged_in(staff)
    assert staff.http().login(name, "not " + password, staff.totp(secret, 1)).status == 401
    with staff.engine.connect() as conn:
        for statement in ("UPDATE staff_audit SET kind = 'nothing'", "DELETE FROM staff_audit"):
            with pytest.raises(Exception, match="append-only"):
                with conn.begin():
                    conn.execute(text(statement))
        rows = [tuple(r) for r in conn.execute(text("SELECT * FROM staff_audit"))]
        accounts_row = conn.execute(text("SELECT * FROM staff_accounts")).one()
    assert len(rows) == 3  # account_added, login_ok, login_failed
    dumped = repr(rows) + caplog.text
    assert password not in dumped and secret not in dumped and name not in repr(rows)
    assert password not in repr(accounts_row) and any(str(v).startswith("$argon2id$") for v in accounts_row)


# ---- pages ----------------------------------------------------------------------------------
def test_every_response_carries_the_security_headers_and_errors_are_persian_pages(staff):
    http = staff.http()
    for path, status in (("/staff/login", 200), ("/staff/static/staff.css", 200), ("/staff/nowhere", 404),
                         ("/staff/", 303), ("/staff/audit", 303)):
        r = http.get(path)
        assert r.status == status, path
        assert r.headers["Content-Security-Policy"].startswith("default-src 'none'; script-src 'self'; style-src 'self'")
        assert (r.headers["Referrer-Policy"], r.headers["Cache-Control"], r.headers["X-Content-Type-Options"],
                r.headers["X-Frame-Options"]) == ("no-referrer", "no-store", "nosniff", "DENY"), path
    page = http.get("/staff/nowhere")
    assert 'lang="fa" dir="rtl"' in page.text and 'data-code="missing"' in page.text and "صفحه پیدا نشد" in page.text
    assert "http" not in http.get("/staff/static/staff.css").text  # nothing fetched from elsewhere
    login_page = http.get("/staff/login").text
    assert "<script" not in login_page and "style=" not in login_page
    assert http.get("/healthz").text == "ok\n"  # the units' page is still at the root


@SQLITE_ONLY
def test_150_silent_connections_do_not_keep_staff_from_logging_in(staff):
    idle = []
    try:
        for _ in range(150):
            idle.append(socket.create_connection(("127.0.0.1", staff.server.port), timeout=5))
        time.sleep(0.5)  # all of them accepted and held
        name, password, secret = staff.user("national")
        http = staff.http()
        assert http.get("/staff/login").status == 200
        assert http.login(name, password, staff.totp(secret)).status == 303
        assert http.get("/staff/audit").status == 200
    finally:
        for s in idle:
            s.close()


# ---- favad staff ----------------------------------------------------------------------------
@POSTGRES_ONLY
def test_favad_staff_add_list_reset_disable_enable_with_clear_errors(staff):
    env = favad_env(staff.settings)
    run = CliRunner(mix_stderr=False).invoke
    r = run(main, ["staff", "add", "zahra", "--role", "province", "--province", "28"], env=env)
    assert r.exit_code == 0, r.stderr
    password = r.stdout.split("password:", 1)[1].split()[0]
    secret = r.stdout.split("TOTP secret:", 1)[1].split()[0]
    assert f"otpauth://totp/128%20favad:zahra?secret={secret}" in r.stdout
    assert staff.http().login("zahra", password, staff.totp(secret)).status == 303
    for args, message in (
            (["add", "zahra", "--role", "national"], "exists already"),
            (["add", "x", "--role", "province"], "a province account needs --province"),
            (["add", "x", "--role", "province", "--province", "99"], "no province with area code '99'"),
            (["add", "x", "--role", "agency", "--agency", "999"], "no agency with code '999'"),
            (["add", "x", "--role", "unit", "--unit", "nowhere"], "no inspection unit with code 'nowhere'"),
            (["add", "x", "--role", "national", "--province", "28"], "a national account takes no --province"),
            (["add", "x", "--role", "analyst", "--province", "28", "--agency", "101"], "one province or one agency"),
            (["add", "two words", "--role", "national"], "without spaces"),
            (["reset", "nobody"], "no account named 'nobody'"),
            (["disable", "nobody"], "no account named 'nobody'")):
        r = run(main, ["staff", *args], env=env)
        assert r.exit_code == 1 and message in r.stderr and "Traceback" not in r.stderr + r.stdout, (args, r.stderr)
    assert run(main, ["staff", "add", "x", "--role", "chief"], env=env).exit_code == 2
    assert run(main, ["staff", "add", "u1", "--role", "unit", "--unit", "p28-101"], env=env).exit_code == 0
    r = run(main, ["staff", "list", "--json"], env=env)
    import json

    listed = {row["name"]: row for row in json.loads(r.stdout)}
    assert (listed["zahra"]["scope"], listed["u1"]["scope"], listed["u1"]["role"]) == ("province 28", "unit p28-101", "unit")
    assert password not in r.stdout and secret not in r.stdout
    r = run(main, ["staff", "list"], env=env)
    assert r.exit_code == 0 and "zahra" in r.stdout and secret not in r.stdout
    browser = staff.http()
    assert browser.login("zahra", password, staff.totp(secret, 1)).status == 303
    r = run(main, ["staff", "reset", "zahra"], env=env)
    assert r.exit_code == 0 and "its sessions ended" in r.stderr
    new_password = r.stdout.split("password:", 1)[1].split()[0]
    new_secret = r.stdout.split("TOTP secret:", 1)[1].split()[0]
    assert new_secret != secret and browser.get("/staff/").location.startswith("/staff/login")
    assert run(main, ["staff", "disable", "zahra"], env=env).exit_code == 0
    assert staff.http().login("zahra", new_password, staff.totp(new_secret)).status == 401
    assert json.loads(run(main, ["staff", "list", "--json"], env=env).stdout)[-1]["state"] == "disabled"
    assert run(main, ["staff", "enable", "zahra"], env=env).exit_code == 0
    assert staff.http().login("zahra", new_password, staff.totp(new_secret, 1)).status == 303
    kinds = _kinds(staff)
    assert [k for k in kinds if k.startswith("account_")] == [
        "account_added", "account_added", "account_reset", "account_disabled", "account_enabled"]


@SQLITE_ONLY
def test_favad_web_serve_serves_the_staff_pages_and_a_database_away_gets_a_calm_page(migrated, caplog):
    import dataclasses

    from web.server import WebServer

    server = WebServer(migrated, host="127.0.0.1", port=0).start()  # as `favad web serve` makes it
    try:
        http = Http(f"http://127.0.0.1:{server.port}")
        assert http.get("/staff/login").status == 200 and http.get("/healthz").text == "ok\n"
    finally:
        server.stop()
    away = dataclasses.replace(migrated, database_url="postgresql://postgres@127.0.0.1:1/none")
    server = start_server(away)
    try:
        http = Http(f"http://127.0.0.1:{server.port}")
        token = http.get("/staff/login").csrf()  # the form needs no database
        r = http.post("/staff/login", {"csrf": token, "name": "zahra", "password": "secret-typed", "code": "123456"})
        assert r.status == 503 and r.headers["Retry-After"] == "30" and 'data-code="unavailable"' in r.text
        assert "Traceback" not in r.text and "secret-typed" not in caplog.text
    finally:
        server.stop()


@POSTGRES_ONLY
def test_sessions_long_over_are_dropped_at_the_next_login_and_their_logins_stay_in_the_audit(staff):
    name, password, secret = staff.user("national")
    assert staff.http().login(name, password, staff.totp(secret)).status == 303
    staff.clock.advance(days=31)
    assert staff.http().login(name, password, staff.totp(secret)).status == 303
    with staff.Session() as s:
        assert len(s.scalars(select(StaffSession)).all()) == 1
    assert _kinds(staff, name) == ["login_ok", "login_ok"]
