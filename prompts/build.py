"""Build prompt audio for Asterisk (8 kHz, mono, 16-bit WAV) with pydub.

``espeak`` speaks the Persian text with espeak-ng (a stand-in until recorded voice files
arrive); ``tone`` writes a short tone whose length follows the text, for tests and machines
without espeak-ng. Recorded files dropped into the same folder simply replace them.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from pydub import AudioSegment
from pydub.generators import Sine

EXTENSIONS = ("wav", "sln", "gsm", "ulaw", "alaw", "g722")


def prompt_dir(sounds_dir: str, language: str = "fa") -> Path:
    return Path(sounds_dir) / language / "favad"


def existing(sounds_dir: str, prompt: str) -> Path | None:
    base = prompt_dir(sounds_dir) / prompt
    for ext in EXTENSIONS:
        if base.with_name(f"{base.name}.{ext}").exists():
            return base.with_name(f"{base.name}.{ext}")
    return None


def _tone(text: str) -> AudioSegment:
    ms = min(200 + 20 * len(text), 3000)
    return Sine(440).to_audio_segment(duration=ms, volume=-12)


def _espeak(text: str) -> AudioSegment:
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(["espeak-ng", "-v", "fa", "-s", "150", "-w", tmp.name, text],
                       check=True, capture_output=True, timeout=60)
        return AudioSegment.from_wav(tmp.name)


def build(texts: dict[str, str], ids: Iterable[str], sounds_dir: str, engine: str = "auto",
          force: bool = False, progress=None) -> tuple[int, str]:
    """Write favad/<id>.wav for each id; (files written, engine used)."""
    if engine == "auto":
        engine = "espeak" if shutil.which("espeak-ng") else "tone"
    make = _espeak if engine == "espeak" else _tone
    written = 0
    for prompt in ids:
        if progress:
            progress(prompt)
        if not force and existing(sounds_dir, prompt):
            continue
        target = prompt_dir(sounds_dir) / f"{prompt}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        audio = make(texts.get(prompt, prompt)).set_frame_rate(8000).set_channels(1).set_sample_width(2)
        audio.export(target, format="wav")
        written += 1
    return written, engine


def missing(ids: Iterable[str], sounds_dir: str) -> list[str]:
    return sorted(i for i in ids if existing(sounds_dir, i) is None)
