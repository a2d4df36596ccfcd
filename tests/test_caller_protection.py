"""What 128 promises a caller, tried as an attacker would: the database cannot pair a caller
with a call or a complaint, the tracking code exists only in the caller's head, limits hold
across calls, and the keys forget past months."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import stat

import pytest
from click.testing import CliRunner
from sqlalchemy import MetaData, create_engine, select, text

from cli import main
from conftest import favad_env, running_server
from migrations.run import upgrade
from db.models import CallerCount, CallRecord, Complaint
from common.anonymity import caller_hash
from ivr.backend import Backend
from ivr.events import LookupStatus
from common.keyring import Keyring, code_hash, ratchet
from common.tracking import new_code
from pbxsim.caller import Caller
from pbxsim.fastagi import run_call
from presentation import fa_digits
from test_calls import FILE_ONE, spoken_code

CALLERS = 50


def number(i: int) -> str:
    return f"0912{i:07d}"


def place(backend, keys: str, callers: list[str], at_once: int = 10) -> list:
    """Calls from these numbers, ``at_once`` at a time, through a fresh FastAGI server."""
    async def scenario():
        async with running_server(backend) as (_server, port):
            gate = asyncio.Semaphore(at_once)

            async def one(cid):
                async with gate:
                    return await run_call("127.0.0.1", port, args=("28",), caller=Caller(keys),
                                          sounds_dir=backend.settings.sounds_path, callerid=cid)
            return await asyncio.gather(*(one(c) for c in callers))
    results = asyncio.run(scenario())
    backend.close()  # the call records nobody waited for
    return results


@pytest.fixture
def limited(migrated):
    b = Backend(dataclasses.replace(migrated, limit_complaints_day=2, limit_guesses_day=2))
    yield b
    b.close()
    b.engine.dispose()


# ---- the database links nothing -------------------------------------------------------------
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_no_join_pairs_a_caller_with_their_complaint_better_than_chance(backend):
    numbers = [number(i) for i in range(CALLERS)]
    results = place(backend, FILE_ONE, numbers)
    codes = [spoken_code(r.played) for r in results]
    assert all(codes) and len(set(codes)) == CALLERS
    assert backend.ledger.flush() == CALLERS  # the counts go in at their own moment
    # the truth the attacker wants: which caller hash filed which complaint
    period = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m")
    key = backend.keyring.caller_key(period)
    truth = {caller_hash(n, key, period): backend.code_hash(c) for n, c in zip(numbers, codes)}

    with backend.engine.connect() as conn:
        counts = conn.execute(text("SELECT xmin::text, ctid::text, caller_hash FROM caller_counts "
                                   "ORDER BY caller_counts.ctid")).all()
        complaints = conn.execute(text("SELECT xmin::text, ctid::text, id, code_hash FROM complaints "
                                       "ORDER BY id")).all()
        calls = conn.execute(text("SELECT xmin::text FROM call_records")).scalars().all()
    assert len(counts) == CALLERS and set(truth) == {h for _, _, h in counts}
    # no transaction wrote a caller's count beside a call or a complaint
    assert not {x for x, _, _ in counts} & ({x for x, _, _, _ in complaints} | set(calls))
    # row order: the counts lie in hash order, which says nothing of the order of the calls
    assert [h for _, _, h in counts] == sorted(truth)
    # an attacker pairing the i-th count (by ctid) with the i-th complaint (by id, or by ctid)
    for ordered in (complaints, sorted(complaints, key=lambda r: tuple(map(int, r[1].strip("()").split(","))))):
        hits = sum(truth[h] == c[3] for (_, _, h), c in zip(counts, ordered))
        assert hits <= 6, f"{hits} of {CALLERS} paired: a random pairing gets about one"
    # nothing finer than the day on the caller's side; calls keep the minute only
    assert {c.name for c in CallerCount.__table__.columns} == {"period", "day", "caller_hash",
                                                               "complaints", "guesses"}
    with backend.Session() as s:
        assert {r.second for r in s.scalars(select(CallRecord.started_at))} == {0}


def test_the_database_and_the_journal_hold_no_code_a_caller_heard(backend, tmp_path):
    results = place(backend, FILE_ONE, [number(1), number(2)])
    heard = [spoken_code(r.played) for r in results]
    assert all(heard)
    dump = []
    with backend.engine.connect() as conn:
        meta = MetaData()
        meta.reflect(conn)
        for table in meta.sorted_tables:
            dump += [repr(tuple(row)) for row in conn.execute(table.select())]
    dump = "\n".join(dump)
    assert "complaint_filed" in dump  # the dump is real
    for code in heard:
        assert code not in dump and fa_digits(code) not in dump
        assert backend.code_hash(code) in dump  # what is kept instead


def test_staff_tools_know_case_numbers_and_never_take_a_tracking_code(backend):
    (result,) = place(backend, FILE_ONE, [number(3)])
    code = spoken_code(result.played)
    with backend.Session() as s:
        (c,) = s.scalars(select(Complaint)).all()
    env = favad_env(backend.settings)
    runner = CliRunner(mix_stderr=False)
    listed = runner.invoke(main, ["complaints", "list", "--json"], env=env)
    assert listed.exit_code == 0 and c.case_number in listed.output and code not in listed.output
    shown = runner.invoke(main, ["complaints", "show", c.case_number.lower()], env=env)
    assert shown.exit_code == 0 and code not in shown.output
    refused = runner.invoke(main, ["complaints", "show", code], env=env)
    assert refused.exit_code != 0
    # a case number is no tracking code: a caller (or anyone) following up with it finds nothing
    ctx = backend.open_call({"agi_callerid": number(4)})[1]
    assert backend.perform(LookupStatus(c.case_number), ctx).status is None


# ---- abuse limits -------------------------------------------------------------------------
def test_a_caller_over_the_daily_limit_stores_nothing_and_hears_why(limited):
    first = place(limited, FILE_ONE, [number(5)] * 2, at_once=1)
    assert all(spoken_code(r.played) for r in first)
    (over,) = place(limited, FILE_ONE, [number(5)])
    assert "favad/filed-limit-reached" in over.played and "favad/filed-code-is" not in over.played
    (other,) = place(limited, FILE_ONE, [number(6)])  # another phone is not held back
    assert spoken_code(other.played)
    with limited.Session() as s:
        assert len(s.scalars(select(Complaint)).all()) == 3
        assert list(s.scalars(select(CallRecord.outcome).order_by(CallRecord.id))) == \
            ["complaint_filed"] * 2 + ["refused", "complaint_filed"]


def test_the_limit_holds_across_servers_once_counts_are_flushed(limited, migrated):
    place(limited, FILE_ONE, [number(7)] * 2, at_once=1)
    limited.ledger.flush()
    # a second server, with the same keys, reads what the first one wrote
    other = Backend(dataclasses.replace(migrated, limit_complaints_day=2))
    try:
        (over,) = place(other, FILE_ONE, [number(7)])
        assert "favad/filed-limit-reached" in over.played
    finally:
        other.close()
        other.engine.dispose()


def test_guessing_codes_is_limited_across_calls(limited):
    wrong = [new_code() for _ in range(3)]
    for guess in wrong[:2]:  # two calls, one unknown (well-formed) code each
        (r,) = place(limited, f"2 {guess}#", [number(8)])
        assert "favad/followup-limited" not in r.played
    (r,) = place(limited, f"2 {wrong[2]}#", [number(8)])
    assert "favad/followup-limited" in r.played
    with limited.Session() as s:
        assert list(s.scalars(select(CallRecord.outcome).order_by(CallRecord.id)))[-1] == "refused"
    (r,) = place(limited, f"2 {wrong[2]}#", [number(9)])  # another phone still may try
    assert "favad/followup-limited" not in r.played


# ---- keys ---------------------------------------------------------------------------------
def test_caller_keys_ratchet_forward_and_past_months_are_forgotten(tmp_path):
    ring = Keyring(tmp_path / "keys")
    nov = ring.caller_key("2026-11")
    dec = ring.caller_key("2026-12")
    assert dec == ratchet(nov, "2026-12") and dec != nov
    assert Keyring(tmp_path / "keys").caller_key("2026-12") == dec  # the same on the next start
    assert stat.S_IMODE(os.stat(tmp_path / "keys").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "keys" / "caller-2026-12.key").st_mode) == 0o600
    assert ring.expired(dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc)) == []  # within the grace
    assert ring.expired(dt.datetime(2026, 12, 3, tzinfo=dt.timezone.utc)) == ["2026-11"]
    ring.forget("2026-11")
    assert not (tmp_path / "keys" / "caller-2026-11.key").exists()
    # from December's key nothing leads back to November's
    assert Keyring(tmp_path / "keys").caller_key("2026-12") == dec
    assert ring.caller_key("2027-01") == ratchet(dec, "2027-01")


def test_servers_seeded_alike_agree_and_keys_live_outside_data_dir(migrated, tmp_path):
    a = Keyring(tmp_path / "a", seed="s")
    b = Keyring(tmp_path / "b", seed="s")
    assert a.caller_key("2026-12") == b.caller_key("2026-12")
    assert a.caller_key("2027-02") == b.caller_key("2027-02")
    data = migrated.data_dir
    assert not str(migrated.keys_path).startswith(os.path.abspath(data) + os.sep)


# ---- codes issued before the migration ----------------------------------------------------
def test_codes_issued_before_the_migration_keep_working_for_their_callers(tmp_path, migrated):
    url = f"sqlite:///{tmp_path}/old.sqlite3"
    upgrade(url, "0004")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO provinces (id, area_code, name_fa, name_en) VALUES (1, '28', 'q', 'q')"))
        conn.execute(text("INSERT INTO agencies (id, code, name_fa, name_en) VALUES (1, '101', 'a', 'a')"))
        conn.execute(text("INSERT INTO indicators (id, code, name_fa, name_en) VALUES (1, 'x', 'x', 'x')"))
        conn.execute(text("INSERT INTO complaints (tracking_code, created_at, province_id, agency_id, "
                          "indicator_id, status, sla_due_at) VALUES ('1234567894', '2026-11-01 08:00:00', "
                          "1, 1, 1, 'resolved', '2026-11-01 11:00:00')"))
    with pytest.raises(RuntimeError, match="tracking key"):
        upgrade(url)  # without the key, the codes cannot be converted: refused, nothing half-done
    ring = Keyring(tmp_path / "keys")
    upgrade(url, keyring=ring)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT case_number, code_hash FROM complaints")).one()
        columns = [c["name"] for c in conn.execute(text("PRAGMA table_info(complaints)")).mappings()]
    assert row.code_hash == code_hash(ring.tracking_key(), "1234567894") and row.case_number
    assert "tracking_code" not in columns
    engine.dispose()
