"""An embedded exchange whose slots the test closes by hand, with the operator side beside it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest
from embedded_console import EmbeddedConsole, open_console

from app.exchange.generate import generate_scenario
from app.operator.agent import OperatorAgent
from app.operator.store import OperatorStore


@dataclass
class Console(EmbeddedConsole):
    @cached_property
    def ops(self) -> OperatorStore:
        """The operator's store as a separate agent process opens it (not the web app's)."""
        return OperatorStore(self.store.engine)

    def new_agent(self, **kwargs: object) -> OperatorAgent:
        return OperatorAgent.embedded(self.server, "operator", "operator", store=self.ops, **kwargs)

    def cycle(self, agent: OperatorAgent) -> dict:
        """Close the running slot and hand its market_info to the agent, as run() would."""
        info = self.runner.close_running_slot()
        agent.on_market_cycle(info)
        return info


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    for embedded in open_console(tmp_path, generate_scenario(2, 4, seed=5)):
        yield Console(embedded.store, embedded.runner, embedded.server, embedded.settings)
