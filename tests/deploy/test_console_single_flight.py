"""While one console request asks the exchange's clock, the others wait for its reading, woken by
a notification when it is cached (Redis pub/sub with the Redis cache, in-process without it).

The readers' re-read interval is set to 60 s and the wait for another request's reading to 30 s
(the client's timeout, raised here): a woken request answers within milliseconds of the reading,
one that is not woken only at the end of its 30 s; the answer must come well before that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from app.config import Settings
from app.entry.web import create_app
from app.exchange.generate import generate_scenario
from app.exchange.grid import build_grid
from app.store.notify import Notifier
from app.store.repo import ExchangeStore

LONG_S = 60.0
CLIENT_TIMEOUT_S = 30.0  # how long a request waits for another's reading (the client's timeout)
ANSWERED_S = 10.0


@pytest.fixture
def console_workers(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., list[Flask]]]:
    """``console_workers(n, redis)``: ``n`` apps on one store (gunicorn workers), with the
    Redis cache when ``redis``."""
    scenario = generate_scenario(2, 3, seed=1)
    store = ExchangeStore.open(f"sqlite:///{tmp_path / 's.sqlite3'}", scenario, build_grid(scenario))
    apps: list[Flask] = []

    def make(n: int, redis: bool) -> list[Flask]:
        redis_url = request.getfixturevalue("redis_url") if redis else None
        env = {"INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "t", "SLOT_SECONDS": "60"}
        settings = Settings.from_env({**env, **({"REDIS_URL": redis_url} if redis_url else {})})
        for _ in range(n):
            app = create_app(settings, store=store)
            console = app.extensions["console"]
            assert console.events.backend == ("redis" if redis else "polling")
            console.events = Notifier.for_cache(redis_url, poll_s=LONG_S, reread_s=LONG_S)
            console.client.timeout_s = CLIENT_TIMEOUT_S
            apps.append(app)
        return apps[-n:]

    yield make
    for app in apps:
        app.extensions["console"].events.close()
    store.engine.dispose()


def one_reading_for_two(asker: Flask, waiter: Flask) -> tuple[list[str], dict, dict]:
    """``asker`` asks the clock (held until ``waiter``'s request waits for it); returns who asked
    the exchange, and both answers."""
    asked: list[str] = []  # the names of the requests (threads) that asked the exchange
    asking, release = threading.Event(), threading.Event()
    for client in {
        id(a.extensions["console"].client): a.extensions["console"].client for a in (asker, waiter)
    }.values():
        ask = client.clock

        def clock(ask: Callable[[], dict] = ask) -> dict:
            asked.append(threading.current_thread().name)
            asking.set()
            release.wait(10)
            return ask()

        client.clock = clock
    answers: dict[str, dict] = {}

    def request(name: str, app: Flask) -> None:
        with app.app_context():
            answers[name] = app.extensions["console"].clock_state()

    first = threading.Thread(target=request, args=("asker", asker), name="asker")
    first.start()
    assert asking.wait(10)
    second = threading.Thread(target=request, args=("waiter", waiter), name="waiter")
    second.start()
    events = waiter.extensions["console"].events
    deadline = time.monotonic() + 10
    while not (events.waiting("console:clock") and (events.backend == "polling" or events.listening)):
        assert second.is_alive() and time.monotonic() < deadline, "the second request never waited"
        time.sleep(0.02)
    release.set()
    second.join(ANSWERED_S)
    assert not second.is_alive(), "the waiting request was not woken by the reading"
    first.join(15)
    return asked, answers["asker"], answers["waiter"]


def test_a_worker_waiting_for_anothers_clock_reading_is_woken_through_redis(console_workers):
    asker, waiter = console_workers(2, redis=True)
    asked, first, second = one_reading_for_two(asker, waiter)
    assert asked == ["asker"]  # the waiting worker did not time out and ask the exchange itself
    assert second["running_slot"] == first["running_slot"] and second["connected"]


def test_requests_of_one_worker_wait_for_one_reading_without_redis(console_workers):
    (app,) = console_workers(1, redis=False)
    asked, first, second = one_reading_for_two(app, app)
    assert asked == ["asker"]
    assert second["running_slot"] == first["running_slot"] and second["connected"]
