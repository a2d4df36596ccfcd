"""The staff's web accounts: issuing and resetting credentials, the login check with its second
factor and lockout, server-side sessions, and the audit trail. The web interface and
`favad staff` both call these; neither keeps a rule of its own.

A password is shown once, when issued, and stored as an Argon2id hash; a TOTP code is accepted
once (the step it matched is remembered). A failed login looks the same whatever failed (an
unknown name, a wrong password or code, a locked or disabled account) and costs the same work.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from accountability.scope import Scope
from accountability.staff import ROLES, StaffAccount, StaffAudit, StaffSession
from db.models import Agency, Province
from dispatch.models import InspectionUnit

ISSUER = "128 favad"
HASHER = PasswordHasher()  # Argon2id, the library's (RFC 9106 low-memory) parameters
_DUMMY = HASHER.hash(secrets.token_urlsafe(16))  # verified for an unknown name: the same work
KEEP_ENDED = dt.timedelta(days=30)  # an ended session's row is kept this long (the audit keeps the logins)
AUDIT_IDS = ("complaint_id", "case_number", "unit_id", "target_account_id", "count")


class AccountError(Exception):
    """A command or a form cannot be done as asked; the message says why."""


@dataclass(frozen=True)
class Policy:
    """How long sessions last and how failures lock an account."""
    idle: dt.timedelta = dt.timedelta(minutes=30)
    lifetime: dt.timedelta = dt.timedelta(hours=12)
    max_failures: int = 5
    lock: dt.timedelta = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class Issued:
    """Credentials just issued: shown once, then only their hashes remain (the secret excepted)."""
    account: StaffAccount
    password: str
    totp_secret: str

    @property
    def uri(self) -> str:
        """otpauth:// for an authenticator app's QR code or manual entry."""
        return pyotp.TOTP(self.totp_secret).provisioning_uri(name=self.account.name, issuer_name=ISSUER)


def scope_of(a: StaffAccount) -> Scope:
    return Scope(province_id=a.province_id, agency_id=a.agency_id, unit_id=a.unit_id)


# ---- accounts -------------------------------------------------------------------------------
def find_scope(s: Session, role: str, province: str | None, agency: str | None,
               unit: str | None) -> tuple[int | None, int | None, int | None]:
    """(province_id, agency_id, unit_id) for ``role`` from codes (area code, agency code, unit
    code); AccountError when the role lacks its scope, has one it may not have, or a code is unknown."""
    given = {k for k, v in (("province", province), ("agency", agency), ("unit", unit)) if v}
    allowed = {"national": set(), "province": {"province"}, "agency": {"agency"},
               "analyst": {"province", "agency"}, "unit": {"unit"}}
    if role not in allowed:
        raise AccountError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    if given - allowed[role]:
        raise AccountError(f"a {role} account takes no --{' --'.join(sorted(given - allowed[role]))}")
    if role in ("province", "agency", "unit") and role not in given:
        raise AccountError(f"a {role} account needs --{role}")
    if len(given) > 1:
        raise AccountError("an analyst's scope is one province or one agency, not both")
    ids = [None, None, None]
    for i, (model, column, code, what) in enumerate((
            (Province, Province.area_code, province, "province with area code"),
            (Agency, Agency.code, agency, "agency with code"),
            (InspectionUnit, InspectionUnit.code, unit, "inspection unit with code"))):
        if code:
            found = s.scalar(select(model.id).where(column == code))
            if found is None:
                raise AccountError(f"no {what} {code!r}")
            ids[i] = found
    return ids[0], ids[1], ids[2]


def add(s: Session, name: str, role: str, now: dt.datetime, *, province: str | None = None,
        agency: str | None = None, unit: str | None = None) -> Issued:
    """A new account with a fresh password and TOTP secret (the caller commits)."""
    name = name.strip()
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        raise AccountError("a name is 1 to 64 characters without spaces")
    if s.scalar(select(StaffAccount.id).where(StaffAccount.name == name)) is not None:
        raise AccountError(f"an account named {name!r} exists already (`favad staff reset` issues new credentials)")
    province_id, agency_id, unit_id = find_scope(s, role, province, agency, unit)
    password, secret = _password(), pyotp.random_base32()
    a = StaffAccount(name=name, role=role, province_id=province_id, agency_id=agency_id, unit_id=unit_id,
                     password_hash=HASHER.hash(password), totp_secret=secret, totp_last_step=0,
                     disabled=False, failed_attempts=0, created_at=now, updated_at=now)
    s.add(a)
    s.flush()
    record(s, "account_added", None, now, target_account_id=a.id)
    return Issued(a, password, secret)


def get(s: Session, name: str) -> StaffAccount:
    a = s.scalar(select(StaffAccount).where(StaffAccount.name == name))
    if a is None:
        raise AccountError(f"no account named {name!r} (`favad staff list` shows them)")
    return a


def reset(s: Session, name: str, now: dt.datetime) -> Issued:
    """New password and TOTP secret, the lock lifted, every session ended (the caller commits)."""
    a = get(s, name)
    password, secret = _password(), pyotp.random_base32()
    a.password_hash, a.totp_secret, a.totp_last_step = HASHER.hash(password), secret, 0
    a.failed_attempts, a.locked_until, a.updated_at = 0, None, now
    revoke_all(s, a.id, now)
    record(s, "account_reset", None, now, target_account_id=a.id)
    return Issued(a, password, secret)


def set_disabled(s: Session, name: str, disabled: bool, now: dt.datetime) -> StaffAccount:
    """Disable (every session ended at once) or enable an account (the caller commits)."""
    a = get(s, name)
    a.disabled, a.updated_at = disabled, now
    if disabled:
        revoke_all(s, a.id, now)
    record(s, "account_disabled" if disabled else "account_enabled", None, now, target_account_id=a.id)
    return a


def _password() -> str:
    """Sixteen characters from a 56-letter alphabet without look-alikes (about 93 bits)."""
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))


# ---- login ----------------------------------------------------------------------------------
def authenticate(s: Session, name: str, password: str, code: str, now: dt.datetime,
                 policy: Policy = Policy()) -> StaffAccount | None:
    """The account when name, password and a fresh TOTP code match and it may log in; else
    None, after the same work. Failures are counted and lock; each outcome is audited. The
    caller commits."""
    a = s.scalar(select(StaffAccount).where(StaffAccount.name == name).with_for_update())
    if a is None:
        _verify(_DUMMY, password)
        record(s, "login_failed", None, now)
        return None
    password_ok = _verify(a.password_hash, password)
    step = _totp_step(a, code, now)
    if a.disabled:
        record(s, "login_refused_disabled", a.id, now)
        return None
    if a.locked_until is not None and a.locked_until > now:
        record(s, "login_refused_locked", a.id, now)
        return None
    if not password_ok or step is None:
        a.failed_attempts += 1
        if a.failed_attempts >= policy.max_failures:
            a.failed_attempts, a.locked_until = 0, now + policy.lock
            record(s, "login_locked", a.id, now)
        else:
            record(s, "login_failed", a.id, now)
        return None
    if HASHER.check_needs_rehash(a.password_hash):
        a.password_hash = HASHER.hash(password)
    a.failed_attempts, a.locked_until, a.totp_last_step = 0, None, step
    record(s, "login_ok", a.id, now)
    return a


def _verify(hashed: str, password: str) -> bool:
    try:
        return HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def _totp_step(a: StaffAccount, code: str, now: dt.datetime) -> int | None:
    """The time step ``code`` matches (this one, the one before or after, like pyotp's
    valid_window=1), if not already used; every candidate is compared."""
    totp = pyotp.TOTP(a.totp_secret)
    here = totp.timecode(now)
    code = "".join(code.split())
    found = None
    for step in (here - 1, here, here + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and step > a.totp_last_step:
            found = step
    return found


# ---- sessions -------------------------------------------------------------------------------
def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def open_session(s: Session, a: StaffAccount, now: dt.datetime, policy: Policy = Policy()) -> str:
    """A new session for ``a``; the id to put in the cookie (only its hash is stored)."""
    sid = secrets.token_urlsafe(32)
    # the account's sessions long over go: the table stays the size of the staff, not of their logins
    s.execute(delete(StaffSession).where(StaffSession.account_id == a.id, StaffSession.expires_at < now - KEEP_ENDED))
    s.add(StaffSession(id_hash=_digest(sid), account_id=a.id, created_at=now, last_seen=now,
                       expires_at=now + policy.lifetime))
    return sid


def session_for(s: Session, sid: str, now: dt.datetime, policy: Policy = Policy()
                ) -> tuple[StaffSession | None, StaffAccount | None]:
    """(session, account) for a cookie's id, its last use moved to ``now``; (row or None, None)
    when it is unknown, revoked, idle too long, past its lifetime or its account disabled."""
    row = s.scalar(select(StaffSession).where(StaffSession.id_hash == _digest(sid)))
    if row is None or row.revoked_at is not None:
        return row, None
    a = s.get(StaffAccount, row.account_id)
    if now >= row.expires_at or now - row.last_seen >= policy.idle or a is None or a.disabled:
        row.revoked_at = now
        return row, None
    row.last_seen = now
    return row, a


def close_session(s: Session, sid: str, now: dt.datetime) -> None:
    s.execute(update(StaffSession).where(StaffSession.id_hash == _digest(sid), StaffSession.revoked_at.is_(None))
              .values(revoked_at=now))


def revoke_all(s: Session, account_id: int, now: dt.datetime) -> int:
    """End every open session of an account; how many."""
    return s.execute(update(StaffSession).where(StaffSession.account_id == account_id,
                                                StaffSession.revoked_at.is_(None))
                     .values(revoked_at=now)).rowcount


# ---- the audit trail ------------------------------------------------------------------------
def record(s: Session, kind: str, account_id: int | None, now: dt.datetime, **ids) -> StaffAudit:
    """Append one audit row (the caller commits): ids only, never content or a secret."""
    unknown = set(ids) - set(AUDIT_IDS)
    if unknown:
        raise TypeError(f"the audit trail holds {', '.join(AUDIT_IDS)}; not {', '.join(sorted(unknown))}")
    row = StaffAudit(at=now, account_id=account_id, kind=kind[:40], **ids)
    s.add(row)
    return row


def _minute(at: dt.datetime | None) -> str | None:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else None


def listing(s: Session, now: dt.datetime) -> list[dict]:
    """Every account with its role and scope as codes, and a lock still running; no hash, no secret."""
    provinces = dict(s.execute(select(Province.id, Province.area_code)).all())
    agencies = dict(s.execute(select(Agency.id, Agency.code)).all())
    units = dict(s.execute(select(InspectionUnit.id, InspectionUnit.code)).all())
    rows = []
    for a in s.scalars(select(StaffAccount).order_by(StaffAccount.name)):
        scope = (f"province {provinces.get(a.province_id)}" if a.province_id else
                 f"agency {agencies.get(a.agency_id)}" if a.agency_id else
                 f"unit {units.get(a.unit_id)}" if a.unit_id else "national")
        rows.append({"name": a.name, "role": a.role, "scope": scope,
                     "state": "disabled" if a.disabled else "active",
                     "locked_until": _minute(a.locked_until) if a.locked_until and a.locked_until > now else None,
                     "created_at": _minute(a.created_at)})
    return rows
