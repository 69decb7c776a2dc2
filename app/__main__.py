"""``python -m app``: the embedded exchange with its Grid Operator API on ``PORT`` (8050),
printing every closed slot. The Dash console joins this process in a later issue."""

import logging

from app.config import Settings
from app.serve import serve

logging.basicConfig(level=logging.WARNING)
settings = Settings.from_env()
raise SystemExit(serve(settings, "127.0.0.1", settings.port))
