"""Server time of the console's callbacks with 100 markets x 30 days of history in the store.

    .venv/bin/python bench/console.py [--days 30] [--repeat 200] [--json]

An embedded exchange with a grid and 99 communities (100 managed markets); the history store is
filled with ``days`` x 96 slots of every market (``bench/console_export.fill``). Timed, in a
request context of a logged-in operator, as the callbacks run them:

* **slot update**: what ``append_new_slots`` does on a tick that brought one new slot: read the
  market's slots after the last one shown, build the six figures' ``Patch`` objects;
* **overview (new slot)**: the overview table's rows right after a slot closed (cache empty);
* **overview (cached)**: the same on the other ticks of that slot (the cache answers);
* **market page**: the initial figures of one market (its last two days).

Targets: slot update <= 50 ms p95. With ``--json`` the last line is
``{"<case>": {"p50_ms": x, "p95_ms": y}, ...}``. The Excel export is timed by
``bench/console_export.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench.report import print_report  # after the path


def percentiles(times_s: list[float]) -> dict:
    ms = sorted(t * 1000 for t in times_s)
    return {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from console_export import fill

    from app.config import Settings
    from app.console.components.market_charts import FIGURE_TRACES, append_patches
    from app.console.pages import market, overview
    from app.entry.web import create_app
    from app.exchange.generate import generate_scenario
    from app.exchange.grid import build_grid
    from app.security import signed_in_request
    from app.store.repo import ExchangeStore

    with tempfile.TemporaryDirectory() as tmp:
        scenario = generate_scenario(99, 1, seed=1)
        store = ExchangeStore.open(f"sqlite:///{tmp}/bench.sqlite3", scenario, build_grid(scenario))
        settings = Settings.from_env({"INSTANCE_DIR": tmp, "SECRET_KEY": "bench", "SLOT_SECONDS": "0"})
        server = create_app(settings, store=store)
        data = server.extensions["console"]
        markets = [
            {"uuid": m.uuid, "name": m.name, "level": m.level} for m in store.grid.markets if m.level <= 1
        ]
        t0 = time.perf_counter()
        rows = fill(data.ops, markets, args.days)
        print(f"{rows:,} history rows of {len(markets)} markets written in {time.perf_counter() - t0:.1f} s")
        target = markets[1]["uuid"]
        slots = data.ops.slots(target)
        results = {}
        with signed_in_request(server, "operator"):
            times = []
            for i in range(args.repeat):
                last = slots[-2 - (i % 50)]  # one (or a few) new slots since the last shown
                t = time.perf_counter()
                new = market.new_slots(target, last)
                append_patches(FIGURE_TRACES, new, previous_cumulative_ct=123.0)
                times.append(time.perf_counter() - t)
            results["slot_update"] = percentiles(times)
            cold, warm = [], []
            for _ in range(max(args.repeat // 4, 10)):
                data.cache.delete(f"console:overview:{data.latest_slot()}")  # as when a slot closed
                data.markets()  # the grid is cached for 30 s in normal running
                t = time.perf_counter()
                overview.overview_data()
                cold.append(time.perf_counter() - t)
                t = time.perf_counter()
                overview.overview_data()
                warm.append(time.perf_counter() - t)
            results["overview_new_slot"] = percentiles(cold)
            results["overview_cached"] = percentiles(warm)
            page = []
            for _ in range(max(args.repeat // 10, 5)):
                t = time.perf_counter()
                market.market_card(data.market(target), 1)
                page.append(time.perf_counter() - t)
            results["market_page"] = percentiles(page)
        store.engine.dispose()

    rows = [
        (case, f"{figures['p50_ms']:.2f}", f"{figures['p95_ms']:.2f}") for case, figures in results.items()
    ]
    return print_report(("case", "p50 ms", "p95 ms"), rows, results, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
