"""Finding complaints for staff: filters taken as the page's query string gives them, one
statement built from them and narrowed by the user's ``Scope``, pages of it, and all of it for
an export. The rows carry the case number, never the code hash or the recording.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields

import jdatetime
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from accountability.actions import OPEN
from accountability.scope import Scope
from clock import TEHRAN
from db.models import STATUSES, Agency, Complaint, Indicator, Office, Province
from dispatch.models import ComplaintRoute, InspectionUnit

PER_PAGE = 50
NOT_RESOLVED = OPEN + ("under_review",)
_LATIN = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_CODE = re.compile(r"[A-Za-z0-9_-]{1,40}")


class FilterError(ValueError):
    """A filter the page cannot use; ``field`` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def parse_date(text: str) -> dt.date:
    """'1404/07/15', '1404-07-15' (Jalali, Persian digits too) or '2025-10-07' (ISO)."""
    m = re.fullmatch(r"\s*(\d{4})[-/](\d{1,2})[-/](\d{1,2})\s*", (text or "").translate(_LATIN))
    if not m:
        raise ValueError(f"{text!r}: write a date as 1404/07/15 or 2025-10-07")
    y, mo, d = (int(g) for g in m.groups())
    try:
        return jdatetime.date(y, mo, d).togregorian() if y < 1700 else dt.date(y, mo, d)
    except ValueError:
        raise ValueError(f"{text!r}: no such day") from None


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), TEHRAN).astimezone(dt.timezone.utc)


@dataclass(frozen=True)
class Filters:
    """What a list is narrowed to, beyond the scope. Empty strings: no filter."""

    case: str = ""  # a case number, or its start
    status: str = ""  # one of STATUSES, or 'open' (not resolved)
    agency: str = ""  # agency code
    office: str = ""  # office code
    indicator: str = ""  # indicator code
    province: str = ""  # province area code
    unit: str = ""  # inspection unit code: routed there
    date_from: str = ""  # filed on or after this day (Tehran), Jalali or ISO
    date_to: str = ""  # filed on or before this day
    overdue: str = ""  # '1': open past the SLA deadline
    late_ack: str = ""  # '1': not acknowledged past the escalation deadline

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "Filters":
        """From a query string; FilterError on a value that cannot be a filter."""
        values = {f.name: (args.get(f.name) or "").strip()[:40] for f in fields(cls)}
        f = cls(**values)
        if f.status and f.status not in STATUSES + ("open",):
            raise FilterError("status", f"status must be one of {', '.join(STATUSES)}, open")
        for name in ("agency", "office", "indicator", "province", "unit", "case"):
            if getattr(f, name) and not _CODE.fullmatch(getattr(f, name)):
                raise FilterError(name, f"{name}: letters, digits, - and _ only")
        for name in ("date_from", "date_to"):
            if getattr(f, name):
                try:
                    parse_date(getattr(f, name))
                except ValueError as e:
                    raise FilterError(name, str(e)) from None
        return f

    def args(self, **changes) -> dict[str, str]:
        """The non-empty filters as query arguments (for links and the export)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)} | changes
        return {k: v for k, v in values.items() if v}

    def where(self, stmt: Select, now: dt.datetime) -> Select:
        """``stmt`` (over complaints joined to provinces, agencies, indicators and offices) narrowed."""
        C = Complaint
        if self.case:
            stmt = stmt.where(C.case_number.startswith(self.case.upper(), autoescape=True))
        if self.status == "open":
            stmt = stmt.where(C.status.in_(NOT_RESOLVED))
        elif self.status:
            stmt = stmt.where(C.status == self.status)
        if self.agency:
            stmt = stmt.where(Agency.code == self.agency)
        if self.office:
            stmt = stmt.where(Office.code == self.office)
        if self.indicator:
            stmt = stmt.where(Indicator.code == self.indicator)
        if self.province:
            stmt = stmt.where(Province.area_code == self.province)
        if self.date_from:
            stmt = stmt.where(C.created_at >= _midnight(parse_date(self.date_from)))
        if self.date_to:
            stmt = stmt.where(C.created_at < _midnight(parse_date(self.date_to) + dt.timedelta(days=1)))
        if self.overdue:
            stmt = stmt.where(C.status.in_(NOT_RESOLVED), C.sla_due_at < now)
        R = ComplaintRoute
        if self.unit:
            unit = select(InspectionUnit.id).where(InspectionUnit.code == self.unit).scalar_subquery()
            stmt = stmt.where(C.id.in_(select(R.complaint_id).where(R.unit_id == unit)))
        if self.late_ack:
            late = select(R.complaint_id).where(
                R.acknowledged_at.is_(None), or_(R.escalate_at < now, R.escalated_at.is_not(None)))
            stmt = stmt.where(C.status.in_(OPEN), C.id.in_(late))
        return stmt


@dataclass(frozen=True)
class Found:
    """One complaint in a list: what staff may see of it."""

    case_number: str
    created_at: dt.datetime
    province_fa: str
    agency_code: str
    agency_fa: str
    office_code: str | None
    office_fa: str | None
    city_fa: str | None
    indicator_fa: str
    status: str
    outcome: str | None
    sla_due_at: dt.datetime

    def overdue(self, now: dt.datetime) -> bool:
        return self.status != "resolved" and self.sla_due_at < now


def _base(scope: Scope, filters: Filters, now: dt.datetime, *columns) -> Select:
    C = Complaint
    stmt = (select(*columns).select_from(C).join(Province, Province.id == C.province_id)
            .join(Agency, Agency.id == C.agency_id).join(Indicator, Indicator.id == C.indicator_id)
            .outerjoin(Office, Office.id == C.office_id))
    return scope.complaints(filters.where(stmt, now))


_COLUMNS = (Complaint.case_number, Complaint.created_at, Province.name_fa, Agency.code, Agency.name_fa,
            Office.code, Office.name_fa, Office.city_fa, Indicator.name_fa, Complaint.status,
            Complaint.outcome, Complaint.sla_due_at)


@dataclass(frozen=True)
class Page:
    rows: list[Found]
    total: int
    number: int
    pages: int


def search(s: Session, scope: Scope, filters: Filters, now: dt.datetime, page: int = 1,
           per_page: int = PER_PAGE) -> Page:
    """One page of the complaints ``scope`` sees that match ``filters``, newest first."""
    total = s.scalar(_base(scope, filters, now, func.count(Complaint.id))) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    stmt = (_base(scope, filters, now, *_COLUMNS).order_by(Complaint.created_at.desc(), Complaint.id.desc())
            .limit(per_page).offset((page - 1) * per_page))
    return Page([Found(*r) for r in s.execute(stmt)], total, page, pages)


def every(s: Session, scope: Scope, filters: Filters, now: dt.datetime, chunk: int = 1000) -> Iterator[Found]:
    """All of them, newest first, read ``chunk`` rows at a time (an export)."""
    stmt = _base(scope, filters, now, *_COLUMNS).order_by(Complaint.created_at.desc(), Complaint.id.desc())
    for r in s.execute(stmt.execution_options(yield_per=chunk)):
        yield Found(*r)


def visible(s: Session, scope: Scope, case_number: str) -> Complaint | None:
    """The complaint with this case number if ``scope`` sees it, else None (out of scope and
    missing look the same)."""
    stmt = scope.complaints(select(Complaint).where(Complaint.case_number == case_number.strip().upper()))
    return s.scalar(stmt)


def choices(s: Session, scope: Scope) -> dict[str, list[tuple[str, str]]]:
    """The values the filter form offers, limited to what the scope can contain."""
    agencies = select(Agency.code, Agency.name_fa).order_by(Agency.code)
    provinces = select(Province.area_code, Province.name_fa).order_by(Province.name_fa)
    offices = select(Office.code, Office.name_fa).order_by(Office.code)
    if scope.agency_id is not None:
        agencies = agencies.where(Agency.id == scope.agency_id)
        offices = offices.where(Office.agency_id == scope.agency_id)
    if scope.province_id is not None:
        provinces = provinces.where(Province.id == scope.province_id)
        offices = offices.where(Office.province_id == scope.province_id)
    return {"agency": s.execute(agencies).tuples().all(), "province": s.execute(provinces).tuples().all(),
            "office": s.execute(offices).tuples().all(),
            "indicator": s.execute(select(Indicator.code, Indicator.name_fa).order_by(Indicator.id)).tuples().all()}
