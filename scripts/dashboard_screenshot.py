"""Save a screenshot of the supervisors' dashboard with demo-like data (docs/dashboard.png in the README).

    .venv/bin/python scripts/dashboard_screenshot.py [docs/dashboard.png]

A throwaway SQLite database with the demo data and units; three months of simulated traffic
(`favad report simulate`'s own code) and, on the last evening, a few complaints filed through
the real filing code whose escalation deadlines the outbox sets, two of them left waiting past
it; a national account logged in through the login form (password and TOTP) on the server and
Debian's Chromium as the tests run them, the app's clock held at that evening. Nothing leaves
the machine.
"""
from __future__ import annotations

import datetime as dt
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 21, 19, 30, tzinfo=UTC)  # Saturday 1405/08/30, 23:00 in Tehran
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--lang=fa")
MONTHS = (("1405-06", 1400), ("1405-07", 1700), ("1405-08", 2100))  # (month, complaints)
# (hours before NOW, province, agency, office, indicator): filed today, routed by the real code
TODAY = ((9.0, "28", "101", "280101", "employee_absent"), (8.5, "21", "108", "210108", "disrespect"),
         (6.0, "26", "104", "260104", "work_postponed"), (4.0, "21", "103", "210103", "disrespect"),
         (2.0, "28", "102", "280102", "late_start_early_end"))


def populate(settings) -> tuple[str, str, str]:
    """The data and a national account; (name, password, TOTP secret)."""
    from sqlalchemy import update

    from accountability import accounts
    from clock.calendar import load
    from complaints.filing import file_complaint
    from db.engine import make_engine, make_sessionmaker
    from db.store import load_demo
    from dispatch.models import ComplaintRoute
    from dispatch.units import load_demo_units
    from ivr.events import ComplaintDraft
    from migrations.run import upgrade
    from reports.months import parse
    from reports.simulate import simulate

    upgrade(settings.db_url)
    engine = make_engine(settings.db_url)
    cal = load()
    with make_sessionmaker(engine)() as s:
        load_demo(s)
        load_demo_units(s)
        for month, n in MONTHS:
            simulate(s, parse(month), n, cal, seed=int(month[-2:]))
        for i, (hours, province, agency, office, indicator) in enumerate(TODAY):
            c = file_complaint(s, ComplaintDraft(province, agency, office, indicator, None),
                               NOW - dt.timedelta(hours=hours), 3, calendar=cal)
            if i < 2:  # waiting past the escalation deadline the dispatcher would set
                s.execute(update(ComplaintRoute).where(ComplaintRoute.complaint_id == c.id)
                          .values(escalate_at=NOW - dt.timedelta(hours=1)))
        issued = accounts.add(s, "zahra.ahmadi", "national", NOW)
        s.commit()
    engine.dispose()
    return "zahra.ahmadi", issued.password, issued.totp_secret


def main(out: str) -> None:
    import pyotp
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from config import Settings
    from web.server import Site, WebServer

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=tmp, database_url=f"sqlite:///{tmp}/demo.sqlite3",
                            link_keys="demo-screenshot-key-" + "0" * 32)
        name, password, secret = populate(settings)
        server = WebServer(settings, host="127.0.0.1", port=0, app=Site(settings, clock=lambda: NOW)).start()
        options = Options()
        options.binary_location = "/usr/bin/chromium"
        for flag in FLAGS + ("--window-size=1280,900",):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        base = f"http://127.0.0.1:{server.port}/staff"
        try:
            driver.get(f"{base}/login")
            driver.find_element(By.ID, "name").send_keys(name)
            driver.find_element(By.ID, "password").send_keys(password)
            driver.find_element(By.ID, "code").send_keys(pyotp.TOTP(secret).at(NOW))
            driver.find_element(By.ID, "login").click()
            WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "who"))
            driver.get(f"{base}/dashboard")
            WebDriverWait(driver, 60).until(lambda d: d.execute_script(
                "return ['map', 'hotspots-chart', 'trend-chart'].every("
                "i => document.getElementById(i).complete && document.getElementById(i).naturalWidth > 0)"))
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1280, min(max(height + 120, 900), 4000))
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(out)
            _shrink(out)
        finally:
            driver.quit()
            server.stop()
    print(f"dashboard screenshot: {out}")


def _shrink(path: str) -> None:
    """256 colours are plenty for a page of text and flat charts: a third of the bytes."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(256)
    small.save(path, optimize=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "docs" / "dashboard.png"))
