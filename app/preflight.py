"""What the web process checks once, in gunicorn's master, before any worker boots.

``problem()`` returns one line saying why the deployment cannot start (``SECRET_KEY`` unset
outside demo mode, a bad setting, a database whose schema is not the newest), or None. The
master then stops with that line (``gunicorn.conf.py``) instead of every worker failing on its
own; ``app.wsgi`` checks the same again for servers without that hook.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.config import ConfigError, Settings


def problem(environ: Mapping[str, str] | None = None) -> str | None:
    try:
        settings = Settings.from_env(environ)
    except ConfigError as exc:
        return str(exc)
    from app.store.db import NotMigrated, check_migrated, make_engine

    engine = make_engine(settings.database_url)
    try:
        check_migrated(engine)
    except NotMigrated as exc:
        return str(exc)
    finally:
        engine.dispose()  # nothing of it may reach the forked workers
    return None
