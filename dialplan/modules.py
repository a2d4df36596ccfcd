"""The Asterisk modules a dialplan needs, read from the dialplan itself, and whether Asterisk has
them loaded (AMI ``ModuleCheck``).

A missing module is not a parse error: Asterisk loads the file, and only at call time does
``Set(CDR_PROP(disable)=1)`` log ``Function CDR_PROP not registered`` and go on, so the CDR keeps
the caller's number. So the modules are asked for before a deploy, not found out by a caller.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ami import AmiError
from dialplan import syntax

# Set, Goto, GotoIf, NoOp, Answer, Hangup and $[...] are Asterisk's core (pbx_builtins.c,
# pbx_variables.c): always there. Everything else a 128 template uses, and what fails without it.
APPLICATIONS = {
    "agi": ("res_agi", "AGI() does not exist: no caller reaches the IVR, each hears the apology "
                       "or silence"),
    "playback": ("app_playback", "Playback() does not exist: callers hear no apology when the IVR "
                                 "is down"),
    "queue": ("app_queue", "Queue() does not exist: callers handed to an operator are hung up"),
}
FUNCTIONS = {
    "CDR_PROP": ("func_cdr", "Set(CDR_PROP(disable)=1) fails (\"Function CDR_PROP not registered\"), "
                             "the call goes on and Asterisk's CDR records the caller's number and name"),
    "CALLERID": ("func_callerid", "CALLERID() cannot mark the caller's number restricted or replace it "
                                  "with 128: the operator's phone, queue_log and AMI events get it"),
    "REDIRECTING": ("func_callerid", "REDIRECTING() cannot empty the redirecting numbers"),
    "CONNECTEDLINE": ("func_callerid", "CONNECTEDLINE() cannot overwrite the connected line: on a "
                                       "Local channel Queue()'s events carry the caller's number"),
    "CHANNEL": ("func_channel", "CHANNEL(language)=fa fails: prompts are looked for in English"),
}
ALWAYS = ("pbx_config", "it reads extensions.conf and so this file; `dialplan reload` is its command")
# prompt_formats -> the module that reads those files; any one of them is enough
FORMAT_MODULES = {"wav": "format_wav", "sln": "format_sln", "alaw": "format_pcm", "ulaw": "format_pcm",
                  "gsm": "format_gsm"}
_FUNCTION = re.compile(r"\b([A-Z][A-Z_]*)\(")
NOT_LOADED = "Module not loaded"  # manager.c manager_modulecheck, Asterisk 22


@dataclass(frozen=True)
class Need:
    """One of ``modules`` must be loaded, or ``why`` happens."""
    modules: tuple[str, ...]
    why: str

    @property
    def name(self) -> str:
        return " or ".join(self.modules)

    def advice(self) -> str:
        loads = ", ".join(f"load => {m}.so" for m in self.modules)
        one = "it" if len(self.modules) == 1 else "one"
        return (f"{self.name} is not loaded: {self.why}. Load {one} (modules.conf: {loads}; now: "
                f"asterisk -rx 'module load {self.modules[0]}.so')")


class ModulesUnknown(Exception):
    """Asterisk could not be asked which modules it has loaded; the message says why."""


def needed(text: str, formats: tuple[str, ...] = ()) -> list[Need]:
    """What the dialplan ``text`` needs loaded, once each, in the order first used."""
    whys: dict[str, list[str]] = {ALWAYS[0]: [ALWAYS[1]]}
    for step in syntax.parse(text).steps():
        app = step.app.lower()
        found = [APPLICATIONS[app]] if app in APPLICATIONS else []
        found += [FUNCTIONS[f] for f in _FUNCTION.findall(step.args) if f in FUNCTIONS]
        for module, why in found:
            if why not in whys.setdefault(module, []):
                whys[module].append(why)
    needs = [Need((m,), "; ".join(w)) for m, w in whys.items()]
    modules = tuple(dict.fromkeys(FORMAT_MODULES[f] for f in formats if f in FORMAT_MODULES))
    if modules:  # the dialplan's prompts and the IVR's exist only in these formats
        needs.append(Need(modules, f"no prompt can be played, neither by the dialplan nor by the IVR "
                                   f"(prompt_formats: {', '.join(formats)})"))
    return needs


async def loaded(ami, module: str) -> bool:
    """Asterisk's answer to ``ModuleCheck``; ModulesUnknown when it gives none."""
    try:
        resp = await ami.send({"Action": "ModuleCheck", "Module": module})
    except AmiError as e:
        raise ModulesUnknown(str(e)) from None
    if resp.success:
        return True
    message = resp.get("Message", "")
    if message == NOT_LOADED:
        return False
    if message == "Permission denied":  # ModuleCheck needs the `system` write class
        raise ModulesUnknown("the AMI user may not run ModuleCheck: add `system` to its write = "
                             "in manager.conf")
    raise ModulesUnknown(f"ModuleCheck {module}: {message or 'error'}")


async def missing(ami, needs: list[Need]) -> list[Need]:
    """The needs of which Asterisk has no module loaded."""
    out = []
    for need in needs:
        for module in need.modules:
            if await loaded(ami, module):
                break
        else:
            out.append(need)
    return out
