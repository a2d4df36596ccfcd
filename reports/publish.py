"""From a built report to the files it is published as: names and bytes, nothing written here."""
from __future__ import annotations

import datetime as dt

from reports import heatmap, render
from reports.monthly import Report, Row, _last_day


def ordered(rows: list[Row]) -> list[Row]:
    """Ranked rows by rank, then the unranked by complaints (most first), then by name."""
    return sorted(rows, key=lambda r: (r.rank is None, r.rank or 0, -r.complaints, r.name_fa))


def images(report: Report) -> dict[str, bytes]:
    files = {}
    for name, figure in (("heatmap-provinces", heatmap.province_map), ("heatmap-agency-indicator", heatmap.agency_indicator)):
        files |= {f"{name}.{fmt}": data for fmt, data in heatmap.save(figure(report)).items()}
    return files


def monthly_html(report: Report, pictures: dict[str, bytes], generated_at: dt.datetime,
                 fmt: str = "svg") -> str:
    """The report as one self-contained page; ``fmt`` of the pictures in it (the PDF takes PNG:
    WeasyPrint draws matplotlib's SVG twice as slowly)."""
    mime = {"svg": "image/svg+xml", "png": "image/png"}[fmt]
    return render.html(
        "monthly.html", report=report, generated_at=generated_at, last_day=_last_day(report.month),
        ranked_agencies=ordered(report.agencies), ranked_provinces=ordered(report.provinces),
        images={"map": render.data_uri(pictures[f"heatmap-provinces.{fmt}"], mime),
                "matrix": render.data_uri(pictures[f"heatmap-agency-indicator.{fmt}"], mime)})


def monthly(report: Report, generated_at: dt.datetime, formats: tuple[str, ...] = ("html", "pdf", "csv")
            ) -> dict[str, bytes]:
    """The monthly report's files: monthly.html/.pdf/.csv and the heat maps."""
    pictures = images(report)
    files = dict(pictures)
    if "html" in formats:
        files["monthly.html"] = monthly_html(report, pictures, generated_at).encode()
    if "pdf" in formats:
        files["monthly.pdf"] = render.pdf(monthly_html(report, pictures, generated_at, "png"))
    if "csv" in formats:
        files["monthly.csv"] = render.to_csv(report)
    return files
