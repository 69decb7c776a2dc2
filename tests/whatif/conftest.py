"""What-if tests: a small generated scenario, and the console on an embedded exchange.

``console`` is the fixture of ``tests/console`` (an exchange on SQLite, its app, the operator
agent driven by hand, ``as_user`` for a logged-in request), built here on the what-if's own
scenario file so that "the live scenario" of a run is the one the exchange runs.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from whatif_scenario import SCENARIO

from app import create_app
from app.config import Settings
from app.exchange.grid import build_grid
from app.exchange.runner import ExchangeRunner
from app.exchange.scenario import dump_scenario
from app.operator.agent import OperatorAgent
from app.store.repo import ExchangeStore


@dataclass
class Console:
    store: ExchangeStore
    runner: ExchangeRunner
    server: object
    agent: OperatorAgent
    settings: Settings

    @property
    def data(self):
        return self.server.extensions["console"]

    @property
    def managed(self) -> list:
        return [m for m in self.store.grid.markets if m.level in (0, 1)]

    def cycles(self, n: int) -> None:
        for _ in range(n):
            self.agent.on_market_cycle(self.runner.close_running_slot())

    @contextmanager
    def as_user(self, username: str | None, role: str | None = None):
        """A request context with ``username`` logged in (None: nobody)."""
        with self.server.test_request_context("/"):
            from flask import session

            if username:
                session["user"], session["role"] = (
                    username,
                    role or ("grid_operator" if username == "operator" else "viewer"),
                )
            yield


@pytest.fixture
def console(tmp_path: Path):
    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text(dump_scenario(SCENARIO), encoding="utf-8")
    store = ExchangeStore.open(f"sqlite:///{tmp_path / 'c.sqlite3'}", SCENARIO, build_grid(SCENARIO))
    runner = ExchangeRunner(store, slot_seconds=0)
    runner.resume()
    settings = Settings.from_env(
        {
            "INSTANCE_DIR": str(tmp_path),
            "SECRET_KEY": "t",
            "SLOT_SECONDS": "0",
            "SCENARIO": str(scenario_file),
        }
    )
    server = create_app(settings, store=store)
    agent = OperatorAgent.embedded(server, "operator", "operator", store=server.extensions["console"].ops)
    yield Console(store, runner, server, agent, settings)
    store.engine.dispose()
