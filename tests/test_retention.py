"""Retention on both databases: what is due goes and nothing else; the dry run lists exactly what
the real run deletes; `favad retention run`; `favad serve`'s housekeeping runs it once an hour."""
from __future__ import annotations

import datetime as dt
import json
import logging
import os

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from accountability import actions
from conftest import favad_env
from db.engine import make_engine, make_sessionmaker
from db.models import CallerCount, Complaint, ComplaintEvent
from complaints.filing import file_complaint
from ivr.events import ComplaintDraft
from common.keyring import month_of
from retention import sweep

DAY = dt.timedelta(days=1)
STAFF = actions.Actor.staff("test")


@pytest.fixture
def Session(migrated):
    engine = make_engine(migrated.db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def _complaint(Session, settings, name: str | None, filed: dt.datetime, resolved: dt.datetime | None,
               elsewhere: bool = False) -> str:
    """A complaint with a recording ``name`` (a file in the recordings folder unless it is on
    another host), resolved at ``resolved`` if given; its case number."""
    path = None
    if name:
        local = settings.recordings_path / name
        if elsewhere:
            path = f"/var/spool/asterisk/recording/{name}"  # Asterisk's disk, not ours: no file here
        else:
            local.write_bytes(b"RIFF")
            path = str(local)
    with Session() as s:
        c = file_complaint(s, ComplaintDraft("28", "101", "280101", "disrespect", path), filed, 3)
        if resolved:
            actions.resolve(s, c, STAFF, "commendation", "", resolved)
            s.commit()
        return c.case_number


def _seed(settings, Session, now: dt.datetime) -> dict:
    """One of each kind due and one of each kind not yet due."""
    days = settings.retention_recording_days
    cases = {
        "old": _complaint(Session, settings, "old.v.wav", now - 100 * DAY, now - (days + 1) * DAY),
        "elsewhere": _complaint(Session, settings, "far.v.wav", now - 100 * DAY, now - (days + 1) * DAY,
                                elsewhere=True),
        "recent": _complaint(Session, settings, "recent.v.wav", now - 100 * DAY, now - (days - 1) * DAY),
        "open": _complaint(Session, settings, "open.v.wav", now - 200 * DAY, None),
        "silent": _complaint(Session, settings, None, now - 200 * DAY, now - 150 * DAY),
    }
    old, current = month_of(now - 70 * DAY), month_of(now)
    keyring = settings.keyring()
    keyring.caller_key(old)
    keyring.caller_key(current)
    with Session() as s:
        for period, day in ((old, (now - 70 * DAY).date()), (current, now.date())):
            s.add_all(CallerCount(period=period, day=day, caller_hash=f"{i:064x}", complaints=1, guesses=0)
                      for i in range(3))
        s.commit()
    journal = settings.data_dir + "/journal"
    os.makedirs(journal, exist_ok=True)
    files = {n: os.path.join(journal, n) for n in (".old.json.tmp", ".new.json.tmp",
                                                   "20250101T000000000000-complaint-0a1b2c3d.json")}
    for name, path in files.items():
        with open(path, "w") as f:
            f.write("{}")
        if name != ".new.json.tmp":
            stale = (now - 3 * DAY).timestamp()
            os.utime(path, (stale, stale))
    return {"cases": cases, "old": old, "current": current, "files": files}


def _state(settings, Session, seeded) -> dict:
    """What is left of every kind."""
    with Session() as s:
        recordings = dict(s.execute(select(Complaint.case_number, Complaint.recording_path)).all())
        counts = sorted(set(s.scalars(select(CallerCount.period))))
    keys = sorted(p.name for p in settings.keys_path.glob("caller-*.key"))
    files = sorted(os.path.basename(p) for p in seeded["files"].values() if os.path.exists(p))
    return {"recordings": {k: v for k, v in recordings.items() if v},
            "files_on_disk": sorted(p.name for p in settings.recordings_path.iterdir()),
            "counts": counts, "keys": keys, "journal": files}


def test_retention_deletes_what_is_due_and_nothing_else(migrated, Session):
    now = dt.datetime.now(dt.timezone.utc)
    seeded = _seed(migrated, Session, now)
    cases = seeded["cases"]
    with Session() as s:
        due = sweep.plan(migrated, s, now)
    summary = due.summary()
    assert summary == {"recordings": 2, "recording_cases": sorted([cases["old"], cases["elsewhere"]]),
                       "caller_months": [seeded["old"]], "caller_counts": 3, "caller_keys": 1,
                       "journal_temp_files": 1}

    with Session() as s:
        done = sweep.apply(migrated, s, due, now)
    assert done.summary() == summary
    left = _state(migrated, Session, seeded)
    assert set(left["recordings"]) == {cases["recent"], cases["open"]}
    assert left["files_on_disk"] == ["open.v.wav", "recent.v.wav"]
    assert left["counts"] == [seeded["current"]]
    assert f"caller-{seeded['old']}.key" not in left["keys"] and f"caller-{seeded['current']}.key" in left["keys"]
    assert left["journal"] == [".new.json.tmp", "20250101T000000000000-complaint-0a1b2c3d.json"]  # entries stay
    with Session() as s:  # the history says so; the status stays
        rows = s.execute(select(Complaint.case_number, Complaint.status, ComplaintEvent.status, ComplaintEvent.actor)
                         .join(ComplaintEvent).where(ComplaintEvent.kind == "recording_deleted")).all()
        assert sorted(rows) == sorted((cases[k], "resolved", "resolved", "retention") for k in ("old", "elsewhere"))
        assert sweep.plan(migrated, s, now).summary() == sweep.Plan().summary()  # nothing left to do


def test_the_dry_run_lists_exactly_what_the_real_run_deletes(migrated, Session):
    from cli import main

    now = dt.datetime.now(dt.timezone.utc)
    seeded = _seed(migrated, Session, now)
    before = _state(migrated, Session, seeded)
    env = favad_env(migrated)
    run = CliRunner().invoke

    dry = run(main, ["retention", "run", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert _state(migrated, Session, seeded) == before  # nothing touched
    assert "would delete:" in dry.output
    assert f"recordings of resolved complaints: 2 ({', '.join(sorted([seeded['cases']['old'], seeded['cases']['elsewhere']]))})" in dry.output
    assert f"caller counts: 3 rows, caller keys: 1 (months {seeded['old']})" in dry.output
    assert "journal temp files: 1" in dry.output
    with Session() as s:  # what identifies a caller is never printed
        assert not any(h in dry.output for h in s.scalars(select(Complaint.code_hash)))

    real = run(main, ["retention", "run"], env=env)
    assert real.exit_code == 0, real.output
    assert real.output.replace("deleted:", "would delete:", 1) == dry.output
    assert _state(migrated, Session, seeded) != before

    again = run(main, ["retention", "run", "--dry-run", "--json"], env=env)
    assert again.exit_code == 0, again.output
    assert json.loads(again.output) == {"dry_run": True, **sweep.Plan().summary()}


def test_the_command_fails_clearly_without_a_database(tmp_path):
    from cli import main

    env = {"FAVAD_DATA_DIR": str(tmp_path / "var"), "FAVAD_DATABASE_URL": f"sqlite:///{tmp_path}/none.sqlite3"}
    r = CliRunner().invoke(main, ["retention", "run", "--dry-run"], env=env)
    assert r.exit_code == 1 and "favad db upgrade" in r.output and "Traceback" not in r.output


def test_serve_housekeeping_runs_retention_at_most_once_an_hour_and_logs_its_failures(backend, monkeypatch, caplog):
    settings = backend.settings
    now = dt.datetime.now(dt.timezone.utc)
    seeded = _seed(settings, backend.Session, now)
    backend.housekeep()
    left = _state(settings, backend.Session, seeded)
    assert set(left["recordings"]) == {seeded["cases"]["recent"], seeded["cases"]["open"]}
    assert left["counts"] == [seeded["current"]]

    calls = []
    monkeypatch.setattr(sweep, "plan", lambda *a: calls.append(a) or 1 / 0)
    backend.housekeep()
    assert calls == []  # not again within the hour
    backend._retained_at -= 3601
    with caplog.at_level(logging.ERROR):
        backend.housekeep()  # a failure is logged, never raised into the housekeeping loop
    assert len(calls) == 1 and "retention failed" in caplog.text
