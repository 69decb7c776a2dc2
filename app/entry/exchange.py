"""``python -m app.entry.exchange [--port 8051] [--host 127.0.0.1]``: the exchange and its API, no Dash."""

import argparse
import logging

parser = argparse.ArgumentParser(prog="python -m app.entry.exchange", description=__doc__)
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8051)
parser.add_argument("--quiet", action="store_true", help="do not print each slot's stats")
args = parser.parse_args()

from app.entry.preflight import start_settings  # noqa: E402  (after --help: it answers at once)
from app.entry.serve import serve  # noqa: E402

logging.basicConfig(level=logging.WARNING)
raise SystemExit(serve(start_settings("exchange"), args.host, args.port, print_slots=not args.quiet))
