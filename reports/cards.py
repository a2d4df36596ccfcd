"""Each agency's report card for a month: its figures beside all agencies', its rank, its
provinces and offices; as a page and a PDF, mailed through the outbox (``reports.mail``) to its
minister's office and inspection manager."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from accountability import figures as fg
from presentation import fa_digits
from reports import render
from reports.monthly import Report, Row, fill, per_office
from reports.publish import ordered

DEFAULT_RECIPIENTS = Path(__file__).with_name("recipients.yaml")
ROLES = ("minister_office", "inspection_manager")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class RecipientsError(ValueError):
    pass


def recipients(path: str | None = None) -> dict[str, list[tuple[str, str]]]:
    """Agency code -> [(role, address)], from the YAML file (or the packaged demo one)."""
    p = Path(path) if path else DEFAULT_RECIPIENTS
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise RecipientsError(f"cannot read the report recipients file {p}: {e}") from None
    out: dict[str, list[tuple[str, str]]] = {}
    for code, roles in (data.get("agencies") or {}).items():
        for role, addresses in (roles or {}).items():
            if role not in ROLES:
                raise RecipientsError(f"{p}: agency {code}: unknown role {role!r} (use {', '.join(ROLES)})")
            for address in [addresses] if isinstance(addresses, str) else addresses or []:
                if not _EMAIL.match(str(address)):
                    raise RecipientsError(f"{p}: agency {code}: {address!r} is not an email address")
                out.setdefault(str(code), []).append((role, str(address)))
    return out


@dataclass(frozen=True)
class Card:
    agency_code: str
    agency_fa: str
    subject: str
    html: str
    text: str
    pdf: bytes


def _agency_parts(report: Report, agency_id: int) -> tuple[list[Row], list[tuple[str, int, str]]]:
    """The agency's figures per province, and its offices with the most complaints."""
    ref = report.ref
    indicators = {i.id: i.code for i in ref.indicators}
    names = {i.id: i.name_fa for i in ref.indicators}
    measured = report.measured
    mine = measured.where(measured.agency_id == agency_id)
    present = set(np.unique(mine.province_id).tolist())
    provinces = [fill(Row(p.area_code, p.name_fa), mine.where(mine.province_id == p.id), indicators)
                 for p in ref.provinces if p.id in present]
    offices = []
    for office_id, counts in sorted(per_office(mine).items(), key=lambda kv: -sum(kv[1].values()))[:5]:
        o = ref.offices[office_id]
        lead = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        offices.append((f"{o.name_fa}، {o.city_fa}", sum(counts.values()), names[lead]))
    return sorted(provinces, key=lambda r: -r.complaints), offices


def make(report: Report, generated_at: dt.datetime, only: set[str] | None = None) -> list[Card]:
    """One card per agency (or per agency code in ``only``), those with no complaints included:
    they say so."""
    ids = {a.code: a.id for a in report.ref.agencies}
    ranked = sum(1 for r in report.agencies if r.rank is not None)
    cards = []
    for row in ordered(report.agencies):
        if only is not None and row.key not in only:
            continue
        provinces, offices = _agency_parts(report, ids[row.key])
        ctx = dict(report=report, row=row, total=report.total, ranked=ranked, provinces=provinces,
                   offices=offices, generated_at=generated_at, min_n=fg.MIN_N)
        subject = f"کارنامهٔ {row.name_fa} در سامانه ۱۲۸ | {fa_digits(report.month.name_fa)}"
        page = render.html("card.html", **ctx)
        text = re.sub(r"\n{3,}", "\n\n", render.html("card.txt", **ctx)).strip() + "\n"
        cards.append(Card(row.key, row.name_fa, subject, page, text, render.pdf(page)))
    return cards
