"""The console's promise, on a live exchange: a fee queued while slot N runs is in force in N+1.

Unlike the other agent tests (slots closed by hand, fast-forward), these run the real thing: the
runner closes a slot every ``SLOT_SECONDS`` of wall-clock time in one thread, the operator agent
follows it in another (``start_agent``, as ``python -m app`` does), and the server answers on a
real socket. What the operator was told is checked where it happens: in the exchange's own
history (the fee it charged in each slot), never in the command record alone.

Each test picks the moment it acts from the exchange's clock (time left until the running slot's
send point), so "with time left in N" and "after N's send point" are what the test says, not luck.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from app.client import GridOperatorClient
from app.config import Settings
from app.console.data import ConsoleData
from app.entry.web import create_app
from app.exchange.generate import generate_scenario
from app.exchange.grid import build_grid
from app.exchange.runner import ExchangeRunner
from app.operator import timing
from app.operator.agent import OperatorAgent
from app.operator.run import start_agent
from app.operator.store import APPLIED, SUPERSEDED, OperatorStore
from app.store.repo import ExchangeStore

SLOT_SECONDS = 3.0  # long enough to act with time left, short enough for a quick test [s]
LEAD_S = timing.send_lead_s(SLOT_SECONDS)


@dataclass
class LiveExchange:
    url: str
    store: ExchangeStore
    runner: ExchangeRunner
    ops: OperatorStore
    data: ConsoleData

    def community(self, k: int):
        return [m for m in self.store.grid.markets if m.level == 1][k]

    def clock(self) -> tuple[int, float]:
        """(running slot, seconds until its send point), read from the exchange's clock API."""
        info = self.data.client.clock()
        running = self.runner.clock.slot_of(info["running_slot"])
        return running, float(info["seconds_to_deadline"]) - LEAD_S

    def at_time_left(self, least_s: float) -> int:
        """Wait for a moment with at least ``least_s`` before the running slot's send point; the slot."""
        deadline = time.monotonic() + 4 * SLOT_SECONDS
        while time.monotonic() < deadline:
            running, left = self.clock()
            if left >= least_s:
                return running
            time.sleep(0.05)
        raise TimeoutError("no slot with time left before its send point")

    def after_send_point(self) -> int:
        """Wait for a moment after the running slot's send point but before its end; the slot."""
        deadline = time.monotonic() + 4 * SLOT_SECONDS
        while time.monotonic() < deadline:
            running, left = self.clock()
            if -LEAD_S + 0.15 < left < -0.1:
                return running
            time.sleep(0.02)
        raise TimeoutError("never between a send point and the slot's end")

    def wait_closed(self, slot: int) -> None:
        deadline = time.monotonic() + (slot - self.store.clock_state().running_slot + 3) * SLOT_SECONDS + 5
        while (self.store.clock_state().last_closed_slot or -1) < slot:
            if time.monotonic() > deadline:
                raise TimeoutError(f"slot {slot} did not close")
            time.sleep(0.05)

    def charged(self, market_uuid: str) -> dict[int, float]:
        """The fee the exchange charged in each closed slot (its own history) [ct/kWh]."""
        return {r["slot"]: r["fee_ct_per_kwh"] for r in self.store.history(market_uuid)}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveExchange]:
    tmp: Path = tmp_path_factory.mktemp("promise")
    with contextlib.ExitStack() as cleanup:
        scenario = generate_scenario(5, 2, seed=3)
        store = ExchangeStore.open(f"sqlite:///{tmp / 'x.sqlite3'}", scenario, build_grid(scenario))
        cleanup.callback(store.engine.dispose)
        settings = Settings.from_env(
            {"INSTANCE_DIR": str(tmp), "SECRET_KEY": "t", "SLOT_SECONDS": str(SLOT_SECONDS)}
        )
        server = create_app(settings, store=store)
        http = make_server("127.0.0.1", 0, server, threaded=True)
        threading.Thread(target=http.serve_forever, daemon=True).start()
        cleanup.callback(http.shutdown)
        runner = ExchangeRunner(store, SLOT_SECONDS)
        runner.resume()
        runner_stop, agent_stop = threading.Event(), threading.Event()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(OperatorAgent, "long_poll_s", 1.0)
            agent = start_agent(settings, store.engine, server, agent_stop)
        assert agent is not None
        runner_thread = threading.Thread(target=runner.run, kwargs={"stop": runner_stop}, daemon=True)
        runner_thread.start()

        def stop() -> None:
            agent_stop.set()
            agent.join(10)
            runner_stop.set()
            runner_thread.join(10)

        cleanup.callback(stop)
        data: ConsoleData = server.extensions["console"]
        yield LiveExchange(f"http://127.0.0.1:{http.server_port}", store, runner, data.ops, data)


def test_fee_queued_with_time_left_in_slot_n_is_in_force_in_n_plus_1(live):
    market = live.community(0)
    n = live.at_time_left(1.0)
    live.ops.queue(market.uuid, market.name, 4.5, source="manual:operator", user="operator")
    assert live.clock()[0] == n, "the queue call outlasted the slot: the test could not act in N"
    live.wait_closed(n + 1)
    charged = live.charged(market.uuid)
    assert charged[n] == 1.0  # the scenario's fee in N: never the slot already running
    assert charged[n + 1] == 4.5  # in force from the next slot, as the console said
    (command,) = [c for c in live.ops.commands() if c["market_uuid"] == market.uuid]
    assert command["status"] == APPLIED
    assert command["applies_from_slot"] == live.runner.clock.label(n + 1)


def test_the_console_names_the_slot_before_the_click_and_the_exchange_agrees(live):
    """Before the send point the console says N+1; after it, N+2; and the fee lands there."""
    early, late = live.community(1), live.community(2)
    n = live.at_time_left(1.0)
    said_early = live.data.clock_state()["target_slot"]
    live.ops.queue(early.uuid, early.name, 6.0, source="manual:operator", user="operator")
    assert said_early == live.runner.clock.label(n + 1)

    m = live.after_send_point()
    live.data.cache.clear()  # a fresh reading, as a browser tick after the send point gets
    said_late = live.data.clock_state()["target_slot"]
    live.ops.queue(late.uuid, late.name, 8.0, source="manual:operator", user="operator")
    assert live.clock()[0] == m, "the queue call outlasted the slot: the test could not act in M"
    assert said_late == live.runner.clock.label(m + 2)
    live.wait_closed(m + 2)
    assert live.charged(early.uuid)[n + 1] == 6.0 and live.charged(early.uuid)[n] == 1.0
    late_fees = live.charged(late.uuid)
    assert (late_fees[m + 1], late_fees[m + 2]) == (1.0, 8.0)  # queued after M's send point: M+2


def test_several_changes_in_one_slot_collapse_to_the_last_in_one_batch(live):
    a, b = live.community(3), live.community(4)
    n = live.at_time_left(1.2)
    for fee in (2.0, 3.0, 7.0):
        live.ops.queue(a.uuid, a.name, fee, source="manual:operator", user="operator")
    live.ops.queue(b.uuid, b.name, 9.0, source="manual:operator", user="operator")
    assert live.clock()[0] == n
    live.wait_closed(n + 1)
    assert live.charged(a.uuid)[n + 1] == 7.0 and live.charged(b.uuid)[n + 1] == 9.0
    ours = (a.uuid, b.uuid)
    changes = [c for c in live.store.fee_history() if c.received_slot == n and c.market_uuid in ours]
    assert sorted(c.fee_ct_per_kwh for c in changes) == [7.0, 9.0]  # the superseded 2 and 3 never sent
    assert len({c.transaction_id for c in changes}) == 1  # one grid_fees batch for the slot
    statuses = [(c["fee_ct_per_kwh"], c["status"]) for c in live.ops.commands() if c["market_uuid"] == a.uuid]
    assert statuses == [(7.0, APPLIED), (3.0, SUPERSEDED), (2.0, SUPERSEDED)]


def test_a_model_sees_slot_n_minus_1_and_its_fee_is_in_force_from_n_plus_1(live):
    """The seeds' cycle: N-1 closes → the model computes with N-1's stats → sent during N → N+1."""
    grid = next(m for m in live.store.grid.markets if m.level == 0)
    fee = 5.5
    set_in = live.at_time_left(1.0)
    live.ops.set_model(grid.uuid, {"model": "constant", "fee_ct_per_kwh": fee}, "operator")
    live.wait_closed(set_in + 2)
    # the agent's first cycle after the setting: the close of set_in (or, when the agent ran late, of
    # set_in - 1, whose cycle it handled after the setting)
    change = next(c for c in live.store.fee_history(grid.uuid) if c.fee_ct_per_kwh == fee)
    n = change.received_slot  # N: the slot during which the model's fee was sent
    assert n in (set_in, set_in + 1)
    ours = [c for c in live.ops.commands() if c["market_uuid"] == grid.uuid and c["fee_ct_per_kwh"] == fee]
    command = ours[-1]  # the oldest: the model sends a new fee every slot
    assert command["source"].startswith("model")
    assert command["running_slot"] == live.runner.clock.label(n)  # queued once N-1 closed, sent while N ran
    assert change.applies_from_slot == n + 1
    live.wait_closed(n + 1)
    charged = live.charged(grid.uuid)
    assert charged[n] != fee and charged[n + 1] == fee


def test_a_python_client_over_http_sends_while_n_runs_and_n_plus_1_charges_it(live):
    """The same promise through the API, as a user's own script sends it (real HTTP)."""
    client = GridOperatorClient(live.url, "operator", "operator")
    market = live.community(0)
    n = live.at_time_left(0.8)
    answer = client.grid_fees({market.uuid: 11.0})["responses"][market.uuid][0]
    assert answer["status"] == "ready"
    assert answer["applies_from_slot"] == live.runner.clock.label(n + 1)
    live.wait_closed(n + 1)
    rows = client.history(market.uuid)["rows"]
    charged = {r["slot"]: r["stats"]["current_market_fee"] for r in rows}
    assert charged[live.runner.clock.label(n + 1)] == 11.0
    assert charged[live.runner.clock.label(n)] != 11.0
