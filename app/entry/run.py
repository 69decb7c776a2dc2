"""``python -m app.entry.run [--slots N] [--reset] [--quiet]``: the embedded exchange's runner alone, in the
foreground, printing each closed slot (no API, no console, no agent)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from app.exchange.runner import ExchangeRunner, print_cycle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.entry.run", description="Run the embedded exchange and print each slot."
    )
    parser.add_argument("--slots", type=int, default=None, help="stop after this many slots")
    parser.add_argument("--reset", action="store_true", help="forget this scenario's stored run first")
    parser.add_argument("--quiet", action="store_true", help="do not print slot stats")
    args = parser.parse_args(argv)

    from app.config import Settings
    from app.exchange.grid import build_grid
    from app.exchange.scenario import ScenarioError, load_scenario
    from app.store.db import migrate
    from app.store.lock import RunnerLock
    from app.store.repo import ExchangeStore, StoreMismatch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    try:
        scenario = load_scenario(settings.scenario)
    except ScenarioError as exc:
        print(exc)
        return 2
    grid = build_grid(scenario)
    try:
        if args.reset:
            migrate(settings.database_url)
            store = ExchangeStore(settings.database_url, scenario, grid, redis_url=settings.redis_url)
            store.reset()
            store.register()
        else:
            store = ExchangeStore.open(settings.database_url, scenario, grid, redis_url=settings.redis_url)
    except StoreMismatch as exc:
        print(f"error: {exc}")
        return 2
    lock = RunnerLock(store.engine, store.key)
    if not lock.try_acquire():
        print("another runner holds the exchange; waiting for it to stop ...", flush=True)
        lock.acquire()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runner = ExchangeRunner(store, settings.slot_seconds)
    if not args.quiet:
        runner.subscribe(print_cycle)
    first = runner.resume()
    print(
        f"exchange {scenario.name!r}: {grid.n_markets} markets, {grid.n_houses} houses; "
        f"slot {runner.clock.label(first)} running, one slot every {settings.slot_seconds:g} s "
        f"(store: {store.engine.url.render_as_string(hide_password=True)})",
        flush=True,
    )
    try:
        runner.run(args.slots, stop)
    finally:
        lock.release()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
