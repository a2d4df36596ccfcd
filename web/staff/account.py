"""Logging in (name, password, TOTP code), logging out, and the landing page."""
from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for

from accountability import accounts
from web.staff import db as staff_db
from web.staff.auth import audit, current_user, login_required
from web.staff.security import PRE_COOKIE, SESSION_COOKIE, delete_cookie, set_cookie

bp = Blueprint("account", __name__)
FIELD_MAX = 256  # a name, a password or a code longer than this is not one


@bp.get("/login")
def login():
    if current_user() is not None:
        return redirect(url_for("account.home"), code=303)
    notice = "expired" if request.args.get("expired") else "logged_out" if request.args.get("out") else None
    return render_template("staff/login.html", error=None, notice=notice, name="",
                           next=request.args.get("next", ""))


@bp.post("/login")
def login_post():
    form = request.form
    name, password, code = (form.get(k, "")[:FIELD_MAX] for k in ("name", "password", "code"))
    st = staff_db.state()
    now = st.clock()
    with st.Session() as s:
        a = accounts.authenticate(s, name.strip(), password, code, now, st.policy)
        sid = accounts.open_session(s, a, now, st.policy) if a is not None else None
        s.commit()
    if a is None:  # one answer for every failure: it tells no one which names exist
        return render_template("staff/login.html", error="failed", notice=None, name=name,
                               next=form.get("next", "")), 401
    response = redirect(_safe_next(form.get("next", "")), code=303)
    set_cookie(response, SESSION_COOKIE, sid, st.settings)
    delete_cookie(response, PRE_COOKIE, st.settings)
    return response


def _safe_next(target: str) -> str:
    """Where to go after login: a path of these pages only, never another site."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target and "://" not in target:
        return request.script_root + target
    return url_for("account.home")


@bp.post("/logout")
@login_required()
def logout():
    st = staff_db.state()
    with st.Session() as s:
        accounts.close_session(s, g.staff_sid, st.clock())
        s.commit()
    audit("logout")
    response = redirect(url_for("account.login", out=1), code=303)
    delete_cookie(response, SESSION_COOKIE, st.settings)
    return response


@bp.get("/")
@login_required()
def home():
    """The first page of the nav the user may see; a plain landing page while there is none."""
    items = nav_items()
    if items:
        return redirect(items[0]["url"], code=303)
    return render_template("staff/home.html")


def nav_items() -> list[dict]:
    """The nav for the current user: the NAV entries whose page exists and whose roles include theirs."""
    from web.staff import NAV

    user = current_user()
    if user is None:
        return []
    have = current_app.view_functions
    return [{"endpoint": e, "label": key, "url": url_for(e)} for e, key, roles in NAV
            if e in have and user.role in roles]
