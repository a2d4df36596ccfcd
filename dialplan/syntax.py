"""A reader for the part of extensions.conf syntax the templates use, sans I/O: contexts,
``exten =>`` / ``same =>`` lines with numbered, ``n`` and labelled priorities, and the
applications with their arguments. Whatever it cannot read is reported with its line number."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_APP = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_PRIORITY = re.compile(r"^(?:(?P<num>\d+)|(?P<next>n))(?:\((?P<label>[A-Za-z0-9_-]+)\))?$")
_CONTEXT = re.compile(r"^[A-Za-z0-9_\-]+$")


@dataclass(frozen=True)
class Step:
    context: str
    exten: str
    priority: int
    label: str
    app: str
    args: str
    line: int


@dataclass
class Dialplan:
    contexts: dict[str, list[Step]] = field(default_factory=dict)
    errors: list[tuple[int, str]] = field(default_factory=list)

    def steps(self) -> list[Step]:
        return [s for steps in self.contexts.values() for s in steps]

    def has(self, context: str, exten: str | None = None, priority: str | None = None) -> bool:
        steps = self.contexts.get(context)
        if steps is None:
            return False
        steps = [s for s in steps if exten is None or s.exten == exten]
        if not steps:
            return False
        if priority is None:
            return True
        return any(str(s.priority) == priority or s.label == priority for s in steps)


def strip_comment(line: str) -> str:
    out, escaped = [], False
    for ch in line:
        if ch == ";" and not escaped:
            break
        escaped = ch == "\\" and not escaped
        out.append(ch)
    return "".join(out)


def parse(text: str) -> Dialplan:
    plan = Dialplan()
    context: str | None = None
    exten: str | None = None
    last: dict[tuple[str, str], int] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = strip_comment(raw).strip()
        if not line or line.startswith("#include"):
            continue
        if line.startswith("["):
            end = line.find("]")
            name = line[1:end] if end > 0 else ""
            if end < 0 or not _CONTEXT.match(name) or line[end + 1:].strip():
                plan.errors.append((lineno, f"bad context header {raw.strip()!r}"))
                context = None
                continue
            if name in plan.contexts:
                plan.errors.append((lineno, f"context [{name}] defined twice"))
            context, exten = name, None
            plan.contexts.setdefault(name, [])
            continue
        key, sep, value = line.partition("=>")
        key = key.strip().lower()
        if not sep or key not in ("exten", "same"):
            plan.errors.append((lineno, f"expected `exten =>` or `same =>`, got {raw.strip()!r}"))
            continue
        if context is None:
            plan.errors.append((lineno, "extension outside a context"))
            continue
        if key == "exten":
            exten, _, value = value.strip().partition(",")
            exten = exten.strip()
            if not exten:
                plan.errors.append((lineno, "extension without a name"))
                continue
        elif exten is None:
            plan.errors.append((lineno, "`same =>` with no `exten =>` before it"))
            continue
        step = _step(context, exten, value.strip(), lineno, last, plan.errors)
        if step is not None:
            plan.contexts[context].append(step)
    return plan


def _step(context, exten, value, lineno, last, errors) -> Step | None:
    prio, _, call = value.partition(",")
    m = _PRIORITY.match(prio.strip())
    if m is None:
        errors.append((lineno, f"bad priority {prio.strip()!r} (a number, n or n(label))"))
        return None
    number = int(m["num"]) if m["num"] else last.get((context, exten), 0) + 1
    if m["next"] and (context, exten) not in last:
        errors.append((lineno, f"priority n for {exten!r} with no priority 1 before it"))
        return None
    if number <= last.get((context, exten), 0):
        errors.append((lineno, f"priority {number} of {exten!r} in [{context}] comes again"))
        return None
    last[(context, exten)] = number
    app, paren, args = call.strip().partition("(")
    if not _APP.match(app.strip()):
        errors.append((lineno, f"bad application {call.strip()!r}"))
        return None
    if paren and not args.endswith(")"):
        errors.append((lineno, f"{app.strip()}(...) is not closed"))
        return None
    args = args[:-1] if paren else ""
    problem = _balance(args)
    if problem:
        errors.append((lineno, f"{app.strip()}: {problem}"))
        return None
    return Step(context, exten, number, m["label"] or "", app.strip(), args, lineno)


def _balance(args: str) -> str:
    """Brackets of ${...}, $[...] and (...) must pair up."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    quoted = False
    for ch in args:
        if ch == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return f"unbalanced {ch!r}"
    if quoted:
        return "unclosed quote"
    return f"unclosed {stack[-1]!r}" if stack else ""
