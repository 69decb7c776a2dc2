"""The Alerts page's plain functions: limits set and audited, alerts acknowledged; a viewer sees
them and changes nothing, whatever the browser sends."""

import pytest

from app.console.auth import NotAllowed
from app.console.pages import alerts_page, grid_map, overview
from app.operator.alerts import AlertStore, Condition


def walk(node):
    """Every component under ``node`` (a component or a list of them)."""
    if isinstance(node, list | tuple):
        for child in node:
            yield from walk(child)
        return
    if node is None or isinstance(node, str | int | float):
        return
    yield node
    yield from walk(getattr(node, "children", None))


def is_ack(component) -> bool:
    return isinstance(getattr(component, "id", None), dict) and component.id.get("type") == "alert-ack"


def test_alp001_an_operator_sets_limits_the_overview_and_map_follow(console):
    console.cycles(2)
    c = console.community()
    with console.as_user("operator"):
        message = alerts_page.save_limits(c.uuid, 0.01, "")
        assert message == "saved by operator: import 0.01, export none kWh/slot"
        rows = {r["id"]: r for r in overview.overview_data()}
        elements, _slot = grid_map.map_data()
    assert rows[c.uuid]["import_limit_kwh"] == 0.01 and rows[c.uuid]["export_limit_kwh"] is None
    node = next(e for e in elements if e["data"]["id"] == c.uuid)
    assert "over-limit" in node["classes"]
    (change,) = AlertStore(console.data.ops.engine).limit_changes()
    assert (change["changed_by"], change["import_kwh"], change["export_kwh"]) == ("operator", 0.01, None)
    with console.as_user("operator"), pytest.raises(ValueError):
        alerts_page.save_limits(c.uuid, -5, None)


def test_alp002_a_viewer_sees_alerts_and_cannot_acknowledge_or_set_limits(console):
    store = AlertStore(console.data.ops.engine)
    store.apply([Condition("command_refused", "m", "Community 1", True, "fee refused")], "2026-06-22T12:00")
    (alert,) = store.open_alerts()
    for user in ("viewer", None):
        with console.as_user(user), pytest.raises(NotAllowed):
            alerts_page.acknowledge(alert["id"])
        with console.as_user(user), pytest.raises(NotAllowed):
            alerts_page.save_limits(console.community().uuid, 5.0, 5.0)
    assert store.alert(alert["id"])["acked_by"] is None and store.limit_changes() == []
    buttons = [
        b for b in walk(alerts_page.active_table(store.open_alerts(), viewer=True, tz=None)) if is_ack(b)
    ]
    assert [b.disabled for b in buttons] == [True]  # shown, not clickable
    buttons = [
        b for b in walk(alerts_page.active_table(store.open_alerts(), viewer=False, tz=None)) if is_ack(b)
    ]
    assert [b.disabled for b in buttons] == [False]
    with console.as_user("operator"):
        assert alerts_page.acknowledge(alert["id"]).startswith("acknowledged by operator")
        assert alerts_page.acknowledge(alert["id"]) == "already acknowledged or resolved"
