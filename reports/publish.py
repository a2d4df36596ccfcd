"""From a built report to the files it is published as: names and bytes, nothing written here."""
from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool

from reports import drawing, render
from reports.monthly import Report, Row, _last_day

log = logging.getLogger(__name__)
MAPS = ("heatmap-provinces", "heatmap-agency-indicator")  # heatmap.FIGURES, without importing matplotlib


def ordered(rows: list[Row]) -> list[Row]:
    """Ranked rows by rank, then the unranked by complaints (most first), then by name."""
    return sorted(rows, key=lambda r: (r.rank is None, r.rank or 0, -r.complaints, r.name_fa))


def images(report: Report) -> dict[str, bytes]:
    """The heat maps as PNG and SVG, drawn here (each figure laid out once for both)."""
    from reports import heatmap

    files = {}
    for name, figure in heatmap.FIGURES.items():
        files |= {f"{name}.{fmt}": data for fmt, data in heatmap.save(figure(report)).items()}
    return files


def monthly_html(report: Report, pictures: dict[str, str], generated_at: dt.datetime) -> str:
    """The report as one page; ``pictures``: the src of each heat map's picture."""
    return render.html(
        "monthly.html", report=report, generated_at=generated_at, last_day=_last_day(report.month),
        ranked_agencies=ordered(report.agencies), ranked_provinces=ordered(report.provinces),
        images={"map": pictures["heatmap-provinces"], "matrix": pictures["heatmap-agency-indicator"]})


def monthly(report: Report, generated_at: dt.datetime, formats: tuple[str, ...] = ("html", "pdf", "csv"),
            pool: Executor | None = None) -> dict[str, bytes]:
    """The monthly report's files: monthly.html (self-contained, its maps as SVG), monthly.pdf
    (its maps as PNG: WeasyPrint draws matplotlib's SVG twice as slowly), monthly.csv and the
    heat maps in both formats. With ``pool`` (``drawing.start()``) the maps are drawn there, the
    PNGs first, while WeasyPrint is imported here and the PDF begun (it waits for them), then the
    SVGs while the PDF is laid out."""
    if pool is None:
        drawn = images(report)
        pngs = svgs = lambda: drawn  # noqa: E731
    else:
        maps = drawing.Maps.of(report)
        pngs = _drawn(pool.submit(drawing.draw, maps, "png"), maps, "png")  # first: the PDF waits for them
        svgs = _drawn(pool.submit(drawing.draw, maps, "svg"), maps, "svg")
    pdf = None
    if "pdf" in formats:
        page = monthly_html(report, {name: f"{render.FIGURE}{name}.png" for name in MAPS}, generated_at)
        pdf = render.pdf(page, lambda png: pngs()[png])
    pictures = pngs() | svgs()
    files = {f"{name}.{fmt}": pictures[f"{name}.{fmt}"] for name in MAPS for fmt in ("png", "svg")}
    if "html" in formats:
        svg = {name: render.data_uri(pictures[f"{name}.svg"], "image/svg+xml") for name in MAPS}
        files["monthly.html"] = monthly_html(report, svg, generated_at).encode()
    if pdf is not None:
        files["monthly.pdf"] = pdf
    if "csv" in formats:
        files["monthly.csv"] = render.to_csv(report)
    return files


def _drawn(future: Future, maps: drawing.Maps, fmt: str) -> Callable[[], dict[str, bytes]]:
    """The maps the drawing process made; drawn here if that process died (killed, out of
    memory): a report is late, never missing."""
    @functools.cache
    def result() -> dict[str, bytes]:
        try:
            return future.result()
        except BrokenProcessPool:
            log.warning("the drawing process died: drawing the %s maps in this one", fmt)
            return drawing.draw(maps, fmt)
    return result
