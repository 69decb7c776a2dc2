"""Fixtures of the deployment tests: the Procfile's commands as real processes.

``procs`` starts commands the way a PaaS does (``deploy_procs.Procs``) and kills every process
group still alive at teardown, so no test leaves a gunicorn worker or a clock behind.
``redis_url`` (``tests/conftest.py``) is the session's throwaway ``redis-server``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from deploy_procs import Procs, process_env
from flask import Flask
from pg_server import free_port

from app.config import Settings
from app.entry.web import create_app
from app.exchange.generate import generate_scenario
from app.exchange.grid import build_grid
from app.exchange.scenario import Scenario
from app.store.repo import ExchangeStore


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    yield p
    p.kill_all()


@pytest.fixture
def scenario_file(tmp_path: Path, small_scenario: Scenario) -> Path:
    """The small test scenario (hour-long slots, 2 x 3 houses) as a scenario file."""
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(small_scenario.model_dump(mode="json")), encoding="utf-8")
    return path


@pytest.fixture
def server_env(tmp_path: Path, scenario_file: Path) -> Callable[..., tuple[int, dict[str, str]]]:
    """``server_env(url, workers=, slot_seconds=, secret=)``: a free port and the environment of a
    deployment of the small scenario on the store at ``url``, ``workers`` gunicorn workers."""

    def make(url: str, *, workers: int, slot_seconds: float, secret: str) -> tuple[int, dict[str, str]]:
        port = free_port()
        settings = {"PORT": str(port), "WEB_CONCURRENCY": str(workers), "DATABASE_URL": url}
        settings |= {"INSTANCE_DIR": str(tmp_path), "SCENARIO": str(scenario_file)}
        return port, process_env(**settings, SLOT_SECONDS=str(slot_seconds), SECRET_KEY=secret)

    return make


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """``make_app(**environ)``: an app on a fresh small exchange (console included); the same
    ``DATABASE=name`` gives apps on one store (like the workers of one deployment)."""
    stores: list[ExchangeStore] = []

    def make(database: str | None = None, **environ: str) -> Flask:
        scenario = generate_scenario(2, 3, seed=1)
        name = database or f"s{len(stores)}"
        url = f"sqlite:///{tmp_path / name}.sqlite3"
        store = ExchangeStore.open(url, scenario, build_grid(scenario))
        stores.append(store)
        env = {"INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "t", "SLOT_SECONDS": "0", **environ}
        return create_app(Settings.from_env(env), store=store)

    yield make
    for store in stores:
        store.engine.dispose()
