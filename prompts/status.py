"""What `favad prompts check` reports: prompts missing in a configured format, and prompts
whose built files no longer match their source (a newer or changed recording, a recording that
now replaces a stand-in, a changed text)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prompts.build import fingerprint, load_manifest, prompt_dir, recording_for
from prompts.formats import file_for


@dataclass(frozen=True)
class PromptState:
    prompt: str
    state: str  # ok | missing | stale
    detail: str
    source: str  # recording | espeak | tone | by hand | none


def survey(texts: dict[str, str], ids: Iterable[str], sounds_dir: str, formats: tuple[str, ...],
           recordings_dir: str | None) -> list[PromptState]:
    manifest = load_manifest(sounds_dir)
    out = []
    for prompt in sorted(ids):
        entry = manifest.get(prompt)
        files = {f: file_for(prompt_dir(sounds_dir) / prompt, f) for f in formats}
        absent = [f for f, path in files.items() if not path.exists()]
        rec = recording_for(recordings_dir, prompt)
        source = entry["source"] if entry else ("by hand" if len(absent) < len(files) else "none")
        if absent:
            out.append(PromptState(prompt, "missing", "no " + ", ".join(absent) + " file", source))
            continue
        out.append(PromptState(prompt, *_staleness(entry, rec, texts.get(prompt, prompt),
                                                   list(files.values())), source))
    return out


def _staleness(entry: dict | None, rec: Path | None, text: str, files: list[Path]) -> tuple[str, str]:
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
    if entry is not None and entry.get("fingerprint") != fingerprint(text.encode()):
        return "stale", "its text changed since the stand-in was made"
    return "ok", ""
