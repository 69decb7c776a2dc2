"""The store's fee book under a long run's history: what the runner and the API pay to read fees.

    .venv/bin/python bench/fee_book.py [--days 1,30,90] [--changes-per-slot 11] [--slots 48]
                                       [--reads 50] [--json]

For each ``--days``, a fresh SQLite store (temporary folder) of a generated grid of 10
communities x 10 houses (111 markets) is given the fee history of that many days of an agent at
work: ``--changes-per-slot`` changes received in every slot (the grid and the communities),
written straight into ``fee_changes`` as the exchange writes them, and its running slot moved to
the slot after them. Then, in this process:

* **resume s**: ``ExchangeRunner.resume()`` on that store, the first start after the history was
  written: it reads the fees in force from the whole history;
* **close ms**: p50 of ``close_running_slot()`` over ``--slots`` slots (the simulation of the slot,
  its stats, the store's transaction and the read of the next slot's fees), the day's profiles
  built before timing; the same fee changes keep coming, one batch per slot;
* **grid read ms**: p50 of ``fees_for_slot(running)`` plus ``fees_for_slot(running + 1)`` (what
  ``GET /grid`` reads) over ``--reads`` calls on a second store object (another worker's, opened
  after those slots); **first read ms**: its first call;
* **restart s**: ``resume()`` of a new store object and runner after those slots (a restart).

With ``--json`` the last line is one object ``{"<days>": {"resume_s", "close_ms", "grid_read_ms",
"first_read_ms", "restart_s", "changes"}}``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COLUMNS = (  # key, title, width, format
    ("changes", "changes", 10, "d"),
    ("resume_s", "resume s", 10, ".3f"),
    ("close_ms", "close ms", 10, ".2f"),
    ("grid_read_ms", "grid read ms", 14, ".3f"),
    ("first_read_ms", "first read ms", 15, ".2f"),
    ("restart_s", "restart s", 11, ".3f"),
)


def measure(folder: Path, days: int, per_slot: int, slots: int, reads: int) -> dict:
    from sqlalchemy import insert, update

    from app.exchange.generate import generate_scenario
    from app.exchange.grid import build_grid
    from app.exchange.runner import ExchangeRunner
    from app.store.db import migrate
    from app.store.repo import ExchangeStore
    from app.store.schema import exchange_state, fee_changes

    url = f"sqlite:///{folder / f'days{days}.sqlite3'}"
    scenario = generate_scenario(10, 10, seed=7)
    grid = build_grid(scenario)
    migrate(url)
    store = ExchangeStore(url, scenario, grid)
    store.register()
    steered = [m.uuid for m in grid.markets if m.level <= 1][:per_slot]
    rng = random.Random(3)
    running = days * scenario.slots_per_day
    rows = [
        dict(
            scenario=store.key,
            market_uuid=uuid,
            fee_ct_per_kwh=round(rng.uniform(0, 30), 2),
            received_slot=slot,
            applies_from_slot=slot + 1,
            source="bench",
            transaction_id=None,
            created_at=0.0,
        )
        for slot in range(running)
        for uuid in steered
    ]
    with store.engine.begin() as conn:
        for i in range(0, len(rows), 50_000):
            conn.execute(insert(fee_changes), rows[i : i + 50_000])
        conn.execute(
            update(exchange_state).where(exchange_state.c.scenario == store.key).values(running_slot=running)
        )

    runner = ExchangeRunner(store, 0)
    t0 = time.perf_counter()
    runner.resume()
    resume_s = time.perf_counter() - t0
    for day in {scenario.day_and_slot(s)[0] for s in range(running, running + slots)}:
        runner.sim.profiles.day(day)
    closes = []
    for _ in range(slots):
        with store.engine.begin() as conn:  # the agent's batch of the slot, as the exchange keeps it
            conn.execute(
                insert(fee_changes),
                [
                    {**r, "received_slot": runner.running_slot, "applies_from_slot": runner.running_slot + 1}
                    for r in rows[:per_slot]
                ],
            )
        t0 = time.perf_counter()
        runner.close_running_slot()
        closes.append(time.perf_counter() - t0)

    worker = ExchangeStore(url, scenario, grid)
    grid_reads = []
    for _ in range(reads):
        t0 = time.perf_counter()
        now = worker.clock_state().running_slot
        worker.fees_for_slot(now)
        worker.fees_for_slot(now + 1)
        grid_reads.append(time.perf_counter() - t0)
    store.engine.dispose()
    restarted = ExchangeStore(url, scenario, grid)
    t0 = time.perf_counter()
    ExchangeRunner(restarted, 0).resume()
    restart_s = time.perf_counter() - t0
    changes = len(rows) + slots * per_slot
    restarted.engine.dispose()
    worker.engine.dispose()
    return {
        "resume_s": round(resume_s, 4),
        "restart_s": round(restart_s, 4),
        "close_ms": round(1000 * statistics.median(closes), 2),
        "grid_read_ms": round(1000 * statistics.median(grid_reads), 3),
        "first_read_ms": round(1000 * grid_reads[0], 2),
        "changes": changes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", default="1,30,90", help="days of fee history, comma-separated")
    parser.add_argument("--changes-per-slot", type=int, default=11)
    parser.add_argument("--slots", type=int, default=48, help="slots closed and timed")
    parser.add_argument("--reads", type=int, default=50, help="grid reads timed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for days in (int(d) for d in args.days.split(",")):
            results[str(days)] = measure(Path(folder), days, args.changes_per_slot, args.slots, args.reads)
    print(f"fee book in SQLite, {args.changes_per_slot} changes a slot")
    print(f"{'days':>6}" + "".join(f"{title:>{width}}" for _, title, width, _ in COLUMNS))
    for days, r in results.items():
        print(f"{days:>6}" + "".join(f"{r[key]:>{width}{form}}" for key, _, width, form in COLUMNS))
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
