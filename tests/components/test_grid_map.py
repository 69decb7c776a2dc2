"""The grid map's elements: a tree that does not move, coloured by load against the limit."""

from __future__ import annotations

import json

from app.console.components.grid_map import COLLAPSE_OVER, map_elements, tree_positions
from app.operator.alerts import Limits


def tree(communities: int, houses: int) -> list[dict]:
    grid = {"uuid": "g", "name": "Grid", "level": 0, "parent_uuid": None}
    out = [{**grid, "fee_ct_per_kwh": 2, "next_fee_ct_per_kwh": 2}]
    for c in range(communities):
        out.append(
            {
                "uuid": f"c{c}",
                "name": f"C{c}",
                "level": 1,
                "parent_uuid": "g",
                "fee_ct_per_kwh": 1,
                "next_fee_ct_per_kwh": 1,
            }
        )
        out += [
            {"uuid": f"h{c}.{h}", "name": f"H{c}.{h}", "level": 2, "parent_uuid": f"c{c}"}
            for h in range(houses)
        ]
    return out


def nodes(elements: list[dict]) -> dict[str, dict]:
    return {e["data"]["id"]: e for e in elements if "source" not in e["data"]}


def test_map001_parents_centred_over_their_children_levels_top_down():
    pos = tree_positions(tree(2, 2))
    assert pos["g"]["y"] < pos["c0"]["y"] < pos["h0.0"]["y"]
    assert pos["c0"]["x"] == (pos["h0.0"]["x"] + pos["h0.1"]["x"]) / 2
    assert pos["g"]["x"] == (pos["c0"]["x"] + pos["c1"]["x"]) / 2
    assert len({(p["x"], p["y"]) for p in pos.values()}) == len(pos)  # nobody on top of another


def test_map002_colour_by_load_and_alert_state_in_words_too():
    latest = {
        "c0": {"import_kwh": 12.0, "export_kwh": 0.0, "fee_ct_per_kwh": 1.0, "next_fee_ct_per_kwh": 1.0},
        "c1": {"import_kwh": 8.5, "export_kwh": 0.0, "fee_ct_per_kwh": 1.0, "next_fee_ct_per_kwh": 1.0},
        "g": {"import_kwh": 1.0, "export_kwh": 0.0, "fee_ct_per_kwh": 2.0, "next_fee_ct_per_kwh": 2.0},
    }
    limits = {"c0": Limits(10.0, 10.0), "c1": Limits(10.0, None), "g": Limits(100.0, 100.0)}
    alerts = {"c0": [{"state": "alerting", "message": "import 12 kWh over its limit"}]}
    got = nodes(map_elements(tree(2, 1), latest, limits, alerts, {"c1": 4.0}))
    assert set(got["c0"]["classes"].split()) == {"community", "over-limit", "alerting"}
    assert "near-limit" in got["c1"]["classes"] and "under-limit" in got["g"]["classes"]
    assert "no-limit" in got["h0.0"]["classes"]  # a house: no limit, no history
    assert got["c0"]["data"]["label"] == "C0\n120 %"
    assert got["c1"]["data"]["queued"] == 4.0  # the console's queue wins over the exchange's
    assert "fee in force 1.00 ct/kWh" in got["c0"]["data"]["tip"]
    assert "import 12.00 kWh of 10.00 kWh" in got["c0"]["data"]["tip"]
    assert "ALERT: import 12 kWh over its limit" in got["c0"]["data"]["tip"]
    assert got["c0"]["data"]["managed"] and not got["h0.0"]["data"]["managed"]


def test_map003_houses_collapse_past_two_dozen_nodes():
    small = map_elements(tree(2, 3), {}, {}, {}, {})
    assert len(nodes(small)) == 1 + 2 + 6
    big = tree(50, 20)  # 1,051 markets
    elements = map_elements(big, {}, {}, {}, {})
    shown = nodes(elements)
    assert len(big) > COLLAPSE_OVER and len(shown) == 51
    assert shown["c0"]["data"]["label"] == "C0 (20 houses)"
    edges = [e for e in elements if "source" in e["data"]]
    assert len(edges) == 50 and all(e["data"]["target"] in shown for e in edges)
    assert len(json.dumps(elements)) < 60_000  # what a tick sends for 1,000 markets
