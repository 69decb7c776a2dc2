"""A live server of the challenge scenario for the SDK-face tests, with slots closed by hand.

``gsy_server`` serves ``create_app`` (console included, as ``python -m app`` does) with werkzeug's
threaded server on a free loopback port, so real websockets and ``requests`` reach it exactly as
the SDK's do. The test closes slots itself (``srv.close()``), so every frame is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gsy_client import SIM, GsyServer, start_server

from app.config import ROOT
from app.exchange.grid import build_grid
from app.exchange.runner import ExchangeRunner
from app.exchange.scenario import load_scenario
from app.store.repo import ExchangeStore


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
