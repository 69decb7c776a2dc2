"""``python -m app``: the embedded exchange with its Grid Operator API on ``PORT`` (8050),
printing every closed slot. The Dash console joins this process in a later issue.

A setting that cannot work (``app.preflight``: ``SECRET_KEY`` or ``USERS_FILE`` unset outside
demo mode, ...) stops it with one line on stderr and exit status 2."""

import logging

from app.preflight import start_settings
from app.serve import serve

logging.basicConfig(level=logging.WARNING)
settings = start_settings("app")
raise SystemExit(serve(settings, "127.0.0.1", settings.port))
