"""With ``REDIS_URL`` (a redis-server the suite starts) every worker shares one cache.

Two apps on one store stand for two gunicorn workers: the console's cache is a ``RedisCache``
that both see, and the token endpoint's rate limit counts one client's requests across both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask_caching.backends.rediscache import RedisCache

from app import create_app
from app.config import Settings
from app.exchange.generate import generate_scenario
from app.exchange.grid import build_grid
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
        state = first.extensions["console"].clock_state()  # cached for a second, for every worker
        assert state["connected"]
    with second.app_context():
        assert second.extensions["console"].cache.get("console:clock") == state
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
        keys = client.keys(f"gfc:ratelimit:token:{ip}:*")
        assert keys
        assert all(0 < client.ttl(k) <= 121 for k in keys)  # they expire after two windows
    finally:
        client.close()
