"""Province rollout: an admin switches a province on from a Jalali (or ISO) date, and what the
IVR says to callers from there changes; on SQLite and PostgreSQL, over FastAGI."""
from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import main
from conftest import running_server
from db.models import Province
from ivr.backend import Backend
from pbxsim.caller import Caller
from pbxsim.fastagi import run_call
from rollout.dates import DateError, parse_date


def env_for(s) -> dict:
    return {"FAVAD_DATABASE_URL": s.db_url, "FAVAD_DATA_DIR": s.data_dir,
            "FAVAD_SOUNDS_DIR": s.sounds_path, "FAVAD_RECORDINGS_DIR": str(s.recordings_path),
            "FAVAD_CALLER_HASH_KEY": s.caller_hash_key}


def heard(settings, area_code: str) -> list[str]:
    """The prompts a silent caller from ``area_code`` hears, on a fresh server and backend (the
    IVR caches the province directory for DIRECTORY_TTL seconds)."""
    backend = Backend(settings)

    async def scenario():
        async with running_server(backend) as (_server, port):
            return await run_call("127.0.0.1", port, script="favad", args=(area_code,),
                                  caller=Caller("- - -"), sounds_dir=settings.sounds_path)
    try:
        return asyncio.run(scenario()).played
    finally:
        backend.engine.dispose()


def activated_on(settings, area_code: str):
    backend = Backend(settings)
    with backend.Session() as s:
        day = s.scalar(select(Province.activated_on).where(Province.area_code == area_code))
    backend.engine.dispose()
    return day


@pytest.mark.parametrize("text, day", [
    ("1404-07-01", dt.date(2025, 9, 23)),
    ("۱۴۰۴/۰۷/۰۱", dt.date(2025, 9, 23)),
    ("1403/12/30", dt.date(2025, 3, 20)),  # the last day of a leap year
    ("2025-09-23", dt.date(2025, 9, 23)),
])
def test_dates_are_read_as_jalali_or_iso(text, day):
    assert parse_date(text) == day


def test_today_is_tehrans_today():
    late_utc = dt.datetime(2025, 9, 22, 21, 0, tzinfo=dt.timezone.utc)  # 00:30 on the 23rd in Tehran
    assert parse_date("today", now=late_utc) == dt.date(2025, 9, 23)


@pytest.mark.parametrize("text", ["1404-13-01", "1404-12-31", "2025-02-30", "next week", "1404-7"])
def test_impossible_dates_are_refused_with_the_accepted_forms(text):
    with pytest.raises(DateError):
        parse_date(text)


def test_activating_isfahan_changes_what_its_callers_hear(migrated):
    assert "favad/province-inactive" in heard(migrated, "31")
    runner = CliRunner(mix_stderr=False)

    result = runner.invoke(main, ["provinces", "activate", "31", "--on", "1404-07-01"], env=env_for(migrated))
    assert result.exit_code == 0, result.stderr
    assert "Isfahan (31, اصفهان): 128 is live from 1404/07/01 (2025-09-23)" in result.stdout
    assert activated_on(migrated, "31") == dt.date(2025, 9, 23)
    played = heard(migrated, "31")
    assert "favad/province-inactive" not in played and "favad/main-menu" in played

    result = runner.invoke(main, ["provinces", "deactivate", "isfahan"], env=env_for(migrated))
    assert result.exit_code == 0, result.stderr
    assert "favad/province-inactive" in heard(migrated, "31")


def test_a_future_date_waits_and_a_wrong_code_or_date_is_refused(migrated):
    runner = CliRunner(mix_stderr=False)
    future = runner.invoke(main, ["provinces", "activate", "31", "--on", "1499-01-01"], env=env_for(migrated))
    assert future.exit_code == 0 and "from that day" in future.stdout
    assert "favad/province-inactive" in heard(migrated, "31")
    unknown = runner.invoke(main, ["provinces", "activate", "99"], env=env_for(migrated))
    assert unknown.exit_code == 1 and "no province" in unknown.stderr
    bad = runner.invoke(main, ["provinces", "activate", "31", "--on", "1404-13-01"], env=env_for(migrated))
    assert bad.exit_code == 2 and "not a valid Jalali date" in bad.stderr
