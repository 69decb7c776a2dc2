"""A live test server of the SDK face: the wire client plus the store and runner behind it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from gsy_wire import SdkWire
from werkzeug.serving import make_server

from app.config import ROOT, Settings
from app.entry.web import create_app
from app.exchange.runner import ExchangeRunner
from app.store.repo import ExchangeStore

SIM = "5d1c2a4e-0000-4000-8000-00000000c0de"


def start_server(instance: Path, store: ExchangeStore, environ: dict[str, str] | None = None):
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


@dataclass
class GsyServer(SdkWire):
    store: ExchangeStore
    runner: ExchangeRunner
    app: object
    tmp_path: Path
    extra_servers: list = field(default_factory=list)

    def another_worker(self, **environ: str) -> GsyServer:
        """A second server on this store, as another gunicorn worker of the same deployment
        (``environ``: its own settings); it is shut down with this one."""
        http, _ = start_server(self.tmp_path, self.store, environ)
        self.extra_servers.append(http)
        return GsyServer(
            f"http://127.0.0.1:{http.server_port}", self.sim, self.store, self.runner, None, self.tmp_path
        )

    def close(self, n: int = 1) -> list[dict]:
        return [self.runner.close_running_slot() for _ in range(n)]

    def market(self, name: str) -> str:
        (found,) = [m.uuid for m in self.store.grid.markets if m.name == name]
        return found

    def label(self, slot: int) -> str:
        return self.runner.clock.label(slot)

    def running_slot(self) -> int:
        return self.store.clock_state().running_slot
