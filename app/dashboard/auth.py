"""Console login: the same users and roles as the API, in a signed Flask session.

Every page and Dash request needs a logged-in user; the API keeps its bearer tokens. Form posts
(the login form) carry a CSRF token from the session, and Dash callback requests carry it in the
``X-CSRFToken`` header (Dash reads it from the ``_csrf_token`` cookie we set), so a forged
cross-site request cannot change a fee. A viewer's writes are refused on the server whatever the
browser sends (``require_operator``). Sign-in attempts are rate-limited per client address
(``LOGIN_RATE_LIMIT`` a minute, counted in the shared cache like the API's token endpoint): one
more is answered 429 with a ``Retry-After`` and the reason on the login page.
"""

from __future__ import annotations

import hmac
import math
import secrets
from html import escape
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify, redirect, request, session

from app.api.auth import AuthError, User
from app.api.ratelimit import RateLimit

bp = Blueprint("console_auth", __name__)
CSRF_COOKIE = "_csrf_token"
CSRF_HEADER = "X-CSRFToken"
OPEN_PREFIXES = (
    "/login",
    "/logout",
    "/api/",
    # the Grid Singularity SDK face (app.api.gsy_compat): token auth of its own, no session
    "/api-token-auth",
    "/external-connection/",
    "/external-ws/",
    "/graphql",
    "/assets/",
    "/_dash-component-suites/",
    "/_favicon.ico",
    "/healthz",
)

PAGE = Template((Path(__file__).with_name("login.html")).read_text(encoding="utf-8"))


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _safe_next(target: str | None) -> str:
    parts = urlsplit(target or "/")
    return target if target and not parts.netloc and not parts.scheme and target.startswith("/") else "/"


def login_page(error: str = "", status: int = 200):
    ctx = current_app.extensions["gridfee"]
    demo = current_app.extensions["gridfee_settings"].demo and "operator" in ctx.users.users
    html = PAGE.substitute(
        csrf=csrf_token(),
        next=escape(_safe_next(request.values.get("next"))),
        error=f'<div class="err" id="login-error">{escape(error)}</div>' if error else "",
        demo='<div class="demo">Demo: operator / operator, viewer / viewer</div>' if demo else "",
    )
    return html, status, {"Content-Type": "text/html; charset=utf-8"}


@bp.get("/login")
def login_form():
    return login_page()


@bp.post("/login")
def login_submit():
    limit: RateLimit | None = current_app.extensions.get("console_login_limit")
    wait = limit.hit(request.remote_addr or "unknown") if limit is not None else None
    if wait is not None:  # counted before the password is checked: guessing costs the same
        seconds = math.ceil(wait)
        html, status, headers = login_page(
            f"Too many sign-in attempts from your address; try again in {seconds} s.", 429
        )
        return html, status, {**headers, "Retry-After": str(seconds)}
    if not hmac.compare_digest(request.form.get("csrf_token", ""), session.get("csrf", "")):
        return login_page("The form expired; please sign in again.", 400)
    try:
        user = current_app.extensions["gridfee"].users.check_password(
            request.form.get("username", ""), request.form.get("password", "")
        )
    except AuthError:
        return login_page("Unknown user or wrong password.", 401)
    session.clear()
    session["user"], session["role"] = user.username, user.role
    session["csrf"] = secrets.token_urlsafe(32)
    return redirect(_safe_next(request.form.get("next")))


@bp.get("/logout")
def logout():
    session.clear()
    return redirect("/login")


def current_console_user() -> User | None:
    name = session.get("user")
    if not name:
        return None
    return current_app.extensions["gridfee"].users.users.get(name)


class NotAllowed(Exception):
    pass


def require_operator() -> User:
    """The logged-in grid operator; raises ``NotAllowed`` for a viewer or nobody."""
    user = current_console_user()
    if user is None or user.role != "grid_operator":
        raise NotAllowed("only a grid operator may change fees")
    return user


def install(server, cache, login_rate_limit: int) -> None:  # noqa: ANN001
    """Register the login routes, their rate limit (in ``cache``, per client and minute) and the
    guard in front of every page and Dash request."""
    server.register_blueprint(bp)
    server.extensions["console_login_limit"] = RateLimit(cache, "login", login_rate_limit, 60.0)
    server.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")

    @server.before_request
    def _guard():
        path = request.path
        if path.startswith(OPEN_PREFIXES):
            return None
        if current_console_user() is None:
            if path.startswith("/_dash-"):
                return jsonify(error="not_logged_in", message="sign in again"), 401
            return redirect(f"/login?next={path}")
        if request.method == "POST" and path.startswith("/_dash-update-component"):
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent, session.get("csrf", "")):
                return jsonify(error="csrf", message="missing or wrong CSRF token; reload the page"), 403
        return None

    @server.after_request
    def _csrf_cookie(response):  # noqa: ANN001
        if session.get("user") and session.get("csrf"):
            response.set_cookie(
                CSRF_COOKIE,
                session["csrf"],
                samesite="Lax",
                httponly=False,
                secure=server.config.get("SESSION_COOKIE_SECURE", False),
            )
        return response
