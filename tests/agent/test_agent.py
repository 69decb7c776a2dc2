"""The server-side operator agent: one stats batch and one fee batch per cycle, audited."""

import threading

import pytest

from app.operator.run import start_agent
from app.operator.store import APPLIED, QUEUED, REFUSED, SENDING, SUPERSEDED


def count_batches(agent):
    sent = []
    original = agent.batch_command

    def spy(batch, transaction_id=None):
        sent.append({u: [c["type"] for c in cs] for u, cs in batch.items()})
        return original(batch, transaction_id)

    agent.batch_command = spy
    return sent


def test_agent_over_20_cycles_keeps_history_and_applies_queued_fees_from_the_next_slot(console):
    agent = console.new_agent()
    sent = count_batches(agent)
    community = console.market(1)
    for cycle in range(20):
        if cycle == 5:
            console.ops.queue(community.uuid, community.name, 4.5, source="manual:operator", user="operator")
        before = len(sent)
        info = console.cycle(agent)
        kinds = [set(t for ts in b.values() for t in ts) for b in sent[before:]]
        # one stats batch for every managed market, and a fee batch only when something is queued
        assert kinds[0] == {"dso_market_stats"}
        assert (
            len(sent[before][community.uuid]) == 1
            and len(sent[before]) == 1 + console.store.grid.n_communities
        )
        assert kinds[1:] == ([{"grid_fees"}] if cycle == 5 else [])
        if cycle == 5:
            queued_during = info["market_slot"]
    slots = console.ops.slots(community.uuid)
    assert slots == [console.runner.clock.label(k) for k in range(20)]  # every slot once
    (command,) = console.ops.commands()
    assert command["status"] == APPLIED and command["source"] == "manual:operator"
    applies = console.runner.clock.slot_of(command["applies_from_slot"])
    assert applies == console.runner.clock.slot_of(queued_during) + 1
    fees = {r["slot"]: r["fee_ct_per_kwh"] for r in console.store.history(community.uuid)}
    assert fees[applies - 1] == 1.0 and fees[applies] == 4.5


def test_several_changes_before_the_deadline_collapse_to_the_last(console):
    agent = console.new_agent()
    community = console.market(1)
    for fee in (2.0, 3.0, 7.0):
        console.ops.queue(community.uuid, community.name, fee, source="manual:operator", user="operator")
    console.cycle(agent)
    statuses = [(c["fee_ct_per_kwh"], c["status"]) for c in console.ops.commands()]
    assert statuses == [(7.0, APPLIED), (3.0, SUPERSEDED), (2.0, SUPERSEDED)]
    assert [c.fee_ct_per_kwh for c in console.store.fee_history(community.uuid)] == [7.0]


def test_a_refused_command_is_recorded_with_the_exchange_s_reason(console):
    agent = console.new_agent()
    community = console.market(1)
    console.ops.queue(community.uuid, community.name, 10_000.0, source="manual:operator", user="operator")
    console.cycle(agent)
    (command,) = console.ops.commands()
    assert command["status"] == REFUSED and "above the maximum" in command["reason"]
    assert console.store.fee_history() == []


@pytest.mark.parametrize("crash", ["before the exchange got it", "after the exchange applied it"])
def test_agent_killed_mid_cycle_loses_no_queued_command_and_sends_none_twice(console, crash):
    agent = console.new_agent()
    community = console.market(1)
    console.ops.queue(community.uuid, community.name, 5.0, source="manual:operator", user="operator")
    original = agent.batch_command

    def dies(batch, transaction_id=None):
        if any(c["type"] == "grid_fees" for cs in batch.values() for c in cs):
            if crash == "after the exchange applied it":
                original(batch, transaction_id)
            raise KeyboardInterrupt("killed")
        return original(batch, transaction_id)

    agent.batch_command = dies
    with pytest.raises(KeyboardInterrupt):
        console.cycle(agent)
    assert [c["status"] for c in console.ops.commands()] == [SENDING]
    restarted = console.new_agent()  # a new process: same store, nothing in memory
    console.cycle(restarted)
    assert [c["status"] for c in console.ops.commands()] == [APPLIED]
    assert [c.fee_ct_per_kwh for c in console.store.fee_history(community.uuid)] == [5.0]


def test_queued_command_survives_a_restart_and_is_sent_once(console):
    community = console.market(1)
    console.ops.queue(community.uuid, community.name, 3.5, source="manual:operator", user="operator")
    assert [c["status"] for c in console.ops.commands()] == [QUEUED]
    console.cycle(console.new_agent())  # the first agent after the restart
    console.cycle(console.new_agent())
    assert len(console.store.fee_history(community.uuid)) == 1


def test_two_agent_processes_against_one_store_only_one_runs(console):
    stop = threading.Event()
    try:
        first = start_agent(console.settings, console.store.engine, console.server, stop)
        second = start_agent(console.settings, console.store.engine, console.server, stop)
        assert first is not None and second is None
    finally:
        stop.set()
        first.join(timeout=20)
    stop_third = threading.Event()
    third = start_agent(console.settings, console.store.engine, console.server, stop_third)
    try:
        assert third is not None  # the lock is free again once the first one stopped
    finally:
        stop_third.set()  # no agent thread outlives the test (a later fork must not inherit one)
        if third is not None:
            third.join(timeout=20)
