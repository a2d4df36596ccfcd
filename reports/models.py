"""Report cards on their way to the agencies: a small outbox of rendered messages.

The dispatcher's outbox rows belong to one complaint and one unit; a report card belongs to an
agency and a month, so it has this sibling table, claimed and retried the same way and sent
through the same channels. It holds aggregates only: no complaint, no caller."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base, UTCDateTime


class ReportMessage(Base):
    __tablename__ = "report_messages"
    __table_args__ = (
        UniqueConstraint("kind", "period", "agency_id", "recipient"),
        Index("ix_report_messages_due", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # report_card
    period: Mapped[str] = mapped_column(String(10))  # 1404-07
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    role: Mapped[str] = mapped_column(String(30))  # minister_office | inspection_manager
    recipient: Mapped[str] = mapped_column(String(254))
    message: Mapped[bytes] = mapped_column(LargeBinary)  # the email as it goes on the wire
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | sent | dead
    tries: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
