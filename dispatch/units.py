"""The routing data as a file: read and write YAML or CSV, validate, import into the database.

One row per unit: code, kind, name_fa, agency (code), province (area code), hours, emails,
mobiles, active. In CSV several addresses share a cell, separated by ';'.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from db.models import Agency, Province
from clock import hours as wh
from dispatch.models import UNIT_KINDS, InspectionUnit, UnitContact
from common.anonymity import normalize_number

COLUMNS = ("code", "kind", "name_fa", "agency", "province", "hours", "emails", "mobiles", "active")
DEMO = Path(__file__).with_name("demo_units.yaml")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


class UnitsError(ValueError):
    """The file cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class UnitSpec:
    code: str
    kind: str
    name_fa: str
    agency: str | None = None
    province: str | None = None
    hours: str = ""
    emails: list[str] = field(default_factory=list)
    mobiles: list[str] = field(default_factory=list)
    active: bool = True


def mobile(raw: str) -> str | None:
    """An Iranian mobile number as 09xxxxxxxxx, or None if it is not one."""
    national = normalize_number(str(raw))
    return "0" + national if national and len(national) == 10 and national[0] == "9" else None


# ---- reading and writing ------------------------------------------------------------------
def _split(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v for v in re.split(r"[;\s]+", str(value)) if v]


def _opt(value) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value).strip()


def _spec(row: dict, where: str) -> UnitSpec:
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise UnitsError([f"{where}: unknown field(s) {', '.join(sorted(unknown))}"])
    mobiles = row.get("mobiles")
    if isinstance(mobiles, int) or (isinstance(mobiles, list) and any(isinstance(m, int) for m in mobiles)):
        raise UnitsError([f"{where}: quote mobile numbers (\"0912...\"), YAML reads them as integers"])
    active = row.get("active", True)
    if isinstance(active, str):
        active = active.strip().lower() not in ("0", "false", "no", "n")
    return UnitSpec(code=str(row.get("code") or "").strip(), kind=str(row.get("kind") or "").strip(),
                    name_fa=str(row.get("name_fa") or "").strip(), agency=_opt(row.get("agency")),
                    province=_opt(row.get("province")), hours=str(row.get("hours") or "").strip(),
                    emails=_split(row.get("emails")), mobiles=_split(row.get("mobiles")),
                    active=bool(active))


def read(text: str, fmt: str) -> list[UnitSpec]:
    """Units from the text of a YAML or CSV file."""
    if fmt == "csv":
        return [_spec({k: v for k, v in row.items() if k is not None}, f"row {i}")
                for i, row in enumerate(csv.DictReader(io.StringIO(text)), start=2)]
    try:
        data = yaml.safe_load(text) or []
    except yaml.YAMLError as e:
        raise UnitsError([f"not valid YAML: {e}"]) from None
    rows = data.get("units", []) if isinstance(data, dict) else data
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise UnitsError(["expected a list of units (or a mapping with the key 'units')"])
    return [_spec(r, f"unit {i}") for i, r in enumerate(rows, start=1)]


def write(specs: list[UnitSpec], fmt: str) -> str:
    if fmt == "csv":
        out = io.StringIO()
        w = csv.DictWriter(out, COLUMNS, lineterminator="\n")
        w.writeheader()
        for sp in specs:
            row = asdict(sp)
            w.writerow({**row, "emails": ";".join(sp.emails), "mobiles": ";".join(sp.mobiles),
                        "agency": sp.agency or "", "province": sp.province or "",
                        "active": "yes" if sp.active else "no"})
        return out.getvalue()
    rows = [{k: v for k, v in asdict(sp).items() if v not in (None, "", [])} for sp in specs]
    return yaml.safe_dump({"units": rows}, allow_unicode=True, sort_keys=False)


def fmt_of(path: str, given: str | None) -> str:
    return given or ("csv" if path.lower().endswith(".csv") else "yaml")


# ---- validation ---------------------------------------------------------------------------
def validate(specs: list[UnitSpec], agencies: set[str], provinces: set[str]) -> list[str]:
    """Every problem that would stop an import (empty: the file is good). Normalizes mobiles."""
    problems: list[str] = []
    seen: dict[str, int] = {}
    slots: dict[tuple, str] = {}
    for sp in specs:
        where = f"unit {sp.code or '(no code)'}"
        say = problems.append
        if not _CODE.match(sp.code):
            say(f"{where}: the code must be 1-40 letters, digits, '-', '_' or '.'")
        seen[sp.code] = seen.get(sp.code, 0) + 1
        if sp.kind not in UNIT_KINDS:
            say(f"{where}: kind must be one of {', '.join(UNIT_KINDS)}, not {sp.kind!r}")
        if not sp.name_fa:
            say(f"{where}: name_fa is missing")
        needs_agency = sp.kind in ("headquarters", "provincial")
        needs_province = sp.kind in ("provincial", "escalation")
        if needs_agency != bool(sp.agency):
            say(f"{where}: a {sp.kind} unit {'needs' if needs_agency else 'takes no'} agency")
        if needs_province != bool(sp.province):
            say(f"{where}: a {sp.kind} unit {'needs' if needs_province else 'takes no'} province")
        if sp.agency and sp.agency not in agencies:
            say(f"{where}: no agency with code {sp.agency}")
        if sp.province and sp.province not in provinces:
            say(f"{where}: no province with area code {sp.province}")
        try:
            wh.parse(sp.hours)
        except wh.HoursError as e:
            say(f"{where}: {e}")
        for e in sp.emails:
            if not _EMAIL.match(e):
                say(f"{where}: {e!r} is not an email address")
        for i, m in enumerate(sp.mobiles):
            if mobile(m) is None:
                say(f"{where}: {m!r} is not an Iranian mobile number (09xxxxxxxxx)")
            else:
                sp.mobiles[i] = mobile(m)
        if not sp.emails and not sp.mobiles:
            say(f"{where}: no email address and no mobile number: nothing could reach it")
        slot = (sp.kind, sp.agency if needs_agency else None, sp.province if needs_province else None)
        if sp.active and slot in slots:
            say(f"{where}: same {sp.kind} place as unit {slots[slot]} (one active unit per place)")
        slots.setdefault(slot, sp.code)
    problems += [f"unit {c}: listed {n} times" for c, n in seen.items() if n > 1 and c]
    return problems


def coverage(specs: list[UnitSpec], agencies: set[str], active_provinces: set[str]) -> list[str]:
    """Warnings on a complete set of units: gaps the routing will paper over."""
    live = [sp for sp in specs if sp.active]
    hq = {sp.agency for sp in live if sp.kind == "headquarters"}
    esc = {sp.province for sp in live if sp.kind == "escalation"}
    out = [f"agency {a} has no headquarters unit: its complaints go to the province's escalation "
           f"office, flagged" for a in sorted(agencies - hq)]
    out += [f"active province {p} has no escalation office: complaints without a unit there wait, "
            f"flagged, and nothing is escalated" for p in sorted(active_provinces - esc)]
    return out


# ---- the database ---------------------------------------------------------------------------
def reference(s: Session) -> tuple[set[str], set[str], set[str]]:
    """(agency codes, province area codes, area codes of live provinces)."""
    provinces = list(s.scalars(select(Province)))
    return (set(s.scalars(select(Agency.code))), {p.area_code for p in provinces},
            {p.area_code for p in provinces if p.activated_on is not None})


def current(s: Session) -> list[UnitSpec]:
    """The units in the database, as they would be exported."""
    units = s.scalars(select(InspectionUnit).options(
        selectinload(InspectionUnit.contacts), selectinload(InspectionUnit.agency),
        selectinload(InspectionUnit.province)).order_by(InspectionUnit.code))
    return [UnitSpec(code=u.code, kind=u.kind, name_fa=u.name_fa,
                     agency=u.agency.code if u.agency else None,
                     province=u.province.area_code if u.province else None, hours=u.hours,
                     emails=[c.address for c in u.contacts if c.channel == "email"],
                     mobiles=[c.address for c in u.contacts if c.channel == "sms"], active=u.active)
            for u in units]


def apply(s: Session, specs: list[UnitSpec], prune: bool = False) -> dict[str, int]:
    """Upsert ``specs`` by code (contacts replaced); with ``prune`` deactivate the rest.
    Validates first and changes nothing on a problem. Does not commit."""
    agencies, provinces, _ = reference(s)
    codes = {sp.code for sp in specs}
    others = [sp for sp in current(s) if sp.code not in codes]
    for sp in others if prune else ():
        sp.active = False
    # the units kept from before count too: a new unit must not take an occupied place
    problems = validate(specs + others, agencies, provinces)
    if problems:
        raise UnitsError(problems)
    agency_ids = dict(s.execute(select(Agency.code, Agency.id)).tuples().all())
    province_ids = dict(s.execute(select(Province.area_code, Province.id)).tuples().all())
    have = {u.code: u for u in s.scalars(select(InspectionUnit)
                                         .options(selectinload(InspectionUnit.contacts)))}
    counts = {"added": 0, "updated": 0, "deactivated": 0}
    # deactivate first, so a unit moved to a new code never shares its place for a moment
    for code in set(have) - codes if prune else ():
        if have[code].active:
            have[code].active = False
            counts["deactivated"] += 1
    s.flush()
    for sp in specs:
        unit = have.get(sp.code) or InspectionUnit(code=sp.code)
        counts["updated" if sp.code in have else "added"] += 1
        unit.kind, unit.name_fa, unit.hours, unit.active = sp.kind, sp.name_fa, sp.hours, sp.active
        unit.agency_id = agency_ids.get(sp.agency) if sp.agency else None
        unit.province_id = province_ids.get(sp.province) if sp.province else None
        wanted = [("email", e) for e in dict.fromkeys(sp.emails)]
        wanted += [("sms", m) for m in dict.fromkeys(sp.mobiles)]
        # reuse the rows that stay: deleting and re-adding one would trip its unique constraint
        kept = {(c.channel, c.address): c for c in unit.contacts}
        unit.contacts = [kept.get(w) or UnitContact(channel=w[0], address=w[1]) for w in wanted]
        s.add(unit)
    s.flush()
    return counts


def load_demo_units(s: Session) -> int:
    """Insert the demo units that are missing; how many were added. Commits."""
    have = set(s.scalars(select(InspectionUnit.code)))
    missing = [sp for sp in read(DEMO.read_text(encoding="utf-8"), "yaml") if sp.code not in have]
    if missing:
        apply(s, missing)
    s.commit()
    return len(missing)
