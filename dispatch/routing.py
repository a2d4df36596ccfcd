"""Which inspection unit a complaint goes to: the most specific one, never none.

(agency, province) first, else the agency's headquarters; an agency with no unit goes to the
province's escalation office and the complaint is flagged for the admin. Pure: ``route`` takes
the candidate units, ``candidates`` fetches them.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, joinedload

from dispatch.models import InspectionUnit

# why a complaint is flagged for the admin
NO_AGENCY_UNIT = "no_agency_unit"  # went to the province's escalation office instead
UNROUTED = "unrouted"  # no unit at all yet: waits for `favad units import`
FLAGS = (NO_AGENCY_UNIT, UNROUTED)


@dataclass(frozen=True)
class Route:
    unit: InspectionUnit | None
    escalation: InspectionUnit | None
    flag: str | None


def route(units: list[InspectionUnit], agency_id: int, province_id: int) -> Route:
    """The unit for a complaint about ``agency_id`` in ``province_id``, among active ``units``."""
    def find(kind, agency, province):
        return next((u for u in units if u.active and u.kind == kind and u.agency_id == agency
                     and u.province_id == province), None)

    escalation = find("escalation", None, province_id)
    unit = find("provincial", agency_id, province_id) or find("headquarters", agency_id, None)
    if unit is not None:
        return Route(unit, escalation, None)
    if escalation is not None:
        return Route(escalation, escalation, NO_AGENCY_UNIT)
    return Route(None, None, UNROUTED)


def candidates(s: Session, agency_id: int, province_id: int) -> list[InspectionUnit]:
    """The active units that could take a complaint about this agency in this province."""
    U = InspectionUnit
    return list(s.scalars(
        select(U).options(joinedload(U.contacts)).where(U.active, or_(
            and_(U.kind == "provincial", U.agency_id == agency_id, U.province_id == province_id),
            and_(U.kind == "headquarters", U.agency_id == agency_id),
            and_(U.kind == "escalation", U.province_id == province_id),
        ))).unique())
