"""The console's pages without a browser: an embedded exchange, its app, a logged-in request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from embedded_console import EmbeddedConsole, open_console

from app.exchange.generate import generate_scenario


@pytest.fixture
def console(tmp_path: Path) -> Iterator[EmbeddedConsole]:
    yield from open_console(tmp_path, generate_scenario(2, 3, seed=2))
