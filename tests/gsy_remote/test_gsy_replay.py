"""The Redis dialect against messages recorded from a real gsy-e (runs wherever ``redis-server``
is; ``gsye_replay.py`` answers as the recording shows gsy-e answering, ``fixtures/README.md`` says
where the recording came from). The test paces the recorded slots itself, 2 s apart.
"""

from __future__ import annotations

import time

import pytest
from gsye_replay import ReplayGsyE
from remote_helpers import send_to_a_lost_market, settled_commands, wait_for

from app.client import ExchangeUnavailable, gsy, gsy_redis
from app.client.gsy import GsyLinkStore
from app.operator import timing
from app.operator.store import APPLIED, REFUSED
from app.slots import shift

PACE_S = 2.0


@pytest.fixture
def replay(redis_url: str):
    gsye = ReplayGsyE(redis_url)
    yield gsye
    gsye.close()


def link_state(console) -> dict:
    return GsyLinkStore(console.engine, console.settings.exchange_key).load()[1]


def reader_clock(console) -> dict | str:
    try:
        return console.reader().clock()
    except ExchangeUnavailable as exc:
        return str(exc)


def test_grr001_recorded_gsy_e_loop(replay: ReplayGsyE, redis_url: str, console_for, monkeypatch):
    monkeypatch.setattr(gsy_redis, "HEARTBEAT_SILENCE_S", 1.0)
    console = console_for("gsy+redis://" + redis_url.split("://", 1)[1].rsplit("/", 1)[0])
    agent = console.start_agent()
    wait_for(
        lambda: set((link_state(console).get("held") or {}).values()) == {"Grid", "Community"}, 30, "held"
    )
    uuids = {v: k for k, v in link_state(console)["held"].items()}
    assert "market event" in reader_clock(console)  # connected, but no slot yet: none invented

    def step() -> str:
        """The next recorded slot opens; returns the slot it closed, once the agent stored it."""
        event = replay.step()
        closed = shift(event["market_slot"], -1, 15)
        wait_for(lambda: console.store.latest_slot() == closed, 30, f"slot {closed} stored")
        return closed

    step()
    for _ in range(2):
        time.sleep(PACE_S)
        step()
    clock = console.reader().clock()
    running = clock["running_slot"]
    assert running == "2024-06-21T00:45" and clock["slot_seconds"] >= PACE_S
    send_s = clock["seconds_to_deadline"] - timing.send_lead_s(clock["slot_seconds"])
    assert send_s > 0, clock
    assert timing.target_slot(running, 15, send_s) == "2024-06-21T01:00"
    console.store.queue(
        uuids["Community"], "Community", 7.0, source="manual", user="operator", running_slot=running
    )
    console.store.queue(uuids["Grid"], "Grid", -2.0, source="manual", user="operator", running_slot=running)
    by_name = settled_commands(console, "the answers")
    assert by_name["Community"]["status"] == APPLIED
    assert by_name["Community"]["applies_from_slot"] == "2024-06-21T01:00"
    assert by_name["Grid"]["status"] == REFUSED and "kept 1 ct/kWh, not -2.0" in by_name["Grid"]["reason"]
    # one batch for both fees, under the console's transaction id, as gsy-e received it
    fee_batches = [
        b for b in replay.batches if any(c[0]["type"] == "grid_fees" for c in b["batch_commands"].values())
    ]
    assert len(fee_batches) == 1 and fee_batches[0]["transaction_id"] == by_name["Grid"]["transaction_id"]

    time.sleep(PACE_S)
    step()  # 01:00 opens, with the fee in force
    replay.repeat()  # the same event again: not a new slot

    # an outage: gsy-e falls silent; the console says so, then takes its markets back
    replay.beating.clear()
    assert "silent" in wait_for(lambda: isinstance(c := reader_clock(console), str) and c, 30, "stale")
    aggregator = agent.aggregator_uuid
    replay.beating.set()
    wait_for(lambda: isinstance(reader_clock(console), dict), 30, "the link back")
    assert agent.aggregator_uuid == aggregator

    for _ in range(3):
        time.sleep(PACE_S)
        step()
    # gsy-e drops a command for a market the aggregator does not hold: the missing answer is refused
    stray, answer = send_to_a_lost_market(agent, uuids["Grid"])
    assert answer["responses"][uuids["Grid"]][0]["status"] == "ready"
    assert "no answer" in answer["responses"][stray][0]["error_message"]
    replay.finish()
    wait_for(lambda: isinstance(c := reader_clock(console), dict) and c["finished"], 30, "finished")

    # the history is gsy-e's recorded figures, each closed slot once
    community = {r["slot"]: r for r in console.store.history(uuids["Community"])}
    assert sorted(community) == [shift("2024-06-21T00:00", k, 15) for k in range(7)]
    assert community["2024-06-21T00:45"]["fee_ct_per_kwh"] == 4.0
    assert community["2024-06-21T01:00"]["fee_ct_per_kwh"] == 7.0
    assert community["2024-06-21T01:00"]["market_fee_revenue"] == pytest.approx(1.6275)
    assert community["2024-06-21T00:45"]["next_fee_ct_per_kwh"] == 7.0
    grid = {r["slot"]: r for r in console.store.history(uuids["Grid"])}
    assert {r["fee_ct_per_kwh"] for r in grid.values()} == {1.0}


def test_grr002_a_lost_answer_is_settled_from_the_next_event_not_sent_again(
    replay: ReplayGsyE, redis_url: str, console_for, monkeypatch
):
    monkeypatch.setattr(gsy, "ANSWER_TIMEOUT_S", 0.5)
    console = console_for("gsy+redis://" + redis_url.split("://", 1)[1].rsplit("/", 1)[0])
    console.start_agent()
    wait_for(lambda: len(link_state(console).get("held") or {}) == 2, 30, "held")
    uuids = {v: k for k, v in link_state(console)["held"].items()}
    for k in range(3):
        if k:
            time.sleep(PACE_S)
        event = replay.step()
        closed = shift(event["market_slot"], -1, 15)
        wait_for(lambda c=closed: console.store.latest_slot() == c, 30, f"slot {closed} stored")
    running = console.reader().clock()["running_slot"]
    replay.mute_batches.set()  # gsy-e takes the batch; its answer never reaches the console
    console.store.queue(
        uuids["Community"], "Community", 7.0, source="manual", user="operator", running_slot=running
    )
    console.store.queue(uuids["Grid"], "Grid", -2.0, source="manual", user="operator", running_slot=running)

    def fee_batches() -> list[dict]:
        return [
            b
            for b in replay.batches
            if any(c[0]["type"] == "grid_fees" for c in b["batch_commands"].values())
        ]

    wait_for(fee_batches, 30, "the fee batch at the send point")
    time.sleep(PACE_S)
    replay.mute_batches.clear()
    replay.step()  # the recorded event of 01:00: Community's fee is 7, Grid's still 1
    by_name = settled_commands(console, "the commands settled")
    assert by_name["Community"]["status"] == APPLIED
    assert by_name["Community"]["applies_from_slot"] == "2024-06-21T01:00"  # as the event shows
    assert by_name["Grid"]["status"] == REFUSED and "not sent again" in by_name["Grid"]["reason"]
    assert len(fee_batches()) == 1  # resent by the agent under the same id, published once
