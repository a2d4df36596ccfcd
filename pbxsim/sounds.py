"""Sound files as Asterisk's main/file.c finds, measures and writes them."""
from __future__ import annotations

import math
import os
import struct
import wave
from dataclasses import dataclass

# The formats the peer can measure, in the order it tries them (Asterisk picks by codec cost).
EXTENSIONS = ("wav", "sln", "gsm", "ulaw", "alaw", "g722")
# Format names Asterisk knows but the peer cannot write: RECORD FILE with them is refused loudly
# rather than faked (an unknown name is what Asterisk itself refuses, with "(writefile)").
UNSIMULATED_FORMATS = frozenset({"gsm", "ulaw", "alaw", "g722", "g729", "wav49", "wav16", "sln16",
                                 "slin", "ilbc", "g726", "siren7", "siren14", "opus", "h263"})
RECORD_FORMATS = {"wav": "wav", "sln": "sln"}
DEFAULT_LANGUAGE = "en"
# Core sounds every Asterisk install ships (asterisk-core-sounds-en); used only when the project's
# sounds dir has no such file, so RECORD FILE's BEEP works against a prompts-only dir.
CORE_SOUNDS = {"beep": 3404, **{f"silence/{n}": 8000 * n for n in range(1, 11)}}


@dataclass(frozen=True)
class Sound:
    name: str
    path: str | None  # None for a built-in core sound
    samples: int
    rate: int = 8000


def _language_chain(language: str) -> list[str | None]:
    """fileexists_core(): preflang, preflang minus _dialect..., no language, then 'en'."""
    chain: list[str | None] = []
    lang = language
    while lang:
        chain.append(lang)
        if "_" not in lang:
            break
        lang = lang.rsplit("_", 1)[0]
    chain.append(None)
    if DEFAULT_LANGUAGE not in chain:
        chain.append(DEFAULT_LANGUAGE)
    return chain


def _base(sounds_dir: str, name: str, lang: str | None) -> str:
    """fileexists_test(): relative names live under the sounds dir, '<lang>/' goes before the
    file name (for an absolute path: before its last component)."""
    if name.startswith("/"):
        head, _, tail = name.rpartition("/")
        return f"{head}/{lang}/{tail}" if lang else name
    return os.path.join(sounds_dir, lang, name) if lang else os.path.join(sounds_dir, name)


def _measure(path: str, ext: str) -> tuple[int, int] | None:
    """(samples, rate), or None when Asterisk's format module would refuse to open the file."""
    size = os.path.getsize(path)
    if ext == "wav":
        # format_wav only takes 8 kHz, mono, 16-bit ("wav16" is a different format/extension)
        # (PCM only: WAVE_FORMAT_EXTENSIBLE is refused by Asterisk and by the wave module alike)
        try:
            with wave.open(path, "rb") as w:
                if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (8000, 1, 2):
                    return None
        except (wave.Error, EOFError, struct.error):
            return None
        return max(size - 44, 0) // 2, 8000  # wav_tell(): (file offset - 44) / 2
    if ext == "sln":
        return size // 2, 8000
    if ext == "gsm":
        return size // 33 * 160, 8000
    if ext == "g722":
        return size * 2, 16000
    return size, 8000  # ulaw, alaw: one byte per sample


def find_sound(sounds_dir: str, name: str, language: str) -> Sound | None:
    """Open `name` like ast_openstream(): language fallbacks, then every known extension."""
    if not name:
        return None
    for lang in _language_chain(language):
        base = _base(sounds_dir, name, lang)
        for ext in EXTENSIONS:
            path = f"{base}.{ext}"
            if os.path.isfile(path):
                measured = _measure(path, ext)
                if measured:
                    return Sound(name, path, *measured)
    if name in CORE_SOUNDS:
        return Sound(name, None, CORE_SOUNDS[name])
    return None


def record_path(sounds_dir: str, name: str, fmt: str) -> str:
    """ast_writefile(): relative names are written under the sounds dir."""
    base = name if name.startswith("/") else os.path.join(sounds_dir, name)
    return f"{base}.{RECORD_FORMATS[fmt]}"


def tone(samples: int, freq: float = 440.0, amplitude: int = 8000) -> bytes:
    """Signed 16-bit little-endian sine: what a caller 'speaking' sounds like to a recorder."""
    return b"".join(struct.pack("<h", int(amplitude * math.sin(2 * math.pi * freq * i / 8000)))
                    for i in range(samples))


def write_audio(path: str, frames: bytes, fmt: str) -> None:
    """Write a recording: a real 8 kHz mono 16-bit WAV (a 44-byte header when empty) or raw sln."""
    if fmt == "sln":
        with open(path, "wb") as f:
            f.write(frames)
    else:
        with wave.open(path, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(frames)
    os.chmod(path, 0o640)  # as Asterisk with umask 027 writes them: its group reads, no one else
