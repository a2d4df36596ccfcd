"""The complaint list (search, filters, pages, CSV export of the same list) and a complaint's page
with its timeline and the supervisors' actions: reassign, escalate, close with an outcome.

Every list and the export go through ``accountability.search`` with the user's Scope; a case
outside it is 404, as one that does not exist. Actions are ``accountability.actions``, the very
functions `favad complaints ...` calls, as ``Actor.staff_web``; each is audited in its own
transaction. Analysts see the same pages without the forms, and a POST from one is refused.
"""
from __future__ import annotations

import codecs
import csv
import io

from flask import Blueprint, Response, abort, redirect, render_template, request, stream_with_context, url_for
from sqlalchemy import select

from accountability import actions
from accountability.models import UnitAction
from accountability.search import FilterError, Filters, choices, every, search, visible
from clock.calendar import load as load_calendar
from db.models import STATUSES, ComplaintEvent
from dispatch.models import ComplaintRoute, InspectionUnit
from presentation import jalali
from web.staff import db as staff_db
from web.staff.auth import OVERSEERS, audit, current_user, login_required

bp = Blueprint("complaints", __name__)
CSV_COLUMNS = ("case_number", "filed_at", "province", "agency_code", "agency", "office_code", "office",
               "city", "indicator", "status", "outcome", "deadline", "overdue")


def _filters() -> tuple[Filters, FilterError | None]:
    try:
        return Filters.from_args(request.args), None
    except FilterError as e:
        return Filters(), e


@bp.get("/complaints")
@login_required(roles=OVERSEERS)
def index():
    user, now = current_user(), staff_db.now()
    filters, error = _filters()
    page_no = request.args.get("page", 1, type=int)
    with staff_db.session() as s:
        page = search(s, user.scope, filters, now, page_no)
        offered = choices(s, user.scope)
    return render_template("staff/complaints.html", page=page, filters=filters, error=error, now=now,
                           offered=offered, statuses=STATUSES), 400 if error else 200


@bp.get("/complaints.csv")
@login_required(roles=OVERSEERS)
def export():
    """The list as filtered, every page of it: UTF-8 with a byte order mark (Excel reads Persian),
    Latin digits and ISO times for spreadsheets; never a code, number or hash."""
    user, now = current_user(), staff_db.now()
    filters, error = _filters()
    if error:
        abort(400)
    audit("export")

    def rows():
        yield codecs.BOM_UTF8 + _line(CSV_COLUMNS)
        with staff_db.session() as s:
            for f in every(s, user.scope, filters, now):
                yield _line((f.case_number, f.created_at.isoformat(), f.province_fa, f.agency_code, f.agency_fa,
                             f.office_code or "", f.office_fa or "", f.city_fa or "", f.indicator_fa, f.status,
                             f.outcome or "", f.sla_due_at.isoformat(), int(f.overdue(now))))

    name = f"128-complaints-{jalali(now, fmt='%Y-%m-%d')}.csv"
    return Response(stream_with_context(rows()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _line(values) -> bytes:
    buf = io.StringIO()
    # a cell a spreadsheet would take for a formula is written as text
    csv.writer(buf).writerow("'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v
                             for v in values)
    return buf.getvalue().encode("utf-8")


@bp.get("/complaints/<case>")
@login_required(roles=OVERSEERS)
def show(case: str):
    user, now = current_user(), staff_db.now()
    with staff_db.session() as s:
        c = visible(s, user.scope, case) or abort(404)
        route = s.get(ComplaintRoute, c.id)
        units = {u.id: u for u in s.scalars(select(InspectionUnit))}
        moved = dict(s.execute(select(UnitAction.event_id, UnitAction.to_unit_id)
                               .where(UnitAction.complaint_id == c.id, UnitAction.to_unit_id.is_not(None))).all())
        events = [(e, units.get(moved.get(e.id))) for e in
                  s.scalars(select(ComplaintEvent).where(ComplaintEvent.complaint_id == c.id).order_by(ComplaintEvent.id))]
        targets = sorted((u for u in units.values() if u.active), key=lambda u: u.code)
        view = dict(c=c, province=c.province, agency=c.agency, office=c.office, indicator=c.indicator,
                    route=route, unit=units.get(route.unit_id) if route else None,
                    escalation=units.get(route.escalation_unit_id) if route else None)
        page = render_template("staff/complaint.html", **view, events=events, targets=targets, now=now,
                               outcomes=actions.OUTCOMES, done=request.args.get("done"),
                               error=request.args.get("error"))
    return page


def _act(case: str, name: str, kind: str, do):
    """Find the case in the user's scope, ``do(s, c, actor, now)``, audit and commit together; an
    ActionError comes back to the page as its code."""
    user, now = current_user(), staff_db.now()
    with staff_db.session() as s:
        c = visible(s, user.scope, case) or abort(404)
        try:
            unit_id = do(s, c, actions.Actor.staff_web(user.name), now)
        except actions.ActionError as e:
            s.rollback()
            return redirect(url_for(".show", case=c.case_number, error=e.code), code=303)
        audit(kind, session=s, complaint_id=c.id, case_number=c.case_number, unit_id=unit_id)
        s.commit()
        return redirect(url_for(".show", case=c.case_number, done=name), code=303)


def _calendar():
    return load_calendar(staff_db.settings().office_calendar or None)


@bp.post("/complaints/<case>/reassign")
@login_required(roles=OVERSEERS, act=True)
def reassign(case: str):
    def do(s, c, who, now):
        to = s.scalar(select(InspectionUnit).where(InspectionUnit.code == request.form.get("to", "")))
        if to is None:
            raise actions.ActionError("unknown_unit", "no such unit")
        actions.reassign(s, c, who, to, request.form.get("reason", ""), now, _calendar())
        return to.id
    return _act(case, "reassign", "complaint_reassigned", do)


@bp.post("/complaints/<case>/escalate")
@login_required(roles=OVERSEERS, act=True)
def escalate(case: str):
    def do(s, c, who, now):
        return actions.escalate(s, c, who, request.form.get("reason", ""), now, _calendar()).id
    return _act(case, "escalate", "complaint_escalated", do)


@bp.post("/complaints/<case>/resolve")
@login_required(roles=OVERSEERS, act=True)
def resolve(case: str):
    def do(s, c, who, now):
        actions.resolve(s, c, who, request.form.get("outcome", ""), request.form.get("note", ""), now)
        return None
    return _act(case, "resolve", "complaint_resolved", do)
