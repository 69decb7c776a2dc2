"""Fixtures of the API tests: a small exchange on SQLite with its Flask app and test client.

``make_exchange()`` builds one (see ``helpers.Exchange``): a generated 2-community x 3-house
scenario, a store in the test's ``tmp_path``, a runner at fast-forward whose slots the test
closes by hand (``ex.close()``), and ``create_app`` on that store. Engines are disposed at
teardown.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.exchange.scenario import Scenario

from .helpers import Exchange, build_exchange

_names = itertools.count()


@pytest.fixture
def make_exchange(tmp_path: Path) -> Iterator[Callable[..., Exchange]]:
    """``make_exchange(environ=None, passwords=None, scenario=None, slot_seconds=0)``."""
    made: list[Exchange] = []

    def make(
        environ: dict[str, str] | None = None,
        passwords: dict[str, str] | None = None,
        scenario: Scenario | None = None,
        slot_seconds: float = 0.0,
    ) -> Exchange:
        path = tmp_path / f"exchange-{next(_names)}"
        path.mkdir()
        ex = build_exchange(path, environ, passwords, scenario, slot_seconds)
        made.append(ex)
        return ex

    yield make
    for ex in made:
        ex.store.engine.dispose()


@pytest.fixture
def ex(make_exchange: Callable[..., Exchange]) -> Exchange:
    """A fresh exchange with no closed slot (slot 0 running)."""
    return make_exchange()
