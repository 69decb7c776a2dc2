"""What every entry point checks before it starts: one line saying why it cannot, or nothing.

* ``settings_problem(settings)``: what the settings alone make impossible. Outside demo mode
  nobody could sign in without a users file (the demo users exist in demo mode only), so
  ``USERS_FILE`` must be set and name a readable file with at least one user.
* ``problem()``: the web process's check, once in gunicorn's master before any worker boots
  (``gunicorn.conf.py``; ``app.wsgi`` checks the same again for servers without that hook): a
  setting that cannot work (``SECRET_KEY`` unset outside demo mode, the above, a bad number) or a
  database whose schema is not the newest. The master then stops with that line instead of
  every worker failing on its own.
* ``start_settings(process)``: the processes started by hand (``python -m app``, ``python -m
  app.exchange``), which migrate their store themselves: the settings, or exit status 2 with
  the reason on stderr. The clock (``python -m app.runner``) calls ``settings_problem`` itself.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from app.config import ConfigError, Settings

EXIT_CONFIG = 2


def settings_problem(settings: Settings) -> str | None:
    from app.api.auth import UserBook

    if settings.users_file is None:
        if settings.demo:
            return None
        return (
            "USERS_FILE must be set when DEMO is off: without it nobody can sign in (the demo users "
            "operator/viewer exist in demo mode only); list users with hashed passwords "
            "(python -m app.api.auth hash <password>) as app/api/auth.py describes"
        )
    try:
        UserBook.from_file(settings.users_file)  # raises when unreadable or without users
    except ValueError as exc:
        return str(exc)
    return None


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
