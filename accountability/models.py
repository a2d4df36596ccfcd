"""The typed details of a unit's action, one row per event: which unit acted, the outcome of a
resolution, the unit a complaint was forwarded to. Append-only, like the events themselves.
And the generation of each unit's inbox links."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base, UTCDateTime
import dispatch.models  # noqa: F401  (inspection_units, referred to below)


class UnitAction(Base):
    __tablename__ = "unit_actions"
    event_id: Mapped[int] = mapped_column(ForeignKey("complaint_events.id"), primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("inspection_units.id"))  # None: the centre's staff
    outcome: Mapped[str | None] = mapped_column(String(40))  # resolutions: see actions.OUTCOMES
    to_unit_id: Mapped[int | None] = mapped_column(ForeignKey("inspection_units.id"))  # reassignments


class UnitInbox(Base):
    """The generation of a unit's inbox links: a link is good while it carries this number, so
    revoking every link a unit was given is one step of it (``accountability.inbox``)."""

    __tablename__ = "unit_inboxes"
    unit_id: Mapped[int] = mapped_column(ForeignKey("inspection_units.id"), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    issued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())  # the last link made
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())  # the last revocation
