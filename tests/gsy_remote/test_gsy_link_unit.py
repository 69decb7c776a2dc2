"""The gsy link's pure parts: names, the clock from the link's state, event nodes, settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.client import ExchangeUnavailable
from app.client.gsy import clock_from_state, flatten, market_entry, slugify
from app.client.gsy_hosted import http_base, websocket_base
from app.config import ConfigError, Settings

WIRE = Path(__file__).resolve().parent / "fixtures" / "gsy_e_wire.json"


def test_gsl001_slugs_are_gsy_e_channel_names():
    # the names gsy-e answered on in the recording: "<slug>/response/register_participant"
    recorded = {
        m["channel"].split("/", 1)[0]
        for m in json.loads(WIRE.read_text())
        if m["channel"].endswith("/register_participant")
    }
    assert {"grid", "community", "house-1", "h1-load", "market-maker"} <= recorded
    names = {"Grid", "Community", "House 1", "H1 Load", "Market Maker"}
    assert {slugify(n) for n in names} <= recorded
    # python-slugify's answers (gsy-e's venv) for names with accents and punctuation
    assert slugify("Süd-Ost  Feeder #2") == "sud-ost-feeder-2"
    assert slugify("Straße 3") == "strasse-3" and slugify("a_b.c") == "a-b-c"


def test_gsl002_no_slot_before_the_first_event_and_stale_after_silence():
    with pytest.raises(ExchangeUnavailable, match="first market event"):
        clock_from_state({"waiting": "connected; waiting for the exchange's first market event"}, 100.0)
    state = {"running_slot": "2024-06-21T00:30", "last_closed_slot": "2024-06-21T00:15", "event_at": 100.0,
             "slot_seconds": 4.0, "slot_length_min": 15}  # fmt: skip
    clock = clock_from_state(state, 101.0)
    assert clock["seconds_to_deadline"] == pytest.approx(3.0) and not clock["finished"]
    with pytest.raises(ExchangeUnavailable, match="no market event from the exchange since"):
        clock_from_state(state, 100.0 + 21.0)  # max(2.5 slots, 20 s) without an event
    with pytest.raises(ExchangeUnavailable, match="silent"):
        clock_from_state({**state, "down_reason": "gsy-e is silent: no heartbeat since 10:00:00 UTC"}, 101.0)
    done = clock_from_state({**state, "finished": True, "down_reason": "Redis gone"}, 1000.0)
    assert done["finished"] and done["seconds_to_deadline"] == 0.0


def test_gsl003_event_nodes_become_market_info_entries():
    event = next(
        m["data"]
        for m in json.loads(WIRE.read_text())
        if m["channel"].endswith("/events/all") and m["data"].get("market_slot") == "2024-06-21T01:15"
    )
    rows = {r["name"]: r for r in flatten(event["grid_tree"])}
    assert rows["Grid"]["level"] == 0 and rows["Community"]["parent_uuid"] == rows["Grid"]["area_uuid"]
    community = market_entry(rows["Community"])
    # the event of 01:15: 7 ct/kWh was in force in 01:00 (sent during 00:45) and still is
    assert community["last_market_fee"] == 7.0 and community["current_market_fee"] == 7.0
    stats = community["last_market_stats"]
    assert stats["market_fee_revenue"] == pytest.approx(7.0 * stats["total_traded_energy_kWh"])


def test_gsl004_settings_of_a_gsy_exchange():
    redis = Settings.from_env({"GRID_API_URL": "gsy+redis://127.0.0.1:6390", "GSY_CONFIGURATION_ID": "cfg-1"})
    assert redis.gsy_dialect == "redis" and redis.gsy_configuration_id == "cfg-1"
    hosted = Settings.from_env({"GRID_API_URL": "gsy+https://gsy.example", "GSY_SIMULATION_ID": "abc-1"})
    assert hosted.gsy_dialect == "hosted"
    assert http_base(hosted.grid_api_url) == "https://gsy.example"
    assert websocket_base(hosted.grid_api_url) == "wss://gsy.example/external-ws"
    assert websocket_base("gsy+http://127.0.0.1:9", "ws://other/ws/") == "ws://other/ws"
    assert Settings.from_env({"GRID_API_URL": "https://x"}).gsy_dialect is None
    with pytest.raises(ConfigError, match="GSY_SIMULATION_ID"):
        Settings.from_env({"GRID_API_URL": "gsy+https://gsy.example"})
    with pytest.raises(ConfigError, match="gsy\\+redis://"):
        Settings.from_env({"GRID_API_URL": "redis://127.0.0.1:6390"})
