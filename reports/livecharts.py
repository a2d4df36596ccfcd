"""The dashboard's pictures as SVG, from ``reports.live.Figures``: the province map (the monthly
report's own, ``heatmap.province_map``, with what lies outside the scope hatched), the offices
with the most complaints, and the weekly trend. Labels come from the caller (the web catalog).

Matplotlib's global settings and font cache are not safe across threads: one drawing at a time.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import jdatetime

from presentation import fa_digits
from reports import drawing, heatmap
from reports.live import Figures

_LOCK = threading.Lock()


@dataclass(frozen=True)
class ScopedMaps(drawing.Maps):
    """``drawing.Maps`` with the note the map prints under itself."""

    note: str = field(default="")


def province_map(f: Figures, live: set[int], note: str) -> bytes:
    """Complaints per 100,000 inhabitants this month; provinces not in ``live`` are hatched."""
    provinces = [drawing.Province(p.area_code, p.name_fa, p.id in live, per_100k if p.id in live else None)
                 for p, _, per_100k in f.provinces]
    with _LOCK:
        return heatmap.save(heatmap.province_map(ScopedMaps(f.month, provinces, [], [], note)), ("svg",))["svg"]


def hotspots(f: Figures, title: str, empty: str) -> bytes:
    """The offices with the most complaints this month, as bars, each named with its city."""
    rows = list(reversed(f.hotspots))  # the largest at the top
    with _LOCK:
        heatmap._style()
        fig, ax = heatmap._figure((7.5, 0.42 * max(len(rows), 2) + 1.4))
        if rows:
            ax.barh(range(len(rows)), [h.complaints for h in rows], color="#d9534f")
            ax.set_yticks(range(len(rows)), [f"{h.office_fa}، {h.city_fa}" for h in rows], fontsize=8)
            for i, h in enumerate(rows):
                ax.text(h.complaints, i, f" {fa_digits(h.complaints)} ", va="center", ha="right", fontsize=8)
        else:
            ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)
            ax.set_yticks([])
        ax.yaxis.tick_right()
        ax.invert_xaxis()  # right to left: bars grow from the names
        ax.xaxis.set_major_formatter(_fa_ticks())
        _plain(ax)
        ax.set_title(title, fontsize=11)
        return heatmap.save(fig, ("svg",))["svg"]


def trend(f: Figures, title: str, filed: str, resolved: str) -> bytes:
    """Complaints filed per week (bars) and how many of them are resolved (line)."""
    weeks = f.weeks
    with _LOCK:
        heatmap._style()
        fig, ax = heatmap._figure((8, 3.2))
        x = list(range(len(weeks)))
        ax.bar(x, [n for _, n, _ in weeks], color="#5b8fd0", label=filed)
        ax.plot(x, [r for _, _, r in weeks], color="#2e7d32", marker="o", linewidth=1.5, label=resolved)
        labels = [fa_digits(jdatetime.date.fromgregorian(date=w).strftime("%m/%d")) for w, _, _ in weeks]
        ax.set_xticks(x, labels, fontsize=7)
        ax.invert_xaxis()  # the latest week on the left, as a Persian timeline reads
        ax.yaxis.tick_right()
        ax.yaxis.set_major_formatter(_fa_ticks())
        ax.legend(fontsize=8, frameon=False)
        _plain(ax)
        ax.set_title(title, fontsize=11)
        return heatmap.save(fig, ("svg",))["svg"]


def _fa_ticks():
    from matplotlib import ticker

    return ticker.FuncFormatter(lambda v, _: fa_digits(int(v)) if float(v).is_integer() else "")


def _plain(ax) -> None:
    for side in ("top", "left"):
        ax.spines[side].set_visible(False)
