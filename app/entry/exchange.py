"""``python -m app.entry.exchange [--port 8051] [--host 127.0.0.1]``: the exchange and its API, no Dash."""

from __future__ import annotations

import argparse
import logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.entry.exchange", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8051)
    parser.add_argument("--quiet", action="store_true", help="do not print each slot's stats")
    args = parser.parse_args(argv)

    # imported after --help has answered: it answers at once, without Flask or the store
    from app.entry.preflight import start_settings
    from app.entry.serve import serve

    logging.basicConfig(level=logging.WARNING)
    return serve(start_settings("exchange"), args.host, args.port, print_slots=not args.quiet)


if __name__ == "__main__":
    raise SystemExit(main())
