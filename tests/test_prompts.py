"""Prompt audio: a real studio recording (an MP3 and an OGG made with ffmpeg) converted to 8 kHz
mono in every format Asterisk plays, a real espeak-ng stand-in, and what `favad prompts check`
calls missing or stale."""
from __future__ import annotations

import array
import math
import os
import shutil
import subprocess
import time
import wave
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from prompts.build import build, load_manifest, prompt_dir
from prompts.formats import PromptError, parse_formats
from prompts.status import survey

ALL = ("wav", "sln", "alaw", "ulaw", "gsm")
TEXTS = {"welcome": "به سامانه ۱۲۸ خوش آمدید.", "goodbye": "خدانگهدار.", "digits/1": "یک"}


def studio_file(folder: Path, name: str, seconds: float = 1.0, rate: int = 44100) -> Path:
    """A real compressed recording: a stereo 44.1 kHz sweep, encoded by ffmpeg."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"sine=frequency=700:sample_rate={rate}:duration={seconds}", "-ac", "2",
                    str(path)], check=True)
    return path


def decoded(path: Path, fmt: str) -> bytes:
    """Raw 8 kHz 16-bit samples of a built file, decoded by ffmpeg (as Asterisk would play it)."""
    demux = {"alaw": ["-f", "alaw", "-ar", "8000", "-ac", "1"], "ulaw": ["-f", "mulaw", "-ar", "8000", "-ac", "1"],
             "sln": ["-f", "s16le", "-ar", "8000", "-ac", "1"], "gsm": ["-f", "gsm"], "wav": []}[fmt]
    return subprocess.run(["ffmpeg", "-nostdin", "-v", "error", *demux, "-i", str(path), "-f", "s16le", "-"],
                          check=True, capture_output=True).stdout


def rms(raw: bytes) -> float:
    samples = array.array("h", raw)
    return math.sqrt(sum(s * s for s in samples) / max(len(samples), 1))


def test_a_studio_mp3_becomes_8khz_mono_in_every_configured_format(tmp_path):
    studio = tmp_path / "studio"
    studio_file(studio, "welcome.mp3")
    studio_file(studio / "digits", "1.ogg", seconds=0.5)
    sounds = tmp_path / "sounds"
    written, engine = build(TEXTS, ["welcome", "digits/1"], str(sounds), engine="tone", formats=ALL,
                            recordings_dir=str(studio))
    assert written == 10
    base = prompt_dir(str(sounds))
    with wave.open(str(base / "welcome.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert abs(w.getnframes() - 8000) < 400
    assert abs((base / "welcome.sln").stat().st_size - 16000) < 800
    assert abs((base / "welcome.alaw").stat().st_size - 8000) < 400
    assert (base / "welcome.gsm").stat().st_size % 33 == 0  # whole GSM frames
    for fmt in ALL:
        raw = decoded(base / f"welcome.{fmt}", fmt)
        assert abs(len(raw) - 16000) < 1000 and rms(raw) > 1000, fmt  # one second of real sound
    assert (base / "digits" / "1.ulaw").exists()
    assert load_manifest(str(sounds))["welcome"]["source"] == "recording"


def test_an_unreadable_recording_is_reported_by_name(tmp_path):
    (tmp_path / "studio").mkdir()
    (tmp_path / "studio" / "welcome.mp3").write_bytes(b"not audio at all")
    with pytest.raises(PromptError, match="welcome.mp3"):
        build(TEXTS, ["welcome"], str(tmp_path / "sounds"), engine="tone", recordings_dir=str(tmp_path / "studio"))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_espeak_speaks_a_persian_stand_in(tmp_path):
    written, engine = build(TEXTS, ["welcome"], str(tmp_path), engine="auto", formats=("wav", "gsm"))
    assert (written, engine) == (2, "espeak")
    with wave.open(str(prompt_dir(str(tmp_path)) / "welcome.wav")) as w:
        assert (w.getframerate(), w.getnchannels()) == (8000, 1)
        raw = w.readframes(w.getnframes())
        assert w.getnframes() > 8000  # a sentence, more than a second
    assert rms(raw) > 300
    assert load_manifest(str(tmp_path))["welcome"]["source"] == "espeak"


def test_check_lists_missing_and_stale_prompts_and_build_fixes_them(tmp_path):
    sounds, studio = str(tmp_path / "sounds"), str(tmp_path / "studio")
    ids = list(TEXTS)
    build(TEXTS, ids, sounds, engine="tone")
    assert {s.state for s in survey(TEXTS, ids, sounds, ("wav",), studio)} == {"ok"}

    state = {s.prompt: s for s in survey(TEXTS, ids, sounds, ("wav", "alaw"), studio)}
    assert state["welcome"].state == "missing" and "alaw" in state["welcome"].detail

    time.sleep(0.01)
    studio_file(Path(studio), "welcome.mp3")  # the studio delivers: newer than the stand-in
    os.remove(prompt_dir(sounds) / "goodbye.wav")
    changed = {**TEXTS, "digits/1": "یک!"}
    state = {s.prompt: s for s in survey(changed, ids, sounds, ("wav",), studio)}
    assert state["welcome"].state == "stale" and "newer" in state["welcome"].detail
    assert state["goodbye"].state == "missing"
    assert state["digits/1"].state == "stale" and "text changed" in state["digits/1"].detail

    written, _ = build(changed, ids, sounds, engine="tone", recordings_dir=studio)
    assert written == 3
    assert {s.state for s in survey(changed, ids, sounds, ("wav",), studio)} == {"ok"}
    assert build(changed, ids, sounds, engine="tone", recordings_dir=studio)[0] == 0  # nothing to redo


def test_formats_are_checked_by_name():
    assert parse_formats("WAV, slin, ulaw,gsm") == ("wav", "sln", "ulaw", "gsm")
    with pytest.raises(PromptError, match="mp3"):
        parse_formats("wav,mp3")


def test_the_cli_builds_and_checks_every_prompt_a_call_can_play(migrated, tmp_path):
    env = {"FAVAD_DATABASE_URL": migrated.db_url, "FAVAD_DATA_DIR": migrated.data_dir,
           "FAVAD_SOUNDS_DIR": str(tmp_path / "sounds"), "FAVAD_PROMPT_FORMATS": "wav,ulaw",
           "FAVAD_PROMPT_RECORDINGS_DIR": str(tmp_path / "studio")}
    studio_file(tmp_path / "studio", "welcome.ogg")
    runner = CliRunner(mix_stderr=False)
    before = runner.invoke(main, ["prompts", "check"], env=env)
    assert before.exit_code == 1 and "welcome" in before.stdout and "missing" in before.stderr
    built = runner.invoke(main, ["prompts", "build", "--engine", "tone"], env=env)
    assert built.exit_code == 0, built.stderr
    after = runner.invoke(main, ["prompts", "check"], env=env)
    assert after.exit_code == 0, after.stdout + after.stderr
    listing = runner.invoke(main, ["prompts", "list", "--json"], env=env)
    rows = {r["id"]: r for r in __import__("json").loads(listing.stdout)}
    assert rows["welcome"]["audio"] == "recording" and rows["goodbye"]["audio"] == "tone"
    assert rows["service-unavailable"]["text"].startswith("متأسفانه")  # the dialplan's own prompt
    assert "agency-101" in rows and "indicator-disrespect" in rows
