"""The console on an embedded exchange, without a browser, for the fixtures of several folders.

``open_console(tmp_path, scenario, **env)`` opens an exchange on SQLite under ``tmp_path`` whose
slots the test closes by hand (``runner.close_running_slot()``), and the web app of the console
on it (``create_app`` with ``env`` as settings); its engine is disposed when the generator ends.
The ``console`` fixtures of ``tests/console``, ``tests/whatif`` and ``tests/agent`` are built on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from flask import Flask

from app.config import Settings
from app.entry.web import create_app
from app.exchange.grid import build_grid
from app.exchange.runner import ExchangeRunner
from app.exchange.scenario import Scenario
from app.operator.agent import OperatorAgent
from app.security import signed_in_request
from app.store.repo import ExchangeStore


@dataclass
class EmbeddedConsole:
    store: ExchangeStore
    runner: ExchangeRunner
    server: Flask
    settings: Settings

    @property
    def data(self):
        return self.server.extensions["console"]

    def new_agent(self, **kwargs: object) -> OperatorAgent:
        """An operator agent of this exchange (a new one each call, as after a restart)."""
        return OperatorAgent.embedded(self.server, "operator", "operator", store=self.data.ops, **kwargs)

    @cached_property
    def agent(self) -> OperatorAgent:
        """The operator agent that ``cycles`` hands each closed slot to."""
        return self.new_agent()

    def market(self, level: int, k: int = 0):
        return [m for m in self.store.grid.markets if m.level == level][k]

    def community(self, k: int = 0):
        return self.market(1, k)

    @property
    def managed(self) -> list:
        """The markets the operator sets fees for: the grid and its communities."""
        return [m for m in self.store.grid.markets if m.level in (0, 1)]

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


def store_url(tmp_path: Path) -> str:
    """The SQLite store ``open_console`` opens under ``tmp_path``."""
    return f"sqlite:///{tmp_path / 'c.sqlite3'}"


def open_console(tmp_path: Path, scenario: Scenario, **env: str) -> Iterator[EmbeddedConsole]:
    store = ExchangeStore.open(store_url(tmp_path), scenario, build_grid(scenario))
    runner = ExchangeRunner(store, slot_seconds=0)
    runner.resume()
    env = {"INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "t", "SLOT_SECONDS": "0", **env}
    settings = Settings.from_env(env)
    try:
        yield EmbeddedConsole(store, runner, create_app(settings, store=store), settings)
    finally:
        store.engine.dispose()
