"""Grid Fee Console. ``create_app`` builds the Flask server with the Grid Operator API mounted.

The server holds no state of its own: the exchange's state, history and fee book are in the
store, so any number of workers can serve it. The runner (the exchange's clock and matching) is
started by the entry points (``python -m app``, ``python -m app.entry.exchange``), never here.
"""

from __future__ import annotations

import gc
import threading

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from flask_caching import Cache
from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from app import security
from app.api.auth import TokenSigner, UserBook, seed_users
from app.api.gsy_compat import GsyFace, install
from app.api.gsy_compat.face import SDK_TOKEN_TTL_S
from app.api.gsy_compat.protocol import simulation_id
from app.api.gsy_compat.store import GsyStore
from app.api.routes import ApiContext, bp
from app.api.service import ExchangeService
from app.config import Settings
from app.console.cache import cache_config
from app.operator.store import OperatorStore
from app.store.db import check_migrated, make_engine, migrate
from app.store.repo import ExchangeStore


def settle_heap() -> None:
    """Once a server process has built what it keeps (modules, the app, the grid, the caches):
    collect once, then move every object alive into the permanent generation (``gc.freeze``).

    Its hundreds of thousands of objects then stay out of the cyclic collector's full passes,
    which otherwise run every few dozen large requests and took tens of ms each (the p95 of a
    500-market batch). Called by the entry points (``wsgi``, ``serve``, ``clock`` of ``app.entry``),
    not by ``create_app``, which tests call again and again.
    """
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings | None = None,
    store: ExchangeStore | None = None,
    dashboard: bool = True,
    run_migrations: bool = True,
) -> Flask:
    """The Flask server: the API and (``dashboard``) the console.

    ``store`` (an ``ExchangeStore``) defaults to the one of ``settings``, migrated first unless
    ``run_migrations`` is false (``app.entry.wsgi``: the Procfile's ``release:`` migrates). With
    ``GRID_API_URL`` set the exchange is remote: there is no exchange store and no API here
    (``/api/...`` answers a JSON 404 naming the remote exchange), and the console drives the
    remote exchange through the HTTP client, keeping its own rows in ``DATABASE_URL``.
    """

    settings = settings or Settings.from_env()
    remote = settings.grid_api_url is not None and store is None
    if remote:
        if run_migrations:
            migrate(settings.database_url)
        engine = make_engine(settings.database_url)
        if not run_migrations:
            check_migrated(engine)
        service = None
    else:
        if store is None:
            store = ExchangeStore.of_settings(settings, run_migrations)
        engine = store.engine
        service = ExchangeService(
            store,
            settings.slot_seconds,
            settings.max_batch_commands,
            settings.max_market_slots,
            settings.max_batch_slots,
        )
    # users live in the store (python -m app users ..., the admin page); seeded from the demo
    # users, USERS_FILE and ADMIN_PASSWORD
    users = UserBook(engine, include_demo=settings.demo)
    seed_users(users, settings)
    # one secret for every process of the deployment: SECRET_KEY, else (demo) the store's
    secret_key = security.shared_secret(engine) if settings.secret_generated else settings.secret_key
    server = Flask(__name__)
    server.config.update(
        SECRET_KEY=secret_key,
        JSON_SORT_KEYS=False,
        # outside demo mode the console is served over HTTPS (the PaaS router ends TLS)
        SESSION_COOKIE_SECURE=not settings.demo,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,  # a larger body: 413
    )
    server.json.sort_keys = False
    if settings.proxy_hops:
        n = settings.proxy_hops  # the client's address and scheme as the router saw them
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)
    # one cache per server (Redis when REDIS_URL): the console's per-slot reads and the rate limit
    cache = Cache(config=cache_config(settings))
    cache.init_app(server)
    server.extensions["gridfee_cache"] = cache
    server.extensions["gridfee"] = ApiContext(
        service=service,
        users=users,
        signer=TokenSigner(secret_key, settings.token_ttl_s),
    )
    server.extensions["gridfee_settings"] = settings
    security.install(server, settings)
    # set when the process is asked to stop (serve.py, gunicorn.conf.py): long-lived requests,
    # the SDK face's websockets, end so that the worker can exit within its graceful timeout
    server.extensions["gridfee_stop"] = threading.Event()
    if not remote:
        server.register_blueprint(bp)
        _mount_gsy_face(server, settings, service, engine, secret_key)
    for endpoint in ("api_v1.token", "gsy_compat.token"):  # one count for both token endpoints
        security.limit_endpoint(server, endpoint, settings.token_rate_limit, "token")
    if dashboard:
        from app.console.dashboard import init_dashboard  # Dash only where the console is served

        init_dashboard(server, settings, engine, live_scenario=None if service is None else store.scenario)

    @server.before_request
    def _api_paths_stay_json() -> ResponseReturnValue | None:
        """An /api/ path that no API route takes is a JSON 404 or 405, not the console's page."""
        if not request.path.startswith("/api/") or request.blueprint == "api_v1":
            return None
        if remote:
            return jsonify(
                error="exchange_remote",
                message=f"this console drives the exchange at {settings.grid_api_url}; "
                "its Grid Operator API is there",
            ), 404
        adapter = server.url_map.bind("localhost")
        methods = []
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            try:
                endpoint, _ = adapter.match(request.path, method=method)
            except HTTPException:
                continue
            if endpoint.startswith("api_v1."):
                methods.append(method)
        if methods:
            return jsonify(
                error="method_not_allowed", message=f"use {', '.join(methods)} on {request.path}"
            ), 405
        return jsonify(error="not_found", message=f"no API endpoint {request.path}"), 404

    @server.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> ResponseReturnValue:
        """On the paths whose clients expect JSON (the API, the SDK face, Dash's requests) every
        HTTP error is ``{"error", "message"}``: 400, 404, 405, 413, 431, ..."""
        if not security.wants_json():
            return exc
        code = (exc.name or "error").lower().replace(" ", "_")
        message = exc.description or exc.name
        if exc.code == 413:
            code = "body_too_large"
            message = f"the request body is larger than {settings.max_body_bytes} bytes (MAX_BODY_BYTES)"
        response = jsonify(error=code, message=message)
        if request.path.startswith(("/api-token-auth", "/external-connection/", "/graphql")):
            response = jsonify(error=code, message=message, detail=message)  # the SDK face's shape
        return response, exc.code

    @server.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:  # a bug, not bad input: log it, answer JSON
        server.logger.exception("unhandled error on %s", request.path)
        return jsonify(error="internal_error", message="the server failed; the error was logged"), 500

    return server


def _mount_gsy_face(
    server: Flask, settings: Settings, service: ExchangeService, engine: Engine, secret_key: str
) -> None:
    """The Grid Singularity SDK's endpoints and websockets beside ``/api/v1`` (same users, fees)."""

    api = server.extensions["gridfee"]
    install(
        server,
        GsyFace(
            service=service,
            users=api.users,
            signer=TokenSigner(secret_key, SDK_TOKEN_TTL_S),
            gsy=GsyStore(engine, service.store.key, service.store.events),
            ops=OperatorStore(engine, settings.exchange_key),
            simulation_id=settings.gsy_simulation_id or simulation_id(service.scenario.name),
            stop=server.extensions["gridfee_stop"],
            # a websocket holds a worker thread for its life: leave threads for HTTP requests
            max_sockets=max(settings.web_threads - 4, 2),
            max_aggregators=settings.max_aggregators_per_user,
        ),
    )
