"""Benchmark of the exchange core: one simulated day (96 slots of 15 min) at 100, 1,000 and 10,000 houses.

    .venv/bin/python bench/exchange_day.py [--sizes 100,1000,10000] [--repeat N] [--json]

What is measured, per size, in a fresh worker process (so that peak RSS is that size's own):

* **build s**: ``generate_scenario(communities, houses_per_community)`` plus ``Simulation(scenario)``;
* **day s**: the 96 slots in fast-forward, each ``outcome = sim.run_slot(slot, fees)`` followed by
  ``outcome.stats(sim.grid, fees)`` with the initial fees, i.e. what the runner does per slot minus
  the database write. It includes building the day's load and PV profiles (demandlib, pvlib), which
  ``run_slot`` does lazily in the first slot of a day;
* **peak RSS MB**: ``ru_maxrss`` of the worker at its end, imports of NumPy, pandas, pvlib and
  demandlib included (their import *time* is not counted: the worker imports them before timing).

With ``--repeat N`` the worker builds a fresh Simulation and runs the day N times, clearing the
per-date profile caches in between so that every run computes its day as the runner does on a new
date; the table and ``day_seconds`` show the median, ``day_seconds_min`` the minimum.

Target: 10,000 houses (20 communities x 500) in <= 5 s per day and <= 1 GB peak RSS on 2 cores;
goal 2 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLOTS_PER_DAY = 96
SEED = 7
# houses -> (communities, houses per community)
LAYOUTS: dict[int, tuple[int, int]] = {100: (10, 10), 1000: (10, 100), 10000: (20, 500)}


def run_worker(houses: int, repeat: int) -> dict:
    """Build and run ``repeat`` days of ``houses`` houses in this process; returns the timings."""
    import resource

    # the heavy imports, done before any timing (pvlib and demandlib are imported lazily by the core)
    import demandlib.bdew  # noqa: F401
    import pvlib  # noqa: F401
    import pvlib.location  # noqa: F401

    from app.exchange import profiles
    from app.exchange.generate import generate_scenario
    from app.exchange.simulation import Simulation

    communities, per_community = LAYOUTS[houses]
    build, day = [], []
    for _ in range(repeat):
        profiles._h25_day_kw.cache_clear()
        profiles._pv_day_kw_per_kwp.cache_clear()
        t0 = time.perf_counter()
        sim = Simulation(generate_scenario(communities, per_community, seed=SEED))
        t1 = time.perf_counter()
        fees = sim.grid.initial_fee_ct_per_kwh
        for slot in range(SLOTS_PER_DAY):
            outcome = sim.run_slot(slot, fees)
            outcome.stats(sim.grid, fees)
        t2 = time.perf_counter()
        assert sim.grid.n_houses == houses, sim.grid.n_houses
        build.append(t1 - t0)
        day.append(t2 - t1)
        del sim, outcome
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"houses": houses, "build_seconds": build, "day_seconds": day, "peak_rss_kib": peak_kib}


def measure(houses: int, repeat: int) -> dict:
    """Run one size in a fresh interpreter and parse the JSON line it prints last."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(houses), "--repeat", str(repeat)]
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"worker for {houses} houses failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarise(results: list[dict]) -> dict:
    """The JSON report: medians per size, plus minimum day and build times."""
    out: dict[str, dict[str, float]] = {
        "day_seconds": {},
        "peak_rss_mb": {},
        "day_seconds_min": {},
        "build_seconds": {},
    }
    for r in results:
        key = str(r["houses"])
        out["day_seconds"][key] = round(statistics.median(r["day_seconds"]), 3)
        out["peak_rss_mb"][key] = round(r["peak_rss_kib"] / 1024, 1)
        out["day_seconds_min"][key] = round(min(r["day_seconds"]), 3)
        out["build_seconds"][key] = round(statistics.median(r["build_seconds"]), 3)
    return out


def print_table(summary: dict, repeat: int) -> None:
    extra = repeat > 1
    head = f"{'houses':>8} | {'build s':>8} | {'day s':>8} | " + (f"{'min s':>8} | " if extra else "")
    head += f"{'slots/s':>8} | {'peak RSS MB':>11}"
    print(head)
    print("-" * len(head))
    for key, day in summary["day_seconds"].items():
        row = f"{int(key):>8,} | {summary['build_seconds'][key]:>8.3f} | {day:>8.3f} | "
        if extra:
            row += f"{summary['day_seconds_min'][key]:>8.3f} | "
        print(row + f"{SLOTS_PER_DAY / day:>8.1f} | {summary['peak_rss_mb'][key]:>11.1f}")
    if extra:
        print(f"(day s and build s: median of {repeat} runs; min s: fastest day)")


def parse_sizes(text: str) -> list[int]:
    sizes = [int(s) for s in text.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in LAYOUTS]
    if unknown or not sizes:
        raise argparse.ArgumentTypeError(f"sizes must be among {', '.join(map(str, LAYOUTS))}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=list(LAYOUTS), help="e.g. 100,1000")
    parser.add_argument("--repeat", type=int, default=1, help="days per size (fresh Simulation each)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the results")
    parser.add_argument("--worker", type=int, metavar="HOUSES", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    if args.worker is not None:
        if args.worker not in LAYOUTS:
            parser.error(f"--worker must be among {', '.join(map(str, LAYOUTS))}")
        sys.path.insert(0, str(ROOT))
        print(json.dumps(run_worker(args.worker, args.repeat)), flush=True)
        return 0
    summary = summarise([measure(n, args.repeat) for n in args.sizes])
    print_table(summary, args.repeat)
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
