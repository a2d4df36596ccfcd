"""Speaking the caller's language: catalogs per language, the welcome's offer to switch, and a
call that stays in the language chosen (the flow alone, no I/O)."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import main
from conftest import running_server
from db.engine import make_engine
from db.models import CallRecord, Complaint, Province
from migrations.run import alembic_config, drift, upgrade
from ivr import catalog
from ivr.events import Ask, Done, Finish, SetLanguage
from ivr.flow import Call
from ivr.menu import MenuError, load_menu
from pbxsim.caller import Caller
from pbxsim.fastagi import run_call
from tests.test_flow import CODE, DIRECTORY, INDICATORS, Script, asks, filed

LANGS = dataclasses.replace(DIRECTORY, active_provinces=DIRECTORY.active_provinces | {"41", "61", "87"},
                            known_provinces=DIRECTORY.known_provinces | {"41", "61", "87"},
                            languages={"41": ("az", "fa"), "61": ("ar", "fa"), "87": ("ku", "fa")})
COMPLETE = ("fa", "az", "ku", "ar")


class Speaker(Script):
    """A Script that answers a language switch as the driver does, and notes the language of
    every question."""

    def __init__(self, keys, **kw):
        super().__init__(keys, **kw)
        self.heard: list[tuple[str, str]] = []  # (language, first prompt) of each question
        self.language = None

    def answer(self, action):
        if isinstance(action, SetLanguage):
            self.language = action.language
            return Done()
        if isinstance(action, Ask):
            self.heard.append((self.language, action.step))
        return super().answer(action)

    def run(self, call, hangup_after=None):
        self.language = call.language  # what the driver sets before the first prompt
        return super().run(call, hangup_after)


def make_call(province="41", menu=None):
    names = (f"rec{i}" for i in itertools.count())
    return Call(menu or load_menu(None, INDICATORS), LANGS, province, False, "/rec", lambda: next(names))


def test_tabriz_starts_in_azerbaijani_and_offers_persian_at_the_welcome():
    call = make_call("41")
    assert call.language == "az"
    s = Speaker(["", "1", "280101", "1", "4", "2", "1", ""])
    end = s.run(call)
    first = asks(s.actions)[0]
    assert first.step == "language" and first.prompts == ("welcome", "language-fa")
    assert not any(isinstance(a, SetLanguage) for a in s.actions)  # silence keeps Azerbaijani
    assert {lang for lang, _ in s.heard} == {"az"}
    assert end == Finish("complaint_filed", "41") and end.language == "az"


@pytest.mark.parametrize("province,default", [("41", "az"), ("61", "ar"), ("87", "ku")])
def test_one_key_switches_to_persian_for_the_rest_of_the_call(province, default):
    s = Speaker(["1", "1", "280101", "1", "4", "2", "1", "9", ""])
    end = s.run(make_call(province))
    assert [a for a in s.actions if isinstance(a, SetLanguage)] == [SetLanguage("fa")]
    assert s.heard[0] == (default, "language")
    # every later question, the read-back of the office and the tracking code (twice) included
    assert [lang for lang, _ in s.heard[1:]] == ["fa"] * (len(s.heard) - 1)
    assert [step for _, step in s.heard[1:]] == ["main", "office", "confirm_office", "indicator",
                                                 "recording", "summary", "filed", "filed"]
    assert filed(s.actions)[0].province_code == "28"
    assert end.language == "fa"


def test_the_default_languages_key_keeps_it_and_a_key_of_no_language_answers_the_main_menu():
    s = Speaker(["2", "1", "280101", "1", "4", "2", "1", ""])
    s.run(make_call("41"))
    assert not any(isinstance(a, SetLanguage) for a in s.actions)
    # "2" above was Azerbaijani's key, not "follow up"; 7 is no language's: the main menu's answer
    typed_ahead = Speaker(["7", "", "", ""])
    typed_ahead.run(make_call("41"))
    main = [a for a in asks(typed_ahead.actions) if a.step == "main"]
    assert main[0].prompts[0] == "invalid-key"


def test_a_persian_only_province_is_not_offered_anything():
    s = Speaker(["1", "280101", "1", "4", "2", "1", ""])
    call = make_call("28")
    s.run(call)
    assert call.language == "fa" and asks(s.actions)[0].step == "main"
    assert not any(isinstance(a, SetLanguage) for a in s.actions)


def test_a_province_typed_by_the_caller_switches_to_its_language():
    s = Speaker(["41", "", "1", "280101", "1", "4", "2", "1", ""])
    end = s.run(make_call(""))
    assert SetLanguage("az") in s.actions
    assert s.heard[0] == ("fa", "province") and s.heard[1] == ("az", "language")
    assert end.language == "az"


def test_a_hangup_after_the_switch_records_the_language_chosen():
    s = Speaker(["1", "1", "280101"])
    call = make_call("61")
    s.run(call, hangup_after=4)
    assert s.actions[-1].language == "fa"


def test_a_menu_without_a_language_section_offers_nothing(tmp_path):
    text = open(load_menu(None).source, encoding="utf-8").read().split("\n[language]")[0]
    (tmp_path / "menu.toml").write_text(text, encoding="utf-8")
    call = make_call("41", load_menu(str(tmp_path / "menu.toml"), INDICATORS))
    s = Speaker(["1", "280101", "1", "4", "2", "1", ""])
    s.run(call)
    assert call.language == "az" and asks(s.actions)[0].step == "main"


def test_a_language_key_must_name_a_language(tmp_path):
    text = open(load_menu(None).source, encoding="utf-8").read().replace('"2" = "az"', '"2" = "Azeri!"')
    (tmp_path / "menu.toml").write_text(text, encoding="utf-8")
    with pytest.raises(MenuError, match=r"\[language.keys\] '2'"):
        load_menu(str(tmp_path / "menu.toml"))


# ---- the catalogs ------------------------------------------------------------------------
def test_the_four_complete_languages_have_every_prompt_of_the_persian_catalog():
    ids = set(load_menu(None).prompt_ids()) | set(catalog.static_catalog("fa"))
    ids |= {f"indicator-{code}" for code in INDICATORS} | {"service-unavailable"}
    for lang in COMPLETE[1:]:  # Persian's names come from the database and the dialplan's file
        assert catalog.missing(lang, ids) == []
    for lang in COMPLETE:
        assert f"language-{lang}" in catalog.entries(lang)


def test_azerbaijani_is_shown_in_perso_arabic_script_and_spoken_from_latin():
    az = catalog.entries("az")
    assert catalog.languages()["az"].transliterated
    for entry in az.values():
        assert not any("a" <= ch.lower() <= "z" for ch in entry.text)  # the script people read
        assert all(ord(ch) < 0x600 or ord(ch) > 0x6FF for ch in entry.say)  # what espeak-ng reads
    assert az["digits/7"].say == "yeddi"


def test_a_prompt_a_catalog_lacks_falls_back_to_persian_and_offers_speak_their_own_language():
    persian = {"welcome": "خوش آمدید", "agency-101": "وزارت نیرو"}
    az = catalog.spoken("az", persian)
    assert az["welcome"].language == "az" and az["agency-101"] == catalog.Spoken("وزارت نیرو", "وزارت نیرو", "fa")
    assert az["language-fa"].language == "fa" and az["language-ar"].language == "ar"
    assert catalog.spoken("tk", persian)["welcome"].language == "fa"  # no catalog yet: Persian


# ---- over AGI, against pbxsim: what Asterisk is told and which folder each prompt comes from ----
FILE_ONE = "1 280101# 1 4 2 1 -"


def live(backend, *area_codes):
    with backend.Session() as s:
        for p in s.scalars(select(Province).where(Province.area_code.in_(area_codes))):
            p.activated_on = dt.date(2025, 1, 1)
        s.commit()
    backend.reference.load()


def place(backend, keys, province, **kw):
    """One call as a trunk of ``province`` delivers it (the dialplan set its language first);
    (result, [(sound, the channel's language when it played)])."""
    heard: list[tuple[str, str]] = []
    with backend.Session() as s:
        first = s.scalar(select(Province.languages).where(Province.area_code == province)).split(",")[0]

    async def scenario():
        async with running_server(backend) as (_server, port):
            return await run_call("127.0.0.1", port, script="favad", args=(province,),
                                  caller=Caller(keys, **kw), sounds_dir=backend.settings.sounds_path,
                                  language=first, on_heard=lambda n, lang: heard.append((n, lang)))
    return asyncio.run(scenario()), heard


def records(backend):
    backend.close()
    with backend.Session() as s:
        return [(r.outcome, r.language) for r in s.scalars(select(CallRecord).order_by(CallRecord.id))]


def code_heard(heard):
    names = [n for n, _ in heard]
    i = names.index("favad/filed-code-is")
    return "".join(n[-1] for n in names[i + 1:i + 11])


@pytest.mark.parametrize("province,language", [("41", "az"), ("87", "ku"), ("61", "ar")])
def test_a_call_from_a_province_of_another_language_is_filed_in_it(backend, province, language):
    live(backend, province)
    result, heard = place(backend, "- " + FILE_ONE, province)
    assert result.commands[:2] == ["ANSWER", f'SET VARIABLE CHANNEL(language) "{language}"']
    assert {lang for _, lang in heard} == {language}  # welcome, read-backs, tracking code, goodbye
    assert ("favad/agency-101", language) in heard and ("favad/indicator-disrespect", language) in heard
    for name, _ in heard:  # each one found in the language's own folder
        assert (Path(backend.settings.sounds_path) / language / f"{name}.wav").exists(), name
    with backend.Session() as s:
        (c,) = s.scalars(select(Complaint))
        assert backend.code_hash(code_heard(heard)) == c.code_hash
    assert records(backend) == [("complaint_filed", language)]


def test_tabriz_switches_to_persian_with_one_key_for_every_step_after(backend):
    live(backend, "41")
    result, heard = place(backend, "1 " + FILE_ONE, "41")
    switch = result.commands.index('SET VARIABLE CHANNEL(language) "fa"')
    assert result.commands[1] == 'SET VARIABLE CHANNEL(language) "az"' and switch > 1
    names = [n for n, _ in heard]
    at = names.index("favad/main-menu")
    assert heard[:at] == [("favad/welcome", "az"), ("favad/language-fa", "az")]
    assert {lang for _, lang in heard[at:]} == {"fa"}
    assert {"favad/enter-office-code", "favad/agency-101", "favad/submit-or-restart",
            "favad/filed-code-is", "favad/digits/" + code_heard(heard)[0], "favad/goodbye"} <= set(names[at:])
    assert records(backend) == [("complaint_filed", "fa")]


@pytest.mark.parametrize("step", range(3, 9))
def test_a_hangup_at_any_step_after_the_switch_is_counted_in_the_language_chosen(backend, step):
    live(backend, "41")
    place(backend, "1 " + FILE_ONE, "41", hangup_at=step)
    with backend.Session() as s:
        assert s.scalar(select(Complaint.id)) is None
    assert records(backend) == [("abandoned", "fa")]


def test_the_province_command_sets_the_languages_and_new_calls_follow(backend, migrated):
    env = {"FAVAD_DATABASE_URL": migrated.db_url, "FAVAD_DATA_DIR": migrated.data_dir}
    runner = CliRunner(mix_stderr=False)
    done = runner.invoke(main, ["provinces", "languages", "28", "ar,fa"], env=env)
    assert done.exit_code == 0, done.stderr
    assert runner.invoke(main, ["provinces", "languages", "28"], env=env).stdout.strip().endswith("ar,fa")
    bad = runner.invoke(main, ["provinces", "languages", "28", "xx,fa"], env=env)
    assert bad.exit_code == 1 and "xx,fa" in bad.stderr
    backend.reference.load()
    result, heard = place(backend, "- - - -", "28")
    assert result.commands[1] == 'SET VARIABLE CHANNEL(language) "ar"'
    assert heard[0] == ("favad/welcome", "ar") and ("favad/language-fa", "ar") in heard


def test_prompts_build_and_check_per_language(migrated, tmp_path):
    env = {"FAVAD_DATABASE_URL": migrated.db_url, "FAVAD_DATA_DIR": migrated.data_dir,
           "FAVAD_SOUNDS_DIR": str(tmp_path / "sounds"),
           "FAVAD_PROMPT_RECORDINGS_DIR": str(tmp_path / "studio")}
    runner = CliRunner(mix_stderr=False)
    built = runner.invoke(main, ["prompts", "build", "--engine", "tone", "--lang", "az", "--lang", "tk"], env=env)
    assert built.exit_code == 0, built.stderr
    assert "az: " in built.stdout and "tk: " in built.stdout
    assert (tmp_path / "sounds/az/favad/welcome.wav").exists()
    assert (tmp_path / "sounds/tk/favad/welcome.wav").exists()  # Persian, until tk has words
    check = runner.invoke(main, ["prompts", "check", "--lang", "az", "--lang", "tk", "--json"], env=env)
    assert check.exit_code == 0, check.stdout + check.stderr
    rows = json.loads(check.stdout)
    by = {(r["language"], r["prompt"]): r["state"] for r in rows}
    assert by[("tk", "welcome")] == "persian"
    assert by[("az", "agency-101")] == "persian"  # agency names: Persian until a catalog names them
    assert ("az", "welcome") not in by
    missing = runner.invoke(main, ["prompts", "check", "--lang", "ku"], env=env)
    assert missing.exit_code == 1 and "ku" in missing.stdout
    menu = runner.invoke(main, ["menu", "check"], env=env)
    assert menu.exit_code == 0, menu.stderr
    assert "tk: no catalog" in menu.stdout and "az: all" in menu.stdout


def build_report(s):
    import jdatetime

    from clock import TEHRAN
    from clock.calendar import load
    from reports.monthly import Params, from_db
    from reports.months import Month

    now = dt.datetime.now(dt.timezone.utc)
    today = jdatetime.date.fromgregorian(date=now.astimezone(TEHRAN).date())
    return from_db(s, Month(today.year, today.month, True), Params(load(None)), now)


def test_the_monthly_report_counts_calls_and_complaints_per_language_and_province(backend):
    from reports import data as rdata
    from reports.monthly import by_language

    live(backend, "41")
    place(backend, "- " + FILE_ONE, "41")
    place(backend, "1 " + FILE_ONE, "41")
    place(backend, "2 - - -", "41")
    records(backend)
    now = dt.datetime.now(dt.timezone.utc)
    with backend.Session() as s:
        month = rdata.month(s, now - dt.timedelta(days=1), now + dt.timedelta(days=1))
        rows = by_language(month, rdata.reference(s))
    assert [r[2:] for r in rows if r[0] == "41"] == [("az", 2, 1), ("fa", 1, 1)]
    from reports.render import csv_rows

    with backend.Session() as s:
        report = build_report(s)
    csv = {(r["scope"], r["code"]): r for r in csv_rows(report)}
    assert (csv[("province", "41")]["calls_az"], csv[("province", "41")]["complaints_fa"]) == (2, 1)
    assert csv[("all", "all")]["calls_fa"] == 1 and csv[("agency", "101")]["calls_az"] is None
    from reports.publish import monthly_html

    page = monthly_html(report, {"heatmap-provinces": "", "heatmap-agency-indicator": ""},
                        dt.datetime.now(dt.timezone.utc))
    assert "زبان تماس‌ها" in page and "<td>az</td>" in page


def test_migration_0007_seeds_the_provinces_languages_and_goes_back(settings):
    from alembic import command
    from sqlalchemy import text

    upgrade(settings.db_url, "0006")
    engine = make_engine(settings.db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO provinces (area_code, name_fa, name_en) VALUES "
                              "('41', 'آذربایجان شرقی', 'East Azerbaijan'), ('28', 'قزوین', 'Qazvin')"))
        upgrade(settings.db_url)
        with engine.connect() as conn:
            assert dict(conn.execute(text("SELECT area_code, languages FROM provinces")).all()) == \
                {"41": "az,fa", "28": "fa"}
        assert drift(engine) == []
        command.downgrade(alembic_config(settings.db_url), "0006")
        with engine.connect() as conn:
            assert "languages" not in conn.execute(text("SELECT * FROM provinces")).keys()
    finally:
        engine.dispose()


def test_favad_call_prints_each_prompt_in_the_language_it_was_played_in(backend, migrated):
    live(backend, "41")
    env = {"FAVAD_DATABASE_URL": migrated.db_url, "FAVAD_DATA_DIR": migrated.data_dir,
           "FAVAD_SOUNDS_DIR": migrated.sounds_path}

    async def scenario():
        async with running_server(backend) as (_server, port):
            return await asyncio.get_running_loop().run_in_executor(None, lambda: CliRunner(mix_stderr=False).invoke(
                main, ["call", "--host", "127.0.0.1", "--port", str(port), "--province", "41",
                       "--lang", "fa", "--digits", "1 - - - -"], env=env))
    done = asyncio.run(scenario())
    assert done.exit_code == 0, done.stderr
    lines = [line.strip() for line in done.stdout.splitlines() if "🔊" in line]
    assert lines[0] == f"🔊 [az] {catalog.entries('az')['welcome'].text}"  # the IVR set Azerbaijani
    assert lines[1] == f"🔊 [az] {catalog.entries('fa')['language-fa'].text}"
    assert lines[2] == f"🔊 [fa] {catalog.entries('fa')['main-menu'].text}"
    bad = CliRunner(mix_stderr=False).invoke(main, ["call", "--lang", "xx"], env=env)
    assert bad.exit_code == 2 and "xx" in bad.stderr


@pytest.mark.skipif(__import__("shutil").which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_espeak_speaks_azerbaijani_from_its_transliteration(tmp_path):
    from prompts.build import build, load_manifest, prompt_dir

    az = catalog.spoken("az", {"agency-101": "وزارت نیرو"})
    said = {pid: az[pid].say for pid in ("welcome", "agency-101")}
    voices = {"welcome": "az", "agency-101": "fa"}  # no Azerbaijani name: the Persian stand-in
    written, engine = build(said, said, str(tmp_path), engine="espeak", language="az", voices=voices)
    assert (written, engine) == (2, "espeak")
    assert (prompt_dir(str(tmp_path), "az") / "welcome.wav").stat().st_size > 8000
    assert set(load_manifest(str(tmp_path), "az")) == {"welcome", "agency-101"}


def test_dialplan_check_looks_for_the_sounds_of_every_language_a_province_starts_in(migrated, tmp_path):
    import shutil

    sounds = tmp_path / "sounds"
    shutil.copytree(migrated.sounds_path, sounds)
    (sounds / "ar/favad/service-unavailable.wav").unlink()
    env = {"FAVAD_DATABASE_URL": migrated.db_url, "FAVAD_DATA_DIR": migrated.data_dir,
           "FAVAD_SOUNDS_DIR": str(sounds)}
    result = CliRunner(mix_stderr=False).invoke(main, ["dialplan", "check", "--offline"], env=env)
    assert result.exit_code == 1
    assert "[ar] favad/service-unavailable has no wav file" in result.stdout + result.stderr
