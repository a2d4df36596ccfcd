"""What every response and every form of the staff pages share: security headers, and the CSRF
check (a token bound to a cookie the browser holds, an Origin from this site).

The token is an HMAC of the session id (or, before login, of a random pre-session cookie):
both cookies are HttpOnly and SameSite=Strict, so another site can neither read one nor make
the browser send it, and the server keeps no token of its own to lose.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import g, request
from werkzeug.exceptions import Forbidden

from common import links
from web.app import _origin

# as the units' page (web/app.py), but styles and scripts only from files of this site: no
# inline script or style can run, even one that slipped into a page
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "font-src 'self'; connect-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
SESSION_COOKIE = "favad_staff"  # the server-side session's id
PRE_COOKIE = "favad_staff_pre"  # before login: what the login form's token is bound to
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


class CsrfRefused(Forbidden):
    """A form without its token, with a wrong one, or posted from another site."""
    code_name = "csrf"


def _mac(key: str) -> str:
    return hmac.new(key.encode(), b"favad staff csrf v1", hashlib.sha256).hexdigest()


def csrf_token() -> str:
    """The token for this browser's forms (a Jinja global: ``{{ csrf_token() }}``)."""
    key = g.get("staff_sid") or request.cookies.get(PRE_COOKIE) or g.get("staff_new_pre")
    if key is None:  # the first page this browser asks for: a pre-session cookie goes with it
        key = g.staff_new_pre = secrets.token_urlsafe(32)
    return _mac(key)


def check_csrf(settings) -> None:
    """Refuse an unsafe request that is not a form of this site's (before_request)."""
    if request.method not in UNSAFE:
        return
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        raise CsrfRefused()
    origin = request.headers.get("Origin")
    if origin and origin != "null" and _origin(origin) != _origin(links.base_url(settings)):
        raise CsrfRefused()  # no-referrer pages post with Origin: null; the Host is the sender's to choose
    sent = request.form.get("csrf") or request.headers.get("X-CSRF-Token") or ""
    # the cookies the browser presents: a form rendered while a session was live still checks
    # after it expired, so the user is sent to log in rather than shown a refusal
    keys = [k for k in (request.cookies.get(SESSION_COOKIE), request.cookies.get(PRE_COOKIE)) if k]
    if not sent or not any(hmac.compare_digest(_mac(k), sent) for k in keys):
        raise CsrfRefused()


def set_cookies(response, settings) -> None:
    """The pre-session cookie when one was made for this response (after_request)."""
    new = g.get("staff_new_pre")
    if new and not request.cookies.get(PRE_COOKIE):
        set_cookie(response, PRE_COOKIE, new, settings)


def set_cookie(response, name: str, value: str, settings, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path=request.script_root or "/", httponly=True,
                        samesite="Strict", secure=links.base_url(settings).startswith("https:"))


def delete_cookie(response, name: str, settings) -> None:
    response.delete_cookie(name, path=request.script_root or "/", httponly=True, samesite="Strict",
                           secure=links.base_url(settings).startswith("https:"))
