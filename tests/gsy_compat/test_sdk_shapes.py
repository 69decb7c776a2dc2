"""The SDK dialect's pure parts: the GraphQL query it sends, the tree and registry it reads."""

from __future__ import annotations

import pytest

from app.api.gsy_compat import protocol
from app.api.service import assets_by_market
from app.config import ROOT
from app.exchange.grid import build_grid
from app.exchange.scenario import load_scenario

SDK_QUERY = """query { readConfiguration(uuid: "abc-123")
                { scenarioData { latest { serialized } } } }"""


@pytest.mark.parametrize(
    "query",
    [
        SDK_QUERY,
        '{readConfiguration(uuid:"abc-123"){scenarioData{latest{serialized}}}}',
        'query Named { readConfiguration(uuid: "abc-123") { scenarioData { latest { serialized } } } }',
    ],
)
def test_the_sdks_read_configuration_query_is_understood(query: str):
    assert protocol.read_configuration_uuid(query) == "abc-123"


@pytest.mark.parametrize(
    "query",
    [
        "{ aggregatorsList { configUuid name } }",
        'mutation { readConfiguration(uuid: "x") { scenarioData { latest { serialized } } } }',
        '{ readConfiguration(uuid: "x") { scenarioData { latest { serialized name } } } }',
        None,
        42,
    ],
)
def test_any_other_graphql_is_refused_with_the_query_we_answer(query: object):
    with pytest.raises(protocol.GraphQLRefused, match="readConfiguration"):
        protocol.read_configuration_uuid(query)


def _tree():
    scenario = load_scenario(ROOT / "scenarios" / "challenge.yaml")
    grid = build_grid(scenario)
    return grid, protocol.area_tree(grid, assets_by_market(scenario, grid.n_communities))


def test_scenario_tree_names_are_unique_so_the_sdks_name_lookup_works():
    grid, tree = _tree()
    names: list[str] = []

    def walk(node: dict) -> None:
        names.append(node["name"])
        for child in node["children"]:
            walk(child)

    walk(tree)
    assert len(names) == len(set(names))
    assert tree["name"] == "Grid" and [c["name"] for c in tree["children"]] == ["Community"]
    assert len(names) > grid.n_markets  # the houses' assets are leaves


def test_registry_registers_only_what_the_user_may_manage_and_only_known_types():
    grid, tree = _tree()
    community = grid.markets[1].uuid
    reg = protocol.registry(tree, [community], {community: "dso"})
    assert reg["registered"] is False
    assert reg["children"][0]["registered"] is True and reg["children"][0]["aggregator_name"] == "dso"
    types: set[str] = set()

    def walk(node: dict) -> None:
        types.add(node["type"])
        for child in node["children"]:
            walk(child)

    walk(reg)
    assert types <= {"Area", "Load", "PV", "Storage"}  # the only buckets of the SDK's get_assets_name


def test_fee_reply_reports_values_as_strings_like_gsy_e():
    ours = {
        "command": "grid_fees",
        "area_uuid": "u",
        "status": "ready",
        "market_fee_const": 3.5,
        "applies_from_slot": "s",
    }
    reply = protocol.command_reply({"type": "grid_fees", "data": {"fee_const": 3.5}}, ours)
    assert reply["market_fee_const"] == "3.5" and reply["market_fee_percent"] == "None"


def test_batch_reply_keeps_the_order_and_a_null_for_an_unanswered_command():
    batch = {"u": [{"type": "dso_market_stats", "data": {}}, {"type": "grid_fees", "data": {"fee_const": 1}}]}
    response = {
        "transaction_id": "t",
        "responses": {"u": [{"command": "dso_market_stats", "status": "ready"}, None]},
    }
    reply = protocol.batch_reply("agg", batch, response)
    assert reply == {
        "command": "batch_commands",
        "transaction_id": "t",
        "aggregator_uuid": "agg",
        "responses": {"u": [{"command": "dso_market_stats", "status": "ready"}, None]},
    }
