"""The dispatch tables: inspection units and their contacts, each complaint's route, the outbox.

Contacts are the official addresses of inspection units, never a citizen's. Outbox rows hold
no message text: it is rendered at send time from the complaint (or, for a report card, from
its document), so no column can keep more than the complaint or the report itself does.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.models import Agency, Base, Province, UTCDateTime

UNIT_KINDS = ("headquarters", "provincial", "escalation")
CHANNELS = ("email", "sms")
MESSAGE_KINDS = ("complaint", "escalation", "reassigned", "report_card")
MESSAGE_STATUSES = ("pending", "sent", "dead")


class InspectionUnit(Base):
    """An inspection office: an agency's headquarters, its office in one province, or the
    governorate's inspection office that takes a province's escalations."""

    __tablename__ = "inspection_units"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    name_fa: Mapped[str] = mapped_column(String(200))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    province_id: Mapped[int | None] = mapped_column(ForeignKey("provinces.id"), index=True)
    hours: Mapped[str] = mapped_column(String(200), default="")  # empty: always open
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    agency: Mapped[Agency | None] = relationship()
    province: Mapped[Province | None] = relationship()
    contacts: Mapped[list["UnitContact"]] = relationship(
        back_populates="unit", cascade="all, delete-orphan", order_by="UnitContact.id")


class UnitContact(Base):
    __tablename__ = "unit_contacts"
    __table_args__ = (UniqueConstraint("unit_id", "channel", "address"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("inspection_units.id"))
    channel: Mapped[str] = mapped_column(String(10))
    address: Mapped[str] = mapped_column(String(254))
    unit: Mapped[InspectionUnit] = relationship(back_populates="contacts")


class ComplaintRoute(Base):
    """Where a complaint went, whether the admin must look at it, and its escalation clock."""

    __tablename__ = "complaint_routes"
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), primary_key=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("inspection_units.id"))
    escalation_unit_id: Mapped[int | None] = mapped_column(ForeignKey("inspection_units.id"))
    flag: Mapped[str | None] = mapped_column(String(20), index=True)  # see routing.FLAGS
    clock_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    # clock_from plus escalate_after_hours of the unit's working time; set by the dispatcher
    # (it knows the setting), cleared whenever clock_from moves
    escalate_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Document(Base):
    """A finished document the outbox mails to several recipients (a month's report card):
    aggregates only, never a complaint or a caller. Kept once, however many messages point at
    it; each recipient's message is rendered from it at send time."""

    __tablename__ = "outbox_documents"
    __table_args__ = (UniqueConstraint("key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # report_card
    key: Mapped[str] = mapped_column(String(80))  # card.1404-07.101: names its Message-IDs
    subject: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    filename: Mapped[str] = mapped_column(String(120))  # of the PDF attachment
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class OutboxMessage(Base):
    """One message to one recipient, about a complaint (sent to a unit) or a document (a
    report card); the dispatcher claims it with a lease and records the end."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        UniqueConstraint("complaint_id", "kind", "channel", "recipient"),
        UniqueConstraint("document_id", "channel", "recipient"),
        Index("ix_outbox_messages_due", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int | None] = mapped_column(ForeignKey("complaints.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("inspection_units.id"))
    document_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_documents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(10))
    recipient: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    tries: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[InspectionUnit | None] = relationship()
