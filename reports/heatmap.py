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

# Figures made directly, not through pyplot (its import, and its registry of open figures,
# cost a tenth of a second and buy nothing here)
from matplotlib import cm, colormaps, colors, rcParams, ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch
from matplotlib.transforms import Bbox

from presentation import fa_digits
from reports.render import num
from reports.svgpath import parse

MAP = Path(__file__).with_name("data") / "iran_provinces.json"
FONTS = ["Vazirmatn", "Noto Sans Arabic", "Noto Naskh Arabic", "DejaVu Sans"]
CMAP = "YlOrRd"
DPI = 150
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in inches
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)


@lru_cache(maxsize=1)
def _shapes():
    """({province code: (outline, its extents)}, [water outlines]): the extents of Bezier paths
    take a while to compute, so once per process."""
    data = json.loads(MAP.read_text(encoding="utf-8"))
    provinces = {code: parse(d) for code, d in data["provinces"].items()}
    water = [parse(d) for d in data["water"]]
    return {code: (path, path.get_extents()) for code, path in provinces.items()}, water


def _style():
    rcParams.update({"font.family": FONTS, "svg.fonttype": "path", "axes.unicode_minus": False,
                     "svg.hashsalt": "favad"})


def _figure(size: tuple[float, float]):
    """A figure drawn with Agg, and its axes."""
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def tight_box(fig) -> Box:
    """The box, in inches, that ``bbox_inches="tight"`` crops the figure to at ``DPI`` (as
    savefig finds it, without the draw savefig makes first: these figures have no layout engine
    for it to run). Finding it lays out every label: ``save`` finds it once for all its formats
    rather than once per file as savefig does."""
    fig.set_dpi(DPI)
    return tuple(float(v) for v in fig.get_tightbbox().padded(rcParams["savefig.pad_inches"]).extents)


def save(fig, formats=("png", "svg"), box: Box | None = None) -> dict[str, bytes]:
    """The figure in each format, cropped to ``box`` (default: its ``tight_box``)."""
    crop = Bbox.from_extents(*(box or tight_box(fig)))
    out = {}
    for fmt in formats:
        buf = io.BytesIO()
        # no date in the metadata: the same month gives the same bytes
        fig.savefig(buf, format=fmt, dpi=DPI, bbox_inches=crop, metadata={"Date": None} if fmt == "svg" else None)
        out[fmt] = buf.getvalue()
    return out


def province_map(report):
    """Complaints per 100,000 inhabitants, by province, for the report's month (a Figure).
    ``report``: a ``reports.monthly.Report`` or its ``drawing.Maps``."""
    _style()
    shapes, water = _shapes()
    rows = {r.key: r for r in report.provinces}
    values = [r.per_100k for r in rows.values() if r.live and r.per_100k is not None]
    norm = colors.Normalize(vmin=0, vmax=max(values + [0.0]) or 1.0)
    cmap = colormaps[CMAP]
    fig, ax = _figure((8, 6.4))
    # add_artist, not add_patch: the limits are set below, so the outlines' extents need not
    # update the data limits (70 ms of Bezier extents per map)
    for w in water:
        ax.add_artist(PathPatch(w, facecolor="#dbe9f5", edgecolor="none"))
    small = []
    for code, (path, box) in shapes.items():
        r = rows.get(code)
        live = r is not None and r.live
        ax.add_artist(PathPatch(path, facecolor=cmap(norm(r.per_100k or 0.0)) if live else "#f1f3f5",
                                edgecolor="white" if live else "#c5ccd3", linewidth=0.8,
                                hatch=None if live else "////"))
        if not live:
            continue
        centre = ((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)
        label = f"{r.name_fa}\n{num(r.per_100k, 1)}"
        if box.width < 130 or box.height < 80:  # too small to hold its label: say it beside
            small.append((centre, label))
        else:
            ax.text(*centre, label, ha="center", va="center", fontsize=8,
                    color="white" if norm(r.per_100k or 0.0) > 0.6 else "#222")
    ext = [box for _, box in shapes.values()]
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
    bar = fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.5, pad=0.0,
                       location="right")
    bar.ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: num(v, 1)))
    bar.set_label("شکایت در هر ۱۰۰٬۰۰۰ نفر")
    ax.set_title(f"شکایت‌ها به ازای جمعیت استان، {fa_digits(report.month.name_fa)}", fontsize=12)
    # a map drawn for one member of staff hatches what lies outside their scope, and says so
    note = getattr(report, "note", "") or ("هاشورخورده: ۱۲۸ هنوز در این استان راه‌اندازی نشده است. "
                                           "جمعیت: سرشماری ۱۳۹۵.")
    ax.text((x0 + x1) / 2, y1 + 5, note, ha="center", va="top", fontsize=8, color="#555")
    return fig


def agency_indicator(report):
    """Complaints by agency (rows) and indicator (columns), counts in the cells (a Figure).
    ``report``: a ``reports.monthly.Report`` or its ``drawing.Maps``."""
    _style()
    names = [n for n, _ in report.matrix]
    grid = [row for _, row in report.matrix]
    labels = [name for _, name in report.indicators]
    fig, ax = _figure((9.5, 0.45 * len(names) + 2.6))
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


FIGURES = {"heatmap-provinces": province_map, "heatmap-agency-indicator": agency_indicator}


def draw(report, fmt: str) -> dict[str, bytes]:
    """Each heat map in one format: {file name: bytes}. (The drawing process draws the PNGs and
    the SVGs in two calls, as the PDF wants the PNGs first: the SVGs' boxes are found again, off
    the critical path, while the PDF is laid out.)"""
    return {f"{name}.{fmt}": save(figure(report), (fmt,))[fmt] for name, figure in FIGURES.items()}


def warm() -> None:
    """What the first map would load: the outlines and the fonts (for a process that waits)."""
    _shapes()
    _style()
    fig, _ = _figure((1, 1))
    fig.text(0, 0, "شکایت ۱۲۸")
    fig.draw_without_rendering()
