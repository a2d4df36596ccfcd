"""A unit's inbox: its open complaints nearest deadline first with the time left on the office
clock, each complaint with its history and the units' page's actions, and what it resolved in
the last months.

Two ways in, one set of pages: a unit's account (role ``unit``) at /staff/inbox after login,
or the unit's own signed link at /staff/inbox/<token> (``favad web inbox-link``; revoked with
``favad web inbox-revoke``, rotated out with the link keys). The token is a capability, as on
the units' page: no log holds it (waitress writes no access log), and every response says
no-referrer and no-store. The pages show case numbers, never a caller's tracking code or hash.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, redirect, render_template, request, url_for
from sqlalchemy import select

from accountability import actions, inbox
from accountability.actions import Actor
from clock import calendar as office_calendar
from common import links
from db.models import Complaint, Office
from dispatch.models import InspectionUnit
from web.app import CATALOG as UNITS_PAGE, UnitsPage
from web.staff import db as staff_db
from web.staff.auth import audit, current_user, login_required

bp = Blueprint("inbox", __name__, url_prefix="/inbox")
REFRESH_SECONDS = 60  # the list reloads itself (a meta refresh: the CSP allows no script of ours inline)
LINK_STATUS = {"tampered": 403, "expired": 410, "revoked": 403}
_CALENDAR = "favad_inbox_calendar"  # app.extensions: the office calendar, read once


@dataclass(frozen=True)
class Viewer:
    """Whose inbox this is, and who is looking: a unit by its link, or a unit's account."""

    unit: InspectionUnit
    token: str | None = None  # the link's, when opened by link
    person: Actor | None = None  # the account's holder, when logged in

    def url(self, endpoint: str, **kw) -> str:
        if self.token is not None:
            return url_for(f"inbox.link_{endpoint}", token=self.token, **kw)
        return url_for(f"inbox.{endpoint}", **kw)


def _calendar():
    from flask import current_app

    cal = current_app.extensions.get(_CALENDAR)
    if cal is None:
        cal = current_app.extensions[_CALENDAR] = office_calendar.load(staff_db.settings().office_calendar or None)
    return cal


# ---- the two ways in -------------------------------------------------------------------------
@bp.get("")
@login_required(roles=("unit",))
def index():
    with staff_db.session() as s:
        return _list(s, _account_viewer(s))


@bp.route("/complaint/<case>", methods=["GET", "POST"])
@login_required(roles=("unit",))
def complaint(case: str):
    with staff_db.session() as s:
        return _complaint(s, _account_viewer(s), case)


@bp.get("/<token>")
def link_index(token: str):
    with staff_db.session() as s:
        viewer = _link_viewer(s, token)
        return viewer if not isinstance(viewer, Viewer) else _list(s, viewer)


@bp.route("/<token>/<case>", methods=["GET", "POST"])
def link_complaint(token: str, case: str):
    with staff_db.session() as s:
        viewer = _link_viewer(s, token)
        return viewer if not isinstance(viewer, Viewer) else _complaint(s, viewer, case)


def _account_viewer(s) -> Viewer:
    user = current_user()
    unit = s.get(InspectionUnit, user.unit_id) if user.unit_id else None
    if unit is None:
        abort(403)
    return Viewer(unit, person=Actor.staff_web(user.name))


def _link_viewer(s, token: str):
    """The unit whose link this is, or the page that says why the link does not open."""
    try:
        return Viewer(inbox.open_link(s, links.keys(staff_db.settings()), token, staff_db.now()), token)
    except links.LinkError as e:
        return render_template("staff/inbox_refused.html", code=e.code), LINK_STATUS[e.code]


# ---- the pages -------------------------------------------------------------------------------
def _list(s, viewer: Viewer):
    now, cal = staff_db.now(), _calendar()
    unit = viewer.unit
    return render_template(
        "staff/inbox.html", unit=unit, viewer=viewer, now=now, refresh=REFRESH_SECONDS,
        waiting=inbox.waiting(s, unit.id, cal, now), running=inbox.clock_running(cal, now),
        resolved=inbox.resolved(s, unit.id, cal, now), months=inbox.RESOLVED_MONTHS,
        done=UNITS_PAGE["done"].get(request.args.get("done", "")))


def _complaint(s, viewer: Viewer, case: str):
    unit, now = viewer.unit, staff_db.now()
    c = inbox.find(s, unit.id, case)
    if c is None:
        abort(404)  # not this unit's, or no such case: the same answer
    error = None
    if request.method == "POST":  # the CSRF token and the origin were checked before the view
        if c.status != "resolved" and unit.id not in actions.responsible_units(s, c.id):
            abort(403)
        try:
            done = actions.from_form(s, c, unit, request.form, now, _calendar(), by=viewer.person)
            audit(f"inbox_{done}", session=s, complaint_id=c.id, case_number=c.case_number, unit_id=unit.id)
            s.commit()
        except actions.ActionError as e:
            s.rollback()
            error = UNITS_PAGE["form_error"].get(e.code, UNITS_PAGE["form_error"]["conflict"])
        else:
            if done == "reassign":  # no longer this unit's: back to the list, which says so
                return redirect(viewer.url("index", done=done), code=303)
            return redirect(viewer.url("complaint", case=c.case_number, done=done), code=303)
    html = render_template("staff/inbox_complaint.html", viewer=viewer, unit=unit, error=error,
                           done=UNITS_PAGE["done"].get(request.args.get("done", "")),
                           **_details(s, c, unit, now))
    return html, 409 if error else 200


def _details(s, c: Complaint, unit: InspectionUnit, now) -> dict:
    """The complaint as the units' page shows it: its facts, its history, what may be done."""
    cal = _calendar()
    office = s.get(Office, c.office_id) if c.office_id else None
    units = list(s.scalars(select(InspectionUnit).where(InspectionUnit.active).order_by(InspectionUnit.name_fa)))
    names = {f"unit {u.code}": u.name_fa for u in units} | {f"unit {unit.code}": unit.name_fa}
    events = inbox.history(s, c.id)
    resolved = next((e for e in reversed(events) if e.kind == "resolved"), None)
    return {
        "c": c, "office": office, "indicator_fa": c.indicator.name_fa, "agency_fa": c.agency.name_fa,
        "province_fa": c.province.name_fa, "minutes_left": inbox.minutes_left(cal, c.sla_due_at, now),
        "resolved_at": resolved.at if resolved else None,
        "history": [{"at": e.at, "label": UNITS_PAGE["event"].get(e.kind, e.kind),
                     "actor": UnitsPage._actor(e.actor, names),
                     "note": e.note if e.kind in ("resolved", "reassigned") else None} for e in events],
        "can_act": c.status != "resolved" and unit.id in actions.responsible_units(s, c.id),
        "can_ack": c.status in actions.OPEN,
        "outcomes": list(actions.OUTCOMES), "units": [(u.code, u.name_fa) for u in units if u.id != unit.id],
        "note_max": actions.NOTE_MAX, "reason_max": actions.REASON_MAX,
    }
