"""The staff web interface (Flask), mounted at /staff beside the units' page: accounts with a
second factor, each role narrowed to its scope, every action audited.

``create_app`` builds it; each part of the interface is a blueprint registered below (one
line each) and, when it has a page of its own in the nav, an entry in NAV.
"""
from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import jinja2
from flask import Flask, g, render_template, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from accountability.accounts import Policy
from clock import utcnow
from config import Settings
from db.engine import make_engine, make_sessionmaker
from presentation import fa_digits, jalali
from web.staff import db as staff_db
from web.staff.auth import OVERSEERS, current_user, load_user
from web.staff.security import HEADERS, SESSION_COOKIE, CsrfRefused, check_csrf, csrf_token, delete_cookie, set_cookies

HERE = Path(__file__).parent
log = logging.getLogger(__name__)

# (endpoint, label key under [nav] in the catalog, roles that see it), in the nav's order; an
# entry whose blueprint is not registered is left out. "/staff/" opens the first one.
NAV = (
    ("inbox.index", "inbox", ("unit",)),
    ("dashboard.index", "dashboard", OVERSEERS),
    ("complaints.index", "complaints", OVERSEERS),
    ("audit.index", "audit", ("national",)),
)
# an HTTP status -> the page shown (its heading and text under [page.<code>] in the catalog)
PAGES = {400: "bad_request", 401: "forbidden", 403: "forbidden", 404: "missing", 405: "missing",
         413: "too_large", 500: "error"}
RETRY_AFTER = "30"  # seconds, when the database cannot be reached: a failover takes about that long


def catalog() -> dict:
    """The Persian labels: catalog.fa.toml, any catalog.<part>.fa.toml beside it (a part's own
    labels, so parts do not edit one file), and the statuses and outcomes of accountability."""
    merged: dict = {}
    files = [HERE / "catalog.fa.toml", *sorted(HERE.glob("catalog.*.fa.toml")),
             HERE.parent.parent / "accountability" / "catalog.fa.toml"]
    for path in files:
        for key, value in tomllib.loads(path.read_text(encoding="utf-8")).items():
            if key in merged:
                raise ValueError(f"{path.name}: {key!r} is defined twice in the staff catalogs")
            merged[key] = value
    return merged


def create_app(settings: Settings, engine=None, *, clock=utcnow, policy: Policy | None = None) -> Flask:
    """The staff app; ``clock`` and ``policy`` (timeouts, lockout) are for tests."""
    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024, MAX_FORM_MEMORY_SIZE=16 * 1024, TRAP_HTTP_EXCEPTIONS=False)
    engine = engine or make_engine(settings.db_url)
    app.extensions[staff_db.KEY] = staff_db.State(settings, engine, make_sessionmaker(engine), clock,
                                                  policy or Policy())
    _templates(app)

    from web.staff import account, audit
    app.register_blueprint(account.bp)
    app.register_blueprint(audit.bp)
    from web.staff import complaints, dashboard
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(complaints.bp)
    from web.staff import inbox
    app.register_blueprint(inbox.bp)

    @app.before_request
    def _before():
        load_user()
        check_csrf(settings)

    @app.after_request
    def _after(response):
        set_cookies(response, settings)
        if g.get("staff_stale"):
            delete_cookie(response, SESSION_COOKIE, settings)
        response.headers.update(HEADERS)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        code = getattr(e, "code_name", None) or PAGES.get(e.code or 500, "bad_request")
        return message(code, e.code or 500)

    @app.errorhandler(Exception)
    def _error(e: Exception):  # the database is away, a bug: a calm page, the cause in the log
        log.error("staff page failed: %s: %s", type(e).__name__, str(e).splitlines()[0][:200] if str(e) else "")
        if isinstance(e, OperationalError):  # unreachable, or failing over: worth a retry soon
            page, status = message("unavailable", 503)
            return page, status, {"Retry-After": RETRY_AFTER}
        return message("error", 500)

    return app


def message(code: str, status: int):
    """A Persian page saying why a request was not done."""
    return render_template("staff/message.html", code=code), status


def _templates(app: Flask) -> None:
    from web.staff.account import nav_items

    app.jinja_env.undefined = jinja2.StrictUndefined
    app.jinja_env.filters["fa"] = fa_digits
    app.jinja_env.filters["jalali"] = lambda v: jalali(v, persian_digits=True)
    app.jinja_env.globals.update(t=catalog(), csrf_token=csrf_token)

    @app.context_processor
    def _context():
        return {"user": current_user(), "nav": nav_items(), "here": request.endpoint}


__all__ = ["create_app", "NAV", "HEADERS", "CsrfRefused", "catalog", "message"]
