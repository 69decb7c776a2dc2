"""An embedded exchange whose slots the test closes by hand, with the operator side beside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from app.config import Settings
from app.entry.web import create_app
from app.exchange.generate import generate_scenario
from app.exchange.grid import build_grid
from app.exchange.runner import ExchangeRunner
from app.operator.agent import OperatorAgent
from app.operator.store import OperatorStore
from app.store.repo import ExchangeStore


@dataclass
class Console:
    store: ExchangeStore
    runner: ExchangeRunner
    ops: OperatorStore
    app: object
    settings: Settings

    def agent(self, **kwargs) -> OperatorAgent:
        return OperatorAgent.embedded(self.app, "operator", "operator", store=self.ops, **kwargs)

    def market(self, level: int, k: int = 0):
        return [m for m in self.store.grid.markets if m.level == level][k]

    def cycle(self, agent: OperatorAgent) -> dict:
        """Close the running slot and hand its market_info to the agent, as run() would."""
        info = self.runner.close_running_slot()
        agent.on_market_cycle(info)
        return info


@pytest.fixture
def console(tmp_path: Path):
    scenario = generate_scenario(2, 4, seed=5)
    store = ExchangeStore.open(f"sqlite:///{tmp_path / 'console.sqlite3'}", scenario, build_grid(scenario))
    runner = ExchangeRunner(store, slot_seconds=0)
    runner.resume()
    settings = Settings.from_env({"INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "t", "SLOT_SECONDS": "0"})
    app = create_app(settings, store=store)
    yield Console(store, runner, OperatorStore(store.engine), app, settings)
    store.engine.dispose()
