"""The web process: ``gunicorn app.entry.wsgi:server`` (the Procfile's ``web:``).

This builds the Flask server (API and console) from the environment and nothing else: no
thread, no runner, no agent, no migration. The Procfile's ``release:`` migrates once per deploy
and its ``clock:`` (``python -m app.entry.clock``) runs the exchange and the operator agent, so any
number of workers can import this module (DESIGN §2, "One writer, many readers").

A setting that cannot work (``SECRET_KEY`` or ``USERS_FILE`` unset outside demo mode, a
database whose schema is not migrated, a bad scenario or users file) stops the import with one
line on stderr and exit status 4. 4 is gunicorn's "App failed to load": the master then stops
instead of booting workers again and again.
"""

from __future__ import annotations

import logging
import sys

from flask import Flask

from app.config import ConfigError, Settings
from app.entry.preflight import settings_problem
from app.entry.web import create_app, settle_heap
from app.exchange.scenario import ScenarioError
from app.store.db import NotMigrated
from app.store.repo import StoreMismatch

EXIT_APP_LOAD_ERROR = 4  # gunicorn.arbiter.Arbiter.APP_LOAD_ERROR


def _build() -> Flask:
    try:
        settings = Settings.from_env()
        message = settings_problem(settings)  # e.g. no users outside demo mode
        if message is None:
            return create_app(settings, run_migrations=False)
    except (ConfigError, ScenarioError, NotMigrated, StoreMismatch) as exc:
        message = str(exc)
    except ValueError as exc:  # a users file that cannot be read
        if "users file" not in str(exc):
            raise
        message = str(exc)
    print(f"gridfee web: refusing to start: {message}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_APP_LOAD_ERROR)


if not logging.getLogger().handlers:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
    )
logging.getLogger("alembic").setLevel(logging.WARNING)  # the schema check's chatter
server = _build()
settle_heap()
