"""With ``REDIS_URL`` (a redis-server the suite starts) every worker shares one cache.

Two apps on one store stand for two gunicorn workers: the console's cache is a ``RedisCache``
that both see, the token endpoint's rate limit counts one client's requests across both, and
the exchange's clock is asked once a slot however many requests of both workers want it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask_caching.backends.rediscache import RedisCache

from app.config import Settings
from app.console.data import CLOCK_GRACE_S
from app.entry.web import create_app
from app.exchange.generate import generate_scenario
from app.exchange.grid import build_grid
from app.exchange.runner import ExchangeRunner
from app.store.repo import ExchangeStore

TOKEN = "/api/v1/auth/token"
CREDENTIALS = {"username": "operator", "password": "operator"}


@pytest.fixture
def workers(tmp_path: Path, redis_url: str) -> Iterator[list[Flask]]:
    scenario = generate_scenario(2, 3, seed=1)
    store = ExchangeStore.open(f"sqlite:///{tmp_path / 's.sqlite3'}", scenario, build_grid(scenario))
    settings = Settings.from_env(
        {
            "INSTANCE_DIR": str(tmp_path),
            "SECRET_KEY": "t",
            "SLOT_SECONDS": "0",
            "REDIS_URL": redis_url,
            "TOKEN_RATE_LIMIT": "5",
        }
    )
    yield [create_app(settings, store=store) for _ in range(2)]
    store.engine.dispose()


def post_token(app: Flask, ip: str):
    return app.test_client().post(TOKEN, json=CREDENTIALS, environ_base={"REMOTE_ADDR": ip})


def test_dep020_console_cache_is_redis_shared_by_workers(workers: list[Flask], redis_url: str):
    for app in workers:
        cache = app.extensions["gridfee_cache"]
        assert app.extensions["console"].cache is cache  # the console's and the rate limit's
        with app.app_context():
            assert isinstance(cache.cache, RedisCache)
    first, second = workers
    with first.app_context():
        state = first.extensions["console"].clock_state()  # one reading for every worker
        assert state["connected"]
    with second.app_context():
        reading = second.extensions["console"].cache.get("console:clock")
        # the cache holds the exchange's reading; each worker derives the send point from it itself
        derived = ("deadline_s", "next_slot", "send_s", "target_slot")
        assert {k: v for k, v in reading.items() if k not in ("valid_until", *derived)} == {
            k: v for k, v in state.items() if k not in derived
        }
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.exists("gfc:console:clock")
    finally:
        client.close()


def test_dep021_token_rate_limit_counts_across_workers_in_redis(workers: list[Flask], redis_url: str):
    first, second = workers
    ip = "203.0.113.7"
    for app in (first, second, first, second, first):  # the limit: 5 a minute, whichever worker
        assert post_token(app, ip).status_code == 200
    refused = post_token(second, ip)
    assert refused.status_code == 429
    assert refused.mimetype == "application/json"
    assert refused.get_json()["error"] == "too_many_requests"
    assert int(refused.headers["Retry-After"]) >= 1
    assert post_token(first, "203.0.113.8").status_code == 200  # another client is not limited

    client = redis.Redis.from_url(redis_url)
    try:
        # Flask-Limiter's counters (limits' sliding window: this window's and the previous one)
        keys = client.keys(f"*gfc-ratelimit*{ip}*")
        assert keys, client.keys("*")
        assert all(0 < client.ttl(k) <= 180 for k in keys), {k: client.ttl(k) for k in keys}
    finally:
        client.close()


SLOT_S = 3.0  # wall seconds of a slot in the clock test
GRACE_S = min(CLOCK_GRACE_S, 0.2 * SLOT_S)  # how long a reading past its slot's deadline is used


def test_dep022_the_exchange_clock_is_asked_once_a_slot_by_all_workers(workers: list[Flask]):
    first = workers[0]
    store = first.extensions["gridfee"].service.store
    runner = ExchangeRunner(store, SLOT_S)
    asked = []
    for app in workers:  # count the clock requests each worker's client makes to the exchange
        client = app.extensions["console"].client
        client.clock = (lambda ask: lambda: asked.append(time.monotonic()) or ask())(client.clock)

    def poll(threads: int = 8, calls: int = 5) -> list[dict]:
        """``threads`` requests of each worker at once, ``calls`` each: what they answered."""
        states: list[dict] = []
        start = threading.Barrier(threads * len(workers))

        def request(app: Flask) -> None:
            start.wait()
            with app.app_context():
                for _ in range(calls):
                    states.append(app.extensions["console"].clock_state())

        pool = [threading.Thread(target=request, args=(app,)) for app in workers for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(timeout=30)
        return states

    runner.resume()  # slot 0 runs, its deadline SLOT_S from now
    deadline = time.monotonic() + SLOT_S
    states = poll()
    assert len(asked) == 1  # 80 answers, one question
    assert {s["running_slot"] for s in states} == {runner.clock.label(0)}
    assert all(s["connected"] and 0 < s["deadline_s"] <= SLOT_S for s in states)
    time.sleep(0.3)
    later = poll(threads=1, calls=1)
    assert len(asked) == 1 and later[0]["deadline_s"] < min(s["deadline_s"] for s in states)  # counted down

    # past the deadline and the grace while the exchange has not closed the slot: asked again,
    # "fees closed" (0 s left), and asked again a grace later
    time.sleep(max(deadline + GRACE_S + 0.05 - time.monotonic(), 0))
    late = poll(threads=2, calls=2)  # a few, well within the grace
    assert len(asked) == 2
    assert {(s["running_slot"], s["deadline_s"]) for s in late} == {(runner.clock.label(0), 0.0)}

    # the exchange closes the slot: after the grace one request asks (the others answer from the
    # reading before meanwhile), then every worker shows the next slot
    runner.close_running_slot()
    time.sleep(GRACE_S + 0.05)
    states = poll()
    assert len(asked) == 3
    assert runner.clock.label(1) in {s["running_slot"] for s in states}
    states = poll()
    assert len(asked) == 3
    assert {s["running_slot"] for s in states} == {runner.clock.label(1)}
    assert all(0 < s["deadline_s"] <= SLOT_S for s in states)
