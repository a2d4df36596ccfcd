"""The voice description disguised before anyone hears it: pitch and formants moved together.

Staff of the office complained about could recognise a regular visitor's voice, so the recording
Asterisk leaves is never forwarded as it is. ``disguise`` shifts the pitch by 4-7 semitones and
the formants (the vocal tract's resonances) by 14-22 %, both up or both down so the result still
sounds like a person, with Praat's "Change gender" (PSOLA); the words stay intelligible and the
duration unchanged. The amounts are drawn per recording from the system's random source and
exist only in this process, never stored or logged, so nobody can undo them.

Whatever happens the original is deleted: a recording that cannot be disguised is dropped (the
complaint then has none) rather than kept as it is. ``sweep_originals`` removes what a hangup,
a crash or a restart left behind. The disguised file has a fresh random name with a ``.v.wav``
ending, so it cannot be joined to the original by name, and a sweep knows it from an original.
"""
from __future__ import annotations

import logging
import math
import os
import random
import secrets
import time
import wave
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

MARK = ".v.wav"  # a disguised recording's ending; anything else in the folder is an original
MODE = 0o640
SEMITONES = (4.0, 7.0)  # the pitch moves by at least 3 semitones even after PSOLA's rounding
FORMANT_UP = (1.15, 1.22)  # measured F1/F2 scatter ~3 % around the ratio: 1.15 stays above 10 %
FORMANT_DOWN = (0.80, 0.86)
PITCH_RANGE = (0.85, 1.15)  # the intonation's span, a trait of its own
PLAUSIBLE_F0 = (70.0, 320.0)  # a median outside this sounds like a machine: shift the other way
PITCH_FLOOR, PITCH_CEILING = 60.0, 600.0
MIN_SECONDS = 0.25
SILENT_PEAK = 10 ** (-60 / 20)  # -60 dBFS: nothing a listener could hear, nothing to disguise
HEADROOM = 0.97

_random = random.SystemRandom()


@dataclass(frozen=True)
class Shift:
    """One recording's disguise; drawn, used once, forgotten."""
    semitones: float  # signed: up or down
    formant_ratio: float  # same direction as the pitch
    pitch_range: float


def draw(pitch_median: float | None, rng: random.Random = _random) -> Shift:
    """Random amounts, both up or both down; the other way when the new median would be implausible."""
    up = rng.random() < 0.5
    size = rng.uniform(*SEMITONES)
    if pitch_median:
        lo, hi = PLAUSIBLE_F0
        if not lo <= pitch_median * 2 ** ((size if up else -size) / 12) <= hi:
            up = not up
    ratio = rng.uniform(*(FORMANT_UP if up else FORMANT_DOWN))
    return Shift(size if up else -size, ratio, rng.uniform(*PITCH_RANGE))


def is_disguised(path: str) -> bool:
    """True for a file ``disguise`` wrote (by its name)."""
    return os.path.basename(path).endswith(MARK)


def disguise(path: str) -> str | None:
    """Write a disguised copy of the WAV at ``path`` beside it and delete ``path``; the copy's path,
    or None when there was nothing to disguise or it failed (the original is deleted either way)."""
    try:
        return _disguise(path)
    except Exception as e:  # a recording that cannot be disguised is not kept, whatever the cause
        log.warning("disguising a recording failed (%s); it is dropped", type(e).__name__)
        return None
    finally:
        _remove(path)


def sweep_originals(recordings_dir: str, older_than_s: float, now: float | None = None,
                    keep: frozenset[str] = frozenset()) -> list[str]:
    """Delete every file in ``recordings_dir`` that is not disguised and was last written more than
    ``older_than_s`` seconds ago (a younger one may be a call still recording), but those in
    ``keep`` (recordings of complaints filed before disguising began); the paths deleted."""
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(recordings_dir))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if entry.is_dir(follow_symlinks=False) or is_disguised(entry.name) or entry.path in keep:
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime <= older_than_s:
                continue
            os.unlink(entry.path)
        except FileNotFoundError:
            continue  # disguised or discarded meanwhile
        except OSError as e:
            log.warning("could not remove a leftover recording (%s)", e.strerror)
            continue
        removed.append(entry.path)
    if removed:
        log.info("removed %d leftover original recording(s)", len(removed))
    return removed


def _disguise(path: str) -> str | None:
    import parselmouth  # heavy (Praat inside): loaded by the first recording, not by every import

    if _too_short(path):
        log.info("a recording held no sound to disguise; it is dropped")
        return None
    sound = parselmouth.Sound(path)
    if sound.n_channels > 1:
        sound = sound.convert_to_mono()
    rate = int(round(sound.sampling_frequency))
    samples = sound.values[0] if sound.values.size else np.zeros(0)
    if sound.duration < MIN_SECONDS or not samples.size or np.abs(samples).max() < SILENT_PEAK:
        log.info("a recording held no sound to disguise; it is dropped")
        return None
    median = pitch_median(sound)
    out = change(sound, draw(median), median)
    if int(round(out.sampling_frequency)) != rate:
        out = out.resample(rate)
    return _write(out.values[0], rate, os.path.dirname(path))


def pitch_median(sound) -> float | None:
    """The median pitch (Hz) of a parselmouth Sound's voiced frames; None if none is voiced."""
    from parselmouth.praat import call

    pitch = call(sound, "To Pitch", 0.0, PITCH_FLOOR, PITCH_CEILING)
    median = call(pitch, "Get quantile", 0.0, 0.0, 0.5, "Hertz")
    return None if math.isnan(median) else median


def change(sound, shift: Shift, median: float | None):
    """The Sound with ``shift`` applied (Praat's "Change gender": resampling, then PSOLA)."""
    from parselmouth.praat import call

    # no median (whispered, or no voiced frame found): Praat keeps the pitch, moves the formants
    target = median * 2 ** (shift.semitones / 12) if median else 0.0
    return call(sound, "Change gender", PITCH_FLOOR, PITCH_CEILING, shift.formant_ratio, target,
                shift.pitch_range, 1.0)


def _too_short(path: str) -> bool:
    """True for a PCM WAV under MIN_SECONDS (Asterisk's header-only file too); False if unsure."""
    try:
        with wave.open(path, "rb") as w:
            return w.getnframes() < MIN_SECONDS * w.getframerate()
    except (wave.Error, EOFError, OSError):
        return False  # another encoding, or damaged: Praat decides


def _write(values: np.ndarray, rate: int, folder: str) -> str:
    """Samples as 16-bit mono PCM WAV under a fresh random name, complete or not at all."""
    peak = float(np.abs(values).max()) if values.size else 0.0
    if peak > HEADROOM:  # the shifted formants can add up higher than the original's peaks
        values = values * (HEADROOM / peak)
    pcm = np.clip(np.round(values * 32767), -32768, 32767).astype("<i2").tobytes()
    final = os.path.join(folder, secrets.token_hex(16) + MARK)
    tmp = os.path.join(folder, f".{secrets.token_hex(16)}.tmp")  # no mark: a sweep removes it
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), MODE)  # exactly 0640, whatever the umask
            with wave.open(f, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(rate)
                w.writeframes(pcm)
            f.flush()
            os.fsync(f.fileno())  # a crash after the rename must not leave an empty recording
        os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        raise
    return final


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("could not remove a recording (%s)", e.strerror)
