"""Generate a scenario of N communities x M houses with a realistic mix of assets.

    python -m app.exchange.generate --communities 20 --houses 500 --seed 7 -o big.yaml

Each community gets the same shares of house types (consumers, PV prosumers, PV + battery,
EV owners, heat-pump houses), with the counts rounded per community from the seed. Houses of a
type are written once with a ``count``: per-house diversity (annual energy, time shift, noise)
comes from the seed when the scenario is loaded, so a 10,000-house file stays small.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used, so that ``--help`` answers at once
    from app.exchange.scenario import Scenario

HOUSE_TYPES: list[tuple[str, float, list[dict]]] = [
    ("Consumer", 0.30, [{"type": "load", "annual_kwh": 3000}]),
    ("Prosumer", 0.30, [{"type": "load", "annual_kwh": 4000}, {"type": "pv", "kwp": 6}]),
    (
        "Prosumer with battery",
        0.15,
        [
            {"type": "load", "annual_kwh": 4500},
            {"type": "pv", "kwp": 8},
            {"type": "battery", "capacity_kwh": 10, "power_kw": 5},
        ],
    ),
    (
        "EV owner",
        0.17,
        [
            {"type": "load", "annual_kwh": 4000},
            {"type": "pv", "kwp": 5, "azimuth_deg": 225},
            {
                "type": "flexible_load",
                "kind": "ev",
                "energy_kwh": 14,
                "power_kw": 11,
                "available_from": "17:30",
                "due_by": "07:00",
            },
        ],
    ),
    (
        "Heat-pump house",
        0.08,
        [
            {"type": "load", "annual_kwh": 3500},
            {"type": "pv", "kwp": 7, "azimuth_deg": 135},
            {
                "type": "flexible_load",
                "kind": "heat_pump",
                "energy_kwh": 12,
                "power_kw": 3,
                "available_from": "05:00",
                "due_by": "22:00",
                "price_full_ct_per_kwh": 28,
                "price_min_ct_per_kwh": 50,
            },
        ],
    ),
]


def generate_scenario(
    communities: int,
    houses_per_community: int,
    seed: int = 0,
    start: dt.datetime = dt.datetime(2026, 6, 21),
    name: str | None = None,
) -> Scenario:
    import numpy as np

    from app.exchange.scenario import parse_scenario

    rng = np.random.default_rng([seed, 99])
    shares = np.array([share for _, share, _ in HOUSE_TYPES])
    community_list = []
    for c in range(communities):
        counts = rng.multinomial(houses_per_community, shares)
        houses = [
            {"name": type_name, "count": int(n), "assets": assets}
            for (type_name, _, assets), n in zip(HOUSE_TYPES, counts, strict=True)
            if n > 0
        ]
        community_list.append({"name": f"Community {c + 1}", "fee_ct_per_kwh": 1, "houses": houses})
    data = {
        "name": name or f"generated-{communities}x{houses_per_community}-seed{seed}",
        "start": start.isoformat(),
        "slot_length_min": 15,
        "seed": seed,
        "supplier": {"sell_rate_ct_per_kwh": 30, "feed_in_rate_ct_per_kwh": 8},
        "grid": {"name": "Grid", "fee_ct_per_kwh": 2, "communities": community_list},
    }
    return parse_scenario(data, "generated")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--communities", type=int, default=10)
    parser.add_argument("--houses", type=int, default=100, help="houses per community")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    if args.communities < 1 or args.houses < 1:
        parser.error("--communities and --houses must be >= 1")
    from app.exchange.scenario import dump_scenario

    text = dump_scenario(generate_scenario(args.communities, args.houses, args.seed))
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
