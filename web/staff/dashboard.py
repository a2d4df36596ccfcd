"""The supervisors' dashboard: live figures for the user's scope (``reports.live``), each a link
to the complaints behind it; its pictures served from here as SVG (same origin, never a public
URL); and the archive of monthly reports and report cards.

The archive: the monthly report is national (every province and agency in one file), so only a
national scope downloads it; a report card is one agency's, nationwide, so an agency scope
downloads its own agency's cards and a national one every card; a province scope has no file it
may see whole (there is no per-province report), and is told so.
"""
from __future__ import annotations

import datetime as dt
import re
import threading
from pathlib import Path

import jdatetime
from flask import Blueprint, Response, abort, render_template, send_file
from sqlalchemy import select

from accountability.scope import Scope
from clock.calendar import load as load_calendar
from db.models import Agency, Province
from dispatch.models import Document
from presentation import fa_digits, jalali
from reports import live, mail
from reports.monthly import Params
from web.staff import db as staff_db
from web.staff.auth import OVERSEERS, current_user, login_required

bp = Blueprint("dashboard", __name__)
CHARTS = ("provinces", "hotspots", "trend")
OFFICE_ROWS = 50  # the busiest offices in the table; the list has every one
MONTH = re.compile(r"\d{4}-\d{2}")
CODE = re.compile(r"[A-Za-z0-9_-]{1,12}")
MONTHLY_FILES = ("monthly.pdf", "monthly.html", "monthly.csv", "heatmap-provinces.png",
                 "heatmap-agency-indicator.png")
_CACHE: dict = {}  # (scope, chart, minute) -> SVG bytes: a dashboard asks for its three at once
_CACHE_LOCK = threading.Lock()


def _params() -> Params:
    settings = staff_db.settings()
    return Params(load_calendar(settings.office_calendar or None), settings.sla_hours, settings.ack_target_hours)


def _scope_name(s, scope: Scope) -> tuple[str, str]:
    """(kind, name) of the scope for the heading."""
    if scope.province_id is not None:
        return "province", s.scalar(select(Province.name_fa).where(Province.id == scope.province_id)) or ""
    if scope.agency_id is not None:
        return "agency", s.scalar(select(Agency.name_fa).where(Agency.id == scope.agency_id)) or ""
    return "national", ""


@bp.app_template_filter("jalali_date")
def jalali_date(day: dt.date) -> str:
    """A Gregorian date as its Jalali day, Persian digits."""
    return fa_digits(jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d"))


@bp.app_template_filter("num")
def num(value, digits: int = 0) -> str:
    """As the reports write numbers: Persian digits, separators and decimal sign."""
    from reports.render import num as render_num

    return render_num(value, digits)


@bp.get("/dashboard")
@login_required(roles=OVERSEERS)
def index():
    user, now = current_user(), staff_db.now()
    with staff_db.session() as s:
        f = live.figures(s, user.scope, now, _params())
        kind, name = _scope_name(s, user.scope)
    month_from = jalali(f.month.start, fmt="%Y/%m/%d")
    today = jalali(live.today_start(now), fmt="%Y/%m/%d")
    stamp = int(now.timestamp() // 60)
    return render_template("staff/dashboard.html", f=f, scope_kind=kind, scope_name=name,
                           month_from=month_from, today=today, stamp=stamp, week_span=dt.timedelta(days=6),
                           office_rows=OFFICE_ROWS,
                           calls_counted=not (user.scope.agency_id or user.scope.unit_id))


@bp.get("/dashboard/<name>.svg")
@login_required(roles=OVERSEERS)
def chart(name: str):
    if name not in CHARTS:
        abort(404)
    user, now = current_user(), staff_db.now()
    key = (user.scope, name, int(now.timestamp() // 60))
    with _CACHE_LOCK:
        svg = _CACHE.get(key)
    if svg is None:
        svg = _draw(name, user.scope, now)
        with _CACHE_LOCK:
            if len(_CACHE) > 64:
                _CACHE.clear()
            _CACHE[key] = svg
    return Response(svg, mimetype="image/svg+xml")


def _draw(name: str, scope: Scope, now) -> bytes:
    from flask import current_app

    from reports import livecharts

    t = current_app.jinja_env.globals["t"]["dash"]
    with staff_db.session() as s:
        f = live.figures(s, scope, now, _params())
        if name == "provinces":
            return livecharts.province_map(f, live.live_provinces(s, scope), t["map_note"])
    if name == "hotspots":
        return livecharts.hotspots(f, t["hotspots"], t["hotspots_empty"])
    return livecharts.trend(f, t["trend"], t["filed"], t["resolved"])


# ---- the archive ------------------------------------------------------------------------------
def _reports_dir() -> Path:
    settings = staff_db.settings()
    return Path(settings.reports_dir or Path(settings.data_dir, "reports"))


def _agency_code(s, scope: Scope) -> str | None:
    if scope.agency_id is None:
        return None
    return s.scalar(select(Agency.code).where(Agency.id == scope.agency_id))


def _may_see(scope: Scope, own_agency: str | None, card_agency: str | None) -> bool:
    """The monthly report (``card_agency`` None) to a national scope; a card to national or its agency."""
    if scope.province_id is not None or scope.unit_id is not None:
        return False
    if scope.is_national:
        return True
    return card_agency is not None and card_agency == own_agency


def _archive(s, scope: Scope) -> list[dict]:
    """Per month, newest first: the monthly files, the cards on disk and the cards sent, as allowed."""
    own = _agency_code(s, scope)
    root = _reports_dir()
    months: dict[str, dict] = {}

    def entry(month: str) -> dict:
        return months.setdefault(month, {"month": month, "monthly": [], "cards": {}, "sent": []})

    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and MONTH.fullmatch(p.name)):
            if _may_see(scope, own, None):
                files = [n for n in MONTHLY_FILES if (folder / n).is_file()]
                if files:
                    entry(folder.name)["monthly"] = files
            for card in sorted((folder / "cards").glob("*.*")) if (folder / "cards").is_dir() else []:
                code, ext = card.stem, card.suffix[1:]
                if CODE.fullmatch(code) and ext in ("pdf", "html") and _may_see(scope, own, code):
                    entry(folder.name)["cards"].setdefault(code, []).append(ext)
    for key in s.scalars(select(Document.key).where(Document.kind == mail.KIND)):
        _, month, code = key.split(".", 2)
        if MONTH.fullmatch(month) and _may_see(scope, own, code):
            entry(month)["sent"].append(code)
    return [months[m] for m in sorted(months, reverse=True)]


@bp.get("/archive")
@login_required(roles=OVERSEERS)
def archive():
    user = current_user()
    with staff_db.session() as s:
        months = _archive(s, user.scope)
    return render_template("staff/archive.html", months=months,
                           province_scope=user.scope.province_id is not None)


@bp.get("/archive/<month>/<name>")
@login_required(roles=OVERSEERS)
def monthly_file(month: str, name: str):
    if not MONTH.fullmatch(month) or name not in MONTHLY_FILES or not _may_see(current_user().scope, None, None):
        abort(404)
    return _file(_reports_dir() / month / name, f"128-{month}-{name}")


@bp.get("/archive/<month>/cards/<code>.<ext>")
@login_required(roles=OVERSEERS)
def card_file(month: str, code: str, ext: str):
    scope = current_user().scope
    with staff_db.session() as s:
        own = _agency_code(s, scope)
    if not (MONTH.fullmatch(month) and CODE.fullmatch(code) and ext in ("pdf", "html")) \
            or not _may_see(scope, own, code):
        abort(404)
    return _file(_reports_dir() / month / "cards" / f"{code}.{ext}", f"128-card-{code}-{month}.{ext}")


@bp.get("/archive/<month>/sent/<code>.pdf")
@login_required(roles=OVERSEERS)
def sent_card(month: str, code: str):
    scope = current_user().scope
    with staff_db.session() as s:
        own = _agency_code(s, scope)
        if not (MONTH.fullmatch(month) and CODE.fullmatch(code)) or not _may_see(scope, own, code):
            abort(404)
        doc = s.scalar(select(Document).where(Document.key == mail.key(month, code)))
        if doc is None:
            abort(404)
        return Response(doc.pdf, mimetype="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{doc.filename}"'})


def _file(path: Path, download_name: str):
    if not path.is_file():
        abort(404)
    return send_file(path, as_attachment=True, download_name=download_name, max_age=0)
