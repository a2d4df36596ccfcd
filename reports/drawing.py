"""A process of its own for the heat maps, so that matplotlib is imported while the month is
read and the maps are drawn while WeasyPrint is imported and the PDF laid out (2 cores and up).

Forked, so that it starts in milliseconds: ``start()`` before opening a database connection
(the child would share it) and before importing much. It is sent ``Maps``, not the report, so
that it imports none of the report's modules (SQLAlchemy among them): only matplotlib's."""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple


class Province(NamedTuple):
    key: str
    name_fa: str
    live: bool
    per_100k: float | None


@dataclass(frozen=True)
class Maps:
    """What the heat maps read of a ``reports.monthly.Report``, by the same names, as plain values."""

    month: object  # reports.months.Month
    provinces: list[Province]
    indicators: list[tuple[str, str]]  # (code, name_fa)
    matrix: list[tuple[str, list[int]]]  # agency name, complaints per indicator

    @classmethod
    def of(cls, report) -> Maps:
        return cls(report.month, [Province(r.key, r.name_fa, r.live, r.per_100k) for r in report.provinces],
                   report.indicators, report.matrix)


def start() -> ProcessPoolExecutor:
    """The process, started now and warming up (``heatmap.warm``)."""
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
    pool.submit(_warm)
    return pool


def _warm() -> None:
    from reports import heatmap

    heatmap.warm()


def draw(maps: Maps, fmt: str) -> dict[str, bytes]:
    """``heatmap.draw``, by a name that pickles without importing matplotlib here."""
    from reports import heatmap

    return heatmap.draw(maps, fmt)
