"""A read-only snapshot of the reference data the call flow needs (no I/O inside the flow)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OfficeInfo:
    code: str
    agency_code: str
    province_code: str


@dataclass(frozen=True)
class Directory:
    active_provinces: frozenset[str] = frozenset()
    known_provinces: frozenset[str] = frozenset()
    agencies: frozenset[str] = frozenset()
    offices: dict[str, OfficeInfo] = field(default_factory=dict)
    indicators: frozenset[str] = frozenset()
    # area code -> the languages offered there, its default first (none listed: Persian)
    languages: dict[str, tuple[str, ...]] = field(default_factory=dict)
