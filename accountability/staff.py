"""The staff's web accounts, their sessions and the audit trail of what they did.

An account holds an Argon2id hash of its password and its TOTP secret, never the password. A
session row holds a SHA-256 of the session id the browser carries, never the id itself, so a
copy of the database opens no session. The audit trail holds who, when, what kind and which
case (ids and case numbers), never a password, a code or a complaint's content; the database
refuses to change or delete its rows (triggers in migration 0008).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from db.models import Base, UTCDateTime
import dispatch.models  # noqa: F401  (inspection_units, referred to below)

ROLES = ("national", "province", "agency", "analyst", "unit")


class StaffAccount(Base):
    __tablename__ = "staff_accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)  # the login name, also shown in the audit
    role: Mapped[str] = mapped_column(String(16))  # one of ROLES
    province_id: Mapped[int | None] = mapped_column(ForeignKey("provinces.id"))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("inspection_units.id"))
    password_hash: Mapped[str] = mapped_column(String(255))  # Argon2id, its parameters inside
    totp_secret: Mapped[str] = mapped_column(String(64))  # base32; shown once, when issued
    totp_last_step: Mapped[int] = mapped_column(Integer, default=0)  # a code is used once
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)  # since the last success or lock
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class StaffSession(Base):
    __tablename__ = "staff_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex of the cookie's id
    account_id: Mapped[int] = mapped_column(ForeignKey("staff_accounts.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # the absolute end, idle or not
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())  # logout, disable, reset


class StaffAudit(Base):
    __tablename__ = "staff_audit"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"), index=True)  # None: a name not known
    kind: Mapped[str] = mapped_column(String(40))  # login_ok, login_failed, logout, refused, ...
    complaint_id: Mapped[int | None] = mapped_column(Integer)  # no foreign key: the trail outlives retention
    case_number: Mapped[str | None] = mapped_column(String(16))
    unit_id: Mapped[int | None] = mapped_column(Integer)
    target_account_id: Mapped[int | None] = mapped_column(Integer)  # the account a command changed
    count: Mapped[int | None] = mapped_column(Integer)  # rows an export or a bulk action covered
