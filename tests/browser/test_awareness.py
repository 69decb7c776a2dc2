"""Situational awareness in a browser (feature code ``aw``): alerts, the grid map, a console that
knows when it is cut off, and axe-core's serious and critical rules on every page, at 1366x768.

Against the live exchange of ``conftest.py`` (the generated 2 x 3 grid, a slot every 0.6 s, the
operator agent running). Screenshots go to ``shots/aw_<page>.png``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from console_ui import HEADER_BADGE, SLOT_SECONDS, TICK_S, grid_rows, login, open_page, pid, type_into
from dash.testing.wait import until

from app.console import ids
from app.operator.alerts import ALERTING, AlertStore

SHOTS = Path(__file__).resolve().parents[2] / "shots"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"  # axe-core 4.11.0 from the npm registry
WIDTH, HEIGHT = 1366, 768
ALERT_BADGE = "#header-alerts .mantine-Badge-root"


def small_screen(dash_duo) -> None:
    dash_duo.driver.set_window_size(WIDTH, HEIGHT)


def shot(dash_duo, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    dash_duo.driver.save_screenshot(str(SHOTS / f"aw_{name}.png"))


def axe_violations(dash_duo) -> list[dict]:
    """axe-core's serious and critical violations of the page shown (WCAG 2.x A and AA rules)."""
    driver = dash_duo.driver
    if not driver.execute_script("return !!window.axe"):
        driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const tags = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
        axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})
           .then((r) => done(JSON.stringify(r.violations)))
           .catch((e) => done(JSON.stringify(
               [{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}])));
        """
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n.get("target") for n in v.get("nodes", [])][:5],
        }
        for v in json.loads(result)
        if v.get("impact") in ("serious", "critical")
    ]


def alert_ids(live, rule: str = "over_limit") -> list[dict]:
    return [a for a in AlertStore(live.ops.engine).open_alerts() if a["rule"] == rule]


def wait_for_history(live, dash_duo) -> None:
    until(
        lambda: len(grid_rows(dash_duo, ids.OVERVIEW_GRID)) == len(live.managed),
        2 * SLOT_SECONDS + TICK_S + 6,
        msg="the overview did not fill",
    )


def test_aw001_an_alert_is_raised_shown_acknowledged_and_cleared(live, dash_duo):
    small_screen(dash_duo)
    market = live.community(0)
    login(dash_duo, "operator")
    wait_for_history(live, dash_duo)
    dash_duo.wait_for_text_to_equal(ALERT_BADGE, "no alerts")

    # the operator sets an import limit far below what the community draws, in the console
    open_page(dash_duo, "/alerts")
    type_into(dash_duo, pid("limit-import", market.uuid), "0.01")
    dash_duo.find_element(pid("limit-save", market.uuid)).click()
    dash_duo.wait_for_contains_text(pid("limit-message", market.uuid), "saved by operator")
    # over the limit for two evaluations: pending, then firing; the header counts it
    dash_duo.wait_for_text_to_equal(ALERT_BADGE, "1 alert", timeout=4 * SLOT_SECONDS + 2 * TICK_S + 6)
    (alert,) = alert_ids(live)
    assert alert["state"] == ALERTING and alert["market_uuid"] == market.uuid
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_ACTIVE}", "Over its flow limit")
    assert market.name in dash_duo.find_element(f"#{ids.ALERTS_ACTIVE}").text
    assert "import" in alert["message"] and "over its limit of 0.01 kWh" in alert["message"]
    shot(dash_duo, "alerts")

    # the overview row says why; the map colours the market
    open_page(dash_duo, "/")

    def row_alert() -> str:
        rows = grid_rows(dash_duo, ids.OVERVIEW_GRID)
        return next((r.get("alert", "") for r in rows if r["row-id"] == market.uuid), "")

    until(lambda: "import" in row_alert(), 2 * TICK_S + 4, msg="the overview row does not show the alert")
    shot(dash_duo, "overview_alert")

    # acknowledged by whom and when; acknowledging does not resolve it
    open_page(dash_duo, "/alerts")
    ack = json.dumps({"alert": alert["id"], "type": "alert-ack"}, separators=(",", ":"))
    dash_duo.wait_for_element(f"[id='{ack}']").click()
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_ACTIVE}", "by operator at", timeout=2 * TICK_S + 4)
    assert alert_ids(live)[0]["acked_by"] == "operator"

    # the operator lifts the limit: the next evaluation resolves it, the history keeps it
    type_into(dash_duo, pid("limit-import", market.uuid), "1000")
    dash_duo.find_element(pid("limit-save", market.uuid)).click()
    dash_duo.wait_for_text_to_equal(ALERT_BADGE, "no alerts", timeout=2 * SLOT_SECONDS + 2 * TICK_S + 6)
    assert alert_ids(live) == []
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_HISTORY}", market.name, timeout=2 * TICK_S + 4)
    shot(dash_duo, "alerts_resolved")
    assert dash_duo.get_logs() == []


def test_aw002_the_header_goes_offline_within_two_polls_and_comes_back(live, dash_duo):
    small_screen(dash_duo)
    market = live.community(0)
    login(dash_duo, "operator", f"/markets/{market.uuid}")
    dash_duo.wait_for_text_to_equal(HEADER_BADGE, "live")
    queue = pid("fee-queue", market.uuid)
    until(lambda: dash_duo.find_element(queue).is_enabled(), TICK_S + 4, msg="the queue button is disabled")

    live.stop_server()
    stopped = time.monotonic()
    dash_duo.wait_for_contains_text(f"#{ids.OFFLINE_BANNER}", "offline since", timeout=2 * TICK_S + 0.5)
    took = time.monotonic() - stopped
    assert not dash_duo.find_element(f"#{ids.HEADER}").is_displayed()  # no frozen "live"
    assert not dash_duo.find_element(queue).is_enabled()
    assert "not answering" in dash_duo.find_element(pid("fee-offline", market.uuid)).text
    shot(dash_duo, "offline")

    live.start_server()
    dash_duo.wait_for_text_to_equal(HEADER_BADGE, "live", timeout=3 * TICK_S + 4)
    until(lambda: not dash_duo.find_element(f"#{ids.OFFLINE_BANNER}").is_displayed(), TICK_S + 2)
    until(lambda: dash_duo.find_element(queue).is_enabled(), TICK_S + 2, msg="the button stayed disabled")
    assert dash_duo.find_element(pid("fee-offline", market.uuid)).text == ""
    print(f"offline shown {took:.1f} s after the server stopped")


def test_aw003_the_map_colours_a_market_over_its_limit(live, dash_duo):
    small_screen(dash_duo)
    over, within = live.community(0), live.community(1)
    store = AlertStore(live.ops.engine)
    store.set_limits(over.uuid, over.name, 0.01, 0.01, "operator")
    store.set_limits(within.uuid, within.name, 1000.0, 1000.0, "operator")
    login(dash_duo, "operator", "/map")
    wait_for_history_on_map = 2 * SLOT_SECONDS + 2 * TICK_S + 6

    def classes(uuid: str) -> str | None:
        return dash_duo.driver.execute_script(
            """
            const box = document.getElementById(arguments[0]);
            const holder = box && (box._cyreg ? box : box.querySelector('div'));
            const cy = holder && holder._cyreg && holder._cyreg.cy;
            const node = cy && cy.getElementById(arguments[1]);
            return node && node.length ? node.classes().join(' ') : null;
            """,
            ids.MAP,
            uuid,
        )

    until(lambda: "over-limit" in (classes(over.uuid) or ""), wait_for_history_on_map, msg="not red")
    assert "under-limit" in classes(within.uuid)
    dash_duo.wait_for_contains_text(f"#{ids.MAP_LIST}", f"{over.name} – over its limit")
    shot(dash_duo, "map_over_limit")
    # a click opens the market (by keyboard: the list's link)
    dash_duo.find_element(f"#{ids.MAP_LIST} a[href='/markets/{over.uuid}']").click()
    dash_duo.wait_for_element(pid("fee-queue", over.uuid))
    assert dash_duo.get_logs() == []


def test_aw004_axe_finds_no_serious_violation_on_any_page(live, dash_duo):
    small_screen(dash_duo)
    market = live.community(0)
    login(dash_duo, "operator")
    wait_for_history(live, dash_duo)
    found = {}
    for name, path, shown in (
        ("overview", "/", f"#{ids.OVERVIEW_GRID} .ag-row"),
        ("map", "/map", f"#{ids.MAP_LIST} a"),
        ("alerts", "/alerts", f"#{ids.ALERTS_LIMITS} button"),
        ("audit", "/audit", f"#{ids.AUDIT_GRID}"),
        ("whatif", "/what-if", f"#{ids.WHATIF_RUN}"),
        ("market", f"/markets/{market.uuid}", f"{pid('fee-queue', market.uuid)}"),
    ):
        open_page(dash_duo, path)
        dash_duo.wait_for_element(shown, timeout=15)
        time.sleep(TICK_S)  # one tick: the page's first refresh is in
        shot(dash_duo, name)
        violations = axe_violations(dash_duo)
        if violations:
            found[path] = violations
    assert found == {}, json.dumps(found, indent=1)


@pytest.mark.parametrize("live", [{"slot_seconds": 1.5, "scenario": "default"}], indirect=True)
def test_aw005_an_alert_cleared_by_a_fee_that_brings_import_under_the_limit(live, dash_duo):
    """The default scenario's Community South imports about 4 kWh a slot at night and 2-3 kWh
    from 06:00 (its heat pumps), under 0.5 kWh from 07:00 with a fee of 1 ct/kWh. With an import
    limit of 0.5 kWh the alert fires at night; the operator queues 60 ct/kWh before 06:00 and
    the heat pumps buy only what they must: the alert resolves at 06:15 or 06:30, not 07:00."""
    small_screen(dash_duo)
    south = next(m for m in live.managed if m.name == "Community South")
    login(dash_duo, "operator", "/alerts")
    type_into(dash_duo, pid("limit-import", south.uuid), "0.5")
    dash_duo.find_element(pid("limit-save", south.uuid)).click()
    dash_duo.wait_for_contains_text(pid("limit-message", south.uuid), "saved by operator")

    def south_alert() -> dict | None:
        return next((a for a in alert_ids(live) if a["market_uuid"] == south.uuid), None)

    until(lambda: (south_alert() or {}).get("state") == ALERTING, 6 * live.slot_seconds + 10, msg="no alert")
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_ACTIVE}", "Community South", timeout=2 * TICK_S + 4)
    # the operator sets the fee on the market's page; it must be in force by 06:15 (simulated)
    open_page(dash_duo, f"/markets/{south.uuid}")
    type_into(dash_duo, pid("fee-input", south.uuid), "60")
    queue = pid("fee-queue", south.uuid)
    until(lambda: dash_duo.find_element(queue).is_enabled(), TICK_S + 4)
    dash_duo.find_element(queue).click()
    dash_duo.wait_for_contains_text(pid("fee-message", south.uuid), "in force from", timeout=2 * TICK_S + 4)
    shot(dash_duo, "market_fee_queued")
    until(lambda: [c for c in live.ops.commands() if c["status"] == "applied"], 4 * live.slot_seconds + 4)
    (command,) = [c for c in live.ops.commands() if c["market_uuid"] == south.uuid]
    assert command["applies_from_slot"] <= live.label(25), "in force too late to tell the fee from the sun"

    live.wait_closed(27, timeout=40 * live.slot_seconds + 20)  # 06:45
    resolved = [a for a in AlertStore(live.ops.engine).history() if a["market_uuid"] == south.uuid]
    assert resolved, "the alert did not resolve by 06:45"
    assert resolved[0]["resolved_slot"] in (live.label(25), live.label(26)), resolved[0]  # 06:15 / 06:30
    charged = {r["slot"]: r for r in live.ops.history(south.uuid)}
    slot = charged[resolved[0]["resolved_slot"]]
    assert slot["fee_ct_per_kwh"] == 60.0 and slot["import_kwh"] < 0.5, slot
    open_page(dash_duo, "/alerts")
    dash_duo.wait_for_contains_text(f"#{ids.ALERTS_HISTORY}", "Community South", timeout=2 * TICK_S + 4)
    shot(dash_duo, "alerts_cleared_by_fee")


def test_aw006_a_market_opens_from_the_overview_by_keyboard(live, dash_duo):
    small_screen(dash_duo)
    login(dash_duo, "operator")
    wait_for_history(live, dash_duo)
    market = live.community(1)
    # the keyboard's way in: focus the row's first cell (as Tab and the arrow keys do), press Enter
    dash_duo.driver.execute_script(
        """
        const api = dash_ag_grid.getApi(arguments[0]);
        const row = api.getRowNode(arguments[1]);
        api.ensureIndexVisible(row.rowIndex);
        api.setFocusedCell(row.rowIndex, 'market');
        """,
        ids.OVERVIEW_GRID,
        market.uuid,
    )
    focused = dash_duo.driver.switch_to.active_element
    assert market.name in focused.text
    focused.send_keys("\ue007")  # Enter
    until(lambda: dash_duo.driver.current_url.endswith(f"/markets/{market.uuid}"), 10, msg="not opened")
    dash_duo.wait_for_element(pid("fee-queue", market.uuid))
    assert dash_duo.get_logs() == []
