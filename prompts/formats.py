"""What Asterisk plays best: 8 kHz mono, in the formats the admin configures.

Asterisk picks, among the files of a prompt, the one whose format costs least to translate to
the call's codec: ``.alaw``/``.ulaw`` for G.711 calls, ``.gsm`` for GSM, ``.sln`` (raw signed
linear) or ``.wav`` (16-bit) otherwise. Each file is written beside the final name and renamed,
so Asterisk never opens a half-written prompt.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import warnings
from pathlib import Path

from pydub import AudioSegment

from config.files import public_folder

with warnings.catch_warnings():  # deprecated in 3.11, gone in 3.13; pydub itself needs it
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

RATE = 8000
# format name (prompt_formats) -> (file extension, ffmpeg muxer or None when written here)
FORMATS = {"wav": ("wav", None), "sln": ("sln", None), "alaw": ("alaw", None),
           "ulaw": ("ulaw", None), "gsm": ("gsm", "gsm")}
ALIASES = {"slin": "sln", "slin8": "sln", "mulaw": "ulaw", "pcmu": "ulaw", "pcma": "alaw", "wav16": "wav"}


class PromptError(Exception):
    """A prompt could not be made; the message names the file and the reason."""


def parse_formats(text: str) -> tuple[str, ...]:
    """``"wav, alaw"`` -> ("wav", "alaw"); an unknown name is an error that lists the known."""
    out: list[str] = []
    for raw in text.replace(";", ",").split(","):
        name = ALIASES.get(raw.strip().lower(), raw.strip().lower())
        if not name:
            continue
        if name not in FORMATS:
            raise PromptError(f"unknown prompt format {raw.strip()!r}: use {', '.join(FORMATS)}")
        if name not in out:
            out.append(name)
    if not out:
        raise PromptError("prompt_formats is empty: use one or more of " + ", ".join(FORMATS))
    return tuple(out)


def file_for(base: Path, fmt: str) -> Path:
    return base.with_name(f"{base.name}.{FORMATS[fmt][0]}")


def telephone(audio: AudioSegment) -> AudioSegment:
    return audio.set_channels(1).set_sample_width(2).set_frame_rate(RATE)


def decode(path: Path) -> AudioSegment:
    """Any file ffmpeg reads, as 8 kHz mono 16-bit; ffmpeg resamples (with a proper filter,
    unlike pydub's audioop path, and pydub's ``parameters`` would land after the output)."""
    proc = subprocess.run([AudioSegment.converter, "-nostdin", "-v", "error", "-i", str(path), "-vn",
                           "-ac", "1", "-ar", str(RATE), "-acodec", "pcm_s16le", "-f", "s16le", "-"],
                          capture_output=True, timeout=300)
    if proc.returncode != 0 or not proc.stdout:
        reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no audio"]
        raise PromptError(f"{path.name}: cannot be read as audio ({reason[0]})")
    return AudioSegment(data=proc.stdout, sample_width=2, frame_rate=RATE, channels=1)


def write(audio: AudioSegment, base: Path, fmt: str) -> Path:
    """Write ``audio`` (8 kHz mono 16-bit) as ``base.<ext>`` atomically."""
    target = file_for(base, fmt)
    public_folder(target.parent)  # Asterisk plays them: 0755 whatever the umask
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        if fmt == "wav":
            audio.export(tmp, format="wav")
        elif fmt == "sln":
            Path(tmp).write_bytes(audio.raw_data)
        elif fmt == "alaw":  # G.711 is a table lookup: no need for a process per file
            Path(tmp).write_bytes(audioop.lin2alaw(audio.raw_data, 2))
        elif fmt == "ulaw":
            Path(tmp).write_bytes(audioop.lin2ulaw(audio.raw_data, 2))
        else:
            audio.export(tmp, format=FORMATS[fmt][1])
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except Exception as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, PromptError):
            raise
        raise PromptError(f"{target.name}: cannot be written ({type(e).__name__}: {e})") from e
    return target


def configured(settings) -> tuple[str, ...]:
    """The formats in ``prompt_formats``."""
    return parse_formats(settings.prompt_formats)


def studio_dir(settings) -> str:
    """Where studio recordings are dropped: ``prompt_recordings_dir`` or ``data_dir/studio``."""
    return str(Path(settings.prompt_recordings_dir or Path(settings.data_dir, "studio")).resolve())
