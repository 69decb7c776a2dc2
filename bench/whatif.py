"""Wall time of a what-if: 7 days, 4 candidates, on the default scenario and a 1,000-house grid.

    .venv/bin/python bench/whatif.py [--days 7] [--workers N] [--json]

The candidates are those of ``bench/steering.py`` (the page's defaults): zero fee, the 2020
time-of-use table, the 2020 peak tiers (capped at the exchange's maximum fee) and the congestion
controller at 70 % of each market's zero-fee peaks, for the grid and every community. Each
scenario is run twice, with one process and with ``--workers`` (default: one per core), and the
workbook of the parallel run is written too. Times are wall-clock seconds of ``run_whatif`` (the
zero-fee baseline included; the zero candidate reuses it) and of ``whatif_workbook``.

``--json`` prints as last line ``{"cores": n, "days": d, "scenarios": {"<name>": {"houses",
"markets", "sequential_s", "parallel_s", "workers", "workbook_s", "workbook_mb"}}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def candidates(max_fee: float) -> list:
    from steering import controller_params

    from app.tariffs import peak_tiers, tou
    from app.whatif.runs import Candidate

    table = tou.preset_challenge_2020()
    tiers = peak_tiers.preset_challenge_2020().model_dump()
    tiers["cap_ct_per_kwh"] = max_fee
    controller = controller_params(1.0, 1.0)  # the limits: each market's, set by the run
    return [
        Candidate.zero("zero"),
        Candidate(
            "tou",
            {
                0: {"model": "tou", "table": {"all": table["grid"]}},
                1: {"model": "tou", "table": {"all": table["community"]}},
            },
        ),
        Candidate("peak tiers", {0: tiers, 1: tiers}),
        Candidate("controller", {0: controller, 1: controller}, auto_limits=True),
    ]


def measure(scenario, days: int, workers: int | None) -> dict:
    from app.exchange.grid import build_grid
    from app.whatif.runs import run_whatif, whatif_workbook

    grid = build_grid(scenario)
    picks = candidates(scenario.fee_limits.max_ct_per_kwh)
    run_whatif(scenario, picks[:2], 1, workers=1)  # warm the profile caches and imports
    t0 = time.perf_counter()
    run_whatif(scenario, picks, days, workers=1)
    sequential = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = run_whatif(scenario, picks, days, workers=workers)
    parallel = time.perf_counter() - t0
    t0 = time.perf_counter()
    book = whatif_workbook(result)
    workbook = time.perf_counter() - t0
    return {
        "houses": grid.n_houses,
        "markets": len(result.market_uuids),
        "sequential_s": round(sequential, 2),
        "parallel_s": round(parallel, 2),
        "workers": result.workers,
        "workbook_s": round(workbook, 2),
        "workbook_mb": round(len(book) / 1e6, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from app.exchange.generate import generate_scenario
    from app.exchange.scenario import load_scenario

    scenarios = {
        "default": load_scenario(ROOT / "scenarios" / "default.yaml"),
        "generated 10x100": generate_scenario(10, 100),
    }
    results = {name: measure(s, args.days, args.workers) for name, s in scenarios.items()}
    cores = os.cpu_count()
    print(f"what-if, {args.days} days, 4 candidates (zero, tou, peak tiers, controller); {cores} cores")
    print(
        f"{'scenario':<18}{'houses':>8}{'markets':>9}{'1 process s':>13}{'parallel s':>12}"
        f"{'workers':>9}{'xlsx s':>8}{'xlsx MB':>9}"
    )
    for name, r in results.items():
        print(
            f"{name:<18}{r['houses']:>8}{r['markets']:>9}{r['sequential_s']:>13.2f}{r['parallel_s']:>12.2f}"
            f"{r['workers']:>9}{r['workbook_s']:>8.2f}{r['workbook_mb']:>9.2f}"
        )
    if args.json:
        print(json.dumps({"cores": cores, "days": args.days, "scenarios": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
