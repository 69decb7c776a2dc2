"""Grid Fee Console. ``create_app`` builds the Flask server with the Grid Operator API mounted.

The server holds no state of its own: the exchange's state, history and fee book are in the
store, so any number of workers can serve it. The runner (the exchange's clock and matching) is
started by the entry points (``python -m app``, ``python -m app.exchange``), never here.
"""

from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from app.config import Settings


def create_app(settings: Settings | None = None, store=None, dashboard: bool = True) -> Flask:  # noqa: ANN001
    """The Flask server: the API and (``dashboard``) the console. ``store`` (an ``ExchangeStore``)
    defaults to the one of ``settings``."""
    from app.api.auth import TokenSigner, UserBook
    from app.api.routes import ApiContext, bp
    from app.api.service import ExchangeService
    from app.exchange.grid import build_grid
    from app.exchange.scenario import load_scenario
    from app.store.repo import ExchangeStore

    settings = settings or Settings.from_env()
    if store is None:
        scenario = load_scenario(settings.scenario)
        store = ExchangeStore.open(settings.database_url, scenario, build_grid(scenario))
    users = UserBook.from_file(settings.users_file) if settings.users_file else UserBook()
    if settings.demo:
        users.users = {**UserBook.demo().users, **users.users}
    server = Flask(__name__)
    server.config.update(SECRET_KEY=settings.secret_key, JSON_SORT_KEYS=False)
    server.json.sort_keys = False
    server.extensions["gridfee"] = ApiContext(
        service=ExchangeService(store, settings.slot_seconds, settings.max_batch_commands),
        users=users,
        signer=TokenSigner(settings.secret_key, settings.token_ttl_s),
    )
    server.extensions["gridfee_settings"] = settings
    server.register_blueprint(bp)
    if dashboard:
        from app.dashboard import init_dashboard

        init_dashboard(server, settings, store.engine)

    @server.before_request
    def _api_paths_stay_json():
        """An /api/ path that no API route takes is a JSON 404 or 405, not the console's page."""
        if not request.path.startswith("/api/") or request.blueprint == "api_v1":
            return None
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
    def _http_error(exc: HTTPException):
        if request.path.startswith("/api/"):
            code = (exc.name or "error").lower().replace(" ", "_")
            return jsonify(error=code, message=exc.description or exc.name), exc.code
        return exc

    @server.errorhandler(Exception)
    def _unexpected(exc: Exception):  # a bug, not bad input: log it, answer JSON
        server.logger.exception("unhandled error on %s", request.path)
        return jsonify(error="internal_error", message="the server failed; the error was logged"), 500

    return server
