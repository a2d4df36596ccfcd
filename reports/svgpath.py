"""SVG path data ("M10,20 l5,5 c...") as matplotlib paths: enough of the grammar for the
province outlines (move, line, horizontal, vertical, cubic and smooth cubic, close)."""
from __future__ import annotations

import re

from matplotlib.path import Path

_TOKEN = re.compile(r"[MmLlHhVvCcSsZz]|-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_ARGS = {"M": 2, "L": 2, "H": 1, "V": 1, "C": 6, "S": 4, "Z": 0}


def parse(d: str) -> Path:
    verts: list[tuple[float, float]] = []
    codes: list[int] = []
    x = y = sx = sy = 0.0
    ctrl = None  # the last cubic's second control point, for S
    tokens = _TOKEN.findall(d)
    i, cmd = 0, None
    while i < len(tokens):
        if tokens[i].isalpha():
            cmd, i = tokens[i], i + 1
            if cmd in "Zz":
                verts.append((sx, sy))
                codes.append(Path.CLOSEPOLY)
                x, y, ctrl = sx, sy, None
                continue
        if cmd is None:
            raise ValueError(f"path data starts without a command: {d[:20]!r}")
        n = _ARGS[cmd.upper()]
        a = [float(t) for t in tokens[i:i + n]]
        i += n
        rel = cmd.islower()
        ox, oy = (x, y) if rel else (0.0, 0.0)
        up = cmd.upper()
        if up == "M":
            x, y = a[0] + ox, a[1] + oy
            sx, sy = x, y
            verts.append((x, y))
            codes.append(Path.MOVETO)
            cmd = "l" if rel else "L"  # further pairs are lines
            ctrl = None
        elif up in "LHV":
            if up == "L":
                x, y = a[0] + ox, a[1] + oy
            elif up == "H":
                x = a[0] + (x if rel else 0.0)
            else:
                y = a[0] + (y if rel else 0.0)
            verts.append((x, y))
            codes.append(Path.LINETO)
            ctrl = None
        else:  # C or S
            if up == "C":
                c1 = (a[0] + ox, a[1] + oy)
                c2, end = (a[2] + ox, a[3] + oy), (a[4] + ox, a[5] + oy)
            else:
                c1 = (2 * x - ctrl[0], 2 * y - ctrl[1]) if ctrl else (x, y)
                c2, end = (a[0] + ox, a[1] + oy), (a[2] + ox, a[3] + oy)
            verts += [c1, c2, end]
            codes += [Path.CURVE4] * 3
            ctrl, (x, y) = c2, end
    return Path(verts, codes)
