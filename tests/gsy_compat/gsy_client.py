"""A live test server of the SDK face: the wire client plus the store and runner behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gsy_wire import SdkWire

from app.exchange.runner import ExchangeRunner
from app.store.repo import ExchangeStore


@dataclass
class GsyServer(SdkWire):
    store: ExchangeStore
    runner: ExchangeRunner
    app: object
    tmp_path: Path
    extra_servers: list = field(default_factory=list)

    def close(self, n: int = 1) -> list[dict]:
        return [self.runner.close_running_slot() for _ in range(n)]

    def market(self, name: str) -> str:
        (found,) = [m.uuid for m in self.store.grid.markets if m.name == name]
        return found

    def label(self, slot: int) -> str:
        return self.runner.clock.label(slot)

    def running_slot(self) -> int:
        return self.store.clock_state().running_slot
