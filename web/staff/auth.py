"""Who is asking: the session behind the cookie, the roles and what each may do, and the audit
trail. Views use ``login_required``, ``current_user`` and ``audit``; the rules themselves are in
``accountability.accounts``.

    @bp.get("/x")
    @login_required()            # any logged-in account
    def x(): ...

    @bp.post("/x/<int:cid>/ack")
    @login_required(act=True)    # not an analyst (refused with 403, audited)
    def ack(cid): ...; audit("ack", complaint_id=cid, case_number=c.case_number)
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import wraps

from flask import abort, g, redirect, request, url_for
from sqlalchemy.orm import Session

from accountability import accounts
from accountability.scope import Scope
from accountability.staff import StaffAccount
from web.staff import db as staff_db
from web.staff.security import SESSION_COOKIE

OVERSEERS = ("national", "province", "agency", "analyst")  # the dashboard's readers


@dataclass(frozen=True)
class StaffUser:
    id: int
    name: str
    role: str  # national | province | agency | analyst | unit
    scope: Scope  # what every query of theirs is narrowed to
    province_id: int | None
    agency_id: int | None
    unit_id: int | None  # a unit's account: the unit whose inbox it is

    @property
    def can_act(self) -> bool:
        return self.role != "analyst"

    @classmethod
    def of(cls, a: StaffAccount) -> "StaffUser":
        return cls(a.id, a.name, a.role, accounts.scope_of(a), a.province_id, a.agency_id, a.unit_id)


def current_user() -> StaffUser | None:
    """The logged-in account of this request, or None."""
    return g.get("staff_user")


def load_user() -> None:
    """Find the session behind the cookie (before_request); a dead one is ended and audited."""
    g.staff_user = g.staff_sid = None
    g.staff_stale = False
    sid = request.cookies.get(SESSION_COOKIE)
    if not sid or request.endpoint == "static":
        return
    st = staff_db.state()
    now = st.clock()
    with st.Session() as s:
        row, a = accounts.session_for(s, sid, now, st.policy)
        if a is None:
            g.staff_stale = True  # the cookie goes (after_request); the user logs in again
            if row is not None and row.revoked_at == now:  # it ended just now: idle, too old, disabled
                accounts.record(s, "session_expired", row.account_id, now)
        s.commit()
    if a is not None:
        g.staff_user, g.staff_sid = StaffUser.of(a), sid


def login_required(view=None, *, act: bool = False, roles: tuple[str, ...] | None = None):
    """Send an anonymous request to the login page; refuse (403, audited) an account whose role
    is not in ``roles`` or, with ``act=True``, one that may not act (an analyst)."""
    def wrap(fn):
        @wraps(fn)
        def inner(*args, **kw):
            user = current_user()
            if user is None:
                target = request.full_path.rstrip("?") if request.method == "GET" else None
                return redirect(url_for("account.login", next=target, expired=1 if g.get("staff_stale") else None),
                                code=303)
            if (roles is not None and user.role not in roles) or (act and not user.can_act):
                audit("refused")
                abort(403)
            return fn(*args, **kw)
        return inner
    return wrap(view) if view is not None else wrap


def audit(kind: str, session: Session | None = None, **ids) -> None:
    """Append to the audit trail as the current user: ``kind`` and ids only (complaint_id,
    case_number, unit_id, target_account_id, count). With ``session``, the row joins its
    transaction (written with the action or not at all); without, it is written now."""
    user = current_user()
    account_id = user.id if user else None
    if session is not None:
        accounts.record(session, kind, account_id, staff_db.now(), **ids)
        return
    with staff_db.session() as s:
        accounts.record(s, kind, account_id, staff_db.now(), **ids)
        s.commit()
