"""The audit trail, for national accounts: the latest rows, newest first."""
from __future__ import annotations

from flask import Blueprint, render_template, request
from sqlalchemy import select

from accountability.staff import StaffAccount, StaffAudit
from web.staff import db as staff_db
from web.staff.auth import login_required

bp = Blueprint("audit", __name__)
PAGE = 200


@bp.get("/audit")
@login_required(roles=("national",))
def index():
    before = request.args.get("before", type=int)
    with staff_db.session() as s:
        stmt = select(StaffAudit, StaffAccount.name).outerjoin(StaffAccount, StaffAccount.id == StaffAudit.account_id)
        if before:
            stmt = stmt.where(StaffAudit.id < before)
        rows = s.execute(stmt.order_by(StaffAudit.id.desc()).limit(PAGE)).all()
        names = dict(s.execute(select(StaffAccount.id, StaffAccount.name)).all())
    entries = [{"id": r.id, "at": r.at, "who": who, "kind": r.kind, "case_number": r.case_number,
                "target": names.get(r.target_account_id), "count": r.count} for r, who in rows]
    more = entries[-1]["id"] if len(entries) == PAGE else None
    return render_template("staff/audit.html", entries=entries, more=more)
