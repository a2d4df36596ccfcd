"""A send never outlives its claim unnoticed (issue 12): slow mail and SMS servers and three
dispatchers accept each message once, tries never pass max_tries, a lease too short for one
send is refused at start, and a message a server accepted is never a dead letter."""
from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections import Counter

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from clock import utcnow
from complaints.filing import file_complaint
from config import ConfigError
from db.engine import make_engine, make_sessionmaker
from dispatch import lease, outbox
from dispatch.loopback import SmsSink, SmtpSink
from dispatch.models import OutboxMessage
from dispatch.runner import Dispatcher
from dispatch.units import load_demo_units
from ivr.events import ComplaintDraft


@pytest.fixture
def slow(migrated):
    smtp, sms = SmtpSink().start(), SmsSink().start()
    engine = make_engine(migrated.db_url)
    with make_sessionmaker(engine)() as s:
        load_demo_units(s)
    settings = dataclasses.replace(
        migrated, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none", sms_url=sms.url,
        sms_api_key="k", dispatch_backoff_base=0.05, dispatch_backoff_max=0.1, dispatch_poll=0.02)
    yield settings, engine, smtp, sms
    smtp.stop()
    sms.stop()
    engine.dispose()


def _file(engine, n: int) -> list[str]:
    with make_sessionmaker(engine)() as s:
        return [file_complaint(s, ComplaintDraft("28", "101", "280101", "disrespect", None), utcnow(), 3).case_number
                for _ in range(n)]


def _rows(engine) -> list[OutboxMessage]:
    with make_sessionmaker(engine)() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_the_reported_configuration_is_refused_at_start_with_what_to_change(slow, monkeypatch):
    settings, engine, *_ = slow
    # issue 12: dispatch_lease=3, smtp_timeout=10 let a 6 s server get one email 17 times
    bad = dataclasses.replace(settings, dispatch_lease=3, smtp_timeout=10)
    with pytest.raises(ConfigError, match=r"dispatch_lease \(3 s\) must exceed .* smtp_timeout 10 s × 8"):
        Dispatcher(bad, engine=engine)
    with pytest.raises(ConfigError, match="sms_timeout 10 s × 3"):
        Dispatcher(dataclasses.replace(settings, dispatch_lease=25, smtp_timeout=1, sms_timeout=10), engine=engine)
    # the defaults hold: starttls with a login, 13 steps of 30 s, under the 420 s lease
    defaults = dataclasses.replace(settings, smtp_security="starttls", smtp_user="u", smtp_timeout=30,
                                   sms_timeout=10, dispatch_lease=420)
    assert lease.check(defaults) == pytest.approx((420 - 13 * 30) / 2)
    from cli import main

    env = {"FAVAD_DATABASE_URL": settings.db_url, "FAVAD_DATA_DIR": settings.data_dir,
           "FAVAD_SMTP_HOST": "127.0.0.1", "FAVAD_DISPATCH_LEASE": "3", "FAVAD_SMTP_TIMEOUT": "10",
           "FAVAD_CALLER_HASH_KEY": "k"}
    r = CliRunner().invoke(main, ["dispatch", "--once"], env=env)
    assert r.exit_code == 2 and "dispatch_lease (3 s) must exceed" in r.output


def test_three_dispatchers_against_slow_servers_send_each_message_once(slow):
    settings, engine, smtp, sms = slow
    smtp.delay = sms.delay = 0.15  # each answer waits, as the reported server did
    # a lease that covers one send (8 × 0.25 s) but not a batch sent one at a time (20 × 0.15 s):
    # only renewing the claims keeps the other dispatchers off them
    settings = dataclasses.replace(settings, dispatch_lease=2.5, smtp_timeout=0.25, sms_timeout=0.6,
                                   dispatch_batch=20, dispatch_concurrency=1, dispatch_max_tries=2)
    codes = _file(engine, 10)
    stop = threading.Event()
    dispatchers = [Dispatcher(settings, engine=make_engine(settings.db_url)) for _ in range(3)]
    threads = [threading.Thread(target=d.run, args=(stop,)) for d in dispatchers]
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        smtp.wait_for(10, timeout=20), sms.wait_for(10, timeout=20)
        time.sleep(settings.dispatch_lease + 0.5)  # a claim lost meanwhile would be re-sent now
    finally:
        stop.set()
        for t in threads:
            t.join()
        for d in dispatchers:
            d.engine.dispose()
    took = time.monotonic() - started
    case_numbers = Counter(m.raw.split(b"X-Favad-Case-Number: ")[1][:20].split(b"\r\n")[0].decode()
                           for m in smtp.messages)
    assert case_numbers == Counter({c: 1 for c in codes})
    assert Counter(r.fields["receptor"] + r.fields["message"] for r in sms.requests).most_common(1)[0][1] == 1
    assert len(sms.requests) == 10
    rows = _rows(engine)
    assert {(r.status, r.tries) for r in rows} == {("sent", 1)}, took
    assert took > settings.dispatch_lease  # the batch really outlasted one lease


def test_a_message_a_server_accepted_is_sent_even_if_its_claim_ran_out(slow):
    settings, engine, *_ = slow
    _file(engine, 1)
    Session = make_sessionmaker(engine)
    with Session() as s:
        [mail, sms] = outbox.claim(s, "slow", utcnow(), lease=0.05, limit=10, max_tries=2)
    time.sleep(0.1)
    with Session() as s:  # the claims ran out: another dispatcher takes them, fails, gives up
        assert outbox.claim(s, "other", utcnow(), lease=30, limit=10, max_tries=2) == [mail, sms]
        assert outbox.mark_failed(s, mail, "other", utcnow(), True, "smtp 550", 2, 0.01, 0.01) == "dead"
        # the first one's late words: its server had accepted both
        assert outbox.mark_failed(s, sms, "slow", utcnow(), False, "late", 2, 0.01, 0.01) is None
        assert sorted(outbox.mark_sent(s, {mail: None, sms: None}, "slow", utcnow())) == [mail, sms]
    rows = _rows(engine)
    assert [(r.status, r.claimed_by, r.tries) for r in rows] == [("sent", "slow", 2), ("sent", "slow", 2)]


def test_tries_never_pass_max_tries_when_the_last_try_never_reports(slow):
    settings, engine, *_ = slow
    _file(engine, 1)
    Session = make_sessionmaker(engine)
    for _ in range(2):  # two dispatchers in turn claim and vanish
        with Session() as s:
            assert len(outbox.claim(s, "ghost", utcnow(), lease=0.01, limit=10, max_tries=2)) == 2
        time.sleep(0.03)
    with Session() as s:
        assert outbox.claim(s, "next", utcnow(), lease=30, limit=10, max_tries=2) == []
    rows = _rows(engine)
    assert {(r.status, r.tries) for r in rows} == {("dead", 2)}
    assert all("outcome is unknown" in r.last_error for r in rows)


def test_a_claim_whose_commit_went_unheard_is_sent_at_the_next_round_not_after_its_lease(slow):
    """A failover can eat the answer to a claim's commit: the rows are the dispatcher's, for a
    whole lease, but it never learnt which. The round after a failed one gives them back."""
    settings, engine, smtp, _ = slow
    settings = dataclasses.replace(settings, dispatch_lease=300)
    _file(engine, 2)
    dispatcher = Dispatcher(settings, engine=engine, worker="w1")
    try:
        with make_sessionmaker(engine)() as s:  # committed; the answer never reached w1
            assert len(outbox.claim(s, "w1", utcnow(), lease=300, limit=10)) == 4
        assert dispatcher.run_once() == 0  # without doubt: they are someone's, for 300 s
        dispatcher._doubt = True  # what a failed round leaves (Dispatcher.run)
        assert dispatcher.run_once() == 4
    finally:
        dispatcher.close()
    assert len(smtp.wait_for(2)) == 2
    assert {(r.status, r.tries) for r in _rows(engine)} == {("sent", 2)}
