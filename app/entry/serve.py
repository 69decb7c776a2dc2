"""Local serving: the API (and later the console) plus the runner in one process.

On a PaaS the runner is its own ``clock:`` process and the web workers only serve; locally
``python -m app`` / ``python -m app.entry.exchange`` start both, the runner in a thread of this
process. If another process already runs this scenario's exchange (it holds the runner lock),
this one only serves.
"""

from __future__ import annotations

import logging
import signal
import threading

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from app.config import Settings
from app.entry.web import create_app, settle_heap
from app.exchange.runner import ExchangeRunner, print_cycle
from app.exchange.scenario import ScenarioError
from app.operator.run import start_agent
from app.security import json_request_handler
from app.store.lock import RunnerLock
from app.store.repo import ExchangeStore, StoreMismatch

log = logging.getLogger(__name__)


def serve(settings: Settings, host: str, port: int, print_slots: bool = True) -> int:

    if settings.gsy_dialect is not None:
        return serve_remote(settings, host, port)
    try:
        store = ExchangeStore.of_settings(settings)
    except (ScenarioError, StoreMismatch) as exc:
        print(f"error: {exc}")
        return 2
    server_app = create_app(settings, store=store)
    stop = threading.Event()
    lock = RunnerLock(store.engine, store.key)
    runner_thread = None
    if lock.try_acquire():
        runner = ExchangeRunner(store, settings.slot_seconds)
        if print_slots:
            runner.subscribe(print_cycle)
        runner.resume()
        runner_thread = threading.Thread(target=runner.run, kwargs={"stop": stop}, name="runner", daemon=True)
        runner_thread.start()
    else:
        print("another process runs this exchange; serving its store only", flush=True)

    agent_thread = start_agent(settings, store.engine, server_app, stop)

    http = make_server(host, port, server_app, threaded=True, request_handler=json_request_handler())
    settle_heap()  # the app, the grid and the runner are built
    print(
        f"Grid Fee Console on http://{host}:{port} (API: /api/v1, OpenAPI: /api/v1/openapi.json); "
        f"scenario {store.scenario.name!r}, a slot every {settings.slot_seconds:g} s",
        flush=True,
    )
    gsy = server_app.extensions.get("gsy_compat")
    if gsy is not None:
        print(
            f"gsy-e-sdk scripts: API_CLIENT_DOMAIN_NAME=http://{host}:{port} "
            f"API_CLIENT_WEBSOCKET_DOMAIN_NAME=ws://{host}:{port}/external-ws "
            f"API_CLIENT_SIMULATION_ID={gsy.simulation_id}",
            flush=True,
        )
    if settings.demo:
        print("demo users: operator / operator (grid operator), viewer / viewer", flush=True)

    try:
        _serve_until_signalled(http, server_app, stop, [runner_thread, agent_thread])
    finally:
        lock.release()
    return 0


def serve_remote(settings: Settings, host: str, port: int) -> int:
    """The console and its agent for a Grid Singularity exchange (``GRID_API_URL=gsy+...``): no
    exchange of ours runs; the agent holds the link, the console reads what it stored."""

    server_app = create_app(settings)
    engine = server_app.extensions["console"].ops.engine  # the console's store (DATABASE_URL)
    stop = threading.Event()
    agent_thread = start_agent(settings, engine, None, stop)
    http = make_server(host, port, server_app, threaded=True, request_handler=json_request_handler())
    print(
        f"Grid Fee Console on http://{host}:{port}, operating {settings.grid_api_url} "
        f"({settings.gsy_dialect} dialect)",
        flush=True,
    )
    if settings.demo:
        print("demo users: operator / operator (grid operator), viewer / viewer", flush=True)

    _serve_until_signalled(http, server_app, stop, [agent_thread])
    return 0


def _serve_until_signalled(
    http: BaseWSGIServer, server_app: Flask, stop: threading.Event, threads: list[threading.Thread | None]
) -> None:
    """Serve until SIGTERM or SIGINT; then stop ``threads`` (the runner finishes the slot being
    written, the agent its turn) and end the open websockets."""

    def shutdown(*_: object) -> None:
        stop.set()
        server_app.extensions["gridfee_stop"].set()  # open websockets end
        threading.Thread(target=http.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    try:
        http.serve_forever()
    finally:
        stop.set()
        for thread in threads:
            if thread is not None:
                thread.join(timeout=30)
