"""What `favad dialplan check` validates before anything is deployed: the syntax, that every
Goto lands on a context, extension and priority that exist, and that every prompt a 128 call
can hear (the dialplan's own and the IVR's) exists in every configured format."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dialplan import syntax
from prompts.formats import file_for

SOUND_APPS = {"playback", "background", "controlplayback", "read"}
JUMP_APPS = {"goto", "gotoif", "gosub", "gosubif"}


@dataclass(frozen=True)
class Problem:
    kind: str  # syntax | context | prompt
    line: int  # 0: not a line of the file
    message: str


def check(text: str, sounds_dir: str, formats: tuple[str, ...], ivr_prompts: set[str] = frozenset(),
          language: str = "fa") -> list[Problem]:
    plan = syntax.parse(text)
    problems = [Problem("syntax", line, msg) for line, msg in plan.errors]
    for step in plan.steps():
        app = step.app.lower()
        if app in JUMP_APPS:
            for target in _targets(step):
                if not _lands(plan, step, target):
                    problems.append(Problem("context", step.line,
                                            f"{step.app}({step.args}) goes to {','.join(target)}, "
                                            f"which this dialplan does not define"))
        elif app in SOUND_APPS:
            for sound in _sounds(step.args):
                for fmt in _missing_formats(sounds_dir, language, sound, formats):
                    problems.append(Problem("prompt", step.line, f"{sound} has no {fmt} file "
                                                                  f"(favad prompts build)"))
    played = {s for st in plan.steps() if st.app.lower() in SOUND_APPS for s in _sounds(st.args)}
    for prompt in sorted(ivr_prompts):
        sound = f"favad/{prompt}"
        if sound in played:
            continue
        for fmt in _missing_formats(sounds_dir, language, sound, formats):
            problems.append(Problem("prompt", 0, f"IVR prompt {sound} has no {fmt} file "
                                                 f"(favad prompts build)"))
    return problems


def contexts(text: str) -> list[str]:
    return list(syntax.parse(text).contexts)


def _missing_formats(sounds_dir: str, language: str, sound: str, formats) -> list[str]:
    base = Path(sounds_dir) / language / sound
    return [f for f in formats if not file_for(base, f).exists()]


def _sounds(args: str) -> list[str]:
    """Our prompts among Playback's files (``favad/a&favad/b,options``)."""
    files = args.split(",", 1)[0]
    return [f.strip() for f in files.split("&") if f.strip().startswith("favad/")]


def _targets(step: syntax.Step) -> list[tuple[str, ...]]:
    args = step.args
    if step.app.lower() in ("gotoif", "gosubif"):
        _, _, branches = args.partition("?")
        args_list = [b for b in branches.split(":") if b.strip()]
    else:
        args_list = [args]
    out = []
    for a in args_list:
        target = a.split("(", 1)[0] if step.app.lower().startswith("gosub") else a
        parts = tuple(p.strip() for p in target.split(","))
        if any("${" in p for p in parts):
            continue  # computed at run time: cannot be checked here
        out.append(parts)
    return out


def _lands(plan: syntax.Dialplan, step: syntax.Step, target: tuple[str, ...]) -> bool:
    if len(target) == 3:
        context, exten, priority = target
    elif len(target) == 2:
        context, (exten, priority) = step.context, target
    else:
        context, exten, priority = step.context, step.exten, target[0]
    return plan.has(context, exten, priority)
