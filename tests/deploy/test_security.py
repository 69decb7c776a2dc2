"""Security basics for a public host: token and login rate limits, secure session cookies, proxies,
remote mode."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from flask import Flask
from werkzeug.security import generate_password_hash

from app.config import Settings
from app.entry.web import create_app

TOKEN = "/api/v1/auth/token"
LOGIN = "/login"
TOO_MANY = "Too many sign-in attempts from your address; try again in"


def test_dep030_login_and_token_limits_are_flask_limiter_not_hand_made(make_app):
    """The hand-made limiter is gone: both limits are Flask-Limiter's, counted per client address."""
    import importlib.util

    from flask_limiter import Limiter

    assert importlib.util.find_spec("app.api.ratelimit") is None
    app = make_app(TOKEN_RATE_LIMIT="2")
    assert isinstance(app.extensions["gridfee_limiter"], Limiter)
    client = app.test_client()
    body = {"username": "viewer", "password": "viewer"}
    # /api/v1/auth/token and the SDK face's /api-token-auth/ share one count per client
    codes = [
        client.post(TOKEN, json=body).status_code,
        client.post("/api-token-auth/", json=body).status_code,
        client.post(TOKEN, json=body).status_code,
        client.post("/api-token-auth/", json=body).status_code,
    ]
    assert codes == [200, 200, 429, 429]
    other = client.post(TOKEN, json=body, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert other.status_code == 200  # another client address has its own count


def test_dep031_token_endpoint_answers_json_429(make_app):
    app = make_app(TOKEN_RATE_LIMIT="3")
    client = app.test_client()
    body = {"username": "operator", "password": "wrong"}
    assert [client.post(TOKEN, json=body).status_code for _ in range(3)] == [401, 401, 401]
    refused = client.post(TOKEN, json={"username": "operator", "password": "operator"})
    assert refused.status_code == 429
    assert refused.get_json()["error"] == "too_many_requests"
    assert "try again in" in refused.get_json()["message"]
    assert int(refused.headers["Retry-After"]) >= 1


def test_dep032_forwarded_for_counts_only_behind_a_trusted_proxy(make_app):
    spoofing = make_app(TOKEN_RATE_LIMIT="1").test_client()
    body = {"username": "viewer", "password": "viewer"}
    codes = [
        spoofing.post(TOKEN, json=body, headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
        for i in (1, 2)
    ]
    assert codes == [200, 429]  # a client cannot dodge the limit by inventing addresses
    routed = make_app(TOKEN_RATE_LIMIT="1", TRUSTED_PROXY_HOPS="1").test_client()
    codes = [
        routed.post(TOKEN, json=body, headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
        for i in (1, 2, 2)
    ]
    assert codes == [200, 200, 429]  # behind the PaaS router: per client address it saw


def test_dep033_session_cookie_secure_outside_demo_mode(make_app, tmp_path: Path):
    users = tmp_path / "users.yaml"
    users.write_text(
        yaml.safe_dump(
            {
                "users": [
                    {"username": "alice", "password_hash": generate_password_hash("pw"), "role": "viewer"}
                ]
            }
        ),
        encoding="utf-8",
    )
    public = make_app(DEMO="off", USERS_FILE=str(users))
    assert public.config["SESSION_COOKIE_SECURE"] is True
    cookie = public.test_client().get("/login").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie
    assert (
        public.test_client().post(TOKEN, json={"username": "operator", "password": "operator"}).status_code
        == 401
    )

    demo = make_app()
    assert demo.config["SESSION_COOKIE_SECURE"] is False
    assert "Secure" not in demo.test_client().get("/login").headers["Set-Cookie"]


def test_dep034_remote_exchange_console_without_exchange_store(tmp_path: Path):
    """``GRID_API_URL`` set: no exchange here; the console's client is the remote one's HTTP client."""
    remote = "http://127.0.0.1:9"  # nothing listens: the console must not need it to start
    settings = Settings.from_env(
        {
            "INSTANCE_DIR": str(tmp_path),
            "SECRET_KEY": "t",
            "GRID_API_URL": remote,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'console.sqlite3'}",
        }
    )
    app = create_app(settings)
    try:
        assert app.extensions["gridfee"].service is None
        assert app.extensions["console"].client.base_url == remote
        answer = app.test_client().get("/api/v1/clock")
        assert answer.status_code == 404
        assert answer.get_json()["error"] == "exchange_remote"
        assert remote in answer.get_json()["message"]
        assert app.test_client().get("/login").status_code == 200
    finally:
        app.extensions["console"].ops.engine.dispose()


def sign_in(client, username: str, password: str, ip: str = "127.0.0.1"):
    """POST the login form as a browser does: first GET it for the session's CSRF token."""
    page = client.get(LOGIN, environ_base={"REMOTE_ADDR": ip}).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {"csrf_token": token, "next": "/", "username": username, "password": password}
    return client.post(LOGIN, data=form, environ_base={"REMOTE_ADDR": ip})


def signed_in(client) -> bool:
    return client.get("/", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200


def test_dep035_login_form_rate_limit_answers_429_on_the_login_page(make_app):
    app = make_app(LOGIN_RATE_LIMIT="3")
    client = app.test_client()
    assert [sign_in(client, "operator", "wrong").status_code for _ in range(3)] == [401, 401, 401]
    refused = sign_in(client, "operator", "operator")  # the right password, but one try too many
    assert refused.status_code == 429
    assert refused.mimetype == "text/html"
    page = refused.get_data(as_text=True)
    assert TOO_MANY in page and 'id="login-error"' in page and 'name="csrf_token"' in page
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 60
    assert f"try again in {wait} s." in page  # the page and the header say the same
    assert not signed_in(client)  # refused before the password was looked at: no session
    # per client address: another one signs in, and the GET of the form is never limited
    other = app.test_client()
    assert sign_in(other, "operator", "operator", ip="198.51.100.9").status_code == 302
    assert signed_in(other)
    assert client.get(LOGIN).status_code == 200


def test_dep036_login_rate_limit_default_and_off(make_app):
    app = make_app()  # LOGIN_RATE_LIMIT unset: 10 a minute
    assert app.extensions["gridfee_settings"].login_rate_limit == 10
    client = app.test_client()
    codes = [sign_in(client, "viewer", "wrong").status_code for _ in range(11)]
    assert codes == [401] * 10 + [429]
    unlimited = make_app(LOGIN_RATE_LIMIT="0").test_client()
    assert {sign_in(unlimited, "viewer", "wrong").status_code for _ in range(15)} == {401}
    assert sign_in(unlimited, "viewer", "viewer").status_code == 302


def test_dep037_login_rate_limit_counts_only_behind_a_trusted_proxy(make_app):
    """Like the token endpoint: X-Forwarded-For names the client only behind the PaaS router."""

    def attempts(app: Flask, addresses: list[str]) -> list[int]:
        client = app.test_client()
        page = client.get(LOGIN).get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        form = {"csrf_token": token, "username": "viewer", "password": "wrong"}
        return [client.post(LOGIN, data=form, headers={"X-Forwarded-For": a}).status_code for a in addresses]

    assert attempts(make_app(LOGIN_RATE_LIMIT="1"), ["198.51.100.1", "198.51.100.2"]) == [401, 429]
    routed = make_app(LOGIN_RATE_LIMIT="1", TRUSTED_PROXY_HOPS="1")
    assert attempts(routed, ["198.51.100.1", "198.51.100.2", "198.51.100.2"]) == [401, 401, 429]
