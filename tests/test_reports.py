"""The monthly figures against a hand-computed month on both databases (SLA clocks across a
night, a weekend and a holiday; small counts; an empty agency; the month before), and the
files: HTML, PDF (a page rendered to PNG with pdftoppm), CSV, heat maps, report cards mailed."""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import secrets
import email
import email.policy
import io
import subprocess
import time

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from accountability import actions
from clock.calendar import parse as parse_calendar
from db.engine import make_engine, make_sessionmaker
from db.models import Agency, CallRecord, Complaint, ComplaintEvent, ComplaintRating, Indicator, Office, Province
from common.tracking import new_case_number
from clock import TEHRAN
from reports import months
from reports.monthly import Params, from_db

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
CALENDAR_TOML = 'hours = "sat-wed 07:00-14:00"\n[holidays]\n"1404-07-21" = "test holiday"\n'
AS_OF = dt.datetime(2025, 10, 22, 12, 0, tzinfo=TEHRAN)  # the last day of Mehr 1404, noon


def tehran(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TEHRAN)


# ---- months ---------------------------------------------------------------------------------
def test_months_are_bounded_at_tehran_midnight_jalali_or_gregorian():
    mehr = months.parse("1404-07")
    assert mehr.start == tehran(2025, 9, 23) and mehr.end == tehran(2025, 10, 23)
    assert mehr.previous().key == "1404-06" and mehr.previous().end == mehr.start
    assert months.parse("1404-12").end == tehran(2026, 3, 21)  # Nowruz 1405
    october = months.parse("2025-10")
    assert (october.start, october.end, october.jalali) == (tehran(2025, 10, 1), tehran(2025, 11, 1), False)
    assert months.parse("2026-01").previous().key == "2025-12"
    for bad in ("1404-13", "1404", "mehr", "0900-01"):
        with pytest.raises(months.MonthError):
            months.parse(bad)
    assert months.last_complete(tehran(2025, 10, 30, 9)).key == "1404-07"


# ---- a month computed by hand ----------------------------------------------------------------
class Month:
    """Writes complaints, unit actions and calls as the system would."""

    def __init__(self, s):
        self.s = s
        self.ids = {(k, code): id_ for k, model, col in (
            ("agency", Agency, Agency.code), ("province", Province, Province.area_code),
            ("office", Office, Office.code), ("indicator", Indicator, Indicator.code))
            for id_, code in s.execute(select(model.id, col))}
        self.unit = actions.Actor.staff("test")

    def complaint(self, at, agency="101", province="28", office="280101", indicator="disrespect",
                  ack=None, resolved=None, outcome="fixed_on_spot", rating=None) -> Complaint:
        c = Complaint(case_number=new_case_number(), code_hash=secrets.token_hex(32), created_at=at, agency_id=self.ids["agency", agency],
                      province_id=self.ids["province", province],
                      office_id=self.ids["office", office] if office else None,
                      indicator_id=self.ids["indicator", indicator], status="forwarded", sla_due_at=at)
        c.events.append(ComplaintEvent(at=at, kind="filed", status="received", actor="ivr"))
        self.s.add(c)
        self.s.flush()
        if ack:
            actions.acknowledge(self.s, c, self.unit, ack)
        if resolved:
            actions.resolve(self.s, c, self.unit, outcome, "", resolved)
        if rating:
            self.s.add(ComplaintRating(complaint_id=c.id, rating=rating, at=resolved + dt.timedelta(days=1)))
        return c

    def calls(self, province, outcome, n, at):
        pid = self.ids["province", province] if province else None
        for _ in range(n):
            self.s.add(CallRecord(started_at=at, province_id=pid, outcome=outcome, duration_s=60))


def fill_month(s):
    m = Month(s)
    # agency 101, Qazvin, office 280101: eight complaints (minutes: ack / resolution, office time)
    m.complaint(tehran(2025, 10, 11, 13, 30), ack=tehran(2025, 10, 11, 13, 45),
                resolved=tehran(2025, 10, 12, 8, 30), outcome="fixed_on_spot", rating=5)      # 15 / 120, a night
    m.complaint(tehran(2025, 10, 15, 13, 0), ack=tehran(2025, 10, 15, 13, 20),
                resolved=tehran(2025, 10, 18, 8, 0), outcome="written_warning", rating=4)     # 20 / 120, a weekend
    m.complaint(tehran(2025, 10, 12, 13, 0), ack=tehran(2025, 10, 12, 13, 50),
                resolved=tehran(2025, 10, 14, 9, 0), outcome="commendation", rating=3)        # 50 / 180, a holiday
    m.complaint(tehran(2025, 10, 11, 9, 0), ack=tehran(2025, 10, 11, 11, 0),
                resolved=tehran(2025, 10, 11, 13, 0), outcome="not_confirmed", rating=2)      # 120 / 240: late
    m.complaint(tehran(2025, 10, 14, 20, 0), ack=tehran(2025, 10, 15, 7, 30), indicator="employee_absent",
                resolved=tehran(2025, 10, 15, 8, 0), outcome="manager_dismissed", rating=4)   # 30 / 60
    m.complaint(tehran(2025, 10, 14, 10, 0), resolved=tehran(2025, 10, 14, 10, 40),
                indicator="employee_absent")                                                   # 40 / 40, no ack
    m.complaint(tehran(2025, 10, 18, 10, 0), indicator="employee_absent")                     # open, late
    m.complaint(tehran(2025, 10, 22, 11, 30))                                                 # open, 30 min old
    # agency 102, Alborz: three complaints, too few for any share
    m.complaint(tehran(2025, 10, 12, 9, 0), agency="102", province="26", office=None,
                ack=tehran(2025, 10, 12, 9, 5), resolved=tehran(2025, 10, 12, 10, 0), rating=5)
    m.complaint(tehran(2025, 10, 12, 9, 0), agency="102", province="26", office=None,
                resolved=tehran(2025, 10, 12, 9, 30))
    m.complaint(tehran(2025, 10, 5, 9, 0), agency="102", province="26", office=None)
    # agency 104, Tehran: five quick ones; it had ten the month before, half in time
    for _ in range(5):
        m.complaint(tehran(2025, 10, 12, 9, 0), agency="104", province="21", office=None,
                    resolved=tehran(2025, 10, 12, 9, 30))
    for i in range(10):
        m.complaint(tehran(2025, 9, 1, 9, 0), agency="104", province="21", office=None,
                    resolved=tehran(2025, 9, 1, 10, 0) if i < 5 else tehran(2025, 9, 2, 12, 0))
    for _ in range(4):
        m.complaint(tehran(2025, 9, 1, 9, 0))  # agency 101's four in Shahrivar
    # calls in Mehr
    m.calls("28", "complaint_filed", 7, tehran(2025, 10, 11, 9))
    m.calls("28", "out_of_scope", 3, tehran(2025, 10, 11, 9))
    m.calls("26", "out_of_scope", 1, tehran(2025, 10, 12, 9))
    m.calls("26", "complaint_filed", 1, tehran(2025, 10, 12, 9))
    m.calls(None, "abandoned", 1, tehran(2025, 10, 12, 9))
    m.calls("21", "refused", 2, tehran(2025, 10, 13, 9))  # over a caller's limit: counted, stored nothing
    m.calls("28", "out_of_scope", 50, tehran(2025, 9, 23, 0, 0))  # 1 Mehr, 00:00 Tehran: counted
    m.calls("28", "out_of_scope", 9, tehran(2025, 9, 22, 23, 59))  # 31 Shahrivar: not counted
    s.commit()


@pytest.fixture
def month_db(migrated):
    engine = make_engine(migrated.db_url)
    Session = make_sessionmaker(engine)
    with Session() as s:
        fill_month(s)
    yield migrated, Session
    engine.dispose()


def test_monthly_figures_match_the_hand_computed_month(month_db):
    _, Session = month_db
    with Session() as s:
        rep = from_db(s, months.parse("1404-07"), Params(parse_calendar(CALENDAR_TOML), 3.0, 1.0), AS_OF)
    a = {r.key: r for r in rep.agencies}
    p = {r.key: r for r in rep.provinces}
    social = a["101"]
    assert social.complaints == 8 and social.by_indicator["disrespect"] == 5 and social.by_indicator["employee_absent"] == 3
    # acknowledgement: 15 20 30 40 50 120 -> median 35, p90 50 + 0.5 * 70; within 1 h: 5 of 7 decided
    assert (social.acknowledged, social.ack_median, social.ack_p90) == (6, 35, 85)
    assert (social.ack_met, social.ack_decided) == (5, 7) and round(social.ack_share, 2) == 71.43
    # resolution: 40 60 120 120 180 240 -> median 120, p90 180 + 0.5 * 60; SLA met 5 of 7, one pending
    assert (social.resolved, social.res_median, social.res_p90) == (6, 120, 210)
    assert (social.sla_met, social.sla_decided, social.sla_pending) == (5, 7, 1) and round(social.sla_share, 2) == 71.43
    assert social.outcomes == {"fixed_on_spot": 2, "written_warning": 1, "manager_dismissed": 1,
                            "commendation": 1, "not_confirmed": 1}
    assert (social.ratings, social.rating_mean) == (5, 3.6)
    assert (social.prev_complaints, social.complaints_change) == (4, None)  # four last month: no percentage
    # agency 102: three complaints, counted but too few for shares, medians or a rank
    small = a["102"]
    assert (small.complaints, small.resolved, small.sla_met, small.sla_decided) == (3, 2, 2, 3)
    assert (small.sla_share, small.res_median, small.rating_mean, small.rank) == (None, None, None, None)
    # agency 103: nothing at all, shown as such
    assert (a["103"].complaints, a["103"].sla_decided, a["103"].rank) == (0, 0, None)
    # agency 104: all five in time; ten last month, half in time
    fast = a["104"]
    assert (fast.sla_share, fast.res_median, fast.prev_complaints, fast.complaints_change) == (100.0, 30, 10, -50.0)
    assert (fast.prev_sla_share, fast.sla_change) == (50.0, 50.0)
    assert (fast.rank, social.rank) == (1, 2) and rep.unranked == len(rep.agencies) - 2
    # provinces: calls and out-of-scope calls, rates per 100,000 (2016 census)
    assert (p["28"].calls, p["28"].out_of_scope, p["28"].out_of_scope_share) == (60, 53, 53 / 60 * 100)
    assert (p["26"].calls, p["26"].out_of_scope_share) == (2, None)
    assert p["28"].per_100k == pytest.approx(8 / 1273761 * 1e5)
    assert p["21"].complaints == 5 and p["21"].live and "31" not in p  # Isfahan is not live
    assert rep.total.calls == 65 and rep.total.refused == 2 and p["21"].refused == 2
    assert rep.calls_unknown_province == 1 and rep.total.complaints == 16
    assert rep.holidays == [dt.date(2025, 10, 13)]
    [top, *_] = rep.hotspots
    assert (top.office_code, top.complaints, top.indicator_count, top.indicator_share) == ("280101", 8, 5, 62.5)


def test_an_empty_month_is_reported_as_empty(month_db):
    _, Session = month_db
    with Session() as s:
        rep = from_db(s, months.parse("1404-05"), Params(parse_calendar(CALENDAR_TOML)), AS_OF)
    assert rep.total.complaints == 0 and rep.total.calls == 0 and rep.hotspots == []
    assert all(r.complaints == 0 and r.rank is None for r in rep.agencies)
    assert rep.total.sla_share is None and rep.total.res_median is None


def _one_by_one(s, month, p: Params, as_of):
    """Key ("all", agency code, province area code) -> the figures, computed complaint by complaint
    with accountability.figures, as the report did before it read its months as columns."""
    from collections import defaultdict

    from accountability import figures as fg
    from accountability.actions import OUTCOMES
    from accountability.models import UnitAction

    C, E = Complaint, ComplaintEvent
    codes = {**{("a", i): c for i, c in s.execute(select(Agency.id, Agency.code))},
             **{("p", i): c for i, c in s.execute(select(Province.id, Province.area_code))}}
    events = defaultdict(list)
    for cid, at, kind, outcome in s.execute(select(E.complaint_id, E.at, E.kind, UnitAction.outcome)
                                            .outerjoin(UnitAction, UnitAction.event_id == E.id)
                                            .where(E.kind.in_(("acknowledged", "resolved")))):
        events[cid].append((at, kind, outcome))
    ratings = dict(s.execute(select(ComplaintRating.complaint_id, ComplaintRating.rating)).all())
    groups = defaultdict(list)
    for cid, agency, province, at in s.execute(select(C.id, C.agency_id, C.province_id, C.created_at)
                                               .where(C.created_at >= month.start, C.created_at < month.end)):
        t = fg.timeline(cid, at, events[cid])
        m = (t, fg.clocks(t, p.calendar, p.sla_hours * 60, p.ack_hours * 60, as_of), ratings.get(cid))
        for key in ("all", codes["a", agency], codes["p", province]):
            groups[key].append(m)
    out = {}
    for key, ms in groups.items():
        acks = [c.ack_minutes for _, c, _ in ms if c.ack_minutes is not None]
        res = [c.resolve_minutes for _, c, _ in ms if c.resolve_minutes is not None]
        stars = [r for _, _, r in ms if r is not None]
        decided = [c.sla for _, c, _ in ms if c.sla != fg.PENDING]
        out[key] = dict(
            complaints=len(ms), acknowledged=len(acks), ack_median=fg.median(acks), ack_p90=fg.p90(acks),
            resolved=len(res), res_median=fg.median(res), res_p90=fg.p90(res),
            ack_met=sum(c.ack_target == fg.MET for _, c, _ in ms),
            ack_decided=sum(c.ack_target != fg.PENDING for _, c, _ in ms),
            sla_met=decided.count(fg.MET), sla_decided=len(decided), sla_share=fg.share(decided.count(fg.MET), len(decided)),
            outcomes={o: sum(t.outcome == o for t, _, _ in ms) for o in OUTCOMES},
            ratings=len(stars), rating_mean=fg.mean(stars))
    return out


def test_a_simulated_month_read_as_columns_gives_the_figures_of_one_complaint_at_a_time(migrated):
    """Hundreds of simulated complaints (written by reports.simulate: COPY on PostgreSQL), open,
    late, resolved, rated: the report's figures equal those computed complaint by complaint."""
    from reports.simulate import simulate

    p = Params(parse_calendar(CALENDAR_TOML), 3.0, 1.0)
    mehr = months.parse("1404-07")
    engine = make_engine(migrated.db_url)
    try:
        with make_sessionmaker(engine)() as s:
            assert simulate(s, mehr.previous(), 300, p.calendar, seed=3) == 300
            assert simulate(s, mehr, 700, p.calendar, seed=4) == 700
            rep = from_db(s, mehr, p, AS_OF)
            want, before = _one_by_one(s, mehr, p, AS_OF), _one_by_one(s, mehr.previous(), p, AS_OF)
            Month(s).complaint(AS_OF, ack=AS_OF)  # the ids it gave left the sequences ready for the IVR's
            s.commit()
    finally:
        engine.dispose()
    rows = [rep.total, *rep.agencies, *rep.provinces]
    assert rep.total.complaints == 700 and sum(r.complaints for r in rep.agencies) == 700
    assert rep.total.sla_pending and rep.total.sla_met and rep.total.sla_decided > rep.total.sla_met
    assert rep.total.ratings and rep.total.res_median is not None and rep.hotspots
    for row in rows:
        if row.complaints:
            assert {k: getattr(row, k) for k in want[row.key]} == want[row.key], row.key
        if prev := before.get(row.key):  # the month before: read for its counts and SLA only
            assert (row.prev_complaints, row.prev_sla_share) == (prev["complaints"], prev["sla_share"]), row.key
    assert before["all"]["complaints"] == 300 and all(r.prev_complaints == 0 for r in rep.agencies if r.key not in before)

# ---- the files --------------------------------------------------------------------------------
def _env(settings, tmp_path) -> dict:
    cal = tmp_path / "calendar.toml"
    cal.write_text(CALENDAR_TOML, encoding="utf-8")
    return {"FAVAD_DATABASE_URL": settings.db_url, "FAVAD_DATA_DIR": settings.data_dir,
            "FAVAD_OFFICE_CALENDAR": str(cal), "FAVAD_CONFIG": ""}


@SQLITE_ONLY
def test_monthly_html_pdf_csv_and_heat_maps_in_persian(month_db, tmp_path):
    from PIL import Image

    from cli import main

    settings, _ = month_db
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["report", "monthly", "--month", "1404-07", "--out", str(out),
                                  "--as-of", AS_OF.isoformat()],
                           env=_env(settings, tmp_path))
    assert r.exit_code == 0, r.output
    html = (out / "monthly.html").read_text(encoding="utf-8")
    assert 'dir="rtl"' in html and "مهر ۱۴۰۴" in html and "۱ مهر ۱۴۰۴" in html
    assert "سازمان تأمین اجتماعی" in html and "۷۱٪" in html and "فقط ۳ مورد" in html
    assert "data:image/svg+xml;base64," in html and "سرشماری عمومی نفوس و مسکن ۱۳۹۵" in html
    assert "(بدون شکایت)" in html  # agency 103
    rows = {(row["scope"], row["code"]): row for row in csv.DictReader(
        io.StringIO((out / "monthly.csv").read_text(encoding="utf-8-sig")))}
    assert rows["agency", "101"]["sla_met_pct"] == "71.43" and rows["agency", "101"]["resolve_p90_min"] == "210.0"
    assert rows["agency", "102"]["sla_met_pct"] == "" and rows["agency", "103"]["complaints"] == "0"
    assert rows["province", "28"]["out_of_scope_pct"] == "88.33" and rows["all", "all"]["calls"] == "65"
    assert rows["all", "all"]["refused_over_limit"] == "2" and "بیش از سقف تماس‌گیرنده: ۲" in html
    # the PDF: a real page rendered by poppler, with ink on it
    pdf = out / "monthly.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    subprocess.run(["pdftoppm", "-r", "50", "-f", "1", "-l", "1", "-png", str(pdf), str(tmp_path / "page")], check=True)
    [png] = list(tmp_path.glob("page*.png"))
    with Image.open(png) as page:
        assert page.width > page.height  # A4 landscape
        hist = page.convert("L").histogram()
        inked = sum(hist[:200]) / (page.width * page.height)
        assert 0.01 < inked < 0.5, inked  # text and tables on white, neither blank nor a blot
    text = subprocess.run(["pdftotext", "-l", "1", str(pdf), "-"], capture_output=True, check=True).stdout.decode()
    assert "128" in text or "۱۲۸" in text
    for name in ("heatmap-provinces", "heatmap-agency-indicator"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (out / f"{name}.svg").read_bytes()[:400]


@SQLITE_ONLY
def test_heat_maps_drawn_in_their_own_process_are_the_bytes_drawn_here(month_db):
    """`report monthly` draws the maps in a forked process (while it reads the month and lays out
    the PDF); `report heatmap` draws them in its own. The same month gives the same bytes."""
    from reports import drawing, publish

    _, Session = month_db
    with Session() as s:
        rep = from_db(s, months.parse("1404-07"), Params(parse_calendar(CALENDAR_TOML)), AS_OF)
    now = dt.datetime(2025, 10, 23, 6, 0, tzinfo=dt.timezone.utc)
    with drawing.start() as pool:
        there = publish.monthly(rep, now, ("html", "csv"), pool)
    assert list(there) == ["heatmap-provinces.png", "heatmap-provinces.svg", "heatmap-agency-indicator.png",
                           "heatmap-agency-indicator.svg", "monthly.html", "monthly.csv"]
    assert publish.images(rep) == {k: v for k, v in there.items() if k.startswith("heatmap-")}
    assert publish.monthly(rep, now, ("html", "csv")) == there


@SQLITE_ONLY
def test_an_empty_month_says_so_in_the_report(month_db, tmp_path):
    from cli import main

    settings, _ = month_db
    out = tmp_path / "empty"
    r = CliRunner().invoke(main, ["report", "monthly", "--month", "1404-05", "--out", str(out), "--format", "html,csv"],
                           env=_env(settings, tmp_path))
    assert r.exit_code == 0, r.output
    html = (out / "monthly.html").read_text(encoding="utf-8")
    assert "هیچ شکایتی ثبت نشده است" in html and not (out / "monthly.pdf").exists()
    bad = CliRunner().invoke(main, ["report", "monthly", "--month", "1404-13"], env=_env(settings, tmp_path))
    assert bad.exit_code == 2 and "1404-07" in bad.output


@SQLITE_ONLY
def test_report_cards_are_mailed_once_to_each_agencys_recipients(month_db, tmp_path):
    from cli import main
    from dispatch.loopback import SmtpSink

    settings, Session = month_db
    recipients = tmp_path / "recipients.yaml"
    recipients.write_text('agencies:\n  "101":\n    minister_office: [vazir@example.ir]\n'
                          '    inspection_manager: [bazresi@example.ir]\n'
                          '  "104": {inspection_manager: bazresi-104@example.ir}\n', encoding="utf-8")
    smtp = SmtpSink().start()
    env = _env(settings, tmp_path) | {"FAVAD_REPORT_RECIPIENTS": str(recipients), "FAVAD_SMTP_HOST": "127.0.0.1",
                                      "FAVAD_SMTP_PORT": str(smtp.port), "FAVAD_SMTP_SECURITY": "none"}
    try:
        cards = ["report", "cards", "--month", "1404-07", "--out", str(tmp_path / "c"),
                 "--agency", "101", "--agency", "103", "--agency", "104", "--send", "--as-of", AS_OF.isoformat()]
        r = CliRunner().invoke(main, cards, env=env)
        assert r.exit_code == 0, r.output
        assert "3 messages queued; 3 sent" in r.output and "agency 103 has no recipients" in r.output
        assert sorted(m.fields["rcpt_tos"][0] for m in smtp.messages) == [
            "bazresi-104@example.ir", "bazresi@example.ir", "vazir@example.ir"]
        msg = email.message_from_bytes(next(m for m in smtp.messages if m.fields["rcpt_tos"] == ["vazir@example.ir"])
                                       .fields["content"], policy=email.policy.default)
        assert "سازمان تأمین اجتماعی" in msg["Subject"] and "مهر ۱۴۰۴" in msg["Subject"]
        [pdf] = [p for p in msg.iter_attachments() if p.get_content_type() == "application/pdf"]
        assert pdf.get_content()[:5] == b"%PDF-" and pdf.get_filename() == "128-card-101-1404-07.pdf"
        body = msg.get_body(("html",)).get_content()
        assert "رتبهٔ ۲ از ۲" in body and "۷۱٪" in body
        again = CliRunner().invoke(main, cards, env=env)
        assert "0 messages queued" in again.output and len(smtp.messages) == 3
        assert (tmp_path / "c" / "cards" / "103.html").read_text(encoding="utf-8").count("هیچ شکایتی") == 1
    finally:
        smtp.stop()


@SQLITE_ONLY
def test_report_cards_go_through_the_one_outbox_retried_and_dead_lettered_like_any_message(month_db):
    from dispatch.loopback import SmtpSink
    from dispatch.models import Document, OutboxMessage
    from dispatch.runner import Dispatcher
    from reports import cards, mail

    settings, Session = month_db
    smtp = SmtpSink().start()
    smtp.replies = ["451 4.3.0 try later"]  # the first card waits, the second is refused for good
    smtp.refuse = {"b@example.ir": "550 5.1.1 no such user"}
    fast = dataclasses.replace(settings, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none",
                               smtp_timeout=2, dispatch_lease=30, dispatch_backoff_base=0.05,
                               dispatch_backoff_max=0.05, dispatch_max_tries=3)
    now = dt.datetime(2025, 10, 23, 6, 0, tzinfo=dt.timezone.utc)
    d = Dispatcher(fast)
    try:
        with Session() as s:
            rep = from_db(s, months.parse("1404-07"), Params(parse_calendar(CALENDAR_TOML)), AS_OF)
            [card] = cards.make(dataclasses.replace(rep, agencies=rep.agencies[:1]), now)
            to = {card.agency_code: [("minister_office", "a@example.ir"), ("inspection_manager", "b@example.ir")]}
            assert mail.queue_cards(s, "1404-07", [card], to, now) == (2, [])
            assert mail.queue_cards(s, "1404-07", [card], to, now) == (0, [])  # once per recipient
            s.commit()
            # the rows hold no text: one document for the card, two messages pointing at it
            assert s.scalar(select(func.count()).select_from(Document)) == 1
        d.drain(kinds=(mail.KIND,))
        with Session() as s:
            assert mail.counts(s) == {"pending": 1, "dead": 1}
        end = time.monotonic() + 5
        while time.monotonic() < end and not smtp.messages:
            time.sleep(0.06)
            d.drain(kinds=(mail.KIND,))
        [sent] = smtp.messages
        assert sent.fields["rcpt_tos"] == ["a@example.ir"]
        msg = email.message_from_bytes(sent.fields["content"], policy=email.policy.default)
        assert msg["Message-ID"].startswith(f"<card.1404-07.{card.agency_code}.")
        [pdf] = [p for p in msg.iter_attachments() if p.get_content_type() == "application/pdf"]
        assert pdf.get_content() == card.pdf
        with Session() as s:
            assert mail.counts(s) == {"sent": 1, "dead": 1}
            dead = s.scalar(select(OutboxMessage).where(OutboxMessage.status == "dead"))
            assert dead.last_error.startswith("smtp 550") and dead.tries == 1
    finally:
        d.close()
        smtp.stop()


@SQLITE_ONLY
def test_a_drawing_process_that_dies_costs_time_not_the_report(month_db):
    import os
    import signal

    from reports import drawing, publish

    _, Session = month_db
    with Session() as s:
        rep = from_db(s, months.parse("1404-07"), Params(parse_calendar(CALENDAR_TOML)), AS_OF)
    now = dt.datetime(2025, 10, 23, 6, 0, tzinfo=dt.timezone.utc)
    with drawing.start() as pool:
        pool.submit(os.getpid).result(30)  # the process is up
        for pid in list(pool._processes):
            os.kill(pid, signal.SIGKILL)  # as the OOM killer would
        files = publish.monthly(rep, now, ("html", "csv"), pool)
    assert publish.images(rep) == {k: v for k, v in files.items() if k.startswith("heatmap-")}
    assert files["monthly.html"].count(b"data:image/svg+xml") == 2  # both maps, in the page
