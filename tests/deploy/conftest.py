"""Fixtures of the deployment tests: the Procfile's commands as real processes.

``procs`` starts commands the way a PaaS does (``deploy_procs.Procs``) and kills every process
group still alive at teardown, so no test leaves a gunicorn worker or a clock behind.
``redis_url`` (``tests/conftest.py``) is the session's throwaway ``redis-server``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from deploy_procs import Procs

from app.exchange.scenario import Scenario


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
