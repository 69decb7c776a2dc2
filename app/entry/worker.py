"""The what-if worker: ``celery -A app.entry.worker worker`` (the Procfile's ``worker:``).

Importing this module builds the app as the web process does (``create_app`` from the
environment, no migration): that registers the console's background callbacks as Celery tasks
of ``celery_app`` (Dash names each task after its callback, so the worker must register the same
ones) and gives the jobs the worker's own job context (see ``app.whatif.queue``). It needs the
web process's settings: ``REDIS_URL`` above all, and ``DATABASE_URL``/``SCENARIO`` for "the live
scenario" of a run.

A worker that cannot work refuses to start with one line on stderr and exit status 1, after
trying Redis for about ``STARTUP_WAIT_S`` seconds (a Redis add-on may come up after the worker):
``REDIS_URL`` unset (the web process then runs the what-if jobs itself) or not answering, or a
setting that stops the web process too. The platform restarts a worker that exited.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import NoReturn

from flask import Flask

from app.config import ConfigError, Settings
from app.entry.web import create_app
from app.exchange.scenario import ScenarioError
from app.store.db import NotMigrated
from app.store.repo import StoreMismatch
from app.whatif.queue import check_redis_url, redis_problem

STARTUP_WAIT_S = 20.0
EXIT_REFUSED = 1


def _refuse(message: str) -> NoReturn:
    print(f"gridfee worker: refusing to start: {message}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_REFUSED)


def _build() -> Flask:
    try:
        settings = Settings.from_env()
        if not settings.redis_url:
            raise ConfigError("REDIS_URL is not set: without it the web process runs the what-if jobs itself")
        check_redis_url(settings.redis_url)
    except (ConfigError, ValueError) as exc:
        _refuse(str(exc))
    deadline = time.monotonic() + STARTUP_WAIT_S
    while problem := redis_problem(settings.redis_url):
        if time.monotonic() > deadline:
            _refuse(problem)
        time.sleep(1.0)
    try:
        server = create_app(settings, run_migrations=False)
    except (ScenarioError, NotMigrated, StoreMismatch, ValueError) as exc:
        _refuse(str(exc))
    return server


if not logging.getLogger().handlers:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
    )
logging.getLogger("alembic").setLevel(logging.WARNING)
server = _build()
celery_app = server.extensions["dash_app"]._background_manager.handle
