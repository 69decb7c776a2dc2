"""Fixtures of the tests against a Grid Singularity exchange: a console side (settings, store,
operator agent on the gsy link) for a ``GRID_API_URL``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from remote_helpers import Console

from app.config import Settings
from app.operator.store import OperatorStore
from app.store.db import make_engine, migrate


@pytest.fixture
def console_for(tmp_path: Path) -> Iterator[Callable[..., Console]]:
    made: list[Console] = []

    def make(grid_api_url: str, name: str = "console", **env: str) -> Console:
        instance = tmp_path / name
        instance.mkdir(exist_ok=True)
        settings = Settings.from_env(
            {"INSTANCE_DIR": str(instance), "GRID_API_URL": grid_api_url, "SECRET_KEY": "gsy-remote", **env}
        )
        migrate(settings.database_url)
        engine = make_engine(settings.database_url)
        console = Console(settings, engine, OperatorStore(engine, settings.exchange_key))
        made.append(console)
        return console

    yield make
    for console in made:
        console.stop_agent()
        console.engine.dispose()
