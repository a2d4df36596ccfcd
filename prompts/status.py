"""What `favad prompts check` reports: prompts missing in a configured format, and prompts
whose built files no longer match their source (a newer or changed recording, a recording that
now replaces a stand-in, a changed text)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prompts.build import fingerprint, load_manifest, prompt_dir, recording_for, studio_for, text_fingerprint
from prompts.formats import file_for


@dataclass(frozen=True)
class PromptState:
    prompt: str
    state: str  # ok | missing | stale | persian (the language's catalog has no words for it)
    detail: str
    source: str  # recording | espeak | tone | by hand | none
    language: str = "fa"


def survey(texts: dict[str, str], ids: Iterable[str], sounds_dir: str, formats: tuple[str, ...],
           recordings_dir: str | None, language: str = "fa", voices: dict[str, str] | None = None,
           persian: Iterable[str] = ()) -> list[PromptState]:
    """Each prompt's state in ``language``'s folder; ``persian``: the prompts said in Persian
    there for want of words in the language (reported, not an error)."""
    manifest = load_manifest(sounds_dir, language)
    recordings_dir = studio_for(recordings_dir, language)
    borrowed = set(persian)
    out = []
    for prompt in sorted(ids):
        entry = manifest.get(prompt)
        files = {f: file_for(prompt_dir(sounds_dir, language) / prompt, f) for f in formats}
        absent = [f for f, path in files.items() if not path.exists()]
        rec = recording_for(recordings_dir, prompt)
        source = entry["source"] if entry else ("by hand" if len(absent) < len(files) else "none")
        if absent:
            out.append(PromptState(prompt, "missing", "no " + ", ".join(absent) + " file", source, language))
            continue
        state, detail = _staleness(entry, rec, texts.get(prompt, prompt), list(files.values()),
                                   (voices or {}).get(prompt, "fa"))
        if state == "ok" and prompt in borrowed and rec is None:
            state, detail = "persian", f"no {language} text: said in Persian"
        out.append(PromptState(prompt, state, detail, source, language))
    return out


def _staleness(entry: dict | None, rec: Path | None, text: str, files: list[Path],
               voice: str = "fa") -> tuple[str, str]:
    if rec is not None:
        if rec.stat().st_mtime > min(f.stat().st_mtime for f in files):
            return "stale", f"recording {rec.name} is newer than the built file"
        if entry is not None and entry.get("source") != "recording":
            return "stale", f"recording {rec.name} replaces the {entry.get('source')} stand-in"
        if entry is not None and entry.get("fingerprint") != fingerprint(rec.read_bytes()):
            return "stale", f"recording {rec.name} changed since it was built"
        return "ok", ""
    if entry is not None and entry.get("source") == "recording":
        return "ok", "recording no longer in the studio folder; built file kept"
    if entry is not None and entry.get("fingerprint") != text_fingerprint(text, voice):
        return "stale", "its text changed since the stand-in was made"
    return "ok", ""
