"""Save a screenshot of a unit's inbox with demo-like data (docs/inbox.png in the README).

    .venv/bin/python scripts/inbox_screenshot.py [docs/inbox.png]

A throwaway SQLite database with the demo data and units; complaints filed through the real
filing code for the Qazvin social security unit (p28-101) at a fixed moment (Sunday 10:40 in
Tehran, offices open), forwarded through the outbox's own recording of a sent message, one
acknowledged, two resolved through accountability.actions; the server and Debian's Chromium
as the tests run them. Nothing leaves the machine.
"""
from __future__ import annotations

import datetime as dt
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 29, 7, 10, tzinfo=UTC)  # Sunday 1405/09/08 10:40 in Tehran
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--lang=fa")
# (hours before NOW, indicator, with the office) of p28-101's complaints
OPEN = ((25.7, "employee_absent", True), (2.2, "disrespect", True), (0.8, "work_postponed", False),
        (0.3, "late_start_early_end", True))
RESOLVED = ((150, "rules_not_transparent", "written_warning"), (330, "disrespect", "fixed_on_spot"))


def populate(settings) -> str:
    """The demo data, p28-101's complaints and an inbox link; the link's path."""
    from sqlalchemy import select

    from accountability import actions, inbox
    from clock.calendar import load
    from complaints.filing import file_complaint
    from db.engine import make_engine, make_sessionmaker
    from db.models import Complaint
    from db.store import load_demo
    from dispatch import outbox
    from dispatch.models import InspectionUnit, OutboxMessage
    from dispatch.units import load_demo_units
    from ivr.events import ComplaintDraft
    from migrations.run import upgrade

    upgrade(settings.db_url)
    engine = make_engine(settings.db_url)
    cal = load()
    with make_sessionmaker(engine)() as s:
        load_demo(s)
        load_demo_units(s)
        unit = s.scalar(select(InspectionUnit).where(InspectionUnit.code == "p28-101"))
        who = actions.Actor.unit(unit)
        filed = [(file_complaint(s, ComplaintDraft("28", "101", "280101" if office else None, ind, None),
                                 cal.add(NOW - dt.timedelta(hours=h), 0), 3, calendar=cal), h)
                 for h, ind, office in OPEN]
        done = [file_complaint(s, ComplaintDraft("28", "101", "280101", ind, None), NOW - dt.timedelta(hours=h),
                               3, calendar=cal) for h, ind, _ in RESOLVED]
        for c in sorted([c for c, _ in filed] + done, key=lambda c: c.created_at):  # emailed a minute later
            at = c.created_at + dt.timedelta(minutes=1)
            ids = outbox.claim(s, "demo", at, 60, 10)
            email = [i for i in ids if s.get(OutboxMessage, i).channel == "email"]
            outbox.mark_sent(s, {i: f"email to {unit.code}" for i in email}, "demo", at)
            outbox.release_orphans(s, "demo", at)
        ack = s.get(Complaint, filed[1][0].id)
        actions.acknowledge(s, ack, who, ack.created_at + dt.timedelta(minutes=40))
        # the dispatcher's escalation: the oldest was not taken up in time
        outbox.escalate_due(s, NOW, dt.timedelta(hours=settings.escalate_after_hours), calendar=cal)
        for c, (h, _, outcome) in zip(done, RESOLVED):
            c = s.get(Complaint, c.id)
            actions.acknowledge(s, c, who, c.created_at + dt.timedelta(minutes=30))
            actions.resolve(s, c, who, outcome, "", c.created_at + dt.timedelta(hours=2))
        s.commit()
        url = inbox.issue(s, settings, unit, NOW)
        s.commit()
    engine.dispose()
    return url.split("/staff/", 1)[1]


def main(out: str) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    from config import Settings
    from web.server import Site, WebServer

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=tmp, database_url=f"sqlite:///{tmp}/demo.sqlite3",
                            link_keys="demo-screenshot-key-" + "0" * 32)
        path = populate(settings)
        server = WebServer(settings, host="127.0.0.1", port=0, app=Site(settings, clock=lambda: NOW)).start()
        options = Options()
        options.binary_location = "/usr/bin/chromium"
        for flag in FLAGS + ("--window-size=1200,900",):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get(f"http://127.0.0.1:{server.port}/staff/{path}")
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1200, min(max(height + 120, 600), 1600))
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(out)
        finally:
            driver.quit()
            server.stop()
    print(f"inbox screenshot: {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "docs" / "inbox.png"))
