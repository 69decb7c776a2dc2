"""The Dash console, mounted on the Flask server that also serves the API.

``init_dashboard`` wires what the pages need into ``server.extensions["console"]`` (the history
store, the client of the exchange, the cache): the pages find it there per request, so nothing
lives in module globals and any number of workers can serve the console.
"""

from __future__ import annotations

import dash
import dash_mantine_components as dmc
from dash import Dash, dcc, html
from flask import Flask, has_request_context, jsonify, request
from flask.typing import ResponseReturnValue
from flask_caching import Cache
from sqlalchemy import Engine

from app.config import ROOT, Settings
from app.console import admin, auth, ids
from app.console.auth import current_console_user
from app.console.cache import cache_config
from app.console.data import ConsoleData
from app.console.pages import alerts_page, audit, grid_map, market, overview, shell_callbacks, whatif
from app.exchange.scenario import Scenario
from app.operator.run import make_client
from app.operator.store import OperatorStore
from app.store.notify import Notifier

FEE_TIMING_TICK_MS = 250  # how often the browser turns the countdown and the queue buttons [ms]
NAV = [
    ("/", "Overview"),
    ("/map", "Grid map"),
    ("/alerts", "Alerts"),
    ("/audit", "Fee commands"),
    ("/what-if", "What-if"),
]
__all__ = ["NAV", "cache_config", "init_dashboard", "shell"]


def _admin_link() -> list:
    """The admin page's link, for a grid operator with the admin right."""

    user = current_console_user() if has_request_context() else None
    if user is None or not user.admin or user.role != "grid_operator":
        return []
    return [dmc.Anchor("Users", href="/admin", size="sm", refresh=True, id="admin-link")]


def shell() -> dmc.MantineProvider:
    return dmc.MantineProvider(
        [
            dcc.Location(id=ids.LOCATION, refresh="callback-nav"),
            dcc.Interval(id=ids.TICK, interval=2000),
            # the send point as the server sees it (refreshed every TICK with the header), the same
            # on the browser's clock, and the browser-only tick that turns the header's countdown
            # and every queue button at the send point, so both change in the same instant
            dcc.Store(id=ids.FEE_TIMING),
            dcc.Store(id=ids.FEE_TIMING_LOCAL),
            dcc.Store(id=ids.FEE_TARGET),
            dcc.Interval(id=ids.FEE_TIMING_TICK, interval=FEE_TIMING_TICK_MS),
            dcc.Store(id=ids.SERVER_OK),
            dcc.Store(id=ids.SERVER_OK_AT),
            dcc.Store(id=ids.CONNECTION, data={"offline": False}),
            dcc.Store(id=ids.BROWSER_TZ, storage_type="session"),
            dcc.Interval(id="connection-watch", interval=1000),  # the browser's watch (clientside)
            dmc.NotificationContainer(id=ids.NOTIFICATIONS, position="top-right"),
            dmc.AppShell(
                [
                    dmc.AppShellHeader(
                        dmc.Group(
                            [
                                dmc.Anchor(
                                    dmc.Title("Grid Fee Console", order=4),
                                    href="/",
                                    underline="never",
                                    c="dark",
                                ),
                                html.Div(
                                    id=ids.OFFLINE_BANNER,
                                    role="status",
                                    **{"aria-live": "assertive"},
                                    style={"display": "none"},
                                ),
                                html.Div(id=ids.HEADER, style={"flex": 1, "minWidth": 0}),
                                *_admin_link(),
                                dmc.Anchor("Sign out", href="/logout", size="sm", refresh=True),
                            ],
                            h="100%",
                            px="md",
                            gap="lg",
                            wrap="nowrap",
                        )
                    ),
                    dmc.AppShellNavbar(
                        [
                            dmc.NavLink(label=label, href=href, id={"type": "nav", "href": href})
                            for href, label in NAV
                        ],
                        p="xs",
                    ),
                    dmc.AppShellMain(
                        # a spinner while a page's layout loads (not on the pages' own 2 s updates)
                        dcc.Loading(
                            dash.page_container,
                            target_components={"_pages_content": "children"},
                            delay_show=300,
                            type="circle",
                        )
                    ),
                ],
                header={"height": 56},
                navbar={"width": 170, "breakpoint": "sm"},
                padding="md",
            ),
        ]
    )


def init_dashboard(
    server: Flask, settings: Settings, engine: Engine, live_scenario: Scenario | None = None
) -> Dash:
    """The console on ``server``: its data (operator store, client, cache), login, admin page, the
    pages and their callbacks. ``live_scenario``: the embedded exchange's scenario (None when the
    console drives a remote exchange), for the Excel export and What-if's live runs."""

    cache = server.extensions.get("gridfee_cache")  # create_app's, shared with the rate limit
    if cache is None:
        cache = Cache(config=cache_config(settings))
        cache.init_app(server)
    client = make_client(settings, server, engine=engine, timeout_s=3.0, retries=0)
    server.extensions["console"] = ConsoleData(
        OperatorStore(engine, settings.exchange_key),
        client,
        cache,
        live_scenario,
        events=Notifier.for_cache(settings.redis_url),
    )
    auth.install(server, settings.login_rate_limit)
    admin.install(server)
    app = Dash(
        "gridfee",
        server=server,
        use_pages=True,
        pages_folder="",
        assets_folder=str(ROOT / "assets"),
        suppress_callback_exceptions=True,
        title="Grid Fee Console",
        update_title=None,
        # the what-if runs: Celery tasks over REDIS_URL, else processes of this machine (diskcache)
        background_callback_manager=whatif.background_manager(settings, live_scenario),
    )
    app.index_string = app.index_string.replace("<html>", '<html lang="en">', 1)

    # each app registers its own callbacks (not dash.callback's process-wide registry, which the
    # first app empties: tests build an app per test, and every one needs its callbacks)
    for page in (shell_callbacks, overview, market, audit, whatif, alerts_page, grid_map):
        page.register_callbacks(app)

    dash.register_page("overview", path="/", layout=overview.layout, title="Overview - Grid Fee Console")
    dash.register_page(
        "market",
        path_template="/markets/<market_id>",
        layout=market.layout,
        title="Market - Grid Fee Console",
    )
    dash.register_page("map", path="/map", layout=grid_map.layout, title="Grid map - Grid Fee Console")
    dash.register_page("alerts", path="/alerts", layout=alerts_page.layout, title="Alerts - Grid Fee Console")
    dash.register_page("audit", path="/audit", layout=audit.layout, title="Fee commands - Grid Fee Console")
    dash.register_page("whatif", path="/what-if", layout=whatif.layout, title="What-if - Grid Fee Console")
    app.layout = shell
    server.extensions["dash_app"] = app

    @server.before_request
    def _dash_callback_known() -> ResponseReturnValue | None:
        """A Dash callback request whose body is not Dash's, or that names no callback of this
        app, is the client's error (JSON 400 or 404), not the server's. Runs after the sign-in
        guard and the CSRF check, and after Dash has set up its callbacks."""
        if request.method != "POST" or request.path != "/_dash-update-component":
            return None
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("output"), str):
            return jsonify(error="bad_request", message="not a Dash callback request"), 400
        if body["output"] not in app.callback_map:
            return jsonify(error="unknown_callback", message=f"no callback for {body['output'][:200]!r}"), 404
        if not isinstance(body.get("inputs", []), list) or not isinstance(body.get("state", []), list):
            return jsonify(error="bad_request", message="inputs and state must be lists"), 400
        return None

    return app
