"""The schema. No column can hold a caller's number, name, or an Asterisk channel id.

Caller identity exists in storage only as a keyed hash in ``caller_counts``, whose key is
destroyed with its month and which is written apart from every complaint and call record
(see README, threat model). The caller's tracking code is kept only as a keyed hash: staff
see the complaint's case number, a reference of its own.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; storage is UTC")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Province(Base):
    __tablename__ = "provinces"
    id: Mapped[int] = mapped_column(primary_key=True)
    area_code: Mapped[str] = mapped_column(String(4), unique=True)
    name_fa: Mapped[str] = mapped_column(String(80))
    name_en: Mapped[str] = mapped_column(String(80))
    activated_on: Mapped[dt.date | None] = mapped_column(Date)
    # the languages 128 speaks there, in the order offered, its default first (`favad provinces languages`)
    languages: Mapped[str] = mapped_column(String(64), default="fa", server_default="fa")


class Agency(Base):
    __tablename__ = "agencies"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)
    name_fa: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))


class Office(Base):
    __tablename__ = "offices"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    name_fa: Mapped[str] = mapped_column(String(200))
    city_fa: Mapped[str] = mapped_column(String(80))
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    province_id: Mapped[int] = mapped_column(ForeignKey("provinces.id"))
    agency: Mapped[Agency] = relationship()
    province: Mapped[Province] = relationship()


class Indicator(Base):
    __tablename__ = "indicators"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_fa: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))


class Complaint(Base):
    __tablename__ = "complaints"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_number: Mapped[str] = mapped_column(String(16), unique=True)  # what staff and units see
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)  # the caller's code, keyed hash
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    province_id: Mapped[int] = mapped_column(ForeignKey("provinces.id"))
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id"))
    indicator_id: Mapped[int] = mapped_column(ForeignKey("indicators.id"))
    status: Mapped[str] = mapped_column(String(20), default="received", index=True)
    outcome: Mapped[str | None] = mapped_column(String(40))
    recording_path: Mapped[str | None] = mapped_column(Text)
    sla_due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    province: Mapped[Province] = relationship()
    agency: Mapped[Agency] = relationship()
    office: Mapped[Office | None] = relationship()
    indicator: Mapped[Indicator] = relationship()
    events: Mapped[list["ComplaintEvent"]] = relationship(
        back_populates="complaint", order_by="ComplaintEvent.id"
    )


class ComplaintEvent(Base):
    """Append-only history of a complaint; the actor is the system or a unit, never a citizen."""

    __tablename__ = "complaint_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(80))
    note: Mapped[str | None] = mapped_column(Text)
    complaint: Mapped[Complaint] = relationship(back_populates="events")


class ComplaintRating(Base):
    """The caller's 1-5 rating of how a resolved complaint was handled: one per complaint."""

    __tablename__ = "complaint_ratings"
    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), unique=True)
    rating: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class CallRecord(Base):
    """One anonymous row per call: when (to the minute), where, how it ended. No channel id,
    no number, and nothing that tells it from the other calls of its minute."""

    __tablename__ = "call_records"
    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    province_id: Mapped[int | None] = mapped_column(ForeignKey("provinces.id"))
    outcome: Mapped[str] = mapped_column(String(30))
    duration_s: Mapped[int] = mapped_column(Integer)
    language: Mapped[str | None] = mapped_column(String(16))  # the one the call ended in


class CallerCount(Base):
    """Abuse counters per day and keyed caller hash (the key is the month's, destroyed after
    it). No id, no time finer than the day, and written only by the ledger's own flushes,
    never beside a call record or a complaint (complaints/callers.py)."""

    __tablename__ = "caller_counts"
    period: Mapped[str] = mapped_column(String(7), primary_key=True)  # the month of the key: YYYY-MM
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    caller_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    complaints: Mapped[int] = mapped_column(Integer, default=0)
    guesses: Mapped[int] = mapped_column(Integer, default=0)  # tracking codes tried that matched none


CALL_OUTCOMES = (
    "complaint_filed",
    "out_of_scope",
    "followup",
    "operator",
    "abandoned",
    "province_inactive",
    "failed_input",
    "system_error",
    "refused",  # over a per-caller limit: nothing stored or looked up
)
STATUSES = ("received", "forwarded", "under_review", "resolved")
