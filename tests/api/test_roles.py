"""Roles and market grants: a viewer reads and changes nothing; an operator sets only granted markets."""

from __future__ import annotations

from app.exchange.generate import generate_scenario
from app.exchange.grid import build_grid

from .helpers import API, Exchange, assert_error, grid_fees, write_users


def test_viewer_cannot_set_a_fee_but_can_read_stats(ex: Exchange):
    ex.close()
    community = ex.communities[0]
    response = ex.batch({community: [grid_fees(5)]}, user="viewer")
    body = assert_error(response, 403, "forbidden")
    (answer,) = body["responses"][community]
    assert answer["status"] == "error" and answer["error"] == "forbidden"
    assert ex.store.fee_history() == []
    assert ex.fees(2) == ex.store.grid.initial_fee_ct_per_kwh.tolist()

    mixed = ex.batch({community: [{"type": "market_stats"}, grid_fees(5)]}, user="viewer")
    assert mixed.status_code == 200
    stats, refused = mixed.get_json()["responses"][community]
    assert stats["status"] == "ready" and stats["market_slot"] == ex.label(0)
    assert refused["error"] == "forbidden"
    assert ex.store.fee_history() == []

    dso = ex.batch({u: [{"type": "dso_market_stats"}] for u in ex.market_uuids}, user="viewer")
    assert dso.status_code == 200
    assert all(r[0]["status"] == "ready" for r in dso.get_json()["responses"].values())
    for path in ("/clock", "/grid", "/market-cycles", f"/markets/{community}/history"):
        assert ex.get(path, user="viewer").status_code == 200, path
    assert (
        ex.client.post(f"{API}/auth/token", json={"username": "viewer", "password": "viewer"}).get_json()[
            "role"
        ]
        == "viewer"
    )


def test_operator_granted_one_community_sets_only_its_fee(make_exchange, tmp_path):
    users = write_users(
        tmp_path / "users.yaml",
        {
            "alice": ("alice-pw", "grid_operator", ["Community 1"]),  # granted by name
            "bob": ("bob-pw", "grid_operator", "*"),
        },
    )
    ex = make_exchange(
        {"USERS_FILE": str(users), "DEMO": "off"}, passwords={"alice": "alice-pw", "bob": "bob-pw"}
    )
    ex.close()
    a, b = ex.market("Community 1"), ex.market("Community 2")
    grid = ex.market("Grid")

    response = ex.batch({a: [grid_fees(6)], b: [grid_fees(7)], grid: [grid_fees(8)]}, user="alice")
    assert response.status_code == 200
    responses = response.get_json()["responses"]
    assert responses[a][0]["status"] == "ready"
    assert responses[a][0]["applies_from_slot"] == ex.label(2)
    for other in (b, grid):
        assert responses[other][0]["status"] == "error"
        assert responses[other][0]["error"] == "forbidden"
    assert [(c.market_uuid, c.fee_ct_per_kwh) for c in ex.store.fee_history()] == [(a, 6.0)]

    only_b = ex.batch({b: [grid_fees(7)]}, user="alice")
    assert_error(only_b, 403, "forbidden")
    assert len(ex.store.fee_history()) == 1

    # a user granted "*" manages every market
    assert ex.batch({b: [grid_fees(7)]}, user="bob").status_code == 200
    fees = ex.fees(2)
    assert (fees[ex.market_uuids.index(a)], fees[ex.market_uuids.index(b)]) == (6.0, 7.0)
    # demo off: the demo users are gone
    response = ex.client.post(f"{API}/auth/token", json={"username": "operator", "password": "operator"})
    assert_error(response, 401, "bad_credentials")


def test_operator_granted_a_market_by_uuid_may_set_it(make_exchange, tmp_path):
    scenario = generate_scenario(2, 3, seed=1)
    (b,) = [m.uuid for m in build_grid(scenario).markets if m.name == "Community 2"]
    users = write_users(tmp_path / "users.yaml", {"carol": ("carol-pw", "grid_operator", [b])})
    ex = make_exchange({"USERS_FILE": str(users)}, passwords={"carol": "carol-pw"}, scenario=scenario)
    ex.close()
    response = ex.batch({b: [grid_fees(2)], ex.market("Community 1"): [grid_fees(2)]}, user="carol")
    statuses = [r[0]["status"] for r in response.get_json()["responses"].values()]
    assert statuses == ["ready", "error"]
    assert [c.market_uuid for c in ex.store.fee_history()] == [b]
