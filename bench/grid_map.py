"""The grid map with many markets: how long building a tick's elements takes, and what it sends.

    .venv/bin/python bench/grid_map.py [--repeat 20] [--json]

For grids of N communities x M houses (1,000 and 10,000 markets, and 250 with every house
shown), each with a last slot, limits and a few alerts: the mean time of
``app.console.components.grid_map.map_elements`` [ms], the nodes drawn and the size of the elements as JSON
[kB] (what a slot's update sends to each browser when the grid changed; an unchanged grid sends a
``Patch`` of the nodes' data). Past ``COLLAPSE_OVER`` markets the houses are folded into their
community, which is what keeps a 1,000-market map at a few dozen nodes. ``--json`` prints
``{"grids": {"<markets>": {"build_ms", "nodes", "kbytes"}}}`` as the last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GRIDS = ((10, 24), (50, 19), (100, 99))  # communities x houses: 251, 1,001 and 10,001 markets


def grid(communities: int, houses: int) -> tuple[list[dict], dict, dict, dict]:
    from app.operator.alerts import Limits

    top = {"uuid": "g", "name": "Grid", "level": 0, "parent_uuid": None}
    markets = [{**top, "fee_ct_per_kwh": 2, "next_fee_ct_per_kwh": 2}]
    latest, limits, alerts = {}, {}, {}
    for c in range(communities):
        uuid = f"c{c}"
        markets.append({"uuid": uuid, "name": f"Community {c}", "level": 1, "parent_uuid": "g"})
        markets += [
            {"uuid": f"{uuid}.{h}", "name": f"House {c}.{h}", "level": 2, "parent_uuid": uuid}
            for h in range(houses)
        ]
        latest[uuid] = {
            "import_kwh": 5.0 + c % 9,
            "export_kwh": 1.0,
            "fee_ct_per_kwh": 1.0,
            "next_fee_ct_per_kwh": 1.0,
        }
        limits[uuid] = Limits(10.0, 20.0)
        if c % 7 == 0:
            alerts[uuid] = [{"state": "alerting", "message": "import over its limit"}]
    return markets, latest, limits, alerts


def main(argv: list[str] | None = None) -> int:
    from app.console.components.grid_map import map_elements

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    out = {}
    print(f"{'markets':>8} {'nodes':>6} {'build ms':>9} {'kB':>7}")
    for communities, houses in GRIDS:
        markets, latest, limits, alerts = grid(communities, houses)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            elements = map_elements(markets, latest, limits, alerts, {})
            times.append(1000 * (time.perf_counter() - start))
        nodes = sum(1 for e in elements if "source" not in e["data"])
        kbytes = len(json.dumps(elements)) / 1000
        out[str(len(markets))] = {
            "build_ms": round(statistics.mean(times), 2),
            "nodes": nodes,
            "kbytes": round(kbytes, 1),
        }
        print(f"{len(markets):>8} {nodes:>6} {statistics.mean(times):>9.2f} {kbytes:>7.1f}")
    if args.json:
        print(json.dumps({"grids": out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
