"""Console login: the users and roles of the store, signed in with Flask-Login.

Every page and Dash request needs a signed-in user; the API keeps its bearer tokens. The login
form carries a CSRF token (Flask-WTF), and Dash callback requests carry it in the ``X-CSRFToken``
header (Dash reads it from the ``_csrf_token`` cookie we set), so a forged cross-site request
cannot sign anyone in or change a fee (``app.security``). A viewer's writes are refused on the
server whatever the browser sends (``require_operator``). Sign-in attempts are rate-limited per
client address (``LOGIN_RATE_LIMIT`` a minute, Flask-Limiter): one more is answered 429 with a
``Retry-After`` and the reason on the login page.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from string import Template
from urllib.parse import quote, urlsplit

from flask import Blueprint, Flask, Response, current_app, jsonify, redirect, request, session
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user
from flask_wtf.csrf import generate_csrf

from app.api.auth import AuthError, User
from app.security import LOGIN_PAGE, csrf, limit_endpoint, login_manager, wants_json

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
# POSTs of the console that must carry the session's CSRF token
CSRF_PREFIXES = ("/login", "/_dash-", "/admin", "/logout")

PAGE = Template((Path(__file__).with_name("login.html")).read_text(encoding="utf-8"))


def csrf_token() -> str:
    return generate_csrf()


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.netloc or parts.scheme or any(c in target for c in "\r\n"):
        return "/"
    return target


def login_page(error: str = "", status: int = 200) -> ResponseReturnValue:
    settings = current_app.extensions["gridfee_settings"]
    demo = settings.demo and current_app.extensions["gridfee"].users.get("operator") is not None
    html = PAGE.substitute(
        csrf=csrf_token(),
        next=escape(_safe_next(request.values.get("next"))),
        error=f'<div class="err" id="login-error">{escape(error)}</div>' if error else "",
        demo='<div class="demo">Demo: operator / operator, viewer / viewer</div>' if demo else "",
    )
    return html, status, {"Content-Type": "text/html; charset=utf-8"}


@bp.get("/login")
def login_form() -> ResponseReturnValue:
    return login_page()


@bp.post("/login")
def login_submit() -> ResponseReturnValue:
    # the CSRF token was checked before (the guard), the rate limit too (app.security)
    try:
        user = current_app.extensions["gridfee"].users.check_password(
            request.form.get("username", ""), request.form.get("password", "")
        )
    except AuthError:
        return login_page("Unknown user or wrong password.", 401)
    session.clear()  # a fresh session (and CSRF token) for the signed-in user
    login_user(user)
    return redirect(_safe_next(request.form.get("next")))


@bp.get("/logout")
def logout() -> ResponseReturnValue:
    logout_user()
    session.clear()
    return redirect("/login")


def current_console_user() -> User | None:
    user = current_user._get_current_object() if current_user else None
    return user if isinstance(user, User) else None


class NotAllowed(Exception):
    pass


def require_operator() -> User:
    """The signed-in grid operator; raises ``NotAllowed`` for a viewer or nobody."""
    user = current_console_user()
    if user is None or user.role != "grid_operator":
        raise NotAllowed("only a grid operator may change fees")
    return user


def require_admin() -> User:
    """The signed-in grid operator with the admin right; ``NotAllowed`` for anyone else."""
    user = current_console_user()
    if user is None or user.role != "grid_operator" or not user.admin:
        raise NotAllowed("only a grid operator with the admin right may manage users")
    return user


def install(server: Flask, login_rate_limit: int) -> None:
    """Register the login routes, their rate limit (per client and minute) and the guard in
    front of every page and Dash request."""
    server.extensions[LOGIN_PAGE] = login_page  # what the refusals of /login answer with
    server.register_blueprint(bp)
    limit_endpoint(server, "console_auth.login_submit", login_rate_limit, "login")

    @login_manager.unauthorized_handler
    def _unauthorized() -> ResponseReturnValue:
        if wants_json():
            return jsonify(error="not_logged_in", message="sign in again"), 401
        return redirect(
            f"/login?next={quote(request.full_path.rstrip('?') if request.query_string else request.path)}"
        )

    @server.before_request
    def _guard() -> ResponseReturnValue | None:
        path = request.path
        check_csrf = request.method == "POST" and path.startswith(CSRF_PREFIXES)
        if path.startswith(OPEN_PREFIXES):
            if check_csrf:
                csrf.protect()  # CSRFError: 400 on the login page (app.security)
            return None
        if current_console_user() is None:  # signed out first: Dash's requests then say "sign in"
            return login_manager.unauthorized()
        if check_csrf:
            csrf.protect()  # CSRFError: 403 JSON for Dash, 400 for the admin page (app.security)
        return None

    @server.after_request
    def _csrf_cookie(response: Response) -> Response:
        if "_user_id" in session and current_console_user() is not None:
            response.set_cookie(
                CSRF_COOKIE,
                generate_csrf(),
                samesite="Lax",
                httponly=False,
                secure=server.config.get("SESSION_COOKIE_SECURE", False),
            )
        return response
