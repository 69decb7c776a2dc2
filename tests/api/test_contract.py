"""The Grid Operator API does what DESIGN §3 promises: one test per endpoint and per command."""

from __future__ import annotations

import threading
import time

import pytest

from .helpers import API, STATS_FIELDS, Exchange, assert_error, grid_fees

DSO_FIELDS = STATS_FIELDS | {
    "area_throughput",
    "self_sufficiency",
    "self_consumption",
    "peak_import_kwh",
    "peak_export_kwh",
}


def stats_command(kind: str, market_slots: object = None) -> dict:
    data = {} if market_slots is None else {"market_slots": market_slots}
    return {"type": kind, "data": data}


# -- auth ---------------------------------------------------------------------------------


def test_token_is_issued_for_the_right_password(ex: Exchange):
    response = ex.client.post(f"{API}/auth/token", json={"username": "operator", "password": "operator"})
    assert response.status_code == 200
    body = response.get_json()
    assert isinstance(body["access_token"], str) and body["access_token"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == ex.settings.token_ttl_s
    assert body["username"] == "operator"
    assert body["role"] == "grid_operator"
    clock = ex.client.get(f"{API}/clock", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert clock.status_code == 200


def test_token_is_refused_for_a_wrong_password(ex: Exchange):
    response = ex.client.post(f"{API}/auth/token", json={"username": "operator", "password": "nope"})
    assert_error(response, 401, "bad_credentials")
    response = ex.client.post(f"{API}/auth/token", json={"username": "nobody", "password": "operator"})
    assert_error(response, 401, "bad_credentials")


# -- clock and grid -----------------------------------------------------------------------


def test_clock_reports_the_running_and_the_last_closed_slot(ex: Exchange):
    before = ex.get("/clock").get_json()
    assert before["running_slot"] == ex.label(0)
    assert before["last_closed_slot"] is None
    ex.close(2)
    clock = ex.get("/clock").get_json()
    assert clock["running_slot"] == ex.label(2)
    assert clock["last_closed_slot"] == ex.label(1)
    assert clock["slot_length_min"] == ex.scenario.slot_length_min
    assert clock["slot_seconds"] == 0
    assert 0 <= clock["slot_completion_pct"] <= 100
    assert clock["seconds_to_deadline"] >= 0
    assert isinstance(clock["fee_deadline"], float)
    assert clock["simulated_time"] == ex.label(2)


def test_grid_lists_every_market_with_its_fees_and_assets(ex: Exchange):
    grid = ex.get("/grid").get_json()
    markets = grid["markets"]
    assert [m["area_uuid"] for m in markets] == ex.market_uuids
    by_uuid = {m["area_uuid"]: m for m in markets}
    initial = ex.store.grid.initial_fee_ct_per_kwh.tolist()
    for model, m in zip(ex.store.grid.markets, markets, strict=True):
        assert set(m) >= {
            "area_uuid",
            "name",
            "parent_uuid",
            "level",
            "current_market_fee",
            "next_market_fee",
            "assets",
        }
        assert m["name"] == model.name
        assert m["level"] == model.level
        assert m["current_market_fee"] == m["next_market_fee"] == initial[model.index]
        if model.level == 0:
            assert m["parent_uuid"] is None
            assert m["assets"] == []
        else:
            assert by_uuid[m["parent_uuid"]]["level"] == model.level - 1
        if model.level == 2:  # houses own the assets
            assert m["assets"] and all(isinstance(a["type"], str) for a in m["assets"])
    assert grid["fee_limits"]["max_ct_per_kwh"] == ex.scenario.fee_limits.max_ct_per_kwh

    community = ex.communities[0]
    assert ex.batch({community: [grid_fees(7.5)]}).status_code == 200
    after = {m["area_uuid"]: m for m in ex.get("/grid").get_json()["markets"]}[community]
    assert after["current_market_fee"] == 1.0  # in force: unchanged
    assert after["next_market_fee"] == 7.5  # queued


# -- market cycles ------------------------------------------------------------------------


def test_market_cycles_are_empty_before_any_slot_closed(ex: Exchange):
    response = ex.get("/market-cycles", query_string={"wait": 0})
    assert response.status_code == 200
    assert response.get_json() == {"cycles": [], "last_market_slot": None, "more": False}


def test_market_cycles_after_a_slot_are_the_later_cycles_in_order(ex: Exchange):
    ex.close(3)
    body = ex.get("/market-cycles", query_string={"after": ex.label(0), "wait": 0}).get_json()
    cycles = body["cycles"]
    assert [(c["last_market_slot"], c["market_slot"]) for c in cycles] == [
        (ex.label(1), ex.label(2)),
        (ex.label(2), ex.label(3)),
    ]
    assert body["last_market_slot"] == ex.label(2)
    assert body["more"] is False
    for cycle in cycles:
        assert cycle["event"] == "market"
        assert cycle["slot_length_min"] == ex.scenario.slot_length_min
        assert [m["area_uuid"] for m in cycle["markets"]] == ex.market_uuids
        for m in cycle["markets"]:
            assert set(m["last_market_stats"]) == STATS_FIELDS
            assert set(m["area_throughput"]) == {"import", "export"}
    latest = ex.get("/market-cycles", query_string={"wait": 0}).get_json()["cycles"]
    assert [c["last_market_slot"] for c in latest] == [ex.label(2)]
    none_yet = ex.get("/market-cycles", query_string={"after": ex.label(2), "wait": 0}).get_json()
    assert none_yet == {"cycles": [], "last_market_slot": ex.label(2), "more": False}
    unpadded = ex.label(2).replace("-06-", "-6-").replace("T00:", "T0:")  # parses as the same slot
    assert unpadded != ex.label(2)
    none_yet = ex.get("/market-cycles", query_string={"after": unpadded, "wait": 0}).get_json()
    assert none_yet["last_market_slot"] == ex.label(2)  # echoed as a slot string, not as sent


def test_market_cycles_long_poll_returns_a_cycle_closed_while_waiting(ex: Exchange):
    ex.close()
    closer = threading.Timer(0.3, ex.runner.close_running_slot)
    started = time.monotonic()
    closer.start()
    try:
        response = ex.get("/market-cycles", query_string={"after": ex.label(0), "wait": 5})
    finally:
        closer.join()
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert [c["last_market_slot"] for c in response.get_json()["cycles"]] == [ex.label(1)]
    assert 0.25 <= elapsed < 5


# -- batch commands: stats ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "fields"), [("market_stats", STATS_FIELDS), ("dso_market_stats", DSO_FIELDS)]
)
def test_stats_command_reports_the_last_closed_slot(ex: Exchange, kind: str, fields: set[str]):
    ex.close(2)
    uuids = ex.market_uuids[:3]
    response = ex.batch({u: [stats_command(kind)] for u in uuids})
    assert response.status_code == 200
    body = response.get_json()
    assert list(body["responses"]) == uuids
    history = {u: ex.store.history(u, 1, 1)[0] for u in uuids}
    for u in uuids:
        (answer,) = body["responses"][u]
        assert answer["status"] == "ready"
        assert answer["command"] == kind
        assert answer["area_uuid"] == u
        assert answer["market_slot"] == ex.label(1)
        stats = answer["market_stats"]
        assert set(stats) >= fields
        assert stats["total_traded_energy_kWh"] == history[u]["total_traded_energy_kWh"]
        assert stats["current_market_fee"] == history[u]["fee_ct_per_kwh"]
        if kind == "dso_market_stats":
            assert stats["area_throughput"] == {
                "import": history[u]["import_kwh"],
                "export": history[u]["export_kwh"],
            }


@pytest.mark.parametrize("kind", ["market_stats", "dso_market_stats"])
def test_stats_command_for_listed_slots_is_keyed_by_slot(ex: Exchange, kind: str):
    ex.close(3)
    grid = ex.market_uuids[0]
    listed = ex.batch({grid: [stats_command(kind, [ex.label(0), ex.label(2), ex.label(7)])]})
    (answer,) = listed.get_json()["responses"][grid]
    assert answer["status"] == "ready"
    stats = answer["market_stats"]
    assert list(stats) == [ex.label(0), ex.label(2), ex.label(7)]
    rows = ex.store.history(grid)
    assert stats[ex.label(0)]["total_traded_energy_kWh"] == rows[0]["total_traded_energy_kWh"]
    assert stats[ex.label(2)]["total_traded_energy_kWh"] == rows[2]["total_traded_energy_kWh"]
    assert stats[ex.label(7)] is None  # not closed yet

    single = ex.batch({grid: [stats_command(kind, ex.label(1))]})
    (answer,) = single.get_json()["responses"][grid]
    assert list(answer["market_stats"]) == [ex.label(1)]
    assert (
        answer["market_stats"][ex.label(1)]["total_traded_energy_kWh"] == rows[1]["total_traded_energy_kWh"]
    )


# -- history and openapi ------------------------------------------------------------------


def test_history_returns_the_slots_from_to_inclusive(ex: Exchange):
    ex.close(4)
    community = ex.communities[1]
    body = ex.get(
        f"/markets/{community}/history", query_string={"from": ex.label(1), "to": ex.label(2)}
    ).get_json()
    assert body["area_uuid"] == community
    assert [r["slot"] for r in body["rows"]] == [ex.label(1), ex.label(2)]
    stored = ex.store.history(community, 1, 2)
    for row, want in zip(body["rows"], stored, strict=True):
        assert set(row["stats"]) >= DSO_FIELDS
        assert row["stats"]["total_traded_energy_kWh"] == want["total_traded_energy_kWh"]
    everything = ex.get(f"/markets/{community}/history").get_json()
    assert [r["slot"] for r in everything["rows"]] == [ex.label(k) for k in range(4)]
    tail = ex.get(f"/markets/{community}/history", query_string={"from": ex.label(3)}).get_json()
    assert [r["slot"] for r in tail["rows"]] == [ex.label(3)]


def test_openapi_document_describes_every_endpoint(ex: Exchange):
    response = ex.client.get(f"{API}/openapi.json")  # no token needed
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        f"{API}/auth/token",
        f"{API}/clock",
        f"{API}/grid",
        f"{API}/market-cycles",
        f"{API}/batch-commands",
        f"{API}/markets/{{area_uuid}}/history",
        f"{API}/openapi.json",
    }


# -- batch commands: grid_fees ------------------------------------------------------------


def test_fee_sent_during_slot_applies_from_next_slot(ex: Exchange):
    community = ex.communities[0]
    old = ex.fees(0)[1]
    ex.close()  # slot 0 closed, slot 1 running
    response = ex.batch({community: [grid_fees(4.5)]})
    assert response.status_code == 200
    (answer,) = response.get_json()["responses"][community]
    assert answer["status"] == "ready"
    assert answer["command"] == "grid_fees"
    assert answer["market_fee_const"] == 4.5
    assert answer["applies_from_slot"] == ex.label(2)

    ex.close()  # slot 1 closed: it ran with the old fee, the new one is queued
    (stats,) = ex.batch({community: [stats_command("dso_market_stats")]}).get_json()["responses"][community]
    assert stats["market_slot"] == ex.label(1)
    assert stats["market_stats"]["current_market_fee"] == old
    assert stats["market_stats"]["next_market_fee"] == 4.5

    ex.close()  # slot 2 ran with the new fee
    (stats,) = ex.batch({community: [stats_command("dso_market_stats")]}).get_json()["responses"][community]
    assert stats["market_slot"] == ex.label(2)
    assert stats["market_stats"]["current_market_fee"] == 4.5
    assert [r["fee_ct_per_kwh"] for r in ex.store.history(community)] == [old, old, 4.5]


def test_resent_batch_with_the_same_transaction_id_is_applied_once(ex: Exchange):
    ex.close()
    community = ex.communities[0]
    first = ex.batch({community: [grid_fees(3.25)]}, transaction_id="tx-1")
    assert first.status_code == 200
    assert "Idempotent-Replay" not in first.headers
    again = ex.batch({community: [grid_fees(3.25)]}, transaction_id="tx-1")
    assert again.status_code == 200
    assert again.headers["Idempotent-Replay"] == "true"
    assert again.get_json() == first.get_json()
    assert first.get_json()["transaction_id"] == "tx-1"
    (change,) = ex.store.fee_history()
    assert (change.market_uuid, change.fee_ct_per_kwh, change.transaction_id) == (community, 3.25, "tx-1")


def test_batch_mixing_good_and_bad_commands_answers_each(ex: Exchange):
    ex.close()
    good, bad = ex.communities
    response = ex.batch(
        {
            good: [grid_fees(2.5), stats_command("market_stats")],
            bad: [grid_fees(-1)],
            "no-such-market": [stats_command("market_stats")],
        }
    )
    assert response.status_code == 200
    responses = response.get_json()["responses"]
    assert [r["status"] for r in responses[good]] == ["ready", "ready"]
    assert responses[good][0]["market_fee_const"] == 2.5
    (refused,) = responses[bad]
    assert refused["status"] == "error"
    assert refused["error"] == "negative_fee"
    assert refused["error_message"]
    assert responses["no-such-market"][0]["error"] == "unknown_market"
    assert [(c.market_uuid, c.fee_ct_per_kwh) for c in ex.store.fee_history()] == [(good, 2.5)]
    assert ex.fees(2)[ex.market_uuids.index(bad)] == 1.0
