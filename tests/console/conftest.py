"""The console's pages without a browser: an embedded exchange, its app, a logged-in request."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.config import Settings
from app.entry.web import create_app
from app.exchange.generate import generate_scenario
from app.exchange.grid import build_grid
from app.exchange.runner import ExchangeRunner
from app.operator.agent import OperatorAgent
from app.security import signed_in_request
from app.store.repo import ExchangeStore


@dataclass
class Console:
    store: ExchangeStore
    runner: ExchangeRunner
    server: object
    agent: OperatorAgent

    @property
    def data(self):
        return self.server.extensions["console"]

    def community(self, k: int = 0):
        return [m for m in self.store.grid.markets if m.level == 1][k]

    def cycles(self, n: int) -> None:
        for _ in range(n):
            self.agent.on_market_cycle(self.runner.close_running_slot())

    @contextmanager
    def as_user(self, username: str | None, role: str | None = None):
        """A request context with ``username`` signed in (None: nobody); a name that is not a
        user yet is added with ``role`` (default: viewer)."""
        users = self.server.extensions["gridfee"].users
        if username and users.get(username) is None:
            users.add(username, "password-of-a-test", role or "viewer", source="test")
        with signed_in_request(self.server, username):
            yield


@pytest.fixture
def console(tmp_path: Path):
    scenario = generate_scenario(2, 3, seed=2)
    store = ExchangeStore.open(f"sqlite:///{tmp_path / 'c.sqlite3'}", scenario, build_grid(scenario))
    runner = ExchangeRunner(store, slot_seconds=0)
    runner.resume()
    settings = Settings.from_env({"INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "t", "SLOT_SECONDS": "0"})
    server = create_app(settings, store=store)
    data = server.extensions["console"]
    agent = OperatorAgent.embedded(server, "operator", "operator", store=data.ops)
    yield Console(store, runner, server, agent)
    store.engine.dispose()
