"""The clock process: ``python -m app.entry.clock`` (the Procfile's ``clock:``).

Runs the one writer of a deployment (DESIGN §2, "One writer, many readers"):

* embedded exchange (``GRID_API_URL`` unset): takes the exchange's runner lock in the store,
  waiting while another process holds it and taking over as soon as that process dies (the lock
  is a PostgreSQL advisory lock on a connection, or ``flock`` beside the SQLite file: a dead
  holder frees it, no timeout). It then resumes the runner from the store and runs it, and runs
  the operator agent in a thread, with an in-process client of an API-only app on the store;
* remote exchange (``GRID_API_URL`` set): only the operator agent, over HTTP, under the agent
  lock.

It migrates nothing (the Procfile's ``release:`` does) and refuses to start, with one line on
stderr and exit status 2, when a setting cannot work or the schema is not the newest. On SIGTERM
(a PaaS restart) or SIGINT it finishes the slot being written, stops the agent, releases the
locks and exits 0; after a kill -9 the next holder resumes from the store, so no slot is lost or
stored twice.

    python -m app.entry.clock [--slots N]
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from app.config import ConfigError, Settings
from app.entry.preflight import settings_problem

if TYPE_CHECKING:  # imported where used: --help and a refusal start without them
    from types import FrameType

    from flask import Flask
    from sqlalchemy import Engine

    from app.exchange.runner import ExchangeRunner
    from app.store.lock import RunnerLock

log = logging.getLogger("app.entry.clock")
EXIT_CONFIG = 2


def lock_poll_s(settings: Settings) -> float:
    """How often a waiting clock tries the lock: a few times a slot, at most every 0.5 s."""
    if settings.slot_seconds <= 0:
        return 0.5
    return min(0.5, max(0.05, settings.slot_seconds / 4))


def wait_for_lock(
    lock: RunnerLock,
    stop: threading.Event,
    poll_s: float,
    what: str,
    idle: Callable[[], None] | None = None,
) -> bool:
    """Take ``lock``, waiting while another process holds it; False if ``stop`` came first.

    ``idle`` is called between two tries (to keep a standby warm); its errors are logged.
    """
    if lock.try_acquire():
        return True
    holder = lock.holder()
    log.info("%s is held by %s; waiting to take over", what, holder or "another process")
    while True:
        if idle is not None:
            try:
                idle()
            except Exception:
                log.exception("warming up the standby failed")
        if stop.wait(poll_s):
            return False
        if lock.try_acquire():
            log.info("took over %s", what)
            return True


def warm_up(runner: ExchangeRunner) -> None:
    """Build the profiles of the running slot's day and the next slot's, as the holder has them.

    A day's profiles take about a second to build; a standby that has them closes its first slot
    on time after a takeover.
    """
    running = runner.store.clock_state().running_slot
    for slot in (running, running + 1):
        runner.sim.profiles.day(runner.store.scenario.day_and_slot(slot)[0])


def log_cycle(info: dict) -> None:
    log.info("slot %s closed; %s running", info["last_market_slot"], info["market_slot"])


def agent_thread(
    settings: Settings, engine: Engine, wsgi_app: Flask, stop: threading.Event, poll_s: float
) -> threading.Thread | None:
    """The operator agent in a thread, under its own lock (one agent per deployment)."""
    from app.operator.agent import OperatorAgent
    from app.operator.run import AGENT_LONG_POLL_S, make_client
    from app.operator.store import OperatorStore
    from app.store.lock import RunnerLock

    if settings.gsy_dialect is None and (not settings.agent_username or not settings.agent_password):
        log.warning("AGENT_USERNAME/AGENT_PASSWORD not set: no operator agent runs (no fees are sent)")
        return None
    lock = RunnerLock(engine, f"operator-agent:{settings.exchange_key}")

    def run() -> None:
        if not wait_for_lock(lock, stop, poll_s, "the operator agent lock"):
            return
        try:
            store = OperatorStore(engine, settings.exchange_key)
            after = store.latest_slot()
            agent = make_client(
                settings, wsgi_app, cls=OperatorAgent, engine=engine, store=store, start_after=after
            )
            agent.long_poll_s = AGENT_LONG_POLL_S
            log.info(
                "operator agent (user %s) follows the market cycles of %s after %s",
                settings.agent_username,
                settings.exchange_key,
                after or "the latest",
            )
            agent.run_forever(stop)
        except Exception:
            log.exception("the operator agent stopped on an error")
        finally:
            lock.release()
            log.info("operator agent stopped; its lock released")

    thread = threading.Thread(target=run, name="operator-agent", daemon=True)
    thread.start()
    return thread


def run_embedded(settings: Settings, stop: threading.Event, max_slots: int | None) -> int:
    from app.entry.web import create_app, settle_heap
    from app.exchange.runner import ExchangeRunner
    from app.exchange.scenario import ScenarioError
    from app.operator.run import AGENT_LONG_POLL_S
    from app.store.db import NotMigrated
    from app.store.lock import RunnerLock
    from app.store.repo import ExchangeStore, StoreMismatch

    try:
        store = ExchangeStore.of_settings(settings, run_migrations=False)
    except (ScenarioError, NotMigrated, StoreMismatch) as exc:
        return refuse(exc)
    where = store.engine.url.render_as_string(hide_password=True)
    poll = lock_poll_s(settings)
    lock = RunnerLock(store.engine, store.key)
    agent = None
    try:
        # everything but the lock is ready before waiting for it, so that a takeover is quick
        app = create_app(settings, store=store, dashboard=False, run_migrations=False)
        runner = ExchangeRunner(store, settings.slot_seconds)  # builds the simulation's profiles
        runner.subscribe(log_cycle, markets=False)  # it logs the slots only
    except ValueError as exc:  # a users file that cannot be read
        store.engine.dispose()
        return refuse(exc)
    try:
        what = f"the runner lock of exchange {store.key!r}"
        if not wait_for_lock(lock, stop, poll, what, idle=lambda: warm_up(runner)):
            log.info("stopped while waiting for the runner lock")
            return 0
        first = runner.resume()
        log.info(
            "running exchange %r (%d markets) from slot %s, one slot every %g s; store %s",
            store.scenario.name,
            store.grid.n_markets,
            runner.clock.label(first),
            settings.slot_seconds,
            where,
        )
        settle_heap()  # the app, the grid and the day's profiles are built
        agent = agent_thread(settings, store.engine, app, stop, poll)
        closed = runner.run(max_slots, stop)
        if runner.finished and not stop.is_set():
            # the scenario's days are over: stay up (and keep the lock), so that the platform
            # does not restart the clock again and again; the console and API keep serving
            log.info(
                "the scenario ended after %d day(s); the exchange idles until stopped", store.scenario.days
            )
            stop.wait()
        log.info(
            "runner stopped after %d slots; slot %s is next", closed, runner.clock.label(runner.running_slot)
        )
    finally:
        stop.set()
        if agent is not None:
            agent.join(timeout=AGENT_LONG_POLL_S + 10)
        lock.release()
        store.engine.dispose()
    log.info("runner lock released")
    return 0


def run_remote(settings: Settings, stop: threading.Event) -> int:
    """Only the operator agent, over HTTP to ``GRID_API_URL``; its rows in ``DATABASE_URL``."""
    from app.operator.run import AGENT_LONG_POLL_S
    from app.store.db import NotMigrated, check_migrated, make_engine

    engine = make_engine(settings.database_url)
    try:
        check_migrated(engine)
    except NotMigrated as exc:
        engine.dispose()
        return refuse(exc)
    log.info("remote exchange %s: running the operator agent only", settings.grid_api_url)
    thread = agent_thread(settings, engine, None, stop, lock_poll_s(settings))
    try:
        while thread is not None and thread.is_alive() and not stop.wait(0.5):
            pass
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=AGENT_LONG_POLL_S + 10)
        engine.dispose()
    return 0


def refuse(exc: BaseException | str) -> int:
    print(f"gridfee clock: refusing to start: {exc}", file=sys.stderr, flush=True)
    return EXIT_CONFIG


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.entry.clock",
        description="The clock process: the exchange runner and the operator agent.",
    )
    parser.add_argument("--slots", type=int, default=None, help="stop after this many slots")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        return refuse(exc)
    found = settings_problem(settings)  # e.g. no users outside demo mode
    if found:
        return refuse(found)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s clock[%(process)d] %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            log.info("%s: finishing the slot being written, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if settings.grid_api_url:
        return run_remote(settings, stop)
    return run_embedded(settings, stop, args.slots)


if __name__ == "__main__":
    raise SystemExit(main())
