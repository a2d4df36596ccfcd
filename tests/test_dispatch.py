"""Delivery to the inspection units against a real SMTP server (aiosmtpd) and a real HTTP server
on loopback, on SQLite and PostgreSQL: content, retries, dead letters, leases, escalation."""
from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import time
import wave
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from accountability import actions
from db.engine import make_engine, make_sessionmaker
from db.models import Complaint, ComplaintEvent
from complaints.filing import file_complaint
from dispatch import outbox
from dispatch.loopback import SmsSink, SmtpSink
from dispatch.models import ComplaintRoute, InspectionUnit, OutboxMessage
from dispatch.render import message_id, ucs2_len
from dispatch.runner import Dispatcher
from dispatch.units import UnitSpec, apply, load_demo_units
from ivr.events import ComplaintDraft
from presentation import jalali

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def utcnow():
    return dt.datetime.now(dt.timezone.utc)


@dataclasses.dataclass
class World:
    settings: object
    engine: object
    Session: object
    smtp: SmtpSink
    sms: SmsSink
    dispatchers: list = dataclasses.field(default_factory=list)

    def file(self, office="280101", agency="101", province="28", indicator="disrespect",
             recording=None, now=None) -> Complaint:
        with self.Session() as s:
            return file_complaint(s, ComplaintDraft(province, agency, office, indicator, recording),
                                  now or utcnow(), 3)

    def dispatcher(self, **kw) -> Dispatcher:
        d = Dispatcher(dataclasses.replace(self.settings, **kw), engine=self.engine)
        self.dispatchers.append(d)
        return d

    def messages(self, **where) -> list[OutboxMessage]:
        with self.Session() as s:
            q = select(OutboxMessage).order_by(OutboxMessage.id)
            for k, v in where.items():
                q = q.where(getattr(OutboxMessage, k) == v)
            return list(s.scalars(q))


@pytest.fixture
def world(migrated):
    smtp, sms = SmtpSink().start(), SmsSink().start()
    engine = make_engine(migrated.db_url)
    Session = make_sessionmaker(engine)
    with Session() as s:
        load_demo_units(s)
    settings = dataclasses.replace(
        migrated, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none",
        sms_url=sms.url, sms_api_key="test-api-key", sms_sender="10004346",
        dispatch_backoff_base=0.05, dispatch_backoff_max=0.1, dispatch_lease=30, dispatch_poll=0.02,
        smtp_timeout=2, sms_timeout=2)  # the lease must outlast the longest send
    world = World(settings, engine, Session, smtp, sms)
    yield world
    for d in world.dispatchers:
        d.close()
    smtp.stop()
    sms.stop()
    engine.dispose()


def parse(received) -> email.message.EmailMessage:
    return email.message_from_bytes(received.fields["content"], policy=email.policy.default)


def drain_until(d: Dispatcher, done, timeout=5.0):
    end = time.monotonic() + timeout
    while not done() and time.monotonic() < end:
        d.drain()
        time.sleep(0.02)
    assert done()


# ---- the happy path -----------------------------------------------------------------------
def test_complaint_reaches_its_unit_by_email_and_sms_in_persian_and_is_forwarded_once(world):
    c = world.file()
    d = world.dispatcher()
    assert d.drain() == 2
    [mail] = world.smtp.messages
    [sms] = world.sms.requests
    code = c.case_number
    msg = parse(mail)
    assert mail.fields["rcpt_tos"] == ["bazresi-101-qazvin@example.ir"]  # (101, 28) beats hq-101
    assert code in msg["Subject"] and "بی‌احترامی یا تبعیض" in msg["Subject"]
    assert "شعبه یک تأمین اجتماعی قزوین" in msg["Subject"]
    assert msg["Message-ID"] == message_id(dataclasses.replace(_notice(), case_number=c.case_number),
                                           "bazresi-101-qazvin@example.ir", "favad.localhost")
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert 'dir="rtl"' in html and code in html and code in text
    assert jalali(c.sla_due_at, persian_digits=True) in text
    assert sms.fields["path"] == "/v1/test-api-key/sms/send.json"
    assert sms.fields["receptor"] == "09120028101" and sms.fields["sender"] == "10004346"
    assert code in sms.fields["message"] and jalali(c.sla_due_at, persian_digits=True) in sms.fields["message"]
    with world.Session() as s:
        back = s.get(Complaint, c.id)
        events = [(e.kind, e.status, e.actor) for e in s.scalars(
            select(ComplaintEvent).where(ComplaintEvent.complaint_id == c.id).order_by(ComplaintEvent.id))]
    assert back.status == "forwarded"
    assert events == [("filed", "received", "ivr"), ("forwarded", "forwarded", "dispatcher")]
    assert [m.status for m in world.messages()] == ["sent", "sent"]
    assert d.drain() == 0 and len(world.smtp.messages) == 1


def _notice():
    from dispatch.render import Notice

    now = utcnow()
    return Notice(kind="complaint", case_number="0", filed_at=now, sla_due_at=now,
                  indicator_code="disrespect", indicator_fa="-", agency_fa="-", province_fa="-",
                  unit_fa="-", first_unit_fa="-")


# ---- failures -----------------------------------------------------------------------------
def test_smtp_down_then_up_delays_messages_but_loses_none(world):
    world.smtp.stop()
    complaints = [world.file() for _ in range(3)]
    d = world.dispatcher()
    d.drain()
    waiting = world.messages(channel="email")
    assert [(m.status, m.tries) for m in waiting] == [("pending", 1)] * 3
    assert all(m.next_attempt_at > m.created_at and "Connection" in m.last_error for m in waiting)
    world.smtp.start()  # the same port, as a restarted mail server
    drain_until(d, lambda: len(world.smtp.messages) == 3)
    assert ({parse(m)["X-Favad-Case-Number"] for m in world.smtp.messages}
            == {c.case_number for c in complaints})
    assert [m.status for m in world.messages()] == ["sent"] * 6


def test_smtp_451_is_retried_with_the_same_message_id(world):
    world.smtp.replies = ["451 4.3.0 try again later"]
    c = world.file()
    d = world.dispatcher()
    d.drain()
    [m] = world.messages(channel="email")
    assert (m.status, m.tries, m.last_error) == ("pending", 1, "smtp 451 4.3.0 try again later")
    drain_until(d, lambda: world.smtp.messages)
    assert world.messages(channel="email")[0].tries == 2
    assert parse(world.smtp.messages[0])["Message-ID"] == message_id(
        dataclasses.replace(_notice(), case_number=c.case_number), "bazresi-101-qazvin@example.ir",
        "favad.localhost")


def test_smtp_550_is_a_dead_letter_at_once_and_one_command_sends_it_again(world, monkeypatch):
    world.smtp.refuse["bazresi-101-qazvin@example.ir"] = "550 5.1.1 no such mailbox"
    world.file()
    world.dispatcher().drain()
    [m] = world.messages(channel="email")
    assert (m.status, m.tries) == ("dead", 1) and "550" in m.last_error
    from cli import main

    monkeypatch.setenv("FAVAD_DATABASE_URL", world.settings.db_url)
    monkeypatch.setenv("FAVAD_DATA_DIR", world.settings.data_dir)
    r = CliRunner().invoke(main, ["outbox", "dead", "--json"])
    assert r.exit_code == 0 and "no such mailbox" in r.output
    del world.smtp.refuse["bazresi-101-qazvin@example.ir"]
    r = CliRunner().invoke(main, ["outbox", "retry"])
    assert r.exit_code == 0 and "1 dead letters back" in r.output
    world.dispatcher().drain()
    assert len(world.smtp.messages) == 1 and world.messages(channel="email")[0].status == "sent"


def test_sms_provider_500_then_200_and_an_invalid_number_is_dead_at_once(world):
    world.sms.statuses = [500]
    world.file()
    d = world.dispatcher()
    d.drain()
    [m] = world.messages(channel="sms")
    assert (m.status, m.tries) == ("pending", 1) and "500" in m.last_error
    drain_until(d, lambda: world.sms.requests)
    world.sms.invalid.add("09120000105")
    world.file(office="280105", agency="105")
    d.drain()
    dead = world.messages(status="dead")
    assert [(m.recipient, m.tries) for m in dead] == [("09120000105", 1)] and "411" in dead[0].last_error


def test_temporary_failures_end_as_dead_letters_after_max_tries(world):
    world.smtp.replies = ["421 4.7.0 busy"] * 10
    world.file()
    d = world.dispatcher(dispatch_max_tries=3, dispatch_backoff_base=0.01, dispatch_backoff_max=0.01)
    drain_until(d, lambda: world.messages(channel="email")[0].status == "dead")
    assert world.messages(channel="email")[0].tries == 3 and world.smtp.messages == []


def test_a_claimed_message_is_nobody_elses_until_its_lease_runs_out(world):
    world.file()
    with world.Session() as s:  # a dispatcher that claims and then dies
        ids = outbox.claim(s, "ghost", utcnow(), lease=0.3, limit=10)
    assert len(ids) == 2
    d = world.dispatcher()
    assert d.drain() == 0 and world.smtp.messages == []
    time.sleep(0.35)
    assert d.drain() == 2 and len(world.smtp.messages) == 1 and len(world.sms.requests) == 1
    with world.Session() as s:  # the ghost comes back: its writes are fenced off
        assert outbox.mark_sent(s, {ids[0]: None}, "ghost", utcnow()) == []
    assert [m.tries for m in world.messages()] == [2, 2]


# ---- escalation and working hours ---------------------------------------------------------
def test_a_complaint_not_taken_up_in_time_is_escalated_once(world, monkeypatch):
    c1 = world.file()
    c2 = world.file()
    d = world.dispatcher(escalate_after_hours=0.2 / 3600)
    d.drain()
    with world.Session() as s:
        unit = s.scalar(select(InspectionUnit).where(InspectionUnit.code == "p28-101"))
        actions.acknowledge(s, s.get(Complaint, c2.id), actions.Actor.unit(unit), utcnow())
        s.commit()
    time.sleep(0.25)
    d._escalated_at = 0  # look now rather than in a second
    d.drain()
    d._escalated_at = 0
    d.drain()
    esc = world.messages(kind="escalation")
    assert {(m.complaint_id, m.recipient) for m in esc} == {
        (c1.id, "bazresi-ostandari-28@example.ir"), (c1.id, "09120028000")}
    assert all(m.status == "sent" for m in esc)
    mail = [parse(m) for m in world.smtp.messages if "bazresi-ostandari-28@example.ir" in m.fields["rcpt_tos"]]
    assert len(mail) == 1 and "بازرسی تأمین اجتماعی استان قزوین" in mail[0].get_body(("plain",)).get_content()
    with world.Session() as s:
        assert s.get(Complaint, c2.id).status == "under_review"
        assert s.get(ComplaintRoute, c1.id).escalated_at is not None


def test_sms_waits_for_the_units_working_hours_but_email_goes_at_once(world):
    from clock import TEHRAN
    from clock.hours import DAYS

    day = utcnow().astimezone(TEHRAN).date() + dt.timedelta(days=2)  # surely closed until then
    opens = dt.datetime.combine(day, dt.time(8), TEHRAN).astimezone(dt.timezone.utc)
    with world.Session() as s:
        apply(s, [UnitSpec("hq-102", "headquarters", "دفتر بازرسی", agency="102",
                           hours=f"{DAYS[(day.weekday() - 5) % 7]} 08:00-09:00",
                           emails=["bazresi-102@example.ir"], mobiles=["09120000102"])])
        s.commit()
    world.file(office="280102", agency="102")
    [sms] = world.messages(channel="sms")
    assert sms.next_attempt_at == opens
    with world.Session() as s:  # nor does its escalation clock start before
        assert s.get(ComplaintRoute, sms.complaint_id).clock_from == opens
    world.dispatcher().drain()
    assert len(world.smtp.messages) == 1 and world.sms.requests == []


# ---- channels -----------------------------------------------------------------------------
def _wav(path: Path, seconds: float = 1.0) -> str:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\x10\x00\xf0\xff" * int(4000 * seconds))
    return str(path)


@SQLITE_ONLY
def test_the_voice_description_goes_as_mp3_or_as_a_link_when_too_large(world, tmp_path, monkeypatch):
    small = world.file(recording=_wav(tmp_path / "a1b2.wav"))
    world.dispatcher().drain()
    [att] = list(parse(world.smtp.messages[0]).iter_attachments())
    assert att.get_filename() == f"128-{small.case_number}.mp3" and att.get_content_type() == "audio/mpeg"
    assert att.get_content()[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3")
    world.file(recording=_wav(tmp_path / "c3d4.wav", 3))
    world.dispatcher(attachment_max_bytes=100, recording_url_base="https://128.example.ir/rec/").drain()
    msg = parse(world.smtp.messages[1])
    assert list(msg.iter_attachments()) == []
    assert "https://128.example.ir/rec/c3d4.wav" in msg.get_body(("plain",)).get_content()
    monkeypatch.setenv("PATH", "")  # no ffmpeg on this machine: the WAV itself goes
    world.file(recording=_wav(tmp_path / "e5f6.wav"))
    world.dispatcher().drain()
    [att] = list(parse(world.smtp.messages[2]).iter_attachments())
    assert att.get_content_type() == "audio/wav" and att.get_content()[:4] == b"RIFF"


@SQLITE_ONLY
def test_without_smtp_or_provider_messages_land_in_a_maildir_and_a_file(world):
    import json
    import mailbox

    world.file()
    d = world.dispatcher(smtp_host="", sms_url="")
    assert d.drain() == 2
    [msg] = list(mailbox.Maildir(Path(world.settings.data_dir, "maildir"), create=False))
    assert msg["To"] == "bazresi-101-qazvin@example.ir"
    [line] = Path(world.settings.data_dir, "sms.log").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["to"] == "09120028101"


def test_every_sms_fits_two_ucs2_parts_with_code_indicator_place_and_deadline():
    import tomllib

    from dispatch.render import Notice, sms_text

    root = Path(__file__).resolve().parent.parent
    demo = tomllib.loads((root / "db/demo.toml").read_text(encoding="utf-8"))
    ref = tomllib.loads((root / "db/reference.toml").read_text(encoding="utf-8"))
    due = dt.datetime(2026, 11, 28, 14, 45, tzinfo=dt.timezone.utc)
    long_office = {"name_fa": "اداره کل " * 20, "city_fa": "-", "code": "999999"}
    for office in demo["office"] + [long_office]:
        for ind in ref["indicator"]:
            for kind in ("complaint", "escalation"):
                n = Notice(kind=kind, case_number="7KQ2-M9XD", filed_at=due, sla_due_at=due,
                           indicator_code=ind["code"], indicator_fa=ind["name_fa"], agency_fa="-",
                           province_fa="-", unit_fa="-", first_unit_fa="-", office_fa=office["name_fa"])
                text = sms_text(n)
                assert ucs2_len(text) <= 134, text
                assert "7KQ2-M9XD" in text and "۱۴۰۵/۰۹/۰۷ ۱۸:۱۵" in text
    assert "…" in text  # the long name was cut, not the deadline
    assert ucs2_len("😀") == 2


@SQLITE_ONLY
def test_starttls_with_login_and_implicit_tls(world, tmp_path):
    import ssl
    import subprocess

    from aiosmtpd.smtp import AuthResult

    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", tmp_path / "key.pem", "-out", tmp_path / "cert.pem", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    logins = []

    def auth(server, session, envelope, mechanism, data):
        logins.append((data.login, data.password))
        return AuthResult(success=data.login == b"favad" and data.password == b"s3cret", handled=False)

    starttls = SmtpSink(tls_context=ctx, require_starttls=True, authenticator=auth, auth_required=True).start()
    implicit = SmtpSink(ssl_context=ctx).start()
    try:
        world.file()
        tls = dict(smtp_ca_file=str(tmp_path / "cert.pem"), sms_url="")
        d = world.dispatcher(smtp_port=starttls.port, smtp_security="starttls", smtp_user="favad",
                             smtp_password="wrong", **tls)
        d.drain()
        assert "configuration" in world.messages(channel="email")[0].last_error  # 535: not the message's fault
        drain_until(world.dispatcher(smtp_port=starttls.port, smtp_security="starttls",
                                     smtp_user="favad", smtp_password="s3cret", **tls),
                    lambda: starttls.messages)
        assert logins[-1] == (b"favad", b"s3cret")
        world.file()
        world.dispatcher(smtp_port=implicit.port, smtp_security="tls", **tls).drain()
        assert len(implicit.messages) == 1
    finally:
        starttls.stop()
        implicit.stop()


@SQLITE_ONLY
def test_operator_commands_dispatch_once_list_flagged_and_ack(world, monkeypatch):
    import logging

    from cli import main

    monkeypatch.setenv("FAVAD_DATABASE_URL", world.settings.db_url)
    monkeypatch.setenv("FAVAD_DATA_DIR", world.settings.data_dir)
    monkeypatch.setenv("FAVAD_LOG_LEVEL", "WARNING")
    handlers = logging.getLogger().handlers[:]  # `favad dispatch` sets up logging for itself
    run = CliRunner().invoke
    try:
        c = world.file(office=None, agency="112")  # no unit for 112: the governorate's office, flagged
        r = run(main, ["outbox", "list"])
        assert r.exit_code == 0 and "pending: 2" in r.output
        r = run(main, ["dispatch", "--once"])  # no smtp_host, no sms_url: Maildir and the SMS file
        assert r.exit_code == 0 and "2 sent" in r.output, r.output
        r = run(main, ["outbox", "flagged", "--json"])
        assert c.case_number in r.output and "no_agency_unit" in r.output and "gov-28" in r.output
        r = run(main, ["units", "ack", c.case_number, "--unit", "gov-28"])
        assert r.exit_code == 0 and "under_review" in r.output
        assert run(main, ["units", "ack", "0000000000", "--unit", "gov-28"]).exit_code == 1
        monkeypatch.setenv("FAVAD_SMTP_SECURITY", "ssl")
        r = run(main, ["dispatch", "--once"])
        assert r.exit_code == 2 and "smtp_security must be one of" in r.output
    finally:
        logging.getLogger().handlers[:] = handlers


def test_sender_threads_writing_one_maildir_at_once_all_succeed(tmp_path):
    """Each sender thread has its own channel; mailbox.Maildir's file names are not thread-safe."""
    from concurrent.futures import ThreadPoolExecutor

    from dispatch.channels.base import SENT, Mail
    from dispatch.channels.maildir import Maildir

    def burst(i):
        box = Maildir(str(tmp_path / "maildir"))
        return [box.send(Mail("a@x", "b@x", f"Subject: {i}-{k}\r\n\r\nx".encode())).outcome for k in range(60)]

    with ThreadPoolExecutor(8) as pool:
        outcomes = [o for batch in pool.map(burst, range(8)) for o in batch]
    assert outcomes == [SENT] * 480
    assert len(list((tmp_path / "maildir" / "new").iterdir())) == 480
