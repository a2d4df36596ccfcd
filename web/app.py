"""The units' page as a WSGI application (Werkzeug): GET shows a complaint to the unit its link
names, POST acknowledges, resolves or forwards it, then redirects back (so a reload never
posts twice). Every failure is a Persian page with a status code, never a traceback.

The token in the path is the unit's capability; it never goes to a log, a Referer header or a
cache. POSTs carry a CSRF field derived from the token and must come from the page itself.
"""
from __future__ import annotations

import datetime as dt
import logging
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import jinja2
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from accountability import actions
from clock import calendar as office_calendar, utcnow
from config import Settings
from db.engine import make_engine, make_sessionmaker
from db.models import Agency, Complaint, ComplaintEvent, Indicator, Office, Province
from dispatch.models import ComplaintRoute, InspectionUnit
from presentation import fa_digits, jalali
from common import links

HERE = Path(__file__).parent
CATALOG = tomllib.loads((HERE / "catalog.fa.toml").read_text(encoding="utf-8")) | tomllib.loads(
    (HERE.parent / "accountability" / "catalog.fa.toml").read_text(encoding="utf-8"))
log = logging.getLogger(__name__)
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
STATUS = {"reassigned": 200, "tampered": 403, "expired": 410, "not_found": 404, "not_yours": 403, "forbidden": 403,
          "missing": 404, "error": 500, "unavailable": 503}
RETRY_AFTER = "30"  # seconds: a failover takes about that long


def _origin(url: str) -> str:
    """scheme://host[:port] as a browser sends it in Origin: lower case, no default port."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ""
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def _unavailable(e: DBAPIError) -> bool:
    """The database cannot be reached, or the server reached is not the primary (any more)."""
    return isinstance(e, OperationalError) or e.connection_invalidated


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["fa"] = fa_digits
    env.filters["jalali"] = lambda v: jalali(v, persian_digits=True)
    return env


class UnitsPage:
    """The WSGI application; ``clock`` is for tests that need a link to expire."""

    def __init__(self, settings: Settings, engine=None, clock=utcnow):
        self.settings = settings
        self.engine = engine or make_engine(settings.db_url)
        self.Session = make_sessionmaker(self.engine)
        self.calendar = office_calendar.load(settings.office_calendar or None)
        self.clock = clock
        self.origin = _origin(links.base_url(settings))
        self.env = _env()
        self.urls = Map([Rule("/u/<token>", endpoint="complaint", methods=["GET", "POST"]),
                         Rule("/healthz", endpoint="health", methods=["GET"])])

    def __call__(self, environ, start_response):
        request = Request(environ)
        request.max_content_length = 64 * 1024
        request.max_form_memory_size = 16 * 1024
        try:
            endpoint, args = self.urls.bind_to_environ(environ).match()
            if endpoint == "health":
                response = Response("ok\n", content_type="text/plain; charset=utf-8")
            else:
                response = self.complaint(request, args["token"])
        except NotFound:
            response = self.message("missing")
        except HTTPException as e:  # a wrong method, a body too large
            response = self.message("forbidden", e.code or 400)
        except DBAPIError as e:
            # the database is away or switching to its standby: the pool has been emptied (db/engine.py)
            # and the next request connects afresh, to the new primary
            log.error("units' page failed: %s: %s", type(e).__name__, str(e).splitlines()[0][:200] if str(e) else "")
            response = self.message("unavailable" if _unavailable(e) else "error")
            if response.status_code == 503:
                response.headers["Retry-After"] = RETRY_AFTER
        except Exception as e:  # a bug: a calm page, the cause in the log
            log.error("units' page failed: %s: %s", type(e).__name__, str(e).splitlines()[0][:200] if str(e) else "")
            response = self.message("error")
        response.headers.update(HEADERS)
        return response(environ, start_response)

    # ---- pages --------------------------------------------------------------------------
    def message(self, code: str, status: int | None = None, **fill) -> Response:
        page = CATALOG["page"][code]
        html = self.env.get_template("message.html").render(
            title=CATALOG["title"], code=code, heading=page["heading"], text=page["text"].format(**fill),
            ok=STATUS[code] < 400)
        return Response(html, status=status or STATUS[code], content_type="text/html; charset=utf-8")

    def complaint(self, request: Request, token: str) -> Response:
        accepted = links.keys(self.settings)
        now = self.clock()
        try:
            link = links.verify(accepted, token, now)
        except links.LinkError as e:
            return self.message(e.code, when=jalali(e.expired_at, persian_digits=True) if e.expired_at else "")
        with self.Session() as s:
            c, unit = s.get(Complaint, link.complaint_id), s.get(InspectionUnit, link.unit_id)
            if c is None or unit is None:
                return self.message("not_found")
            if c.status != "resolved" and unit.id not in actions.responsible_units(s, c.id):
                if request.method == "GET" and request.args.get("done") == "reassign":
                    return self.message("reassigned")  # the unit's own forward, just done
                route = s.get(ComplaintRoute, c.id)
                holder = s.get(InspectionUnit, route.unit_id) if route and route.unit_id else None
                return self.message("not_yours", unit=holder.name_fa if holder else CATALOG["actor"]["other"])
            error = None
            if request.method == "POST":
                if not self._same_site(request) or not links.csrf_ok(accepted, token, request.form.get("csrf", "")):
                    return self.message("forbidden")
                try:
                    done = self._act(s, c, unit, request.form, now)
                    s.commit()
                    return redirect(f"{request.path}?done={done}", code=303)
                except actions.ActionError as e:
                    s.rollback()
                    error = CATALOG["form_error"].get(e.code, CATALOG["form_error"]["conflict"])
            flash = CATALOG["done"].get(request.args.get("done", ""))
            html = self.env.get_template("complaint.html").render(
                **self._context(s, c, unit), title=CATALOG["title"], flash=flash, error=error,
                csrf=links.csrf_token(accepted[0], token))
        return Response(html, status=409 if error else 200, content_type="text/html; charset=utf-8")

    def _same_site(self, request: Request) -> bool:
        """A form posted from the page itself: not from another site, framed or scripted. The
        page's origin is configuration (public_url): the request's Host is the sender's to choose."""
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return False
        origin = request.headers.get("Origin")
        if not origin or origin == "null":  # no-referrer pages post with Origin: null
            return True
        return _origin(origin) == self.origin

    def _act(self, s, c: Complaint, unit: InspectionUnit, form, now: dt.datetime) -> str:
        return actions.from_form(s, c, unit, form, now, self.calendar)

    def _context(self, s, c: Complaint, unit: InspectionUnit) -> dict:
        ind, ag, pr = s.get(Indicator, c.indicator_id), s.get(Agency, c.agency_id), s.get(Province, c.province_id)
        office = s.get(Office, c.office_id) if c.office_id else None
        events = list(s.scalars(select(ComplaintEvent).where(ComplaintEvent.complaint_id == c.id)
                                .order_by(ComplaintEvent.at, ComplaintEvent.id)))
        units = list(s.scalars(select(InspectionUnit).where(InspectionUnit.active).order_by(InspectionUnit.name_fa)))
        names = {f"unit {u.code}": u.name_fa for u in units} | {f"unit {unit.code}": unit.name_fa}
        resolved = next((e for e in reversed(events) if e.kind == "resolved"), None)
        sla = self.settings.sla_hours
        return {
            "c": {"case_number": c.case_number, "status": c.status, "status_fa": CATALOG["status"].get(c.status, c.status),
                  "indicator_fa": ind.name_fa, "agency_fa": ag.name_fa, "province_fa": pr.name_fa,
                  "office_fa": office.name_fa if office else None, "office_code": office.code if office else None,
                  "city_fa": office.city_fa if office else None, "filed_at": c.created_at,
                  "due_at": self.calendar.add(c.created_at, sla * 60),
                  "outcome_fa": CATALOG["outcome"].get(c.outcome) if c.outcome else None,
                  "resolved_at": resolved.at if resolved else None},
            "history": [{"at": e.at, "label": CATALOG["event"].get(e.kind, e.kind), "actor": self._actor(e.actor, names),
                         "note": e.note if e.kind in ("resolved", "reassigned") else None} for e in events],
            "unit_fa": unit.name_fa, "sla_hours": f"{sla:g}",
            "can_ack": c.status in actions.OPEN,
            "outcomes": [(o, CATALOG["outcome"][o]) for o in actions.OUTCOMES],
            "units": [(u.code, u.name_fa) for u in units if u.id != unit.id],
            "note_max": actions.NOTE_MAX, "reason_max": actions.REASON_MAX,
        }

    @staticmethod
    def _actor(label: str, names: dict[str, str]) -> str:
        label = label.split(",", 1)[0]  # "unit hq-101, staff zahra (os favad)": the unit, for its page
        if label in names:
            return names[label]
        kind = label.split(" ", 1)[0]
        return CATALOG["actor"].get(kind, CATALOG["actor"]["other"])
