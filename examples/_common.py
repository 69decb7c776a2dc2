"""Shared command line of the examples: where the exchange is and who you are."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

# run from a checkout without installing anything: the repository root holds the `app` package
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", default=os.environ.get("GRID_API_URL", "http://127.0.0.1:8050"))
    parser.add_argument("--user", default=os.environ.get("API_CLIENT_USERNAME", "operator"))
    parser.add_argument("--password", default=os.environ.get("API_CLIENT_PASSWORD", "operator"))
    parser.add_argument("--cycles", type=int, default=None, help="stop after this many market cycles")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return args


def managed_markets(market_info: dict, levels=(0, 1)) -> list[dict]:  # noqa: ANN001
    """The grid and community markets of a market cycle (houses are markets too, left alone here)."""
    return [m for m in market_info["markets"] if m["level"] in levels]
