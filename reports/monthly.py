"""The monthly figures, per agency and per province: pure functions over ``reports.data``.

Definitions (the report's notes say the same in Persian):
- a month's complaints are those filed in it; their handling is measured up to ``as_of``;
- acknowledgement and resolution times are office minutes from filing (``accountability``);
- the SLA share is met / decided, where decided means resolved, or still open past the SLA;
- no percentage, median, p90 or mean over fewer than ``MIN_N`` values: the count is shown;
- ranking: SLA share (higher first), then median resolution time, then mean rating; agencies
  and provinces with fewer than ``MIN_N`` decided complaints are not ranked.
"""
from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from accountability import bulk
from accountability import figures as fg
from accountability.actions import OUTCOMES
from clock.calendar import OfficeCalendar
from clock import TEHRAN
from reports import data as db
from reports.data import MISSING, Columns, Complaints, MonthData, Reference
from reports.months import Month

OUT_OF_SCOPE = "out_of_scope"
REFUSED = "refused"  # over a caller's limit (complaints/callers.py): counted, never who


@dataclass
class Row:
    key: str  # agency code, province area code, or "all"
    name_fa: str
    complaints: int = 0
    by_indicator: dict[str, int] = field(default_factory=dict)
    acknowledged: int = 0
    ack_median: float | None = None
    ack_p90: float | None = None
    ack_met: int = 0
    ack_decided: int = 0
    ack_share: float | None = None
    resolved: int = 0
    res_median: float | None = None
    res_p90: float | None = None
    sla_met: int = 0
    sla_decided: int = 0
    sla_pending: int = 0
    sla_share: float | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    ratings: int = 0
    rating_mean: float | None = None
    calls: int | None = None  # None: not known at this level (calls have no agency)
    out_of_scope: int | None = None
    out_of_scope_share: float | None = None
    refused: int | None = None
    population: int | None = None
    per_100k: float | None = None
    live: bool = True
    prev_complaints: int | None = None
    complaints_change: float | None = None  # percent
    prev_sla_share: float | None = None
    sla_change: float | None = None  # percentage points
    rank: int | None = None


@dataclass(frozen=True)
class Hotspot:
    office_code: str
    office_fa: str
    city_fa: str
    agency_fa: str
    province_fa: str
    complaints: int
    indicator_fa: str
    indicator_count: int
    indicator_share: float | None


@dataclass
class Report:
    month: Month
    as_of: dt.datetime
    total: Row
    agencies: list[Row]
    provinces: list[Row]
    indicators: list[tuple[str, str]]  # (code, name_fa)
    hotspots: list[Hotspot]
    matrix: list[tuple[str, list[int]]]  # agency name, complaints per indicator
    sla_hours: float
    ack_hours: float
    calendar_spec: str
    holidays: list[dt.date]  # the month's holidays
    population_source: str
    unranked: int = 0
    calls_unknown_province: int = 0
    # (area code, province, language, calls, complaints filed) per province and language spoken
    languages: list[tuple[str, str, str, int, int]] = field(default_factory=list)
    measured: "Measured | None" = field(default=None, repr=False)  # the month's, for the cards
    ref: Reference | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Params:
    calendar: OfficeCalendar
    sla_hours: float = 3.0
    ack_hours: float = 1.0


@dataclass
class Measured(Columns):
    """Complaints with their clocks (``accountability.bulk``), in columns, by complaint id."""

    agency_id: np.ndarray
    province_id: np.ndarray
    office_id: np.ndarray  # MISSING: none
    indicator_id: np.ndarray
    ack_minutes: np.ndarray  # NaN: not yet
    resolve_minutes: np.ndarray
    sla: np.ndarray  # bulk.MET | MISSED | PENDING
    ack_target: np.ndarray
    outcome: np.ndarray  # index into OUTCOMES, MISSING: none
    rating: np.ndarray  # MISSING: none


def measure(c: Complaints, p: Params, as_of: dt.datetime) -> Measured:
    k = bulk.clocks(c.filed, c.acked, c.resolved, p.calendar, p.sla_hours * 60, p.ack_hours * 60, as_of)
    return Measured(c.agency_id, c.province_id, c.office_id, c.indicator_id, k.ack_minutes,
                    k.resolve_minutes, k.sla, k.ack_target, c.outcome, c.rating)


def _count(mask: np.ndarray) -> int:
    return int(np.count_nonzero(mask))


def _known(minutes: np.ndarray) -> list[float]:
    return np.sort(minutes[~np.isnan(minutes)]).tolist()


def fill_sla(row: Row, m: Measured) -> Row:
    """How many complaints ``row`` had, and its SLA figures (all a previous month is read for)."""
    row.complaints = len(m)
    row.sla_met = _count(m.sla == bulk.MET)
    row.sla_decided = _count(m.sla != bulk.PENDING)
    row.sla_pending = row.complaints - row.sla_decided
    row.sla_share = fg.share(row.sla_met, row.sla_decided)
    return row


def fill(row: Row, m: Measured, indicators: dict[int, str]) -> Row:
    """The handling figures of ``row`` from its complaints, measured."""
    fill_sla(row, m)
    row.by_indicator = {code: _count(m.indicator_id == id_) for id_, code in indicators.items()}
    acks, res = _known(m.ack_minutes), _known(m.resolve_minutes)
    row.acknowledged, row.ack_median, row.ack_p90 = len(acks), fg.median(acks), fg.p90(acks)
    row.resolved, row.res_median, row.res_p90 = len(res), fg.median(res), fg.p90(res)
    row.ack_met = _count(m.ack_target == bulk.MET)
    row.ack_decided = _count(m.ack_target != bulk.PENDING)
    row.ack_share = fg.share(row.ack_met, row.ack_decided)
    row.outcomes = {o: _count(m.outcome == i) for i, o in enumerate(OUTCOMES)}
    ratings = m.rating[m.rating != MISSING].tolist()
    row.ratings, row.rating_mean = len(ratings), fg.mean(ratings)
    return row


def per_office(m: Columns) -> dict[int, Counter]:
    """Office id -> complaints per indicator id, offices in the order of their first complaint."""
    has = m.office_id != MISSING
    office, indicator = m.office_id[has], m.indicator_id[has]
    if not office.size:
        return {}
    ids, first = np.unique(office, return_index=True)
    out: dict[int, Counter] = {o: Counter() for o in ids[np.argsort(first, kind="stable")].tolist()}
    pairs, counts = np.unique(np.stack([office, indicator]), axis=1, return_counts=True)
    for (o, i), n in zip(pairs.T.tolist(), counts.tolist()):
        out[o][i] = n
    return out


def _calls(row: Row, by_outcome: dict[str, int]) -> None:
    row.calls = sum(by_outcome.values())
    row.out_of_scope = by_outcome.get(OUT_OF_SCOPE, 0)
    row.out_of_scope_share = fg.share(row.out_of_scope, row.calls)
    row.refused = by_outcome.get(REFUSED, 0)


def _compare(row: Row, prev: Row | None) -> None:
    if prev is None:
        return
    row.prev_complaints, row.prev_sla_share = prev.complaints, prev.sla_share
    if prev.complaints >= fg.MIN_N:
        row.complaints_change = 100.0 * (row.complaints - prev.complaints) / prev.complaints
    if row.sla_share is not None and prev.sla_share is not None:
        row.sla_change = row.sla_share - prev.sla_share


def rank(rows: list[Row]) -> int:
    """Rank the rows that can be ranked (ties share a rank); how many could not be."""
    def key(r: Row):
        return (-r.sla_share, r.res_median if r.res_median is not None else math.inf,
                -(r.rating_mean or 0.0))

    ranked = sorted((r for r in rows if r.sla_share is not None), key=key)
    for i, r in enumerate(ranked):
        r.rank = ranked[i - 1].rank if i and key(ranked[i - 1]) == key(r) else i + 1
    return len(rows) - len(ranked)


def _rows(data: MonthData, ref: Reference, p: Params, as_of: dt.datetime, last_day: dt.date,
          sla_only: bool = False):
    """(total, agency rows, province rows, the complaints measured) of one month; ``sla_only``:
    the counts and SLA figures only (a month read with ``data.month(sla_only=True)``)."""
    indicators = {i.id: i.code for i in ref.indicators}
    measured = measure(data.complaints, p, as_of)

    def figures(row: Row, m: Measured) -> Row:
        return fill_sla(row, m) if sla_only else fill(row, m, indicators)

    total = figures(Row("all", "همه"), measured)
    all_calls: Counter = Counter()
    for by_outcome in data.calls.values():
        all_calls.update(by_outcome)
    _calls(total, dict(all_calls))
    agencies = [figures(Row(a.code, a.name_fa), measured.where(measured.agency_id == a.id))
                for a in ref.agencies]
    with_complaints = set(np.unique(measured.province_id).tolist())
    provinces = []
    for pr in ref.provinces:
        live = pr.activated_on is not None and pr.activated_on <= last_day
        if not live and pr.id not in with_complaints and pr.id not in data.calls:
            continue
        row = figures(Row(pr.area_code, pr.name_fa, live=live), measured.where(measured.province_id == pr.id))
        _calls(row, data.calls.get(pr.id, {}))
        row.population = ref.population.get(pr.area_code)
        if row.population:
            row.per_100k = 1e5 * row.complaints / row.population
        provinces.append(row)
    return total, agencies, provinces, measured


def build(month: Month, data: MonthData, prev: MonthData | None, ref: Reference, p: Params,
          as_of: dt.datetime, top: int = 10) -> Report:
    last_day = _last_day(month)
    total, agencies, provinces, measured = _rows(data, ref, p, as_of, last_day)
    if prev is not None:
        ptotal, pagencies, pprovinces, _ = _rows(prev, ref, p, as_of, _last_day(month.previous()), sla_only=True)
        _compare(total, ptotal)
        for rows, prows in ((agencies, pagencies), (provinces, pprovinces)):
            before = {r.key: r for r in prows}
            for r in rows:
                _compare(r, before.get(r.key))
    unranked = rank(agencies)
    rank(provinces)
    codes = [(i.code, i.name_fa) for i in ref.indicators]
    matrix = [(a.name_fa, [a.by_indicator.get(code, 0) for code, _ in codes]) for a in agencies]
    first_day = month.start.astimezone(TEHRAN).date()
    holidays = sorted(d for d in p.calendar.holidays if first_day <= d <= last_day)
    return Report(month, as_of, total, agencies, provinces, codes, hotspots(data, ref, top), matrix,
                  p.sla_hours, p.ack_hours, p.calendar.spec, holidays, ref.population_source,
                  unranked, sum(data.calls.get(None, {}).values()), by_language(data, ref),
                  measured, ref)


def by_language(data: MonthData, ref: Reference) -> list[tuple[str, str, str, int, int]]:
    """Calls and complaints per province and language, provinces as the report orders them."""
    return [(pr.area_code, pr.name_fa, language, calls, filed)
            for pr in ref.provinces
            for language, (calls, filed) in sorted(data.languages.get(pr.id, {}).items())]


def _last_day(month: Month) -> dt.date:
    """The month's last day in Tehran."""
    return (month.end - dt.timedelta(seconds=1)).astimezone(TEHRAN).date()


def hotspots(data: MonthData, ref: Reference, top: int) -> list[Hotspot]:
    """The offices with the most complaints, and the indicator most of them were about."""
    ranked = sorted(per_office(data.complaints).items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))[:top]
    offices = ref.offices
    agencies = {a.id: a.name_fa for a in ref.agencies}
    provinces = {p.id: p.name_fa for p in ref.provinces}
    indicators = {i.id: i.name_fa for i in ref.indicators}
    out = []
    for office_id, counts in ranked:
        o = offices[office_id]
        n = sum(counts.values())
        lead, lead_n = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        out.append(Hotspot(o.code, o.name_fa, o.city_fa, agencies.get(o.agency_id, ""),
                           provinces.get(o.province_id, ""), n, indicators[lead], lead_n,
                           fg.share(lead_n, n)))
    return out


def from_db(s, month: Month, p: Params, as_of: dt.datetime, top: int = 10) -> Report:
    """Read the month and the one before it, and build the report."""
    ref = db.reference(s)
    data = db.month(s, month.start, month.end)
    prev = db.month(s, month.previous().start, month.previous().end, sla_only=True)
    office_ids = data.complaints.office_id
    ref.offices = db.offices(s, set(np.unique(office_ids[office_ids != MISSING]).tolist()))
    return build(month, data, prev, ref, p, as_of, top)
