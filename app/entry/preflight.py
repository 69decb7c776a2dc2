"""What every entry point checks before it starts: one line saying why it cannot, or nothing.

* ``settings_problem(settings)``: what the settings make impossible. Outside demo mode nobody
  could sign in without a user (the demo users exist in demo mode only): the store must have a
  user (``python -m app users add``), or ``ADMIN_PASSWORD`` or ``USERS_FILE`` (a readable file
  with at least one user) must seed one.
* ``problem()``: the web process's check, once in gunicorn's master before any worker boots
  (``gunicorn.conf.py``; ``app.entry.wsgi`` checks the same again for servers without that hook): a
  setting that cannot work (``SECRET_KEY`` unset outside demo mode, the above, a bad number) or a
  database whose schema is not the newest. The master then stops with that line instead of
  every worker failing on its own.
* ``start_settings(process)``: the processes started by hand (``python -m app``, ``python -m
  app.exchange``), which migrate their store themselves: the settings, or exit status 2 with
  the reason on stderr. The clock (``python -m app.entry.clock``) calls ``settings_problem`` itself.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from app.config import ConfigError, Settings

# SQLAlchemy, alembic and the API's user book are imported inside the functions that need them:
# the clock imports this module before it answers --help or refuses a setting (0.07 s instead of 0.7 s).

EXIT_CONFIG = 2


NO_USERS = (
    "no users when DEMO is off: nobody could sign in; set ADMIN_PASSWORD (adds the grid operator "
    "ADMIN_USERNAME, 'admin', with the admin right), or USERS_FILE, or add one with "
    "'python -m app users add NAME --role grid_operator --admin'"
)


def stored_users(database_url: str) -> int:
    """Users (other than the demo ones) in the store at ``database_url``; 0 when there is no store
    yet (a SQLite file is not created by asking) or it has no users table."""
    from sqlalchemy import func, select

    from app.store.db import make_engine
    from app.store.schema import users

    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[-1]
        if not path or path == ":memory:" or not Path(path).exists():
            return 0
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(users).where(users.c.source != "demo")).scalar()
                or 0
            )
    except Exception:  # no such table, an unreachable store: no users known here
        return 0
    finally:
        engine.dispose()  # nothing of it may reach forked workers


def settings_problem(settings: Settings) -> str | None:
    from app.api.auth import users_from_file

    if settings.users_file is not None:
        try:
            users_from_file(settings.users_file)  # raises when unreadable or without users
        except ValueError as exc:
            return str(exc)
        return None
    if settings.demo or settings.admin_password or stored_users(settings.database_url):
        return None
    return NO_USERS


def problem(environ: Mapping[str, str] | None = None) -> str | None:
    try:
        settings = Settings.from_env(environ)
    except ConfigError as exc:
        return str(exc)
    found = settings_problem(settings)
    if found:
        return found
    from app.store.db import NotMigrated, check_migrated, make_engine

    engine = make_engine(settings.database_url)
    try:
        check_migrated(engine)
    except NotMigrated as exc:
        return str(exc)
    finally:
        engine.dispose()  # nothing of it may reach the forked workers
    return None


def start_settings(process: str, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from the environment, or ``SystemExit(2)`` after one line on stderr."""
    try:
        settings = Settings.from_env(environ)
        found = settings_problem(settings)
    except ConfigError as exc:
        found = str(exc)
    if found:
        print(f"gridfee {process}: refusing to start: {found}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CONFIG)
    return settings
