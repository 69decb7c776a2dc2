"""The Grid Singularity SDK's dialect, as pure functions over our grid and our API's answers.

The SDK (``gsy-e-sdk`` with ``gsy-framework``) reads exactly the keys gsy-e produces, so these
shapes follow ``shared/reference/gsy-grid-operator-api.md`` §1 to the letter: the UUID-keyed
``grid_tree`` of the ``market`` event (§1.6.1-2), the registry (A5), the serialized scenario of the
GraphQL ``readConfiguration`` query (G1), and the ``batch_commands`` reply (§1.7.4). What a fee
*means* is not decided here: commands go through ``ExchangeService.run_batch``, the same path as
``/api/v1``.
"""

from __future__ import annotations

import re
import uuid as uuidlib
from collections.abc import Iterable, Mapping

from app.exchange.grid import GridModel, market_uuid

MANAGED_LEVELS = (0, 1)  # the DSO manages the grid and community markets, not the houses
NUM_TICKS = 10.0  # gsy-e's 100 / DISPATCH_EVENT_TICK_FREQUENCY_PERCENT, sent as a float
ASSET_TYPES = {  # our asset type -> the registry's node type (the SDK knows Area/Load/PV/Storage)
    "load": "Load",
    "pv": "PV",
    "battery": "Storage",
    "flexible_load": "Load",
}
ASSET_LABELS = {"load": "Load", "pv": "PV", "battery": "Battery", "flexible_load": "Flexible Load"}


class GraphQLRefused(ValueError):
    """A GraphQL document this face does not answer; the message says what it does answer."""


def simulation_id(scenario_name: str) -> str:
    """The scenario's simulation UUID (``API_CLIENT_SIMULATION_ID``) unless the settings fix one."""
    return market_uuid(scenario_name, "#simulation")


def asset_uuid(house_uuid: str, position: int) -> str:
    return str(uuidlib.uuid5(uuidlib.UUID(house_uuid), f"asset/{position}"))


def area_tree(grid: GridModel, assets_by_market: Mapping[int, list[dict]]) -> dict:
    """The grid as gsy-e's scenario tree: ``{"name", "uuid", "type", "children": [...]}``.

    Markets are ``Area`` nodes; a house's assets are its leaves (``Load``, ``PV``, ``Storage``),
    named after the house so that every name in the tree is unique, which the SDK's
    name -> uuid look-ups need.
    """
    nodes: list[dict] = []
    for m in grid.markets:
        node = {"name": m.name, "uuid": m.uuid, "type": "Area", "children": []}
        for k, asset in enumerate(assets_by_market.get(m.index, [])):
            kind = asset["type"]
            node["children"].append(
                {
                    "name": f"{m.name} {ASSET_LABELS.get(kind, kind)} {k + 1}",
                    "uuid": asset_uuid(m.uuid, k),
                    "type": ASSET_TYPES.get(kind, "Load"),
                    "children": [],
                }
            )
        nodes.append(node)
        if m.parent_index is not None:
            nodes[m.parent_index]["children"].append(node)
    return nodes[0]


def registry(tree: dict, may_manage: Iterable[str], selected_by: Mapping[str, str]) -> dict:
    """The configuration registry (A5): the tree with ``registered`` set for the markets the
    user may manage (the SDK's ``CONNECT_TO_ALL_MARKETS`` connects to exactly those) and the
    name of the aggregator that has selected each node."""
    managed = set(may_manage)

    def walk(node: dict) -> dict:
        return {
            "name": node["name"],
            "uuid": node["uuid"],
            "type": node["type"],
            "registered": node["uuid"] in managed,
            "aggregator_name": selected_by.get(node["uuid"]),
            "attributes": {},
            "children": [walk(child) for child in node["children"]],
        }

    return walk(tree)


_READ_CONFIGURATION = re.compile(
    r"""^\s*(?:query\s*(?:[A-Za-z_]\w*\s*)?)?\{\s*
        readConfiguration\s*\(\s*uuid\s*:\s*"(?P<uuid>[^"\\]*)"\s*\)\s*
        \{\s*scenarioData\s*\{\s*latest\s*\{\s*serialized\s*\}\s*\}\s*\}\s*
        \}\s*$""",
    re.VERBOSE,
)


def read_configuration_uuid(query: object) -> str:
    """The simulation uuid asked for by the SDK's one GraphQL query (G1), or ``GraphQLRefused``."""
    if not isinstance(query, str):
        raise GraphQLRefused(
            "send the GraphQL document as the string 'query'; this exchange answers the SDK's "
            "readConfiguration query"
        )
    found = _READ_CONFIGURATION.match(query)
    if found is None:
        raise GraphQLRefused(
            "this exchange answers one GraphQL query, the SDK's "
            'query { readConfiguration(uuid: "<simulation id>") { scenarioData { latest { serialized } } } }'
        )
    return found.group("uuid")


def _node(entry: dict) -> dict:
    stats = entry["last_market_stats"]
    # our event's market into the node gsy-e-sdk reads: its contract's fields, a subset of ours
    # picked by name (not derived from app.exchange.stat_table: the SDK's shape is fixed)
    return {
        "area_name": entry["name"],
        "area_uuid": entry["area_uuid"],
        "last_market_fee": entry["last_market_fee"],
        "current_market_fee": entry["current_market_fee"],
        "last_market_stats": {
            "min_trade_rate": stats["min_trade_rate"],
            "max_trade_rate": stats["max_trade_rate"],
            "avg_trade_rate": stats["avg_trade_rate"],
            "median_trade_rate": stats["median_trade_rate"],
            "total_traded_energy_kWh": stats["total_traded_energy_kWh"],
        },
        "last_market_bill": {"accumulated_trades": {}, "external_trades": {}},
        "area_throughput": entry["area_throughput"],
        "market_fee_revenue": entry["market_fee_revenue"],
        "self_sufficiency": entry["self_sufficiency"],
        "children": {},
    }


def grid_tree(info: dict, assets: Mapping[str, list[dict]]) -> dict:
    """The UUID-keyed tree of a ``market`` event, from our market-cycle event ``info``.

    Market nodes carry their fees and last slot's stats; assets are reduced to ``area_name``,
    as gsy-e does for leaves an aggregator does not control. ``assets``: the registry's asset
    leaves by house uuid.
    """
    nodes: dict[str, dict] = {}
    root = None
    for entry in info["markets"]:
        node = _node(entry)
        for leaf in assets.get(entry["area_uuid"], []):
            node["children"][leaf["uuid"]] = {"area_name": leaf["name"], "area_uuid": leaf["uuid"]}
        nodes[entry["area_uuid"]] = node
        parent = entry["parent_uuid"]
        if parent is None:
            root = entry["area_uuid"]
        else:
            nodes[parent]["children"][entry["area_uuid"]] = node
    return {} if root is None else {root: nodes[root]}


def market_event(info: dict, assets: Mapping[str, list[dict]], sim_id: str) -> dict:
    """The ``market`` event sent when slot N starts (``market_slot`` = N, §1.6.1)."""
    return {
        "event": "market",
        "slot_completion": "0%",
        "market_slot": info["market_slot"],
        "grid_tree": grid_tree(info, assets),
        "feed_in_tariff_rate": info["feed_in_tariff_rate"],
        "market_maker_rate": info["market_maker_rate"],
        "simulation_id": sim_id,
        "num_ticks": NUM_TICKS,
    }


def selection_event(selected: bool, aggregator_uuid: str, device_uuid: str) -> dict:
    return {
        "event": "selected_by_device" if selected else "unselected_by_device",
        "aggregator_uuid": aggregator_uuid,
        "device_uuid": device_uuid,
    }


def finish_event(sim_id: str) -> dict:
    return {"event": "finish", "simulation_id": sim_id, "num_ticks": NUM_TICKS}


PERCENT_REFUSED = (
    "GridFee parameter conflicting with GlobalConfigFeeType: this exchange's grid fees are "
    "constant (ct/kWh); send fee_const"
)
NULL_FEE_REFUSED = (
    "GridFee parameter conflicting with GlobalConfigFeeType: fee_const is null; send a number >= 0 in ct/kWh"
)


def command_reply(command: object, ours: dict | None) -> dict | None:
    """One command's answer in gsy-e's shape, from our API's answer to it.

    ``grid_fees`` reports the fee as strings (gsy-e answers ``str(value)``) and the unused
    percentage as ``"None"``; errors keep our code and carry ``error_message`` like gsy-e's.
    """
    if ours is None:
        return None
    kind = command.get("type") if isinstance(command, dict) else None
    data = command.get("data") if isinstance(command, dict) else None
    if kind == "grid_fees" and ours.get("status") == "error" and isinstance(data, dict):
        if "fee_percent" in data:
            ours = {**ours, "error": "fee_percent_unsupported", "error_message": PERCENT_REFUSED}
        elif data.get("fee_const", 0) is None:
            ours = {**ours, "error": "invalid_fee", "error_message": NULL_FEE_REFUSED}
    if ours.get("status") == "error":
        return {**ours, "message": ours.get("error_message")}
    if kind == "grid_fees":
        return {
            "area_uuid": ours["area_uuid"],
            "command": "grid_fees",
            "status": "ready",
            "market_fee_const": str(ours["market_fee_const"]),
            "market_fee_percent": "None",
            "applies_from_slot": ours["applies_from_slot"],
        }
    return ours


def batch_reply(aggregator_uuid: str, batch: Mapping[str, list], response: dict) -> dict:
    """The asynchronous ``batch_commands`` frame for a batch and our API's response to it."""
    responses = {}
    for area, answers in response["responses"].items():
        commands = batch.get(area, [])
        responses[area] = [
            command_reply(commands[i] if i < len(commands) else None, answer)
            for i, answer in enumerate(answers)
        ]
    return {
        "command": "batch_commands",
        "transaction_id": response["transaction_id"],
        "aggregator_uuid": aggregator_uuid,
        "responses": responses,
    }
