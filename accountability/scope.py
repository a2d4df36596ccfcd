"""What a member of staff may see: one value that every list, count, map and export applies.

A national user sees everything; a province user sees the complaints filed about offices in
their province; an agency user sees their agency nationwide; a unit sees what is routed to it.
An analyst's scope is one of the first three, read-only. The scope narrows queries on the
tables that carry the columns (``complaints``, ``call_records``), so a figure cannot be drawn
from outside it by forgetting a filter in one place: callers pass their statement through
``Scope.complaints`` or ``Scope.calls`` and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, false, select

from db.models import CallRecord, Complaint
from dispatch.models import ComplaintRoute


@dataclass(frozen=True)
class Scope:
    province_id: int | None = None  # a province role: complaints in that province
    agency_id: int | None = None  # an agency role: that agency, every province
    unit_id: int | None = None  # a unit's inbox: complaints routed or escalated to it

    @classmethod
    def national(cls) -> "Scope":
        return cls()

    @property
    def is_national(self) -> bool:
        return self.province_id is None and self.agency_id is None and self.unit_id is None

    def complaints(self, stmt: Select) -> Select:
        """``stmt`` (which selects from ``complaints``) limited to this scope."""
        if self.province_id is not None:
            stmt = stmt.where(Complaint.province_id == self.province_id)
        if self.agency_id is not None:
            stmt = stmt.where(Complaint.agency_id == self.agency_id)
        if self.unit_id is not None:
            # the escalation office once the complaint was escalated there, not before (as
            # actions.responsible_units): it would see every complaint of its province
            R = ComplaintRoute
            routed = select(R.complaint_id).where(
                (R.unit_id == self.unit_id) | ((R.escalation_unit_id == self.unit_id) & R.escalated_at.is_not(None)))
            stmt = stmt.where(Complaint.id.in_(routed))
        return stmt

    def calls(self, stmt: Select) -> Select:
        """``stmt`` (which selects from ``call_records``) limited to this scope. A call carries
        its province only (no agency: nine calls in ten match none), so an agency's or a unit's
        scope counts no calls rather than every call."""
        if self.agency_id is not None or self.unit_id is not None:
            return stmt.where(false())
        if self.province_id is not None:
            stmt = stmt.where(CallRecord.province_id == self.province_id)
        return stmt

    def allows(self, complaint: Complaint, routed_to: set[int] | None = None) -> bool:
        """Whether one complaint (already loaded) is inside this scope; ``routed_to`` holds the
        units it is routed or escalated to, needed only for a unit's scope."""
        if self.province_id is not None and complaint.province_id != self.province_id:
            return False
        if self.agency_id is not None and complaint.agency_id != self.agency_id:
            return False
        if self.unit_id is not None and self.unit_id not in (routed_to or set()):
            return False
        return True
