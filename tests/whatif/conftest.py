"""What-if tests: a small generated scenario, and the console on an embedded exchange.

``console`` is the fixture of ``tests/console`` (an exchange on SQLite, its app, the operator
agent driven by hand, ``as_user`` for a logged-in request), built here on the what-if's own
scenario file so that "the live scenario" of a run is the one the exchange runs.

``celery_console`` is the same console with ``REDIS_URL`` set (a throwaway ``redis-server``,
``tests/redis_server.py``): its background callbacks go to Celery. ``celery_worker`` is the
Procfile's worker for it, a real ``celery -A app.entry.worker worker`` process on the same
settings; it is killed (its process group) at teardown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from whatif_scenario import SCENARIO
from whatif_worker import Worker, worker_command, worker_env

from app.config import ROOT, Settings
from app.entry.web import create_app
from app.exchange.grid import build_grid
from app.exchange.runner import ExchangeRunner
from app.exchange.scenario import dump_scenario
from app.operator.agent import OperatorAgent
from app.security import signed_in_request
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
        """A request context with ``username`` signed in (None: nobody); a name that is not a
        user yet is added with ``role`` (default: viewer)."""
        users = self.server.extensions["gridfee"].users
        if username and users.get(username) is None:
            users.add(username, "password-of-a-test", role or "viewer", source="test")
        with signed_in_request(self.server, username):
            yield


def _console(tmp_path: Path, **env: str) -> Iterator[Console]:
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
            "DATABASE_URL": f"sqlite:///{tmp_path / 'c.sqlite3'}",
            **env,
        }
    )
    server = create_app(settings, store=store)
    agent = OperatorAgent.embedded(server, "operator", "operator", store=server.extensions["console"].ops)
    yield Console(store, runner, server, agent, settings)
    store.engine.dispose()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    yield from _console(tmp_path)


@pytest.fixture
def celery_console(tmp_path: Path, redis_url: str) -> Iterator[Console]:
    yield from _console(tmp_path, REDIS_URL=redis_url)


@pytest.fixture
def celery_worker(celery_console: Console, tmp_path: Path) -> Iterator[Worker]:
    """A worker for ``celery_console``, answering PING (up to 60 s for it to start)."""
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            worker_command(),
            cwd=ROOT,
            env=worker_env(celery_console.settings),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: teardown ends the pool's processes too
        )
    worker = Worker(proc, log)
    celery = celery_console.server.extensions["dash_app"]._background_manager.handle
    try:
        deadline = time.monotonic() + 60
        while not celery.control.ping(timeout=0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the celery worker did not start:\n{worker.log_tail()}")
        yield worker
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        try:  # the pool's processes of a worker that did not end them
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
