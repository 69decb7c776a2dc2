"""``python -m app [--host 127.0.0.1] [--port PORT]``: the embedded exchange with its Grid Operator
API and the console on ``PORT`` (8050), printing every closed slot; ``python -m app users ...``
manages the users of the store instead (``app.entry.users``: add, passwd, list, remove, set-role,
grant, revoke, set-admin).

A setting that cannot work (``app.entry.preflight``: ``SECRET_KEY`` unset or no user outside demo
mode, ...) stops it with one line on stderr and exit status 2. The settings come from the
environment (``app.config``); ``--help`` answers before anything heavy is imported."""

import argparse
import logging
import sys

if len(sys.argv) > 1 and sys.argv[1] == "users":
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from app.entry.users import main

    raise SystemExit(main(sys.argv[2:]))

parser = argparse.ArgumentParser(
    prog="python -m app",
    description="The Grid Fee Console: the embedded exchange, its Grid Operator API (/api/v1) and "
    "the console in one process, the runner and the operator agent in threads. Settings come "
    "from the environment (PORT, DATABASE_URL, SCENARIO, SLOT_SECONDS, ...; see app/config.py).",
)
parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
parser.add_argument("--port", type=int, default=None, help="port (default: the PORT setting, 8050)")
args = parser.parse_args()

from app.entry.preflight import start_settings  # noqa: E402
from app.entry.serve import serve  # noqa: E402

logging.basicConfig(level=logging.WARNING)
settings = start_settings("app")
raise SystemExit(serve(settings, args.host, settings.port if args.port is None else args.port))
