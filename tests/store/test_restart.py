"""Stopping and starting the runner, and a crash inside a slot, on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy import event

from app.exchange.fees import Fee
from app.exchange.runner import ExchangeRunner
from app.exchange.simulation import Simulation
from app.store.repo import ExchangeStore


def all_rows(store: ExchangeStore) -> dict[tuple[str, int], dict]:
    """Every stored stats row of the store's markets, keyed by (market uuid, slot)."""
    rows = {}
    for uuid in store.uuids:
        for row in store.history(uuid):
            key = (uuid, row["slot"])
            assert key not in rows, f"slot {row['slot']} of {uuid} stored twice"
            rows[key] = row
    return rows


def same_value(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def assert_history_continuous(store: ExchangeStore, n_slots: int) -> None:
    assert store.closed_slots() == list(range(n_slots))
    for uuid in store.uuids:
        assert [r["slot"] for r in store.history(uuid)] == list(range(n_slots)), uuid


def drop(store: ExchangeStore) -> None:
    """What a stopped process leaves behind: nothing but the database."""
    store.engine.dispose()


def test_restart_resumes_with_history_continuous(open_store, default_scenario):
    store_a = open_store(default_scenario)
    runner_a = ExchangeRunner(store_a, slot_seconds=0)
    assert runner_a.resume() == 0
    runner_a.run(5)
    community = store_a.grid.markets[1]
    store_a.fee_book.submit_fee(
        community.uuid, Fee(4.25), source="test"
    )  # received in slot 5, applies from 6
    runner_a.run(5)
    drop(store_a)
    del runner_a

    store_b = open_store(default_scenario)
    runner_b = ExchangeRunner(store_b, slot_seconds=0)
    assert runner_b.resume() == 10
    assert runner_b.fees[community.index] == 4.25  # the fee book survived the restart
    assert runner_b.run(5) == 5

    assert_history_continuous(store_b, 15)
    fees = [r["fee_ct_per_kwh"] for r in store_b.history(community.uuid)]
    initial = float(store_b.grid.initial_fee_ct_per_kwh[community.index])
    assert fees == [initial] * 6 + [4.25] * 9
    labels = [r["slot_label"] for r in store_b.history(community.uuid)]
    assert labels == [runner_b.clock.label(s) for s in range(15)]
    assert store_b.load_state().running_slot == 15


def test_restart_gives_same_numbers_as_uninterrupted_run(
    open_store, store_url, fresh_store_url, small_scenario
):
    def start(url: str) -> tuple[ExchangeStore, ExchangeRunner]:
        store = open_store(small_scenario, url)
        runner = ExchangeRunner(store, slot_seconds=0)
        runner.resume()
        return store, runner

    # one store, 12 slots straight
    straight, straight_runner = start(store_url)
    straight_runner.run(3)
    straight.fee_book.submit_fee(
        straight.uuids[2], Fee(6.0), source="test"
    )  # the same fee change in both runs
    straight_runner.run(9)

    # another store: 6 slots, the process goes away, a new one resumes and runs 6 more
    interrupted_url = fresh_store_url(store_url, "interrupted")
    first, first_runner = start(interrupted_url)
    first_runner.run(3)
    first.fee_book.submit_fee(first.uuids[2], Fee(6.0), source="test")
    first_runner.run(3)
    saved = first.load_state().asset_state
    fresh = Simulation(small_scenario, first.grid).state  # what a start without a saved state has
    drop(first)
    del first_runner

    # the resumed run can only match if this state is restored: make sure it is not the initial one
    assert not np.allclose(saved["soc_kwh"], fresh.soc_kwh)
    assert saved["flex_remaining_kwh"].max() > 0  # the EV is half-way through charging
    assert not np.allclose(saved["ref_price"], fresh.ref_price)

    second, second_runner = start(interrupted_url)
    assert second_runner.running_slot == 6
    second_runner.run(6)

    expected, got = all_rows(straight), all_rows(second)
    assert sorted(expected) == sorted(got)
    assert len(expected) == 12 * len(straight.uuids)
    for key, row in expected.items():
        other = got[key]
        assert row.keys() == other.keys()
        different = {k: (row[k], other[k]) for k in row if not same_value(row[k], other[k])}
        assert not different, f"market {key[0]} slot {key[1]}: {different}"
    assert straight.fee_history() == second.fee_history()


def test_crash_mid_slot_reruns_that_slot_once(open_store, small_scenario, monkeypatch):
    store = open_store(small_scenario)
    runner = ExchangeRunner(store, slot_seconds=0)
    runner.resume()
    runner.run(3)  # slots 0..2 closed, slot 3 running
    state_before = {k: v.copy() for k, v in runner.sim.state.to_arrays().items()}
    fees_before = runner.fees.copy()

    real_close_slot = store.close_slot
    calls: list[int] = []

    def crash_before_commit(conn, cursor, statement, *args):
        # the slot's stats rows are written; the state row is next, then the commit
        if statement.lstrip().upper().startswith("UPDATE EXCHANGE_STATE"):
            raise RuntimeError("simulated crash before the slot's commit")

    def close_slot_crashing_once(slot, *args, **kwargs):
        calls.append(slot)
        if len(calls) > 1:
            return real_close_slot(slot, *args, **kwargs)
        event.listen(store.engine, "before_cursor_execute", crash_before_commit)
        try:
            return real_close_slot(slot, *args, **kwargs)
        finally:
            event.remove(store.engine, "before_cursor_execute", crash_before_commit)

    monkeypatch.setattr(store, "close_slot", close_slot_crashing_once)
    with pytest.raises(RuntimeError, match="simulated crash"):
        runner.close_running_slot()

    assert calls == [3]
    # the runner is where it was before the slot: same slot, same fees, same asset state
    assert runner.running_slot == 3
    assert np.array_equal(runner.fees, fees_before)
    after = runner.sim.state.to_arrays()
    for name, values in state_before.items():
        assert np.array_equal(after[name], values), name
    # and so is the store: nothing of slot 3 was kept
    assert_history_continuous(store, 3)
    assert store.load_state().running_slot == 3
    drop(store)
    del runner

    restarted = open_store(small_scenario)
    new_runner = ExchangeRunner(restarted, slot_seconds=0)
    assert new_runner.resume() == 3
    new_runner.run(3)
    assert_history_continuous(restarted, 6)
    assert len(all_rows(restarted)) == 6 * len(restarted.uuids)


def test_a_run_can_be_given_an_end_or_a_later_one_after_a_restart(open_store, small_scenario):
    """``days`` is when the run ends, not what it simulates: setting or moving it keeps the
    stored run (no scenario mismatch), and the run stops exactly at the new end."""
    store_a = open_store(small_scenario)
    assert ExchangeRunner(store_a, slot_seconds=0).run(5) == 5
    drop(store_a)

    ending = small_scenario.model_copy(update={"days": 1})  # hour-long slots: 24 in a day
    store_b = open_store(ending)
    runner_b = ExchangeRunner(store_b, slot_seconds=0)
    assert runner_b.run() == 19 and runner_b.finished
    drop(store_b)

    later = small_scenario.model_copy(update={"days": 2})
    runner_c = ExchangeRunner(open_store(later), slot_seconds=0)
    assert runner_c.resume() == 24 and not runner_c.finished
    assert runner_c.run() == 24 and runner_c.finished
    assert_history_continuous(runner_c.store, 48)
