"""Benchmark of the runner: one simulated day (96 slots of 15 min) of N houses, with its store.

    .venv/bin/python bench/exchange_day.py [--houses 100,1000,10000] [--store none|sqlite|postgresql]
                                           [--repeat K] [--json]

What is measured, per size, in a fresh worker process (so that peak RSS is that size's own):

* **build s**: ``generate_scenario`` (the generator's grid of ``--houses`` houses: communities of
  500 houses from 10,000 up, 10 communities below) plus ``Simulation(scenario)``;
* **core day s**: the 96 slots in fast-forward, each ``outcome = sim.run_slot(slot, fees)``
  followed by ``outcome.stats(sim.grid, fees)``, i.e. the exchange core without any store. It
  includes building the day's load and PV profiles (demandlib, pvlib), which ``run_slot`` does
  lazily in the first slot of a day;
* **day s**: with ``--store sqlite|postgresql``, what ``python -m app.entry.run --slots 96
  --reset --quiet`` does with ``SLOT_SECONDS=0``: ``ExchangeRunner(store, 0).run(96)`` on a
  fresh, migrated and registered store (a SQLite file in a temporary folder, or a database of a
  throwaway PostgreSQL server started as the tests do), i.e. the core plus, per slot, the
  transaction that stores every market's stats and the asset state and opens the next slot.
  With ``--store none`` it is the core day;
* **day CPU s**: the CPU time of the worker process during the day (the PostgreSQL server's own
  is not in it): a figure less swayed than **day s** by other processes on a shared machine;
* **peak RSS MB**: ``ru_maxrss`` of the worker at its end, imports of NumPy, pandas, pvlib and
  demandlib included (their import *time* is not counted: the worker imports them before timing).

With ``--repeat K`` each size runs K core days and K store days (a fresh Simulation / store each,
the per-date profile caches cleared in between so that every run computes its day as the runner
does on a new date); the table and ``day_seconds`` show the median, ``day_seconds_min`` the minimum.
With ``--json`` the last line is one object::

    {"day_seconds": {"<N>": s}, "peak_rss_mb": {"<N>": mb}, "store": "sqlite",
     "core_day_seconds": {"<N>": s}, ...}

Targets (issue 18): 10,000 houses <= 2 s per day with the store on SQLite and on PostgreSQL;
100,000 houses <= 30 s and <= 2 GB peak RSS on SQLite; on a quiet 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLOTS_PER_DAY = 96
SEED = 7
STORES = ("none", "sqlite", "postgresql")
# houses -> (communities, houses per community) of the sizes the first version of this bench knew
LAYOUTS: dict[int, tuple[int, int]] = {100: (10, 10), 1000: (10, 100), 10000: (20, 500)}


def layout(houses: int) -> tuple[int, int]:
    """(communities, houses per community) with exactly ``houses`` houses.

    Communities of about 500 houses from 10,000 houses up, else about 10 communities; the
    number of communities is the nearest divisor of ``houses`` to that aim.
    """
    if houses in LAYOUTS:
        return LAYOUTS[houses]
    aim = max(1, round(houses / 500)) if houses >= 10_000 else min(10, houses)
    divisors = [c for c in range(1, houses + 1) if houses % c == 0]
    communities = min(divisors, key=lambda c: (abs(c - aim), c))
    return communities, houses // communities


def _clear_profile_caches() -> None:
    from app.exchange import profiles

    profiles._h25_day_kw.cache_clear()
    profiles._pv_day_kw_per_kwp.cache_clear()
    disk = getattr(profiles, "clear_caches", None)
    if disk is not None:
        disk()


def run_worker(houses: int, repeat: int, store_url: str | None) -> dict:
    """Build and run ``repeat`` days of ``houses`` houses in this process; returns the timings.

    ``store_url``: an empty database for the runner's days (a SQLite URL is used as a folder:
    one file per run), or None for the core only.
    """
    import resource

    # the heavy imports, done before any timing (pvlib and demandlib are imported lazily by the core)
    import demandlib.bdew  # noqa: F401
    import pvlib
    import pvlib.location  # noqa: F401

    from app.exchange.generate import generate_scenario
    from app.exchange.grid import build_grid
    from app.exchange.runner import ExchangeRunner
    from app.exchange.simulation import Simulation
    from app.store.db import migrate
    from app.store.repo import ExchangeStore

    communities, per_community = layout(houses)
    build, core, core_cpu, day, day_cpu, store_setup = [], [], [], [], [], []
    for _ in range(repeat):
        _clear_profile_caches()
        t0 = time.perf_counter()
        sim = Simulation(generate_scenario(communities, per_community, seed=SEED))
        t1, cpu = time.perf_counter(), time.process_time()
        fees = sim.grid.initial_fee_ct_per_kwh
        for slot in range(SLOTS_PER_DAY):
            outcome = sim.run_slot(slot, fees)
            outcome.stats(sim.grid, fees)
        t2, cpu = time.perf_counter(), time.process_time() - cpu
        core_cpu.append(cpu)
        assert sim.grid.n_houses == houses, sim.grid.n_houses
        build.append(t1 - t0)
        core.append(t2 - t1)
        del sim, outcome
    if store_url is not None:
        for run in range(repeat):
            _clear_profile_caches()
            url = store_url
            if url.startswith("sqlite"):
                url = f"sqlite:///{Path(url.split('///', 1)[1]) / f'run{run}.sqlite3'}"
            scenario = generate_scenario(communities, per_community, seed=SEED)
            t0 = time.perf_counter()
            migrate(url)
            store = ExchangeStore(url, scenario, build_grid(scenario))
            store.reset()
            store.register()
            runner = ExchangeRunner(store, 0)
            t1, cpu = time.perf_counter(), time.process_time()
            closed = runner.run(SLOTS_PER_DAY)
            t2, cpu = time.perf_counter(), time.process_time() - cpu
            assert closed == SLOTS_PER_DAY and store.closed_slots()[-1] == SLOTS_PER_DAY - 1
            store.reset()  # the next run starts from an empty store, as --reset does
            store.engine.dispose()
            store_setup.append(t1 - t0)
            day.append(t2 - t1)
            day_cpu.append(cpu)
            del runner, store
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "houses": houses,
        "build_seconds": build,
        "core_day_seconds": core,
        "day_seconds": day or core,
        "day_cpu_seconds": day_cpu or core_cpu,
        "store_setup_seconds": store_setup,
        "peak_rss_kib": peak_kib,
    }


def measure(houses: int, repeat: int, store_url: str | None) -> dict:
    """Run one size in a fresh interpreter and parse the JSON line it prints last."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(houses), "--repeat", str(repeat)]
    if store_url is not None:
        cmd += ["--store-url", store_url]
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"worker for {houses} houses failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarise(results: list[dict], store: str) -> dict:
    """The JSON report: medians per size, plus minimum day and build times."""
    out: dict = {
        "day_seconds": {},
        "peak_rss_mb": {},
        "store": store,
        "core_day_seconds": {},
        "day_seconds_min": {},
        "day_cpu_seconds": {},
        "build_seconds": {},
    }
    for r in results:
        key = str(r["houses"])
        out["day_seconds"][key] = round(statistics.median(r["day_seconds"]), 3)
        out["peak_rss_mb"][key] = round(r["peak_rss_kib"] / 1024, 1)
        out["core_day_seconds"][key] = round(statistics.median(r["core_day_seconds"]), 3)
        out["day_seconds_min"][key] = round(min(r["day_seconds"]), 3)
        out["day_cpu_seconds"][key] = round(statistics.median(r["day_cpu_seconds"]), 3)
        out["build_seconds"][key] = round(statistics.median(r["build_seconds"]), 3)
    return out


def print_table(summary: dict, repeat: int) -> None:
    extra = repeat > 1
    head = f"{'houses':>8} | {'build s':>8} | {'core day s':>10} | {'day s':>8} | {'day CPU s':>9} | "
    head += (f"{'min s':>8} | " if extra else "") + f"{'slots/s':>8} | {'peak RSS MB':>11}"
    print(f"store: {summary['store']}")
    print(head)
    print("-" * len(head))
    for key, day in summary["day_seconds"].items():
        row = f"{int(key):>8,} | {summary['build_seconds'][key]:>8.3f} | "
        row += f"{summary['core_day_seconds'][key]:>10.3f} | {day:>8.3f} | "
        row += f"{summary['day_cpu_seconds'][key]:>9.3f} | "
        if extra:
            row += f"{summary['day_seconds_min'][key]:>8.3f} | "
        print(row + f"{SLOTS_PER_DAY / day:>8.1f} | {summary['peak_rss_mb'][key]:>11.1f}")
    if extra:
        print(f"(median of {repeat} runs; min s: fastest day)")


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s.replace("_", "")) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("sizes are whole numbers, e.g. 10000 or 100,1000") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be >= 1")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--houses",
        "--sizes",
        dest="houses",
        type=parse_sizes,
        default=[100, 1000, 10000],
        help="e.g. 100,1000",
    )
    parser.add_argument(
        "--store", choices=STORES, default="sqlite", help="the runner's store (default sqlite)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="days per size (fresh Simulation each)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the results")
    parser.add_argument("--worker", type=int, metavar="HOUSES", help=argparse.SUPPRESS)
    parser.add_argument("--store-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    sys.path.insert(0, str(ROOT))
    if args.worker is not None:
        print(json.dumps(run_worker(args.worker, args.repeat, args.store_url)), flush=True)
        return 0
    results = []
    if args.store == "none":
        results = [measure(n, args.repeat, None) for n in args.houses]
    elif args.store == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-exchange-day-") as tmp:
            for n in args.houses:
                folder = Path(tmp) / str(n)
                folder.mkdir()
                results.append(measure(n, args.repeat, f"sqlite:///{folder}"))
    else:
        sys.path.insert(0, str(ROOT / "tests"))
        from pg_server import PostgresServer  # started as the tests start it

        server = PostgresServer()
        server.start()
        try:
            for n in args.houses:
                results.append(measure(n, args.repeat, server.create_database(f"bench_day_{n}")))
        finally:
            server.stop()
    summary = summarise(results, args.store)
    print_table(summary, args.repeat)
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
