"""Build the prompt audio into ``<sounds_dir>/<language>/favad/`` (Asterisk's CHANNEL(language)).

For each prompt id, in order of preference: the studio recording ``<recordings_dir>/<id>.<any>``
(``<recordings_dir>/<language>/<id>.<any>`` for a language other than Persian; mp3, ogg, flac,
m4a, wav ... anything ffmpeg reads), converted; else a stand-in synthesized from the text with
espeak-ng (the language's voice, or Persian's where it has none) so a new deployment speaks from
day one, or a
``tone`` whose length follows the text (tests, machines without espeak-ng). A manifest beside
the files remembers where each came from, so a new recording, a changed recording or a changed
text makes the prompt stale and the next build redoes it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from pydub import AudioSegment
from pydub.generators import Sine

from config.files import public_folder
from prompts.formats import PromptError, decode, file_for, telephone, write

EXTENSIONS = ("wav", "sln", "gsm", "ulaw", "alaw", "g722")  # what Asterisk may find already
MANIFEST = ".favad-prompts.json"
NOT_AUDIO = {".txt", ".md", ".json", ".toml", ".pdf", ".doc", ".docx", ".sfk", ".pk", ".reapeaks"}


def prompt_dir(sounds_dir: str, language: str = "fa") -> Path:
    return Path(sounds_dir) / language / "favad"


def existing(sounds_dir: str, prompt: str, language: str = "fa") -> Path | None:
    base = prompt_dir(sounds_dir, language) / prompt
    for ext in EXTENSIONS:
        if base.with_name(f"{base.name}.{ext}").exists():
            return base.with_name(f"{base.name}.{ext}")
    return None


def missing(ids: Iterable[str], sounds_dir: str, language: str = "fa") -> list[str]:
    return sorted(i for i in ids if existing(sounds_dir, i, language) is None)


def recording_for(recordings_dir: str | None, prompt: str) -> Path | None:
    """The studio recording of a prompt (the newest, if there are several)."""
    if not recordings_dir:
        return None
    base = Path(recordings_dir) / prompt
    if not base.parent.is_dir():
        return None
    found = [p for p in base.parent.glob(f"{base.name}.*")
             if p.is_file() and p.stem == base.name and p.suffix.lower() not in NOT_AUDIO
             and not p.name.startswith(".")]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def studio_for(recordings_dir: str | None, language: str) -> str | None:
    """Persian's studio recordings are the folder's own files, another language's its subfolder."""
    if not recordings_dir or language == "fa":
        return recordings_dir
    return str(Path(recordings_dir) / language)


def load_manifest(sounds_dir: str, language: str = "fa") -> dict[str, dict]:
    try:
        return json.loads((prompt_dir(sounds_dir, language) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _save_manifest(sounds_dir: str, manifest: dict, language: str = "fa") -> None:
    path = prompt_dir(sounds_dir, language) / MANIFEST
    public_folder(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=".manifest.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=1, sort_keys=True)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def tone(text: str, voice: str = "fa") -> AudioSegment:
    ms = min(200 + 20 * len(text), 3000)
    return Sine(440, sample_rate=8000).to_audio_segment(duration=ms, volume=-12)


def espeak(text: str, voice: str = "fa") -> AudioSegment:
    """The text spoken by espeak-ng (Persian's voice unless told), as 8 kHz mono."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        try:
            subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(out), text],
                           check=True, capture_output=True, timeout=60)
        except FileNotFoundError:
            raise PromptError("espeak-ng is not installed (apt-get install espeak-ng)") from None
        except subprocess.CalledProcessError as e:
            raise PromptError(f"espeak-ng failed: {e.stderr.decode('utf-8', 'replace').strip()}") from None
        return decode(out)


SYNTH: dict[str, Callable[[str, str], AudioSegment]] = {"espeak": espeak, "tone": tone}


def text_fingerprint(text: str, voice: str = "fa") -> str:
    """A stand-in's source: its text, and its voice when not Persian's (a voice added later
    makes the Persian fallback stale)."""
    return fingerprint(text.encode() if voice == "fa" else f"{voice}:{text}".encode())


def plan(prompt: str, text: str, recordings_dir: str | None, engine: str,
         voice: str = "fa") -> tuple[str, str, Path | None]:
    """(source, fingerprint, recording) for a prompt: its recording if there is one."""
    rec = recording_for(recordings_dir, prompt)
    if rec is not None:
        return "recording", fingerprint(rec.read_bytes()), rec
    return engine, text_fingerprint(text, voice), None


def up_to_date(sounds_dir: str, prompt: str, formats: tuple[str, ...], entry: dict | None,
               source: str, fp: str, rec: Path | None, language: str = "fa") -> bool:
    files = [file_for(prompt_dir(sounds_dir, language) / prompt, f) for f in formats]
    if not all(f.exists() for f in files):
        return False
    if entry is None:  # put there by hand (or by an older build): leave it unless a recording came
        return rec is None
    if entry.get("source") != source or entry.get("fingerprint") != fp:
        return False
    return rec is None or rec.stat().st_mtime <= min(f.stat().st_mtime for f in files)


def build(texts: dict[str, str], ids: Iterable[str], sounds_dir: str, engine: str = "auto",
          force: bool = False, progress=None, formats: Iterable[str] = ("wav",),
          recordings_dir: str | None = None, language: str = "fa",
          voices: dict[str, str] | None = None) -> tuple[int, str]:
    """Write <language>/favad/<id>.<ext> for each id and format; (files written, synthesis
    engine used). ``texts`` are what the synthesiser reads, ``voices`` its voice per prompt
    (default Persian's); studio recordings come from ``studio_for(recordings_dir, language)``."""
    if engine == "auto":
        engine = "espeak" if espeak_available() else "tone"
    if engine not in SYNTH:
        raise PromptError(f"unknown engine {engine!r}: use auto, espeak or tone")
    formats = tuple(formats)
    Path(sounds_dir).parent.mkdir(parents=True, exist_ok=True)  # only the sounds are public
    manifest = load_manifest(sounds_dir, language)
    recordings_dir = studio_for(recordings_dir, language)
    written = 0
    for prompt in ids:
        if progress:
            progress(prompt)
        text = texts.get(prompt, prompt)
        voice = (voices or {}).get(prompt, "fa")
        source, fp, rec = plan(prompt, text, recordings_dir, engine, voice)
        if not force and up_to_date(sounds_dir, prompt, formats, manifest.get(prompt), source, fp,
                                    rec, language):
            continue
        audio = telephone(decode(rec) if rec is not None else SYNTH[engine](text, voice))
        for fmt in formats:
            write(audio, prompt_dir(sounds_dir, language) / prompt, fmt)
            written += 1
        manifest[prompt] = {"source": source, "fingerprint": fp, "formats": list(formats)}
        _save_manifest(sounds_dir, manifest, language)
    return written, engine
