"""``python -m app``: the embedded exchange with its Grid Operator API and console on ``PORT``
(8050), printing every closed slot; ``python -m app users ...`` manages the users of the
store instead (``app.users_cli``: add, passwd, list, remove, set-role, grant, revoke, set-admin).

A setting that cannot work (``app.preflight``: ``SECRET_KEY`` unset or no user outside demo
mode, ...) stops it with one line on stderr and exit status 2."""

import logging
import sys

if len(sys.argv) > 1 and sys.argv[1] == "users":
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from app.users_cli import main

    raise SystemExit(main(sys.argv[2:]))

from app.preflight import start_settings  # noqa: E402
from app.serve import serve  # noqa: E402

logging.basicConfig(level=logging.WARNING)
settings = start_settings("app")
raise SystemExit(serve(settings, "127.0.0.1", settings.port))
