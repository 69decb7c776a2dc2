"""Shared fixtures: scenarios, and stores on SQLite and on a throwaway PostgreSQL server.

``store_url`` runs a test once per backend (ids ``sqlite`` and ``postgresql``); the PostgreSQL
one gets a database of its own that is dropped after the test. ``fresh_store_url()`` gives a
further empty store on the same backend, ``open_store(scenario, url)`` opens (and migrates) a
store whose engine is disposed at teardown. ``redis_url`` is a throwaway ``redis-server`` for the
session (``tests/redis_server.py``), emptied for each test.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pg_server import PostgresServer, PostgresUnavailable
from redis_server import RedisServer, RedisUnavailable

from app.config import ROOT
from app.exchange.grid import build_grid
from app.exchange.scenario import Scenario, load_scenario, parse_scenario
from app.store.repo import ExchangeStore


def _house(name: str, annual_kwh: float, *assets: dict) -> dict:
    """A house with a load of ``annual_kwh`` and ``assets`` beside it."""
    return {"name": name, "assets": [{"type": "load", "annual_kwh": annual_kwh}, *assets]}


def _pv(kwp: float, **orientation: float) -> dict:
    return {"type": "pv", "kwp": kwp, **orientation}


def _battery(capacity_kwh: float, power_kw: float) -> dict:
    return {"type": "battery", "capacity_kwh": capacity_kwh, "power_kw": power_kw}


def _ev(energy_kwh: float, power_kw: float, available_from: str, due_by: str) -> dict:
    """An electric vehicle to charge with ``energy_kwh`` between ``available_from`` and ``due_by``."""
    ev = {"type": "flexible_load", "kind": "ev", "energy_kwh": energy_kwh, "power_kw": power_kw}
    return ev | {"available_from": available_from, "due_by": due_by}


# 2 communities x 3 houses in hour-long slots from midnight of a June day: within the first 15
# slots the battery discharges at night and charges from PV in the morning, and the EV charges
# from slot 4 (04:00) on, so the asset state changes from slot to slot. (The simulation counts
# time of day from midnight, whatever time ``start`` has: keep it at 00:00.)
SMALL_SCENARIO = {
    "name": "small",
    "start": "2026-06-22T00:00",
    "slot_length_min": 60,
    "seed": 11,
    "matching": "pay_as_bid",
    "supplier": {"sell_rate_ct_per_kwh": 30, "feed_in_rate_ct_per_kwh": 8},
    "fee_limits": {"min_ct_per_kwh": 0, "max_ct_per_kwh": 50},
    "grid": {
        "name": "Grid",
        "fee_ct_per_kwh": 2,
        "communities": [
            {
                "name": "West",
                "fee_ct_per_kwh": 1,
                "houses": [
                    _house("West Consumer", 3500),
                    _house("West Prosumer", 4000, _pv(9)),
                    _house("West Battery Home", 4500, _pv(10), _battery(10, 5)),
                ],
            },
            {
                "name": "East",
                "fee_ct_per_kwh": 1.5,
                "houses": [
                    _house("East Consumer", 3000),
                    _house("East Prosumer", 4200, _pv(7)),
                    _house("East EV Home", 4000, _pv(6, azimuth_deg=225), _ev(20, 3.7, "04:00", "10:00")),
                ],
            },
        ],
    },
}


@pytest.fixture
def small_scenario() -> Scenario:
    return parse_scenario(copy.deepcopy(SMALL_SCENARIO), "SMALL_SCENARIO")


@pytest.fixture
def default_scenario() -> Scenario:
    return load_scenario(ROOT / "scenarios" / "default.yaml")


# -- Redis --------------------------------------------------------------------------------


def _serving(server_class: type, unavailable: type[Exception]) -> Iterator:
    """Start a throwaway server of ``server_class`` until the generator ends; skip the test when
    it cannot run here (``unavailable``: e.g. the server's package is not installed)."""
    try:
        server = server_class()
    except unavailable as exc:
        pytest.skip(str(exc))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A Redis server for the whole session; skips the test when none is installed."""
    yield from _serving(RedisServer, RedisUnavailable)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_server.url


# -- PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session; skips the test when none is installed."""
    yield from _serving(PostgresServer, PostgresUnavailable)


@pytest.fixture(scope="session")
def postgres_url(pg_server: PostgresServer) -> str:
    """URL of the session's database ``gridfee_test``."""
    return pg_server.create_database("gridfee_test")


# -- stores -------------------------------------------------------------------------------

_counter = itertools.count()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    ids=["sqlite", "postgresql"],
)
def store_url(request: pytest.FixtureRequest, fresh_store_url: Callable[[str], str]) -> str:
    """An empty store on each backend: a SQLite file, or a PostgreSQL database of its own."""
    return fresh_store_url(request.param, "store")


@pytest.fixture
def fresh_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Factory of further empty stores: ``fresh_store_url(backend_or_url, stem)``.

    The first argument is ``"sqlite"``, ``"postgresql"`` or a URL whose backend to use.
    PostgreSQL databases made here are dropped after the test.
    """
    created: list[tuple[PostgresServer, str]] = []

    def make(backend: str, stem: str = "other") -> str:
        if backend.startswith("sqlite"):
            path = tmp_path / f"{stem}.sqlite3"
            if path.exists():
                path = tmp_path / f"{stem}-{next(_counter)}.sqlite3"
            return f"sqlite:///{path}"
        if not backend.startswith("postgresql"):
            raise ValueError(f"unknown backend {backend!r}")
        server: PostgresServer = request.getfixturevalue("pg_server")
        name = f"gridfee_{stem}_{uuid.uuid4().hex[:12]}"
        url = server.create_database(name)
        created.append((server, name))
        return url

    yield make
    for server, name in created:
        server.drop_database(name)


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[..., ExchangeStore]]:
    """``open_store(scenario, url=store_url)``: migrate, open and register; disposed at teardown."""
    opened: list[ExchangeStore] = []

    def _open(scenario: Scenario, url: str | None = None) -> ExchangeStore:
        store = ExchangeStore.open(url or store_url, scenario, build_grid(scenario))
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.engine.dispose()
