"""A closed slot reaches an agent waiting on ``/market-cycles`` by notification, not by polling.

The runner is another process in production: here it is another store object (own engine, own
notifier) on the same database. With the readers' re-read interval far longer than the long poll
(60 s against 30 s), a reader only gets the cycle if the notification woke it: PostgreSQL's
LISTEN/NOTIFY, Redis pub/sub beside a SQLite store. On SQLite alone readers poll; a notification
that was never sent (the runner's publish skipped) still reaches them at their next re-read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, text

from app.config import Settings
from app.entry.web import create_app
from app.exchange.generate import generate_scenario
from app.exchange.grid import build_grid
from app.exchange.runner import ExchangeRunner
from app.store.notify import LISTENER_NAME, Notifier
from app.store.repo import ExchangeStore

from .helpers import PASSWORDS, Exchange

LONG_S = 60.0  # a re-read interval no test waits for
LONG_POLL_S = 30.0  # the agent's long poll (the API's longest): under LONG_S
# A woken reader answers within milliseconds; one that is not answers at the end of its long poll
# (when it reads once more). The answer must come well before that end:
ANSWERED_S = 10.0


@dataclass
class Deployment:
    web: Exchange  # the web worker the agent asks
    runner: ExchangeRunner  # the clock process, on a store object of its own

    def long_poll(self, after: int) -> tuple[threading.Thread, dict]:
        """Start ``GET /market-cycles?after=...&wait=30`` in a thread; its answer lands in the dict."""
        answer: dict = {}
        token_headers = self.web.auth()

        def ask() -> None:
            response = self.web.client.get(
                "/api/v1/market-cycles",
                headers=token_headers,
                query_string={"after": self.web.label(after), "wait": LONG_POLL_S},
            )
            answer.update(response.get_json())

        thread = threading.Thread(target=ask, daemon=True)
        thread.start()
        return thread, answer

    def agent_waits(self, thread: threading.Thread) -> None:
        """Until the agent's request listens for cycles (the slot must close after that for the
        notification to matter; polling has nothing to wait for)."""
        events, channel = self.web.store.events, self.web.store.cycles_channel
        if events.backend == "polling":
            time.sleep(0.3)
            return
        deadline = time.monotonic() + 15
        while not (events.waiting(channel) and events.listening):
            assert thread.is_alive() and time.monotonic() < deadline, "the long poll never waited"
            time.sleep(0.02)

    def close_slot_1(self, thread: threading.Thread, answer: dict) -> bool:
        """Close slot 1 while the agent waits; whether its answer came within ``ANSWERED_S`` (a
        reader that was not woken answers only at the end of its long poll). Either way the
        answer, once there, is slot 1 alone."""
        self.runner.close_running_slot()
        thread.join(ANSWERED_S)
        answered = not thread.is_alive()
        thread.join(LONG_POLL_S + 10)
        assert not thread.is_alive(), "the long poll never answered"
        assert [c["last_market_slot"] for c in answer["cycles"]] == [self.web.label(1)]
        return answered


@pytest.fixture
def deploy(
    tmp_path, fresh_store_url: Callable[..., str], request: pytest.FixtureRequest
) -> Iterator[Callable[..., Deployment]]:
    """``deploy(backend, poll_s, reread_s)``: backend ``sqlite``, ``postgresql`` or ``redis``
    (a SQLite store with ``REDIS_URL``)."""
    made: list[ExchangeStore] = []

    def make(backend: str, poll_s: float = 0.1, reread_s: float = LONG_S) -> Deployment:
        url = fresh_store_url("postgresql" if backend == "postgresql" else "sqlite", "events")
        redis_url = request.getfixturevalue("redis_url") if backend == "redis" else None
        scenario = generate_scenario(2, 3, seed=1)
        clock_store = ExchangeStore.open(url, scenario, build_grid(scenario), redis_url=redis_url)
        made.append(clock_store)
        runner = ExchangeRunner(clock_store, slot_seconds=0.0)
        runner.resume()
        runner.close_running_slot()  # slot 0 closed: the agent waits for slot 1
        web_store = ExchangeStore.open(url, scenario, build_grid(scenario), redis_url=redis_url)
        web_store.events = Notifier.for_store(web_store.engine, redis_url, poll_s=poll_s, reread_s=reread_s)
        made.append(web_store)
        path = tmp_path / f"web-{len(made)}"
        path.mkdir()
        env = {"INSTANCE_DIR": str(path), "SECRET_KEY": "test", "SLOT_SECONDS": "0"}
        settings = Settings.from_env({**env, **({"REDIS_URL": redis_url} if redis_url else {})})
        app = create_app(settings, store=web_store, dashboard=False)
        web = Exchange(web_store, runner, settings, app, app.test_client(), dict(PASSWORDS))
        return Deployment(web, runner)

    yield make
    for store in made:
        store.events.close()
        store.engine.dispose()


NOTIFYING = [pytest.param("postgresql", marks=pytest.mark.postgres), "redis"]


@pytest.mark.parametrize("backend", NOTIFYING)
def test_a_closed_slot_wakes_the_waiting_agent(deploy: Callable[..., Deployment], backend: str):
    """Readers re-read only every 60 s here: the cycle arrives long before the end of the 30-s
    long poll only because the runner's notification woke the request."""
    d = deploy(backend, poll_s=LONG_S, reread_s=LONG_S)
    thread, answer = d.long_poll(after=0)
    d.agent_waits(thread)
    answered = d.close_slot_1(thread, answer)
    assert answered, "the agent was not woken: it got the slot only at the end of its long poll"


def test_on_sqlite_alone_the_waiting_agent_gets_the_slot_by_polling(deploy: Callable[..., Deployment]):
    d = deploy("sqlite")
    assert d.web.store.events.backend == "polling"
    thread, answer = d.long_poll(after=0)
    d.agent_waits(thread)
    answered = d.close_slot_1(thread, answer)
    assert answered, "the agent was not woken: it got the slot only at the end of its long poll"


@pytest.mark.parametrize("backend", NOTIFYING)
def test_a_lost_notification_only_delays_the_agent(
    deploy: Callable[..., Deployment], backend: str, monkeypatch: pytest.MonkeyPatch
):
    """The runner's notification is never sent: the agent still gets the slot, from the store,
    at its next re-read (every 0.5 s here)."""
    d = deploy(backend, poll_s=0.5, reread_s=0.5)
    monkeypatch.setattr(d.runner.store.events, "publish", lambda channel, payload="": None)
    thread, answer = d.long_poll(after=0)
    d.agent_waits(thread)
    answered = d.close_slot_1(thread, answer)
    assert answered, "the agent was not woken: it got the slot only at the end of its long poll"


@pytest.mark.postgres
def test_a_listener_whose_connection_the_database_ended_still_wakes_the_agent(
    deploy: Callable[..., Deployment],
):
    """PostgreSQL ends the web worker's listening session (a restart, a failover): the listener
    connects again, and the next slot still wakes the waiting agent."""
    d = deploy("postgresql", poll_s=LONG_S, reread_s=LONG_S)
    thread, answer = d.long_poll(after=0)
    d.agent_waits(thread)
    with d.runner.store.engine.begin() as conn:
        ended = conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": LISTENER_NAME},
        ).all()
    assert ended == [(True,)]
    d.agent_waits(thread)  # listening again
    answered = d.close_slot_1(thread, answer)
    assert answered, "the agent was not woken after the listener reconnected"


def test_the_backend_follows_the_deployment(tmp_path):
    """PostgreSQL store: LISTEN/NOTIFY; SQLite with REDIS_URL: Redis; SQLite alone: polling."""
    redis_url = "redis://127.0.0.1:6379/0"
    sqlite = create_engine(f"sqlite:///{tmp_path}/x.sqlite3")
    postgres = create_engine("postgresql+psycopg://u@localhost/none")
    assert Notifier.for_store(sqlite).backend == "polling"
    assert Notifier.for_store(sqlite, redis_url).backend == "redis"
    assert Notifier.for_store(postgres, redis_url).backend == "postgresql"
