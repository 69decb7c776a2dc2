"""The Python client and ``GridOperatorAgent`` against a live exchange, over HTTP and in-process.

The runner closes a slot every 0.3 s in a thread; the agent follows the market cycles by
long-poll and answers each with a ``grid_fees`` batch, as a grid operator's script would.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from fee_book_rule import expected_fee
from werkzeug.serving import WSGIRequestHandler, make_server

from app.client import ApiClientError, ExchangeUnavailable, GridOperatorAgent, GridOperatorClient

from .helpers import STATS_FIELDS, Exchange

SLOT_SECONDS = 0.3


# -- a server that can be stopped like a dying process ----------------------------------------


class LiveServer:
    """``make_server`` in a thread. ``stop()`` also cuts the open (keep-alive) connections, so
    that the exchange is gone for every client, as when its process dies."""

    def __init__(self, app, port: int = 0):
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._handlers: set[threading.Thread] = set()
        live = self

        class Handler(WSGIRequestHandler):
            def setup(self) -> None:
                super().setup()
                with live._lock:
                    live._connections.add(self.connection)
                    live._handlers.add(threading.current_thread())

            def finish(self) -> None:
                with live._lock:
                    live._connections.discard(self.connection)
                super().finish()

            def log_request(self, *args) -> None:
                pass

        self.http = make_server("127.0.0.1", port, app, threaded=True, request_handler=Handler)
        self.port = self.http.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, name=f"http-{self.port}"
        )
        self._thread.start()

    def stop(self) -> None:
        self.http.shutdown()
        self._thread.join()
        self.http.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def join_handlers(self, timeout: float = 10.0) -> None:
        """Wait for the request threads (a long-poll runs on after its connection was cut)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            handlers = list(self._handlers)
        for thread in handlers:
            thread.join(max(deadline - time.monotonic(), 0.1))


@contextmanager
def running_exchange(ex: Exchange) -> Iterator[threading.Event]:
    """The runner closing a slot every ``SLOT_SECONDS`` in a thread, until the block ends."""
    stop = threading.Event()
    thread = threading.Thread(target=ex.runner.run, kwargs={"stop": stop}, name="runner")
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


# -- agents ----------------------------------------------------------------------------------


class RecordingAgent(GridOperatorAgent):
    long_poll_s = 2.0
    reconnect_s = 0.1

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cycles: list[dict] = []
        self.errors: list[BaseException] = []

    def on_market_cycle(self, market_info: dict) -> None:
        self.cycles.append(market_info)


class FeeAgent(RecordingAgent):
    """Sends, on cycle k (1, 2, ...), a fee of k ct/kWh for every community."""

    def __init__(self, *args, communities: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.communities = communities
        self.sent: list[tuple[dict, float, dict]] = []

    def on_market_cycle(self, market_info: dict) -> None:
        super().on_market_cycle(market_info)
        fee = float(len(self.cycles))
        try:
            response = self.batch_command(
                {u: [{"type": "grid_fees", "data": {"fee_const": fee}}] for u in self.communities}
            )
        except Exception as exc:  # the agent would only log it: keep it for the test
            self.errors.append(exc)
            raise
        self.sent.append((market_info, fee, response))


def run_agent_in_thread(agent: GridOperatorAgent, max_cycles: int | None = None):
    stop = threading.Event()
    result: dict[str, object] = {}

    def target() -> None:
        try:
            result["delivered"] = agent.run(stop=stop, max_cycles=max_cycles)
        except BaseException as exc:  # reported by the test
            result["error"] = exc

    thread = threading.Thread(target=target, name="agent")
    thread.start()
    return thread, stop, result


# -- checks ----------------------------------------------------------------------------------


def slot_numbers(ex: Exchange, cycles: list[dict]) -> list[int]:
    return [ex.runner.clock.slot_of(c["last_market_slot"]) for c in cycles]


def assert_consecutive_cycles(ex: Exchange, cycles: list[dict]) -> list[int]:
    slots = slot_numbers(ex, cycles)
    assert slots == list(range(slots[0], slots[0] + len(slots))), slots  # in order, no gap, no repeat
    for slot, cycle in zip(slots, cycles, strict=True):
        assert cycle["event"] == "market"
        assert cycle["market_slot"] == ex.label(slot + 1)
        assert [m["area_uuid"] for m in cycle["markets"]] == ex.market_uuids
        for market in cycle["markets"]:
            assert set(market["last_market_stats"]) == STATS_FIELDS
    return slots


def assert_fees_applied_from_the_next_slot(ex: Exchange, agent: FeeAgent) -> None:
    clock = ex.runner.clock
    initial = ex.store.grid.initial_fee_ct_per_kwh.tolist()
    for info, fee, response in agent.sent:
        sent_during = clock.slot_of(info["market_slot"])  # running when the agent was told
        for community in agent.communities:
            (answer,) = response["responses"][community]
            assert answer["status"] == "ready", answer
            assert answer["market_fee_const"] == fee
            applies = clock.slot_of(answer["applies_from_slot"])
            assert applies >= sent_during + 1  # never the slot that was already running
    for community in agent.communities:
        changes = ex.store.fee_history(community)
        assert [c.fee_ct_per_kwh for c in changes] == [fee for _, fee, _ in agent.sent]
        initial_fee = initial[ex.market_uuids.index(community)]
        for change in changes:
            assert change.applies_from_slot == change.received_slot + 1
        rows = {r["slot"]: r for r in ex.store.history(community)}
        last = max(c.applies_from_slot for c in changes)
        assert last in rows, "the slot of the last fee has not closed"
        # every closed slot ran with the fee the fee book says: a fee is never in force in the
        # slot it was received in, and in force from the next one (unless a later one replaced it)
        for slot in range(min(rows), last + 1):
            assert rows[slot]["fee_ct_per_kwh"] == expected_fee(changes, initial_fee, slot), slot
        for k, change in enumerate(changes):
            if all(c.received_slot != change.received_slot for c in changes[k + 1 :]):
                assert rows[change.applies_from_slot]["fee_ct_per_kwh"] == change.fee_ct_per_kwh


# -- tests -----------------------------------------------------------------------------------


@pytest.fixture
def live(make_exchange) -> Exchange:
    return make_exchange(slot_seconds=SLOT_SECONDS)


@pytest.mark.parametrize("transport", ["http", "embedded"])
def test_agent_follows_cycles_and_its_fees_apply_from_the_next_slot(live: Exchange, transport: str):
    ex = live
    server = LiveServer(ex.app) if transport == "http" else None
    if server is not None:
        agent = FeeAgent(server.url, "operator", "operator", communities=ex.communities, timeout_s=10)
        agent.session.trust_env = False  # no proxy from the environment for 127.0.0.1
    else:
        agent = FeeAgent.embedded(ex.app, "operator", "operator", communities=ex.communities)
    guard = None
    try:
        with running_exchange(ex):
            stop = threading.Event()
            guard = threading.Timer(30, stop.set)  # a hang fails the test instead of the suite
            guard.start()
            delivered = agent.run(stop=stop, max_cycles=4)
            assert delivered == 4
            assert not stop.is_set(), "the agent did not get 4 cycles in 30 s"
            last = max(
                ex.runner.clock.slot_of(r["responses"][u][0]["applies_from_slot"])
                for _, _, r in agent.sent
                for u in ex.communities
            )
            wait_for(lambda: ex.store.clock_state().last_closed_slot >= last, 10, "the last fee's slot")
    finally:
        if guard is not None:
            guard.cancel()
        agent.session.close()
        if server is not None:
            server.stop()
            server.join_handlers()
    assert agent.errors == []
    assert len(agent.cycles) == 4
    assert_consecutive_cycles(ex, agent.cycles)
    assert [fee for _, fee, _ in agent.sent] == [1.0, 2.0, 3.0, 4.0]
    assert_fees_applied_from_the_next_slot(ex, agent)


def test_agent_catches_up_after_the_exchange_was_away(live: Exchange, caplog: pytest.LogCaptureFixture):
    ex = live
    caplog.set_level(logging.WARNING, logger="app.client.agent")
    server = LiveServer(ex.app)
    port = server.port
    agent = RecordingAgent(server.url, "operator", "operator", retries=0, backoff_s=0.05, timeout_s=5)
    agent.session.trust_env = False
    agent.long_poll_s = 0.5
    agent.reconnect_s = 0.1
    servers = [server]
    with running_exchange(ex):
        thread, stop, result = run_agent_in_thread(agent)
        try:
            wait_for(lambda: len(agent.cycles) >= 2, 10, "two cycles before the outage")
            server.stop()
            closed_when_down = ex.store.clock_state().last_closed_slot
            time.sleep(1.0)  # the runner goes on closing slots
            closed_when_back = ex.store.clock_state().last_closed_slot
            assert closed_when_back >= closed_when_down + 2, "no slot closed while the server was away"
            assert slot_numbers(ex, agent.cycles)[-1] <= closed_when_down  # nothing new reached the agent
            servers.append(LiveServer(ex.app, port=port))
            wait_for(
                lambda: agent.cycles and slot_numbers(ex, agent.cycles[-1:])[0] >= closed_when_back + 1,
                10,
                "the agent to catch up",
            )
        finally:
            stop.set()
            thread.join(15)
            agent.session.close()
            for s in servers:
                s.stop()
            for s in servers:
                s.join_handlers()
    assert not thread.is_alive()
    assert "error" not in result, result
    slots = assert_consecutive_cycles(ex, agent.cycles)  # every missed cycle once, in order
    assert slots[0] <= closed_when_down < closed_when_back < slots[-1]
    assert any("exchange unavailable" in r.getMessage() for r in caplog.records)


def test_client_renews_a_refused_token(ex: Exchange):
    ex.close()
    client = GridOperatorClient.embedded(ex.app, "operator", "operator")
    try:
        assert client.clock()["last_closed_slot"] == ex.label(0)
        first = client._token
        client._token = "garbage"
        assert client.clock()["running_slot"] == ex.label(1)
        assert client._token not in (None, "garbage")
        client._token = "garbage"
        response = client.grid_fees({ex.communities[0]: 2.5})
        assert response["responses"][ex.communities[0]][0]["status"] == "ready"
        assert first is not None
    finally:
        client.session.close()
    assert [c.fee_ct_per_kwh for c in ex.store.fee_history()] == [2.5]


def test_client_reports_api_errors_and_an_absent_exchange(ex: Exchange):
    client = GridOperatorClient.embedded(ex.app, "operator", "wrong")
    try:
        with pytest.raises(ApiClientError) as refused:
            client.clock()
        assert (refused.value.status, refused.value.code) == (401, "bad_credentials")
    finally:
        client.session.close()
    client = GridOperatorClient.embedded(ex.app, "operator", "operator")
    try:
        with pytest.raises(ApiClientError) as unknown:
            client.history("no-such-market")
        assert (unknown.value.status, unknown.value.code) == (404, "unknown_market")
        refused_fees = client.grid_fees({ex.communities[0]: -1})  # every command failed: still answered
        assert refused_fees["responses"][ex.communities[0]][0]["error"] == "negative_fee"
    finally:
        client.session.close()
    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    nobody = GridOperatorClient(f"http://127.0.0.1:{port}", "operator", "operator", retries=1, backoff_s=0.01)
    nobody.session.trust_env = False
    try:
        with pytest.raises(ExchangeUnavailable):
            nobody.clock()
    finally:
        nobody.session.close()
