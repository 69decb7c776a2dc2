"""Issue 17's findings sent as an attacker sends them: each is refused with its status and a clear
(JSON where the client expects JSON) error, and nothing changes.

The Flask test client speaks to the whole server (API, SDK face, login, Dash, admin page) of an
app on a fresh small exchange (``make_app``, tests/deploy/conftest.py). The gunicorn test of one
token on every worker is in test_shared_secret.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_procs import process_env
from flask import Flask

from app.api.auth import UserBook
from app.config import ROOT
from app.whatif.quota import RunLedger

TOKEN = "/api/v1/auth/token"
BATCH = "/api/v1/batch-commands"


def login_form_token(client) -> str:
    page = client.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def sign_in(client, username: str, password: str, **extra: str):
    """The login form as a browser posts it: GET it for the CSRF token, then POST."""
    form = {"csrf_token": login_form_token(client), "next": "/", "username": username, "password": password}
    return client.post("/login", data={**form, **extra})


def signed_in(client) -> bool:
    return client.get("/").status_code == 200


def token_of(app: Flask, username: str, password: str) -> dict:
    answer = app.test_client().post(TOKEN, json={"username": username, "password": password})
    assert answer.status_code == 200, answer.get_json()
    return {"Authorization": f"Bearer {answer.get_json()['access_token']}"}


def alice_with_a_session_and_a_token(app: Flask) -> tuple[UserBook, object, dict]:
    """Add the user alice (grid operator) to ``app``'s user book, sign a browser in as her and get
    an API token of hers: (the user book, the browser, the token's headers)."""
    book: UserBook = app.extensions["gridfee"].users
    book.add("alice", "alice-password", "grid_operator")
    client = app.test_client()
    assert sign_in(client, "alice", "alice-password").status_code == 302 and signed_in(client)
    return book, client, token_of(app, "alice", "alice-password")


def store_of(app: Flask):
    return app.extensions["gridfee"].service.store


def next_fees(app: Flask) -> list[float]:
    store = store_of(app)
    return store.fees_for_slot(store.clock_state().running_slot + 1).tolist()


def community(app: Flask) -> str:
    return next(m.uuid for m in store_of(app).grid.markets if m.level == 1)


def assert_json_error(answer, status: int, code: str, *words: str) -> dict:
    assert answer.status_code == status, answer.get_data(as_text=True)[:300]
    assert answer.is_json, answer.get_data(as_text=True)[:300]
    body = answer.get_json()
    assert body["error"] == code, body
    for word in words:
        assert word in body["message"], body
    return body


# -- 1. login CSRF -------------------------------------------------------------------------------
def test_sec001_login_post_without_session_or_token_is_refused(make_app):
    """The finding: ``curl -X POST -d 'username=viewer&password=viewer' /login`` signed in."""
    client = make_app().test_client()
    answer = client.post("/login", data={"username": "viewer", "password": "viewer"})
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert "The form expired; please sign in again." in page and 'id="login-error"' in page
    assert not signed_in(client)
    # an empty token against an empty session token: refused the same way
    answer = client.post("/login", data={"username": "viewer", "password": "viewer", "csrf_token": ""})
    assert answer.status_code == 400 and not signed_in(client)


def test_sec002_a_token_of_another_session_does_not_sign_in(make_app):
    app = make_app()
    theirs = login_form_token(app.test_client())
    mine = app.test_client()
    login_form_token(mine)  # a session of its own
    answer = mine.post("/login", data={"csrf_token": theirs, "username": "viewer", "password": "viewer"})
    assert answer.status_code == 400 and not signed_in(mine)


def test_sec003_wrong_password_and_unknown_user_say_the_same(make_app):
    client = make_app().test_client()
    for user, password in (("operator", "wrong"), ("nobody", "operator"), ("operator", "")):
        answer = sign_in(client, user, password)
        assert answer.status_code == 401
        assert "Unknown user or wrong password." in answer.get_data(as_text=True)
        assert not signed_in(client)
    assert sign_in(client, "operator", "operator").status_code == 302 and signed_in(client)


# -- header injection, open redirect --------------------------------------------------------------
@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"]
)
def test_sec004_login_never_redirects_off_site(make_app, target: str):
    client = make_app().test_client()
    answer = sign_in(client, "viewer", "viewer", next=target)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/"


def test_sec005_crlf_in_next_or_username_injects_no_header(make_app):
    client = make_app().test_client()
    answer = sign_in(client, "viewer", "viewer", next="/\r\nSet-Cookie: injected=1")
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    assert "injected" not in str(answer.headers)
    other = make_app().test_client()
    answer = sign_in(other, "viewer\r\nX-Injected: 1", "viewer")
    assert answer.status_code == 401 and "X-Injected" not in answer.headers
    assert not signed_in(other)
    refused = other.post(TOKEN, json={"username": "viewer\r\nX-Injected: 1", "password": "viewer"})
    assert_json_error(refused, 401, "bad_credentials")
    assert "X-Injected" not in refused.headers


# -- Dash: CSRF, unknown callbacks, malformed bodies ----------------------------------------------
def dash_post(client, body: object, csrf: bool = True, raw: bytes | None = None):
    headers = {"Content-Type": "application/json"}
    if csrf:
        headers["X-CSRFToken"] = client.get_cookie("_csrf_token").value
    data = raw if raw is not None else json.dumps(body)
    return client.post("/_dash-update-component", data=data, headers=headers)


def test_sec006_dash_callbacks_without_csrf_or_unknown_or_malformed_are_4xx_json(make_app):
    app = make_app()
    client = app.test_client()
    assert sign_in(client, "operator", "operator").status_code == 302
    known = next(iter(app.extensions["dash_app"].callback_map))
    body = {"output": known, "outputs": [], "inputs": [], "changedPropIds": []}
    assert_json_error(dash_post(client, body, csrf=False), 403, "csrf", "CSRF")
    unknown = {"output": "no-such-component.children", "outputs": {}, "inputs": [], "changedPropIds": []}
    assert_json_error(dash_post(client, unknown), 404, "unknown_callback", "no-such-component")
    assert_json_error(dash_post(client, None, raw=b"{not json"), 400, "bad_request")
    assert_json_error(dash_post(client, ["a", "list"]), 400, "bad_request")
    assert_json_error(dash_post(client, {"output": known, "inputs": "x"}), 400, "bad_request")
    # nobody signed in: 401 JSON, not the login page
    anonymous = app.test_client()
    assert_json_error(anonymous.post("/_dash-update-component", json=unknown), 401, "not_logged_in")
    assert app.extensions["console"].ops.commands() == []


# -- What-if runs --------------------------------------------------------------------------------
def run_start_body(app: Flask, run_id: str) -> dict:
    """The first request of the What-if run's background job, as Dash's renderer sends it."""
    output = next(k for k in app.extensions["dash_app"].callback_map if "whatif-results.children" in k)
    spec = {
        "run_id": run_id,
        "scenario": "live",
        "days": 7,
        "markets": [],
        "limit_share": 0.7,
        "candidates": [],
    }
    return {
        "output": output,
        "outputs": [],
        "inputs": [{"id": "whatif-spec", "property": "data", "value": spec}],
        "changedPropIds": ["whatif-spec.data"],
    }


def test_sec007_a_viewer_cannot_start_a_whatif_run_even_forged(make_app):
    app = make_app()
    client = app.test_client()
    assert sign_in(client, "viewer", "viewer").status_code == 302
    answer = dash_post(client, run_start_body(app, "a" * 32))
    assert_json_error(answer, 403, "forbidden", "only a grid operator may start What-if runs")
    assert RunLedger.of(app.extensions["gridfee_settings"]).running() == {}


def test_sec008_whatif_runs_per_user_and_at_once_answer_429_with_the_reason(make_app):
    app = make_app(WHATIF_RUNS_PER_USER="1", WHATIF_RUNS_AT_ONCE="2")
    ledger = RunLedger.of(app.extensions["gridfee_settings"])
    ledger.claim("b" * 32, "operator", 1, 2)  # the operator's run is going
    client = app.test_client()
    assert sign_in(client, "operator", "operator").status_code == 302
    answer = dash_post(client, run_start_body(app, "c" * 32))
    assert_json_error(answer, 429, "too_many_runs", "WHATIF_RUNS_PER_USER = 1")
    assert answer.headers["Retry-After"]
    # another operator: allowed per user, but two runs at once are the most
    UserBook(store_of(app).engine).add("olga", "olga-password", "grid_operator")
    ledger.claim("d" * 32, "someone", 1, 2)
    other = app.test_client()
    assert sign_in(other, "olga", "olga-password").status_code == 302
    answer = dash_post(other, run_start_body(app, "e" * 32))
    assert_json_error(answer, 429, "too_many_runs", "WHATIF_RUNS_AT_ONCE = 2")
    assert set(ledger.running()) == {"b" * 32, "d" * 32}  # the refused ones were not counted
    # a run's end frees its place
    assert ledger.release("b" * 32)
    ledger.claim("c" * 32, "operator", 1, 3)


# -- request size and cost -----------------------------------------------------------------------
def test_sec009_a_body_over_max_body_bytes_is_413_json_and_changes_nothing(make_app):
    app = make_app(MAX_BODY_BYTES="20000", TOKEN_RATE_LIMIT="0")
    headers = token_of(app, "operator", "operator")
    before = next_fees(app)
    fee = {"type": "grid_fees", "data": {"fee_const": 7.5}}
    filler = [{"type": "dso_market_stats", "data": {}}] * 1000
    body = {"batch_commands": {community(app): [fee, *filler]}}
    answer = app.test_client().post(BATCH, json=body, headers=headers)
    assert_json_error(answer, 413, "body_too_large", "20000", "MAX_BODY_BYTES")
    # the SDK face too
    face = app.test_client().post("/api-token-auth/", data=b"x" * 30000, content_type="application/json")
    assert_json_error(face, 413, "body_too_large", "20000")
    assert next_fees(app) == before


def test_sec010_market_slots_and_batch_cost_are_capped_before_any_work(make_app):
    """The finding: 2,000 dso_market_stats x 1,000 market_slots took 20.6 s of CPU."""
    app = make_app(TOKEN_RATE_LIMIT="0")
    headers = token_of(app, "viewer", "viewer")
    op = token_of(app, "operator", "operator")
    before = next_fees(app)
    labels = [f"2026-06-22T{h % 24:02d}:00" for h in range(1000)]
    fee = {"type": "grid_fees", "data": {"fee_const": 7.5}}
    wide = {
        "batch_commands": {
            community(app): [fee, {"type": "dso_market_stats", "data": {"market_slots": labels}}]
        }
    }
    for who in (headers, op):
        answer = app.test_client().post(BATCH, json=wide, headers=who)
        assert_json_error(answer, 422, "too_many_slots", "at most 96 slots per command", "got 1000")
    many = {"type": "dso_market_stats", "data": {"market_slots": labels[:96]}}
    costly = {"batch_commands": {community(app): [fee, *[many] * 300]}}
    answer = app.test_client().post(BATCH, json=costly, headers=op)
    assert_json_error(answer, 413, "batch_too_costly", "at most 20000 market slots", "28801")
    assert next_fees(app) == before


# -- fees ----------------------------------------------------------------------------------------
def test_sec011_negative_zero_is_stored_and_echoed_as_zero_and_subnormals_refused(make_app):
    app = make_app(TOKEN_RATE_LIMIT="0")
    headers = token_of(app, "operator", "operator")
    market = community(app)
    index = [m.uuid for m in store_of(app).grid.markets].index(market)
    answer = app.test_client().post(
        BATCH,
        data='{"batch_commands": {"MARKET": [{"type": "grid_fees", "data": {"fee_const": -0.0}}]}}'.replace(
            "MARKET", market
        ),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.get_json()
    assert "-0.0" not in answer.get_data(as_text=True)
    assert answer.get_json()["responses"][market][0]["market_fee_const"] == 0.0
    stored = next_fees(app)[index]
    assert stored == 0.0 and str(stored) == "0.0"
    before = next_fees(app)
    for tiny in (5e-324, 1e-310, 1e-9):
        body = {"batch_commands": {market: [{"type": "grid_fees", "data": {"fee_const": tiny}}]}}
        answer = app.test_client().post(BATCH, json=body, headers=headers)
        assert answer.status_code == 400, answer.get_json()  # the batch's status for a refused fee
        first = answer.get_json()["responses"][market][0]
        assert first["error"] == "invalid_fee" and "resolution of 1e-06 ct/kWh" in first["error_message"]
    assert next_fees(app) == before


# -- JSON errors everywhere the client expects JSON ---------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/nope", 404),
        ("DELETE", "/api/v1/clock", 405),
        ("GET", "/external-connection/nope", 404),
        ("GET", "/api-token-auth/", 404),  # the SDK face answers a wrong method as no endpoint
    ],
)
def test_sec012_api_and_sdk_face_errors_are_json(make_app, method: str, path: str, status: int):
    answer = make_app().test_client().open(path, method=method)
    assert answer.status_code == status and answer.is_json, answer.get_data(as_text=True)[:200]
    assert answer.get_json()["error"] and answer.get_json()["message"]


def test_sec013_aggregators_per_user_are_capped(make_app):
    """The finding: a viewer created 300 aggregators in 1.3 s."""
    app = make_app(MAX_AGGREGATORS_PER_USER="3", TOKEN_RATE_LIMIT="0", GSY_SIMULATION_ID="sim")
    token = app.test_client().post("/api-token-auth/", json={"username": "viewer", "password": "viewer"})
    headers = {"Authorization": f"JWT {token.get_json()['access']}"}
    url = "/external-connection/aggregator-api/sim/create-aggregator/"
    client = app.test_client()
    assert [client.post(url, json={"name": f"a{i}"}, headers=headers).status_code for i in range(3)] == [
        200
    ] * 3
    answer = client.post(url, json={"name": "one too many"}, headers=headers)
    assert_json_error(answer, 429, "too_many_aggregators", "MAX_AGGREGATORS_PER_USER = 3")
    listed = client.get("/external-connection/aggregator-api/sim/list-aggregators/", headers=headers)
    assert len(listed.get_json()) == 3


# -- users in the store --------------------------------------------------------------------------
def test_sec014_a_removed_users_session_and_token_stop_at_once(make_app):
    app = make_app()
    book, client, headers = alice_with_a_session_and_a_token(app)
    assert app.test_client().get("/api/v1/clock", headers=headers).status_code == 200
    book.remove("alice")
    assert not signed_in(client)
    assert_json_error(app.test_client().get("/api/v1/clock", headers=headers), 401, "invalid_token")


def test_sec015_demo_users_do_not_count_outside_demo_mode(make_app):
    """A store that ran in demo mode once keeps the demo rows; with DEMO=off they are no users."""
    make_app(database="one")  # demo mode: operator/operator, viewer/viewer are added
    public = make_app(database="one", DEMO="off", ADMIN_PASSWORD="first-admin-pw")
    client = public.test_client()
    assert_json_error(
        client.post(TOKEN, json={"username": "operator", "password": "operator"}), 401, "bad_credentials"
    )
    assert client.post(TOKEN, json={"username": "admin", "password": "first-admin-pw"}).status_code == 200
    assert [u.username for u in public.extensions["gridfee"].users.all()] == ["admin"]


def run_cli(db: Path, *args: str, password: str | None = None) -> subprocess.CompletedProcess:
    env = process_env(DATABASE_URL=f"sqlite:///{db}", DEMO="off", SECRET_KEY="t")
    return subprocess.run(
        [sys.executable, "-m", "app", "users", *args],
        cwd=ROOT,
        env=env,
        input=None if password is None else password + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_sec016_an_operator_is_added_on_a_running_deployment_with_one_command(make_app, tmp_path: Path):
    app = make_app(database="live", DEMO="off", ADMIN_PASSWORD="first-admin-pw", TOKEN_RATE_LIMIT="0")
    db = tmp_path / "live.sqlite3"
    client = app.test_client()
    carol = {"username": "carol", "password": "carol-password"}
    assert client.post(TOKEN, json=carol).status_code == 401
    added = run_cli(
        db, "add", "carol", "--role", "grid_operator", "--markets", "*", password=carol["password"]
    )
    assert added.returncode == 0, added.stderr
    answer = client.post(TOKEN, json=carol)  # the running app, no restart
    assert answer.status_code == 200 and answer.get_json()["role"] == "grid_operator"
    listed = run_cli(db, "list")
    assert "carol\tgrid_operator\t-\t*" in listed.stdout and "admin\tgrid_operator\tadmin\t*" in listed.stdout
    assert run_cli(db, "passwd", "carol", password="carol-new-password").returncode == 0
    assert client.post(TOKEN, json=carol).status_code == 401
    assert client.post(TOKEN, json={**carol, "password": "carol-new-password"}).status_code == 200
    refused = run_cli(db, "add", "carol", password="whatever-password")
    assert refused.returncode == 1 and "exists already" in refused.stderr
    short = run_cli(db, "add", "dave", password="short")
    assert short.returncode == 1 and "at least 8 characters" in short.stderr
    assert run_cli(db, "remove", "carol").returncode == 0
    assert client.post(TOKEN, json={**carol, "password": "carol-new-password"}).status_code == 401


# -- the admin page ------------------------------------------------------------------------------
def admin_token(client) -> str:
    page = client.get("/admin").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_sec017_admin_page_only_for_admins_and_only_with_csrf(make_app):
    app = make_app()
    book: UserBook = app.extensions["gridfee"].users
    viewer = app.test_client()
    assert sign_in(viewer, "viewer", "viewer").status_code == 302
    assert viewer.get("/admin").status_code == 403
    # a viewer's forged form, with a valid CSRF token of its own session
    forged = {
        "csrf_token": login_form_token(viewer),
        "action": "set-role",
        "username": "viewer",
        "role": "grid_operator",
    }
    assert viewer.post("/admin", data=forged).status_code == 403
    assert book.get("viewer").role == "viewer"
    admin = app.test_client()
    assert sign_in(admin, "operator", "operator").status_code == 302
    no_csrf = {
        "action": "add",
        "username": "eve",
        "password": "eve-password",
        "role": "grid_operator",
        "markets": "*",
    }
    assert admin.post("/admin", data=no_csrf).status_code == 400
    assert book.get("eve") is None
    added = admin.post("/admin", data={**no_csrf, "csrf_token": admin_token(admin)})
    assert added.status_code == 303
    assert book.get("eve").role == "grid_operator"
    assert "added eve" in admin.get("/admin").get_data(as_text=True)
    revoke = {
        "csrf_token": admin_token(admin),
        "action": "grant",
        "username": "eve",
        "markets": "Community 1",
    }
    admin.post("/admin", data=revoke)
    assert book.get("eve").markets is None  # granting to a user of every market keeps every market
    itself = {"csrf_token": admin_token(admin), "action": "remove", "username": "operator"}
    answer = admin.post("/admin", data=itself)
    assert answer.status_code == 400 and "cannot remove yourself" in answer.get_data(as_text=True)
    assert book.get("operator") is not None


# -- errors of the HTTP server itself ------------------------------------------------------------
def raw_request(port: int, path: str, header_bytes: int) -> tuple[int, dict, bytes]:
    """A GET with one header of ``header_bytes``, as a client that ignores limits sends it."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * header_bytes}\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def test_sec018_a_header_too_large_is_a_json_431_from_python_m_apps_server(make_app):
    import threading

    from werkzeug.serving import make_server

    from app.security import json_request_handler

    http = make_server("127.0.0.1", 0, make_app(), threaded=True, request_handler=json_request_handler())
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        for path in ("/api/v1/clock", "/api-token-auth/", "/external-connection/x"):
            status, headers, body = raw_request(http.server_port, path, 100_000)
            assert status == 431 and headers["Content-Type"] == "application/json", (headers, body[:200])
            assert json.loads(body)["error"] == "request_header_fields_too_large"
        status, headers, _ = raw_request(http.server_port, "/login", 100_000)  # a page: HTML as before
        assert status == 431 and headers["Content-Type"].startswith("text/html")
    finally:
        http.shutdown()
        http.server_close()
        thread.join(timeout=10)


def test_sec019_twelve_sdk_sockets_closing_at_once_each_get_the_servers_close_frame(make_app):
    """The finding: 12 sockets with a 10 s close timeout took over 150 s to close. Each client's
    close frame must be answered with the server's (close code 1000 received), not left to the
    client's close timeout (which ends with 1006 and no close frame received)."""
    import asyncio
    import threading

    import websockets
    from gsy_wire import SdkWire
    from werkzeug.serving import make_server

    from app.security import json_request_handler

    app = make_app(GSY_SIMULATION_ID="sim", TOKEN_RATE_LIMIT="0")
    http = make_server("127.0.0.1", 0, app, threaded=True, request_handler=json_request_handler())
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        wire = SdkWire(f"http://127.0.0.1:{http.server_port}", "sim")
        token = wire.token()
        agg = wire.post(f"{wire.aggregator_prefix}create-aggregator/", token, {"name": "dso"}).json()["uuid"]
        uri = f"ws://127.0.0.1:{http.server_port}/external-ws/sim/aggregator/{agg}/"

        async def one() -> tuple[int | None, bool]:
            ws = await websockets.connect(
                uri, extra_headers={"Authorization": f"JWT {token}"}, close_timeout=10
            )
            await ws.close()
            return ws.close_code, ws.close_rcvd is not None

        async def all_of_them() -> list[tuple[int | None, bool]]:
            return await asyncio.gather(*[one() for _ in range(12)])

        assert asyncio.run(all_of_them()) == [(1000, True)] * 12
    finally:
        http.shutdown()
        http.server_close()
        thread.join(timeout=10)


def test_sec020_two_apps_in_one_process_each_sign_in_their_own_users(make_app):
    """The login manager is one per process: each app must still load users from its own store."""
    first = make_app(database="first")
    second = make_app(database="second")
    UserBook(store_of(first).engine).add("only-first", "first-password", "viewer")
    client = first.test_client()
    assert sign_in(client, "only-first", "first-password").status_code == 302
    assert signed_in(client)  # loaded from the first app's store although the second came later
    assert second.extensions["gridfee"].users.get("only-first") is None


def test_sec021_a_password_reset_ends_the_sessions_and_tokens_issued_before(make_app):
    app = make_app()
    book, client, headers = alice_with_a_session_and_a_token(app)
    book.set_password("alice", "alice-new-password")  # e.g. the admin page's "reset password"
    assert not signed_in(client)
    stale = app.test_client().get("/api/v1/clock", headers=headers)
    assert_json_error(stale, 401, "invalid_token", "the password changed")
    assert (
        app.test_client()
        .get("/api/v1/clock", headers=token_of(app, "alice", "alice-new-password"))
        .status_code
        == 200
    )
