"""The SDK face's rows in the store (aggregators, selections, outbox), on SQLite and PostgreSQL.

They are what lets several gunicorn workers serve one SDK client: whichever worker takes a
request reads and writes them here.
"""

from __future__ import annotations

import json

from app.api.gsy_compat import store as gsy_store
from app.api.gsy_compat.store import GsyStore, aggregator_channel


def test_aggregators_selections_and_outbox_round_trip(open_store, small_scenario, monkeypatch):
    store = open_store(small_scenario)
    gsy = GsyStore(store.engine, store.key)
    made = gsy.create("operator", "dso")
    assert made["created"] and gsy.create("operator", "dso") == {**made, "created": False}
    other = gsy.create("viewer", "dso")
    assert other["uuid"] != made["uuid"]  # the same name, another user: another aggregator
    agg = made["uuid"]
    grid, community = (m.uuid for m in store.grid.markets[:2])
    assert gsy.select_device(agg, grid) and gsy.select_device(agg, community)
    assert not gsy.select_device(agg, grid)  # already selected
    assert gsy.devices(agg) == [grid, community]
    assert gsy.aggregators("operator") == [{"uuid": agg, "name": "dso", "devices": sorted([grid, community])}]
    assert gsy.selected_by("operator") == {grid: "dso", community: "dso"}
    assert gsy.selected_by("viewer") == {}
    assert gsy.unselect_device(agg, grid) and not gsy.unselect_device(agg, grid)

    channel = aggregator_channel(agg)
    start = gsy.last_id()
    first = gsy.post(channel, {"command": "batch_commands", "transaction_id": "t1"})
    gsy.post(aggregator_channel(other["uuid"]), {"event": "selected_by_device"})
    second = gsy.post(channel, {"command": "batch_commands", "transaction_id": "t2"})
    frames = gsy.frames_after(channel, start)
    assert [i for i, _ in frames] == [first, second]
    assert [json.loads(p)["transaction_id"] for _, p in frames] == ["t1", "t2"]
    assert gsy.frames_after(channel, second) == [] and gsy.last_id() == second

    # frames nobody picked up within OUTBOX_KEEP_S are dropped with the next post
    monkeypatch.setattr(gsy_store, "OUTBOX_KEEP_S", -1.0)
    gsy.post(channel, {"command": "x"})
    assert [json.loads(p) for _, p in gsy.frames_after(channel, start)] == [{"command": "x"}]

    assert not gsy.delete("viewer", agg)  # not theirs
    assert gsy.delete("operator", agg)
    assert gsy.aggregator("operator", agg) is None and gsy.devices(agg) == []
    assert gsy.aggregators("operator") == []
