"""Limits and alerts: the rules as plain functions, their states in the store, and the agent
raising and clearing them on its own (no browser)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from app.operator import alerts
from app.operator.alerts import (
    ALERTING,
    PENDING,
    RESOLVED,
    AlertStore,
    Condition,
    Limits,
    command_refused,
    effective_limits,
    fee_at_cap,
    flow_load,
    liveness_conditions,
    over_limit,
    revenue_spike,
)
from app.store.schema import metadata

MARKET = {"uuid": "m1", "name": "North"}


def row(slot: int, imp: float = 0.0, exp: float = 0.0, fee: float = 1.0, revenue: float = 10.0) -> dict:
    return {
        "slot": f"2026-06-22T{slot // 4:02d}:{15 * (slot % 4):02d}",
        "import_kwh": imp,
        "export_kwh": exp,
        "fee_ct_per_kwh": fee,
        "market_fee_revenue": revenue,
    }


@pytest.fixture
def store():
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    yield AlertStore(engine)
    engine.dispose()


def test_alr001_over_limit_names_the_direction_the_slot_and_the_share():
    limits = Limits(10.0, 20.0)
    assert not over_limit(MARKET, [row(0, imp=10.0)], limits).active  # at the limit is not over
    cond = over_limit(MARKET, [row(0, imp=9), row(1, imp=12.5, exp=0)], limits)
    assert cond.active and cond.value == 12.5 and cond.threshold == 10.0
    assert cond.message == "import 12.5 kWh over its limit of 10 kWh per slot in slot 00:15 (125 %)"
    assert over_limit(MARKET, [row(0, exp=30)], limits).message.startswith("export 30 kWh")
    assert not over_limit(MARKET, [row(0, imp=99)], Limits(None, 20.0)).active  # no import limit
    assert not over_limit(MARKET, [row(0, imp=99)], None).active
    assert flow_load(row(0, imp=5, exp=30), limits) == {
        "import_pct": 50.0,
        "export_pct": 150.0,
        "load_pct": 150.0,
        "over": "export",
    }


def test_alr002_console_limits_override_the_exchanges():
    tree = [
        {"area_uuid": "g", "import_limit_kwh": 25.0, "export_limit_kwh": 60.0},
        {"area_uuid": "c", "import_limit_kwh": None, "export_limit_kwh": None},
    ]
    got = effective_limits(tree, {"c": Limits(5.0, None, "console")})
    assert got == {"g": Limits(25.0, 60.0, "exchange"), "c": Limits(5.0, None, "console")}


def test_alr003_fee_at_cap_needs_n_slots_of_a_model_at_its_cap():
    n = alerts.FEE_AT_CAP_SLOTS
    model = {"model": "controller", "max_fee_ct_per_kwh": 40.0}
    at_cap = [row(k, fee=40.0) for k in range(n)]
    assert fee_at_cap(MARKET, at_cap, model, 100.0).active
    assert not fee_at_cap(MARKET, at_cap[1:], model, 100.0).active  # one slot short
    assert not fee_at_cap(MARKET, [row(0, fee=39.0), *at_cap[1:]], model, 100.0).active
    assert not fee_at_cap(MARKET, at_cap, None, 100.0).active  # a manual fee is the operator's
    assert fee_at_cap(MARKET, [row(k, fee=100.0) for k in range(n)], {"model": "tou"}, 100.0).active


def test_alr004_revenue_spike_against_the_highest_of_the_day_before():
    day_before = [row(k, revenue=20.0 + (30.0 if k == 50 else 0.0)) for k in range(96)]  # highest 50
    assert not revenue_spike(MARKET, [*day_before, row(96, revenue=99.0)]).active  # < 2 x 50
    spike = revenue_spike(MARKET, [*day_before, row(96, revenue=101.0)])
    assert spike.active and spike.threshold == 100.0
    assert "above 2 x the day's highest of 50 ct" in spike.message
    small = [row(k, revenue=1.0) for k in range(96)]
    assert not revenue_spike(MARKET, [*small, row(96, revenue=40.0)]).active  # under 50 ct
    assert not revenue_spike(MARKET, [*day_before[:95], row(95, revenue=500.0)]).active  # < a day


def test_alr005_refused_until_a_later_command_applies():
    refused = {"status": "refused", "fee_ct_per_kwh": 120.0, "reason": "above the maximum of 100"}
    cond = command_refused(MARKET, refused)
    assert cond.active and cond.message == "fee 120 ct/kWh refused: above the maximum of 100"
    assert not command_refused(MARKET, {"status": "applied", "fee_ct_per_kwh": 5.0}).active
    newest = alerts.last_answered_commands(
        [{"market_uuid": "m1", "status": "applied"}, {"market_uuid": "m1", **refused}]
    )
    assert newest["m1"]["status"] == "applied"


def test_alr006_liveness_no_slot_for_two_slot_lengths_and_unreachable():
    no_slot, unreachable = liveness_conditions(100.0, 70.0, 10.0, None)
    assert no_slot.active and not unreachable.active  # 30 s > 2 x 10 s
    assert not liveness_conditions(100.0, 85.0, 10.0, None)[0].active
    assert not liveness_conditions(100.0, 95.0, 2.0, None)[0].active  # 5 s: under the 10 s floor
    assert liveness_conditions(100.0, 89.0, 2.0, None)[0].active
    assert not liveness_conditions(100.0, 0.0, 0.0, None)[0].active  # fast-forward: no cadence
    assert not liveness_conditions(100.0, 0.0, 2.0, None, finished=True)[0].active
    no_slot, unreachable = liveness_conditions(100.0, 0.0, 2.0, 90.0, "connection refused")
    assert not no_slot.active and unreachable.active  # one cause, one alert
    assert "connection refused" in unreachable.message


def test_alr007_pending_then_alerting_then_resolved_with_times_and_slots(store):
    on = Condition("over_limit", "m1", "North", True, "import over", 12.0, 10.0)
    off = Condition("over_limit", "m1", "North", False)
    assert store.apply([on], "2026-06-22T12:00", now=1.0) == [("over_limit", "North", None, PENDING)]
    (alert,) = store.open_alerts()
    assert alert["state"] == PENDING and alert["firing_at"] is None
    assert store.apply([on], "2026-06-22T12:15", now=2.0) == [("over_limit", "North", PENDING, ALERTING)]
    assert store.apply([on], "2026-06-22T12:30", now=3.0) == []  # still firing: no transition
    (alert,) = store.open_alerts()
    assert (alert["state"], alert["started_slot"], alert["firing_slot"], alert["firing_at"]) == (
        ALERTING,
        "2026-06-22T12:00",
        "2026-06-22T12:15",
        2.0,
    )
    assert store.apply([off], "2026-06-22T12:45", now=4.0) == [("over_limit", "North", ALERTING, RESOLVED)]
    assert store.open_alerts() == []
    (done,) = store.history()
    assert (done["resolved_slot"], done["resolved_at"]) == ("2026-06-22T12:45", 4.0)
    # a condition that held once and cleared never fired: not in the history
    store.apply([on], "2026-06-22T13:00", now=5.0)
    store.apply([off], "2026-06-22T13:15", now=6.0)
    assert len(store.history()) == 1


def test_alr008_acknowledged_once_by_whom_and_when(store):
    store.apply([Condition("command_refused", "m1", "North", True, "refused")], "2026-06-22T12:00")
    (alert,) = store.open_alerts()
    assert alert["state"] == ALERTING  # a refusal fires at once
    assert store.acknowledge(alert["id"], "operator")
    assert not store.acknowledge(alert["id"], "someone else")  # already acknowledged
    got = store.alert(alert["id"])
    assert got["acked_by"] == "operator" and got["acked_at"] is not None
    assert got["state"] == ALERTING  # acknowledging does not resolve


def test_alr009_limits_set_in_the_console_are_audited(store):
    store.set_limits("m1", "North", 10.0, None, "operator")
    store.set_limits("m1", "North", 8.0, 30.0, "operator")
    assert store.limit_overrides() == {"m1": Limits(8.0, 30.0, "console")}
    assert [(c["import_kwh"], c["changed_by"]) for c in store.limit_changes()] == [
        (8.0, "operator"),
        (10.0, "operator"),
    ]
    with pytest.raises(ValueError):
        store.set_limits("m1", "North", -1.0, None, "operator")


def test_alr010_the_agent_raises_and_clears_an_alert_with_no_browser(console):
    """A community over a limit set in the console fires after two cycles; a fee that brings its
    import under the limit (here: a limit it now keeps) clears it; it all survives a new agent."""
    agent = console.new_agent()
    community = console.market(1)
    console.cycle(agent)
    rows = console.ops.history(community.uuid)
    flow = max(rows[-1]["import_kwh"], rows[-1]["export_kwh"])
    assert flow > 0.2, rows[-1]
    store = AlertStore(console.ops.engine)
    store.set_limits(community.uuid, community.name, 0.01, 0.01, "operator")  # everything is over
    console.cycle(agent)
    (pending,) = [a for a in store.open_alerts() if a["market_uuid"] == community.uuid]
    assert pending["state"] == PENDING and pending["rule"] == "over_limit"
    console.cycle(agent)
    (firing,) = [a for a in store.open_alerts() if a["market_uuid"] == community.uuid]
    assert firing["state"] == ALERTING and firing["id"] == pending["id"]
    store.set_limits(community.uuid, community.name, 1e6, 1e6, "operator")
    console.cycle(console.new_agent())  # a new agent (a restart) reads the same store
    assert [a for a in store.open_alerts() if a["market_uuid"] == community.uuid] == []
    assert [a["id"] for a in store.history()] == [firing["id"]]


def test_alr011_a_refused_fee_alerts_within_the_slot(console):
    agent = console.new_agent()
    community = console.market(1)
    console.cycle(agent)
    console.ops.queue(community.uuid, community.name, 1e6, source="manual:operator", user="operator")
    agent.send_queued()
    (alert,) = AlertStore(console.ops.engine).open_alerts()
    assert alert["rule"] == "command_refused" and alert["market_uuid"] == community.uuid
    assert "refused" in alert["message"]


def test_alr012_a_fee_that_brings_import_under_the_limit_clears_the_alert(tmp_path):
    """The default scenario, Community South: its heat pumps buy at 06:00 while the fee is low.
    Over an import limit of 1 kWh per slot the alert fires; the operator queues 60 ct/kWh, the
    agent sends it, and in the first slot it is in force the import falls under the limit: the
    next evaluation resolves the alert. Without the fee that slot is over too (2.2 kWh at 06:30
    with 1 ct/kWh, the same run without the command)."""
    from app.config import ROOT, Settings
    from app.entry.web import create_app
    from app.exchange.grid import build_grid
    from app.exchange.runner import ExchangeRunner
    from app.exchange.scenario import load_scenario
    from app.operator.agent import OperatorAgent
    from app.operator.store import OperatorStore
    from app.store.repo import ExchangeStore

    scenario = load_scenario(ROOT / "scenarios" / "default.yaml")
    store = ExchangeStore.open(f"sqlite:///{tmp_path / 'x.sqlite3'}", scenario, build_grid(scenario))
    try:
        runner = ExchangeRunner(store, slot_seconds=0)
        runner.resume()
        settings = Settings.from_env({"INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "t", "SLOT_SECONDS": "0"})
        app = create_app(settings, store=store)
        ops = OperatorStore(store.engine)
        agent = OperatorAgent.embedded(app, "operator", "operator", store=ops)
        south = next(m for m in store.grid.markets if m.name == "Community South")
        alerts_store = AlertStore(store.engine)
        alerts_store.set_limits(south.uuid, south.name, 1.0, None, "operator")

        def south_alerts() -> list[dict]:
            return [a for a in alerts_store.open_alerts() if a["market_uuid"] == south.uuid]

        for _ in range(24):  # slots 00:00 .. 05:45 close; 06:00 runs
            agent.on_market_cycle(runner.close_running_slot())
        (firing,) = south_alerts()
        assert firing["state"] == ALERTING and firing["rule"] == "over_limit"
        ops.queue(south.uuid, south.name, 60.0, "manual:operator", "operator", runner.clock.label(24))
        agent.on_market_cycle(runner.close_running_slot())  # 06:00 closes (still over); sent now
        (command,) = ops.commands()
        assert command["status"] == "applied" and command["applies_from_slot"] == runner.clock.label(26)
        assert south_alerts() and south_alerts()[0]["id"] == firing["id"]
        agent.on_market_cycle(runner.close_running_slot())  # 06:15 closes: fee 1 still in force
        agent.on_market_cycle(runner.close_running_slot())  # 06:30 closes: 60 ct/kWh in force
        rows = {r["slot"]: r for r in ops.history(south.uuid)}
        before, at = rows[runner.clock.label(25)], rows[runner.clock.label(26)]
        assert before["fee_ct_per_kwh"] == 1.0 and before["import_kwh"] > 1.0, before  # the old fee: over
        assert at["fee_ct_per_kwh"] == 60.0 and at["import_kwh"] < 1.0, at  # the new one: under
        assert south_alerts() == []
        (done,) = [a for a in alerts_store.history() if a["id"] == firing["id"]]
        assert done["resolved_slot"] == runner.clock.label(26)
    finally:
        store.engine.dispose()
