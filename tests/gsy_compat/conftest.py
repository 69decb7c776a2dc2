"""A live server of the challenge scenario for the SDK-face tests, with slots closed by hand.

``gsy_server`` serves ``create_app`` (console included, as ``python -m app`` does) with werkzeug's
threaded server on a free loopback port, so real websockets and ``requests`` reach it exactly as
the SDK's do. The test closes slots itself (``srv.close()``), so every frame is deterministic.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from gsy_client import GsyServer
from werkzeug.serving import make_server

from app import create_app
from app.config import ROOT, Settings
from app.exchange.grid import build_grid
from app.exchange.runner import ExchangeRunner
from app.exchange.scenario import load_scenario
from app.store.repo import ExchangeStore

SIM = "5d1c2a4e-0000-4000-8000-00000000c0de"


def start_server(instance: Path, store: ExchangeStore, environ: dict[str, str] | None = None):  # noqa: ANN201
    settings = Settings.from_env(
        {
            "INSTANCE_DIR": str(instance),
            "SCENARIO": str(ROOT / "scenarios" / "challenge.yaml"),
            "GSY_SIMULATION_ID": SIM,
            "SLOT_SECONDS": "0",
            "SECRET_KEY": "gsy-face-tests",
            **(environ or {}),
        }
    )
    app = create_app(settings, store=store)
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    return http, app


@pytest.fixture
def gsy_server(tmp_path: Path) -> Iterator[GsyServer]:
    scenario = load_scenario(ROOT / "scenarios" / "challenge.yaml")
    store = ExchangeStore.open(f"sqlite:///{tmp_path}/gsy.sqlite3", scenario, build_grid(scenario))
    runner = ExchangeRunner(store, slot_seconds=0.0)
    runner.resume()
    http, app = start_server(tmp_path, store)
    srv = GsyServer(f"http://127.0.0.1:{http.server_port}", SIM, store, runner, app, tmp_path)
    yield srv
    for sock in srv.sockets:
        sock.close()
    for extra in srv.extra_servers:
        extra.shutdown()
    http.shutdown()
    store.engine.dispose()
