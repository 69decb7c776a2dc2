"""The store's fee book, its scenario guard and the runner lock, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from fee_book_rule import expected_fee
from sqlalchemy import func, select

from app.config import ROOT
from app.exchange import fees as fee_rules
from app.exchange.fees import Fee, FeeBook, FeeChange, FeeRefused, validate_fee
from app.exchange.grid import build_grid
from app.exchange.runner import ExchangeRunner
from app.store.db import make_engine
from app.store.lock import RunnerLock
from app.store.repo import ExchangeStore, StoreMismatch
from app.store.schema import markets

# -- when a fee applies -------------------------------------------------------------------


def test_fee_sent_during_slot_applies_from_next_slot(open_store, small_scenario):
    store = open_store(small_scenario)
    runner = ExchangeRunner(store, slot_seconds=0)
    assert runner.resume() == 0
    assert runner.run(2) == 2  # slots 0 and 1 closed, slot 2 running
    community = store.grid.markets[1]
    assert community.level == 1
    old_fee = float(store.grid.initial_fee_ct_per_kwh[community.index])
    assert old_fee != 7.5

    change = store.fee_book.submit_fee(community.uuid, Fee(7.5), source="test")

    assert (change.received_slot, change.applies_from_slot) == (2, 3)
    assert change.fee_ct_per_kwh == 7.5 and change.source == "test"
    assert runner.fees[community.index] == old_fee  # the running slot keeps its fee
    assert store.fees_for_slot(2)[community.index] == old_fee
    assert store.fees_for_slot(3)[community.index] == 7.5

    info = runner.close_running_slot()  # slot 2
    runner.close_running_slot()  # slot 3

    entry = next(m for m in info["markets"] if m["area_uuid"] == community.uuid)
    assert entry["last_market_fee"] == old_fee
    assert entry["current_market_fee"] == 7.5
    rows = {r["slot"]: r for r in store.history(community.uuid)}
    assert sorted(rows) == [0, 1, 2, 3]
    assert (rows[1]["fee_ct_per_kwh"], rows[1]["next_fee_ct_per_kwh"]) == (old_fee, old_fee)
    assert (rows[2]["fee_ct_per_kwh"], rows[2]["next_fee_ct_per_kwh"]) == (old_fee, 7.5)
    assert (rows[3]["fee_ct_per_kwh"], rows[3]["next_fee_ct_per_kwh"]) == (7.5, 7.5)
    # no other market's fee moved
    for market in store.grid.markets:
        if market.uuid != community.uuid:
            initial = float(store.grid.initial_fee_ct_per_kwh[market.index])
            assert {r["fee_ct_per_kwh"] for r in store.history(market.uuid)} == {initial}


def test_fee_sent_in_last_instant_of_slot_applies_from_next_slot(open_store, small_scenario):
    """Fees stream in from another process while slots close: each one lands exactly once,
    in the slot after the one that was running when it was accepted, never in that slot."""
    store = open_store(small_scenario)
    submitter = open_store(small_scenario)  # an engine of its own, like the web process
    community = store.grid.markets[2]
    initial = float(store.grid.initial_fee_ct_per_kwh[community.index])
    runner = ExchangeRunner(store, slot_seconds=0)
    runner.resume()
    runner.sim.profiles.day(0)  # build the day's profiles now, so that slots close in milliseconds

    accepted: list[FeeChange] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def submit_in_a_loop() -> None:
        i = 0
        try:
            while not stop.is_set():
                i += 1
                accepted.append(
                    submitter.fee_book.submit_fee(community.uuid, Fee(5 + i / 1000), source="race")
                )
                time.sleep(0.0002)  # a flood, but one that leaves SQLite's busy handler a gap
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 10
        while len(accepted) < count and not errors and time.monotonic() < deadline:
            time.sleep(0.001)

    thread = threading.Thread(target=submit_in_a_loop, daemon=True)
    thread.start()
    try:
        for _ in range(5):
            wait_for(len(accepted) + 3)  # some fees arrive while each slot runs ...
            runner.close_running_slot()  # ... and the loop keeps going while it closes
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert not errors, errors

    changes = store.fee_history()
    assert changes == accepted  # every accepted change is in the book, in order, once
    assert len({c.fee_ct_per_kwh for c in changes}) == len(changes)
    assert {c.received_slot for c in changes} >= {0, 1, 2, 3, 4}
    assert [c.received_slot for c in changes] == sorted(c.received_slot for c in changes)
    assert all(c.applies_from_slot == c.received_slot + 1 for c in changes)

    rows = {r["slot"]: r for r in store.history(community.uuid)}
    assert sorted(rows) == [0, 1, 2, 3, 4]
    for slot, row in rows.items():
        assert row["fee_ct_per_kwh"] == expected_fee(changes, initial, slot), slot
        assert row["next_fee_ct_per_kwh"] == expected_fee(changes, initial, slot + 1), slot
    for change in changes:  # distinct values: a fee never shows in the slot it arrived in
        if change.received_slot in rows:
            assert rows[change.received_slot]["fee_ct_per_kwh"] != change.fee_ct_per_kwh
    assert runner.fees[community.index] == expected_fee(changes, initial, 5)


# -- refusals -----------------------------------------------------------------------------
# A bad value never reaches the book: ``validate_fee`` refuses it where it enters (tests/unit/
# test_fee_book.py, tests/api/test_bad_input.py). The book itself refuses a market outside the grid.


def test_fee_for_unknown_market_is_refused(open_store, small_scenario):
    store = open_store(small_scenario)
    with pytest.raises(FeeRefused) as refused:
        store.fee_book.submit_fee("00000000-0000-0000-0000-000000000000", Fee(3.0), source="test")
    assert refused.value.code == "unknown_market"
    assert store.fee_history() == []
    assert store.load_state().running_slot == 0


def test_fees_at_the_limits_are_accepted(open_store, small_scenario):
    store = open_store(small_scenario)
    low, top = small_scenario.fee_limits.min_ct_per_kwh, small_scenario.fee_limits.max_ct_per_kwh
    grid_market, community = store.grid.markets[0], store.grid.markets[1]
    store.fee_book.submit_fee(grid_market.uuid, validate_fee(0, low, top), source="test")
    store.fee_book.submit_fee(community.uuid, validate_fee(top, low, top), source="test")
    fees = store.fees_for_slot(1)
    assert (fees[0], fees[1]) == (0.0, top)


def test_batch_accepts_the_good_changes_and_refuses_the_bad_ones_in_order(open_store, small_scenario):
    store = open_store(small_scenario)
    grid_market, west, east = store.grid.markets[0], store.grid.markets[1], store.grid.markets[2]
    results = store.fee_book.submit_fees(
        [
            (grid_market.uuid, Fee(3.0)),
            ("no-such-market", Fee(1.0)),
            (east.uuid, Fee(4.5)),
        ],
        source="batch",
        transaction_id="tx-1",
    )

    assert [type(r).__name__ for r in results] == ["FeeChange", "FeeRefused", "FeeChange"]
    assert results[1].code == "unknown_market"
    good = [
        FeeChange(grid_market.uuid, 3.0, 0, 1, "batch", "tx-1"),
        FeeChange(east.uuid, 4.5, 0, 1, "batch", "tx-1"),
    ]
    assert [r for r in results if isinstance(r, FeeChange)] == good
    assert store.fee_history() == good
    fees = store.fees_for_slot(1)
    assert (fees[0], fees[1], fees[2]) == (3.0, float(store.grid.initial_fee_ct_per_kwh[west.index]), 4.5)


def test_a_resent_batch_changes_nothing_and_gets_the_same_answer(open_store, small_scenario):
    store = open_store(small_scenario)
    community = store.grid.markets[1]
    calls = []

    def answer(results: list) -> dict:
        calls.append(results)
        return {"fees": [r.fee_ct_per_kwh for r in results]}

    first = store.fee_book.submit_batch(("alice", "tx-9"), [(community.uuid, Fee(6.0))], "api", answer)
    again = store.fee_book.submit_batch(("alice", "tx-9"), [(community.uuid, Fee(8.0))], "api", answer)
    other_user = store.fee_book.submit_batch(("bob", "tx-9"), [(community.uuid, Fee(7.0))], "api", answer)

    assert first == ({"fees": [6.0]}, False)
    assert again == ({"fees": [6.0]}, True)
    assert other_user == ({"fees": [7.0]}, False)
    assert len(calls) == 2
    assert [c.fee_ct_per_kwh for c in store.fee_history()] == [6.0, 7.0]


def test_the_same_batch_sent_twice_at_once_is_applied_once(open_store, small_scenario):
    """Two workers take the same batch at the same moment: the second finds no answer yet, waits
    for the first's transaction, then gets the first's answer back; one change is kept."""
    first, second = open_store(small_scenario), open_store(small_scenario)  # two engines
    community = first.grid.markets[1]
    inside, second_looked = threading.Event(), threading.Event()
    looked_up, looks = second.fee_book._answer_of, []

    def look_up(batch: tuple[str, str]) -> dict | None:
        looks.append(looked_up(batch))
        second_looked.set()
        return looks[-1]

    second.fee_book._answer_of = look_up

    def answer_slowly(results: list) -> dict:
        inside.set()  # the first holds its transaction until the second has looked
        assert second_looked.wait(30)
        return {"who": "first"}

    got: dict[str, tuple] = {}
    batch = ("alice", "tx-race")
    commands = [(community.uuid, Fee(6.5))]
    one = threading.Thread(
        target=lambda: got.update(first=first.fee_book.submit_batch(batch, commands, "api", answer_slowly))
    )
    one.start()
    assert inside.wait(30)
    got["second"] = second.fee_book.submit_batch(batch, commands, "api", lambda r: {"who": "second"})
    one.join(30)

    assert got == {"first": ({"who": "first"}, False), "second": ({"who": "first"}, True)}
    assert looks == [None, {"who": "first"}]  # it looked before the first's commit, and after its own try
    assert [(c.fee_ct_per_kwh, c.transaction_id) for c in first.fee_history()] == [(6.5, "tx-race")]


# -- one rule, two storages -----------------------------------------------------------------


def test_the_store_book_opens_a_slot_as_the_memory_book_does(open_store, small_scenario):
    store = open_store(small_scenario)
    community = store.grid.markets[1]
    before = float(store.grid.initial_fee_ct_per_kwh[community.index])
    assert store.fee_book.open_slot(4)[community.index] == before
    change = store.fee_book.submit_fee(community.uuid, Fee(3.0), "test")
    assert (change.received_slot, change.applies_from_slot) == (4, 5)
    assert store.load_state().running_slot == 4
    assert store.fee_book.open_slot(5)[community.index] == 3.0


def test_the_store_book_and_the_memory_book_agree_over_a_run(open_store, small_scenario, monkeypatch):
    """The same fees sent while the same slots run: both books give every slot the same fees,
    the same next fees and the same history; so does a new process, from the store's snapshot."""
    monkeypatch.setattr(fee_rules, "SNAPSHOT_EVERY", 3)  # snapshots of slots 0, 3 and 6
    store = open_store(small_scenario)
    runner = ExchangeRunner(store, slot_seconds=0)
    runner.resume()
    memory = FeeBook.in_memory(
        dict(zip(store.uuids, store.grid.initial_fee_ct_per_kwh.tolist(), strict=True))
    )
    rng = random.Random(5)
    top = small_scenario.fee_limits.max_ct_per_kwh
    for slot in range(8):
        assert memory.open_slot(slot).tolist() == runner.fees.tolist(), slot
        for _ in range(rng.randrange(4)):
            commands = [(rng.choice(store.uuids), Fee(round(rng.uniform(0, top), 3))) for _ in range(3)]
            assert store.fee_book.submit_fees(commands, "test") == memory.submit_fees(commands, "test")
        assert store.fees_for_slot(slot + 1).tolist() == memory.fees_for_slot(slot + 1).tolist(), slot
        runner.close_running_slot()
    assert store.fee_history() == memory.history()
    with store.fee_book.storage.reading() as ledger:
        assert ledger.snapshot()[0] == 6
    for slot in range(10):  # read by a fresh book that has no slot settled yet
        fresh = open_store(small_scenario)
        assert fresh.fees_for_slot(slot).tolist() == memory.fees_for_slot(slot).tolist(), slot


def test_a_worker_reads_the_initial_fees_again_after_a_reset(open_store, small_scenario):
    store, worker = open_store(small_scenario), open_store(small_scenario)  # the runner's and a web worker's
    community = store.grid.markets[1]
    initial = float(store.grid.initial_fee_ct_per_kwh[community.index])
    runner = ExchangeRunner(store, slot_seconds=0)
    runner.resume()
    store.fee_book.submit_fee(community.uuid, Fee(9.0), "test")
    runner.run(2)
    assert worker.fees_for_slot(2)[community.index] == 9.0  # the worker has slot 2 settled

    store.reset()  # python -m app.entry.run --reset
    store.register()
    assert worker.fees_for_slot(0)[community.index] == initial
    ExchangeRunner(store, slot_seconds=0).run(2)
    assert worker.fees_for_slot(2)[community.index] == initial


# -- the scenario guard -------------------------------------------------------------------


def test_store_refuses_other_scenario_content_under_same_name(open_store, store_url, small_scenario):
    first = open_store(small_scenario)
    n_markets = len(first.uuids)
    open_store(small_scenario)  # the same content again is fine

    changed = small_scenario.model_copy(update={"seed": small_scenario.seed + 1})
    assert changed.name == small_scenario.name
    other = ExchangeStore(store_url, changed, build_grid(changed))
    try:
        with pytest.raises(StoreMismatch, match="different content"):
            other.register()
    finally:
        other.engine.dispose()
    with pytest.raises(StoreMismatch):
        open_store(changed)

    with first.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(markets)).scalar()
    assert count == n_markets  # nothing registered twice, nothing of the refused one


# -- the runner lock ----------------------------------------------------------------------


def test_runner_lock_is_held_by_one_engine_at_a_time(store_url):
    engines = [make_engine(store_url), make_engine(store_url)]
    first, second = RunnerLock(engines[0], "small"), RunnerLock(engines[1], "small")
    elsewhere = RunnerLock(engines[1], "another scenario")
    try:
        assert first.try_acquire()
        assert first.try_acquire()  # held already: still True
        assert not second.try_acquire()
        assert elsewhere.try_acquire()  # the lock is per scenario
        first.release()
        assert second.try_acquire()
        assert not first.try_acquire()
    finally:
        for lock in (first, second, elsewhere):
            lock.release()
        for engine in engines:
            engine.dispose()


LOCK_HOLDER = textwrap.dedent(
    """
    import sys, time
    from app.store.db import make_engine
    from app.store.lock import RunnerLock

    lock = RunnerLock(make_engine(sys.argv[1]), sys.argv[2])
    print("held" if lock.try_acquire() else "refused", flush=True)
    time.sleep(120)
    """
)


def test_runner_lock_of_a_killed_process_is_free_again(store_url):
    engine = make_engine(store_url)
    mine = RunnerLock(engine, "small")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, store_url, "small"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not mine.try_acquire()
        holder.kill()  # SIGKILL: no clean-up runs in the holder
        holder.wait(timeout=10)
        started = time.monotonic()
        assert mine.acquire(timeout=2, poll=0.02)
        assert time.monotonic() - started < 2
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)
        holder.stdout.close()
        mine.release()
        engine.dispose()
