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
from pathlib import Path

import pytest
from embedded_console import EmbeddedConsole, open_console, store_url
from whatif_scenario import SCENARIO
from whatif_worker import Worker, worker_command, worker_env

from app.config import ROOT
from app.exchange.scenario import dump_scenario


def _console(tmp_path: Path, **env: str) -> Iterator[EmbeddedConsole]:
    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text(dump_scenario(SCENARIO), encoding="utf-8")
    yield from open_console(
        tmp_path, SCENARIO, SCENARIO=str(scenario_file), DATABASE_URL=store_url(tmp_path), **env
    )


@pytest.fixture
def console(tmp_path: Path) -> Iterator[EmbeddedConsole]:
    yield from _console(tmp_path)


@pytest.fixture
def celery_console(tmp_path: Path, redis_url: str) -> Iterator[EmbeddedConsole]:
    yield from _console(tmp_path, REDIS_URL=redis_url)


@pytest.fixture
def celery_worker(celery_console: EmbeddedConsole, tmp_path: Path) -> Iterator[Worker]:
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
