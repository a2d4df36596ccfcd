"""The disguised voice, measured on real Persian speech (espeak-ng, through a telephone band)."""
from __future__ import annotations

import logging
import os
import random
import re
import shutil
import subprocess
import wave

import numpy as np
import parselmouth
import pytest
from parselmouth.praat import call

from dispatch.audio import for_mail
from ivr import voice

TEXT = ("من امروز صبح به اداره ثبت اسناد رفتم. کارمند گفت پرونده شما گم شده و فردا دوباره بیایید. "
        "سه بار رفتم و هیچ کاری انجام ندادند.")
VOICES = ("fa", "fa+f3")  # a man's voice (~100 Hz) and a woman's (~210 Hz)
DISGUISED = re.compile(r"^[0-9a-f]{32}\.v\.wav$")


def _speak(folder, voice_name: str, text: str = TEXT) -> str:
    wide = os.path.join(folder, f"{voice_name}.22k.wav")
    subprocess.run(["espeak-ng", "-v", voice_name, "-w", wide, text], check=True)
    narrow = os.path.join(folder, f"{voice_name}.wav")
    # what Asterisk records from a phone line: 300-3400 Hz, 8 kHz mono 16-bit
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", wide, "-af", "highpass=f=300,lowpass=f=3400",
                    "-ar", "8000", "-ac", "1", "-sample_fmt", "s16", "-bitexact", narrow], check=True)
    return narrow


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    folder = tmp_path_factory.mktemp("speech")
    return {v: _speak(folder, v) for v in VOICES + ("fa+whisper",)}


@pytest.fixture
def recording(speech, tmp_path):
    """A fresh copy of a voice's speech under an Asterisk-like random name."""
    def make(voice_name: str) -> str:
        path = str(tmp_path / f"{os.urandom(16).hex()}.wav")
        shutil.copyfile(speech[voice_name], path)
        return path
    return make


def _formant_settings(sound) -> tuple[int, float]:
    """Praat's advice per speaker: a deep voice has 4 formants below 4 kHz, a higher one 3 below 3.5."""
    return (4, 4000.0) if voice.pitch_median(sound) < 160 else (3, 3500.0)


def _envelope_ratio(original, changed, voiced: bool = True) -> float:
    """How far the long-term spectral envelope slid along the frequency axis (all formants at once)."""
    freqs = np.geomspace(250, 3300, 300)

    def envelope(sound):
        ltas = (call(sound, "To Ltas (pitch-corrected)", 60, 600, 4000, 50, 0.0001, 0.02, 1.3) if voiced
                else call(sound, "To Ltas", 50))
        return np.array([call(ltas, "Get value at frequency", f, "linear") for f in freqs])
    a, b = envelope(original), envelope(changed)
    best = max(range(-60, 61), key=lambda k: np.corrcoef(a[max(0, -k):len(a) - max(0, k)],
                                                         b[max(0, k):len(b) - max(0, -k)])[0, 1])
    return float((freqs[1] / freqs[0]) ** best)


def measure(original, changed) -> dict[str, float]:
    """Pitch shift (semitones), F1/F2 shift (%) and duration change (%) of ``changed``.

    F1 and F2 are compared frame by frame at the same instants (the duration is kept, which is
    checked too), over the original's voiced frames within 15 dB of its loudest: in a telephone
    band the Burg tracker relabels formants (an F2 read as F1 in some frames), which makes the
    median of each recording's raw values swing by ±20 % at the same shift; the per-frame ratio
    does not. Each sound gets the formant settings its own pitch calls for."""
    po, pc = (s.to_pitch(pitch_floor=60, pitch_ceiling=600) for s in (original, changed))
    fo, fc = po.selected_array["frequency"], pc.selected_array["frequency"]
    semitones = 12 * np.log2(np.median(fc[fc > 0]) / np.median(fo[fo > 0]))
    loud = original.to_intensity(minimum_pitch=60)
    top = loud.values.max()
    times = [t for t, f in zip(po.xs(), fo) if f > 0 and loud.get_value(t) > top - 15]
    fmo, fmc = (s.to_formant_burg(max_number_of_formants=n, maximum_formant=ceiling)
                for s, (n, ceiling) in ((original, _formant_settings(original)),
                                        (changed, _formant_settings(changed))))
    shift = {}
    for i in (1, 2):
        ratios = [fmc.get_value_at_time(i, t) / fmo.get_value_at_time(i, t) for t in times]
        shift[f"F{i}"] = 100 * (np.nanmedian(ratios) - 1)
    return {"semitones": semitones, **shift,
            "envelope": 100 * (_envelope_ratio(original, changed) - 1),
            "duration": 100 * (changed.duration / original.duration - 1)}


def assert_disguised(m: dict[str, float]) -> None:
    up = m["semitones"] > 0
    assert abs(m["semitones"]) >= 3, m
    for key in ("F1", "F2", "envelope"):  # moved with the pitch: a plausible other voice
        assert (m[key] > 0) == up and abs(m[key]) >= 10, m
    assert abs(m["duration"]) <= 5, m


@pytest.mark.parametrize("voice_name", VOICES)
@pytest.mark.parametrize("draw", range(3))
def test_a_disguised_recording_moves_pitch_and_formants_and_keeps_its_length(recording, voice_name, draw):
    path = recording(voice_name)
    original = parselmouth.Sound(path)
    out = voice.disguise(path)
    m = measure(original, parselmouth.Sound(out))
    print(f"{voice_name} draw {draw}: " + " ".join(f"{k} {v:+.1f}" for k, v in m.items()))
    assert_disguised(m)


@pytest.mark.parametrize("voice_name", VOICES)
@pytest.mark.parametrize("up", (True, False))
@pytest.mark.parametrize("strength", (0.0, 1.0))
def test_the_weakest_and_strongest_shifts_that_can_be_drawn_meet_the_targets(speech, voice_name, up, strength):
    sound = parselmouth.Sound(speech[voice_name])
    median = voice.pitch_median(sound)
    size = voice.SEMITONES[0] + strength * (voice.SEMITONES[1] - voice.SEMITONES[0])
    lo, hi = voice.FORMANT_UP if up else voice.FORMANT_DOWN[::-1]
    shift = voice.Shift(size if up else -size, lo + strength * (hi - lo), 1.0)
    if not voice.PLAUSIBLE_F0[0] <= median * 2 ** (shift.semitones / 12) <= voice.PLAUSIBLE_F0[1]:
        pytest.skip("never drawn: the draw turns the other way")
    assert_disguised(measure(sound, voice.change(sound, shift, median)))


def test_whispered_speech_has_its_formants_moved(recording):
    path = recording("fa+whisper")
    original = parselmouth.Sound(path)
    out = voice.disguise(path)
    assert abs(_envelope_ratio(original, parselmouth.Sound(out), voiced=False) - 1) >= 0.10


def test_draws_move_both_ways_together_and_stay_plausible():
    rng = random.SystemRandom()
    draws = [voice.draw(rng.uniform(60, 400)) for _ in range(2000)]
    assert {d.semitones > 0 for d in draws} == {True, False}
    for d in draws:
        assert voice.SEMITONES[0] <= abs(d.semitones) <= voice.SEMITONES[1]
        assert (d.formant_ratio > 1) == (d.semitones > 0)
        assert 0.80 <= d.formant_ratio <= 0.86 or 1.15 <= d.formant_ratio <= 1.22
    for low in (voice.draw(80.0) for _ in range(200)):  # 80 Hz down 4-7 semitones: under 70 Hz
        assert low.semitones > 0
    for high in (voice.draw(260.0) for _ in range(200)):  # up 4-7: over 320 Hz
        assert high.semitones < 0


def test_the_original_is_gone_and_a_fresh_8khz_wav_with_the_mark_is_left(recording):
    path = recording("fa")
    folder = os.path.dirname(path)
    out = voice.disguise(path)
    assert not os.path.exists(path)
    assert os.listdir(folder) == [os.path.basename(out)]  # no temporary file either
    assert os.path.dirname(out) == folder and DISGUISED.match(os.path.basename(out))
    assert os.path.basename(out)[:32] != os.path.basename(path)[:32]
    assert voice.is_disguised(out) and not voice.is_disguised(path)
    assert os.stat(out).st_mode & 0o777 == 0o640
    with wave.open(out) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getcomptype()) == (1, 2, 8000, "NONE")
        assert w.getnframes() > 8000
    assert for_mail(out).subtype == "mpeg"  # the dispatcher still converts it for mail


def _wav(path, frames: bytes, rate: int = 8000) -> str:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return str(path)


@pytest.mark.parametrize("kind", ("corrupt", "header only", "silent", "a tenth of a second", "not audio"))
def test_a_recording_that_cannot_be_disguised_is_dropped_not_kept(tmp_path, speech, kind, caplog):
    path = tmp_path / f"{os.urandom(16).hex()}.wav"
    if kind == "corrupt":
        path.write_bytes(b"RIFF\xff\xff\xff\xffWAVEfmt " + os.urandom(2000))
    elif kind == "header only":
        _wav(path, b"")
    elif kind == "silent":
        _wav(path, b"\0\0" * 8000 * 5)
    elif kind == "a tenth of a second":
        with wave.open(speech["fa"]) as w:
            _wav(path, w.readframes(8000)[:1600])
    else:
        path.write_text("not a recording")
    with caplog.at_level(logging.INFO, logger="ivr.voice"):
        assert voice.disguise(str(path)) is None
    assert os.listdir(tmp_path) == []
    assert all(path.name[:8] not in r.getMessage() for r in caplog.records)


def test_nothing_logged_names_the_recording_or_the_amounts(recording, caplog):
    path = recording("fa")
    with caplog.at_level(logging.DEBUG):
        out = voice.disguise(path)
    text = " ".join(r.getMessage() for r in caplog.records)
    assert os.path.basename(path)[:8] not in text and os.path.basename(out)[:8] not in text
    assert not re.search(r"\d\.\d", text)


def test_a_sweep_removes_old_originals_and_keeps_recordings_in_progress_and_disguised_ones(tmp_path):
    now = 1_000_000.0
    names = {"old original": "a" * 32 + ".wav", "fresh original": "b" * 32 + ".wav",
             "old disguised": "c" * 32 + ".v.wav", "old partial": ".d.tmp", "old gsm": "e" * 32 + ".gsm"}
    for name in names.values():
        (tmp_path / name).write_bytes(b"RIFF")
    (tmp_path / "sub").mkdir()
    for key in ("old original", "old disguised", "old partial", "old gsm"):
        os.utime(tmp_path / names[key], (now - 600, now - 600))
    os.utime(tmp_path / names["fresh original"], (now - 30, now - 30))
    removed = voice.sweep_originals(str(tmp_path), 300, now=now)
    assert sorted(os.path.basename(p) for p in removed) == sorted(
        names[k] for k in ("old original", "old partial", "old gsm"))
    assert sorted(os.listdir(tmp_path)) == sorted([names["fresh original"], names["old disguised"], "sub"])
    assert voice.sweep_originals(str(tmp_path / "missing"), 300) == []
