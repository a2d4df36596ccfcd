"""Where complaints concentrate: a map of complaints per 100,000 inhabitants by province, and an
agency × indicator heat map. Matplotlib (Agg) with libraqm shapes the Persian labels.

The province outlines are a schematic SVG map (``data/iran_provinces.json``, MIT, see
``data/iran_provinces.LICENSE``); provinces where 128 is not live yet are hatched.
"""
from __future__ import annotations

import io
import json
import logging
from functools import lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import colors  # noqa: E402
from matplotlib.patches import PathPatch  # noqa: E402

from presentation import fa_digits  # noqa: E402
from reports.render import num  # noqa: E402
from reports.svgpath import parse  # noqa: E402

MAP = Path(__file__).with_name("data") / "iran_provinces.json"
FONTS = ["Vazirmatn", "Noto Sans Arabic", "Noto Naskh Arabic", "DejaVu Sans"]
CMAP = "YlOrRd"
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)


@lru_cache(maxsize=1)
def _shapes():
    data = json.loads(MAP.read_text(encoding="utf-8"))
    return ({code: parse(d) for code, d in data["provinces"].items()}, [parse(d) for d in data["water"]])


def _style():
    plt.rcParams.update({"font.family": FONTS, "svg.fonttype": "path", "axes.unicode_minus": False,
                         "svg.hashsalt": "favad"})


def save(fig, formats=("png", "svg")) -> dict[str, bytes]:
    """The figure in each format, then closed."""
    out = {}
    for fmt in formats:
        buf = io.BytesIO()
        # no date in the metadata: the same month gives the same bytes
        fig.savefig(buf, format=fmt, dpi=150, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
        out[fmt] = buf.getvalue()
    plt.close(fig)
    return out


def province_map(report):
    """Complaints per 100,000 inhabitants, by province, for the report's month (a Figure)."""
    _style()
    shapes, water = _shapes()
    rows = {r.key: r for r in report.provinces}
    values = [r.per_100k for r in rows.values() if r.live and r.per_100k is not None]
    norm = colors.Normalize(vmin=0, vmax=max(values + [0.0]) or 1.0)
    cmap = plt.get_cmap(CMAP)
    fig, ax = plt.subplots(figsize=(8, 6.4))
    for w in water:
        ax.add_patch(PathPatch(w, facecolor="#dbe9f5", edgecolor="none"))
    small = []
    for code, path in shapes.items():
        r = rows.get(code)
        live = r is not None and r.live
        ax.add_patch(PathPatch(path, facecolor=cmap(norm(r.per_100k or 0.0)) if live else "#f1f3f5",
                               edgecolor="white" if live else "#c5ccd3", linewidth=0.8,
                               hatch=None if live else "////"))
        if not live:
            continue
        box = path.get_extents()
        centre = ((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)
        label = f"{r.name_fa}\n{num(r.per_100k, 1)}"
        if box.width < 130 or box.height < 80:  # too small to hold its label: say it beside
            small.append((centre, label))
        else:
            ax.text(*centre, label, ha="center", va="center", fontsize=8,
                    color="white" if norm(r.per_100k or 0.0) > 0.6 else "#222")
    ext = [p.get_extents() for p in shapes.values()]
    x0, x1 = min(e.x0 for e in ext), max(e.x1 for e in ext)
    y0, y1 = min(e.y0 for e in ext), max(e.y1 for e in ext)
    # small provinces (the pilot's Tehran, Alborz, Qazvin) are labelled in a row west of the map
    for i, (centre, label) in enumerate(sorted(small, key=lambda s: s[0][1])):
        ax.annotate(label, centre, xytext=(x0 - 40, y0 + 40 + 95 * i), fontsize=8, ha="right", va="center",
                    arrowprops={"arrowstyle": "-", "color": "#555", "linewidth": 0.7})
    ax.set_xlim(x0 - (200 if small else 10), x1 + 10)
    ax.set_ylim(y1 + 10, y0 - 10)  # SVG's y points down
    ax.set_aspect("equal")
    ax.axis("off")
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.5, pad=0.0,
                       location="right")
    bar.ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: num(v, 1)))
    bar.set_label("شکایت در هر ۱۰۰٬۰۰۰ نفر")
    ax.set_title(f"شکایت‌ها به ازای جمعیت استان، {fa_digits(report.month.name_fa)}", fontsize=12)
    ax.text((x0 + x1) / 2, y1 + 5, "هاشورخورده: ۱۲۸ هنوز در این استان راه‌اندازی نشده است. "
            "جمعیت: سرشماری ۱۳۹۵.", ha="center", va="top", fontsize=8, color="#555")
    return fig


def agency_indicator(report):
    """Complaints by agency (rows) and indicator (columns), counts in the cells (a Figure)."""
    _style()
    names = [n for n, _ in report.matrix]
    grid = [row for _, row in report.matrix]
    labels = [name for _, name in report.indicators]
    fig, ax = plt.subplots(figsize=(9.5, 0.45 * len(names) + 2.6))
    peak = max((max(r) for r in grid if r), default=0) or 1
    ax.imshow(grid or [[0] * len(labels)], cmap=CMAP, vmin=0, vmax=peak, aspect="auto")
    for i, row in enumerate(grid):
        for j, n in enumerate(row):
            ax.text(j, i, num(n), ha="center", va="center", fontsize=8,
                    color="white" if n > 0.6 * peak else "#222")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.yaxis.tick_right()  # right to left: the names on the right
    ax.set_xticks(range(len(labels)), [_wrap(x) for x in labels], fontsize=7)
    ax.xaxis.tick_top()
    ax.invert_xaxis()  # the first indicator on the right, as a Persian table reads
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(f"شکایت‌ها به تفکیک دستگاه و شاخص، {fa_digits(report.month.name_fa)}", fontsize=11, pad=10)
    return fig


def _wrap(text: str, width: int = 16) -> str:
    """Break a long indicator name over lines at word boundaries."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join(lines + [line])
