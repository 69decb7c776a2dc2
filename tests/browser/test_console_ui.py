"""The console in a browser (feature code ``con``), against a live exchange closing a slot every
0.6 s with the operator agent running (see ``conftest.py``).

Waits are dash_duo's (``wait_for_*``) or ``dash.testing.wait.until``; the only waits on time are
for slots to close on the exchange.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import openpyxl
import pytest
import requests
from console_ui import HEADER_BADGE, SLOT_SECONDS, TICK_S, choose, grid_rows, login, open_page, pid, type_into
from dash.testing.wait import until
from selenium.common.exceptions import StaleElementReferenceException

from app.client import GridOperatorClient
from app.console import ids
from app.console.components.header import HEADER_DEADLINE_ID
from app.operator.store import APPLIED

SHOTS = Path(__file__).resolve().parents[2] / "shots"


def screenshot(dash_duo, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    dash_duo.driver.save_screenshot(str(SHOTS / f"browser_{name}.png"))


def click(dash_duo, selector: str) -> None:
    dash_duo.wait_for_element(selector).click()


def commands_of(live, market_uuid: str) -> list[dict]:
    return [c for c in live.ops.commands() if c["market_uuid"] == market_uuid]


def test_con001_overview_fills_within_two_slots(live, dash_duo):
    login(dash_duo, "operator")
    names = {m.uuid: m.name for m in live.managed}

    def filled() -> list[dict] | None:
        rows = grid_rows(dash_duo, ids.OVERVIEW_GRID)
        return rows if len(rows) == len(names) and all(r.get("slot") for r in rows) else None

    # two slots to close, one tick of the page to show them, and slack for a busy machine
    rows = until(filled, 2 * SLOT_SECONDS + TICK_S + 4, msg="the overview did not fill")
    assert {r["row-id"]: r["market"] for r in rows} == names
    closed = {live.label(k) for k in range(live.last_closed() + 1)}
    assert {r["slot"].replace(" ", "T") for r in rows} <= closed  # shown "2026-06-22 13:15"
    assert len({r["slot"] for r in rows}) == 1, rows  # every market at the same last slot
    dash_duo.wait_for_text_to_equal(HEADER_BADGE, "live")
    assert re.search(r"\bslot \d\d:\d\d\b", dash_duo.find_element(f"#{ids.HEADER}").text)

    shown = rows[0]["slot"]  # and the rows follow the exchange

    def moved_on() -> bool:
        now = grid_rows(dash_duo, ids.OVERVIEW_GRID)
        return bool(now) and all(r.get("slot", "") > shown for r in now)

    until(moved_on, 2 * TICK_S + 4, msg=f"the overview stayed at {shown}")
    screenshot(dash_duo, "overview")
    assert dash_duo.get_logs() == []


PROMISE_SLOT_S = 4.0  # slots long enough to click with time left, and after the send point [s]


def when(live, slot: int) -> str:
    """How the console names slot ``slot``: "HH:MM CEST" (the generated scenario: Berlin, June)."""
    return f"{live.label(slot)[11:]} CEST"


def wait_for_moment(live, dash_duo, market_uuid: str, before_send: bool, min_left_s: float = 1.2) -> int:
    """Wait, on the exchange's clock, for a moment in a slot N with at least ``min_left_s`` left before
    N's send point (``before_send``), or after it but before N ends; the button and the header's
    countdown must both say the slot a click then reaches (N+1, or N+2). Returns N."""
    button = pid("fee-queue", market_uuid)

    def moment() -> int | None:
        n, left = live.seconds_to_send()
        try:
            said = dash_duo.find_element(button).text
            header = dash_duo.find_element(f"#{HEADER_DEADLINE_ID}").text
        except StaleElementReferenceException:  # the header is rebuilt every tick: read it again
            return None
        if (
            before_send
            and left >= min_left_s
            and said == f"Queue for {when(live, n + 1)}"
            # where a click goes, by the header: N+1's fees still open, or (in the instant after N
            # began, before the next tick) N's closed with "queue now for" N+1
            and (
                header.startswith(f"fees for {when(live, n + 1)} close in 0:")
                or header.endswith(f"; queue now for {when(live, n + 1)}")
            )
        ):
            return n
        if (
            not before_send
            and -0.7 < left < -0.1
            and said == f"Queue for {when(live, n + 2)}"
            and header == f"fees for {when(live, n + 1)} closed; queue now for {when(live, n + 2)}"
        ):
            return n
        return None

    return until(moment, 4 * PROMISE_SLOT_S, poll=0.03, msg="no moment to click as the test needs")


def queue_fee_at_a_moment(live, dash_duo, market, fee: str, before_send: bool) -> int:
    """As the operator on ``market``'s page: type ``fee``, see its preview, and click "Queue" at a
    moment before (``before_send``) or just after the send point of a slot N; returns N."""
    login(dash_duo, "operator", f"/markets/{market.uuid}")
    type_into(dash_duo, pid("fee-input", market.uuid), fee)
    dash_duo.wait_for_text_to_equal(pid("fee-preview", market.uuid), f"sends {float(fee):.2f} ct/kWh")
    n = wait_for_moment(live, dash_duo, market.uuid, before_send=before_send)
    click(dash_duo, pid("fee-queue", market.uuid))
    return n


@pytest.mark.parametrize("live", [PROMISE_SLOT_S], indirect=True)
def test_con002_fee_queued_with_time_left_in_slot_n_is_in_force_in_n_plus_1(live, dash_duo):
    market = live.community(0)
    n = queue_fee_at_a_moment(live, dash_duo, market, "4.5", before_send=True)
    message = pid("fee-message", market.uuid)
    dash_duo.wait_for_text_to_equal(message, f"4.50 ct/kWh queued: in force from {when(live, n + 1)}")
    (command,) = commands_of(live, market.uuid)
    assert command["fee_ct_per_kwh"] == 4.5
    assert (command["source"], command["created_by"]) == ("manual:operator", "operator")
    # the message follows the command: once the exchange took it, it says so, with the slot
    dash_duo.wait_for_text_to_equal(
        message, f"4.50 ct/kWh in force from {when(live, n + 1)}", timeout=PROMISE_SLOT_S + TICK_S + 4
    )
    dash_duo.wait_for_element(".js-plotly-plot .main-svg")
    screenshot(dash_duo, "market")

    # the exchange's own history: the scenario's fee in N, the operator's from N+1
    live.wait_closed(n + 1, timeout=3 * PROMISE_SLOT_S + 5)
    charged = {r["slot"]: r["fee_ct_per_kwh"] for r in live.store.history(market.uuid)}
    assert (charged[n], charged[n + 1]) == (1.0, 4.5)

    open_page(dash_duo, "/audit")

    def audit_row() -> dict | None:
        return next(
            (r for r in grid_rows(dash_duo, ids.AUDIT_GRID) if r.get("market_name") == market.name),
            None,
        )

    row = until(audit_row, 10, msg="the command is not on /audit")
    assert (row["fee_ct_per_kwh"], row["status"]) == ("4.5", "applied")
    assert row["outcome"] == f"in force from {when(live, n + 1)}"
    screenshot(dash_duo, "audit")
    assert dash_duo.get_logs() == []  # no callback failed


@pytest.mark.parametrize("live", [PROMISE_SLOT_S], indirect=True)
def test_con008_after_the_send_point_the_button_says_n_plus_2_and_the_fee_lands_there(live, dash_duo):
    market = live.community(1)
    n = queue_fee_at_a_moment(live, dash_duo, market, "7", before_send=False)  # said N+2 before the click
    dash_duo.wait_for_contains_text(pid("fee-message", market.uuid), f"in force from {when(live, n + 2)}")
    live.wait_closed(n + 2, timeout=4 * PROMISE_SLOT_S + 5)
    charged = {r["slot"]: r["fee_ct_per_kwh"] for r in live.store.history(market.uuid)}
    assert (charged[n + 1], charged[n + 2]) == (1.0, 7.0)
    screenshot(dash_duo, "market_after_send_point")
    assert dash_duo.get_logs() == []


@pytest.mark.parametrize("live", [PROMISE_SLOT_S], indirect=True)
def test_con009_several_changes_in_one_slot_collapse_to_the_last(live, dash_duo):
    market = live.community(0)
    login(dash_duo, "operator", f"/markets/{market.uuid}")
    # two changes take two rounds of typing, preview and click: start early in N (its send point is
    # 3.2 s into a 4 s slot), and check after the clicks that N's send point had not passed
    n = wait_for_moment(live, dash_duo, market.uuid, before_send=True, min_left_s=2.5)
    for fee in ("2", "3.5"):
        type_into(dash_duo, pid("fee-input", market.uuid), fee)
        dash_duo.wait_for_contains_text(pid("fee-preview", market.uuid), f"sends {float(fee):.2f}")
        click(dash_duo, pid("fee-queue", market.uuid))
        dash_duo.wait_for_contains_text(pid("fee-message", market.uuid), f"{float(fee):.2f} ct/kWh")
    running, left = live.seconds_to_send()
    assert running == n and left > 0, "the clicks outlasted slot N's send point: the test could not act in N"
    live.wait_closed(n + 1, timeout=3 * PROMISE_SLOT_S + 5)
    charged = {r["slot"]: r["fee_ct_per_kwh"] for r in live.store.history(market.uuid)}
    assert (charged[n], charged[n + 1]) == (1.0, 3.5)
    assert [c.fee_ct_per_kwh for c in live.store.fee_history(market.uuid)] == [3.5]  # 2 never sent
    assert [c["status"] for c in commands_of(live, market.uuid)] == [APPLIED, "superseded"]


def test_con003_a_model_sends_its_fee_every_cycle(live, dash_duo):
    market = live.community(1)
    login(dash_duo, "operator", f"/markets/{market.uuid}")
    choose(dash_duo, pid("fee-mode", market.uuid), "Constant")
    field = pid("fee-param", market.uuid, field="constant.fee_ct_per_kwh")
    until(lambda: dash_duo.find_element(field).is_displayed(), 10, msg="the constant model's field is hidden")
    type_into(dash_duo, field, "3")
    dash_duo.wait_for_contains_text(pid("fee-preview", market.uuid), "would send 3.00 ct/kWh, in force from ")
    click(dash_duo, pid("fee-queue", market.uuid))
    dash_duo.wait_for_contains_text(pid("fee-message", market.uuid), "constant 3 ct/kWh: 3.00 ct/kWh ")
    dash_duo.wait_for_contains_text(pid("fee-message", market.uuid), "; then a new fee every slot")
    setting = live.ops.settings()[market.uuid]
    assert (setting.mode, setting.model) == ("model", {"model": "constant", "fee_ct_per_kwh": 3.0})

    # the next three cycles (slots first+1 .. first+3 closing) each queue and send one fee
    first = live.last_closed()
    cycles = [live.label(k) for k in range(first + 2, first + 5)]  # the slot running in each

    def sent_by_the_agent() -> dict[str, dict] | None:
        by_cycle = {
            c["running_slot"]: c
            for c in commands_of(live, market.uuid)
            if c["created_by"] == "agent" and c["status"] == APPLIED
        }
        return by_cycle if all(k in by_cycle for k in cycles) else None

    by_cycle = until(sent_by_the_agent, 3 * SLOT_SECONDS + 8, msg="the agent did not send every cycle")
    sent = [by_cycle[k] for k in cycles]
    assert all(c["source"].startswith("model:") for c in sent), sent
    assert all(c["fee_ct_per_kwh"] == 3.0 for c in sent), sent
    # each from a slot after the one running in its cycle (later ones when the agent lags)
    assert all(c["applies_from_slot"] > c["running_slot"] for c in sent), sent
    assert [c["id"] for c in sent] == sorted(c["id"] for c in sent)

    slot = next(c.applies_from_slot for c in live.store.fee_history(market.uuid) if c.fee_ct_per_kwh == 3.0)
    live.wait_closed(slot)
    assert {r["slot"]: r["fee_ct_per_kwh"] for r in live.store.history(market.uuid)}[slot] == 3.0
    assert dash_duo.get_logs() == []  # no callback failed


@pytest.mark.parametrize("live", [3.0], indirect=True)  # slots long enough for one reading of the page
def test_con010_the_predictive_controller_is_chosen_in_the_form_and_its_preview_names_the_slot(
    live, dash_duo
):
    market = live.community(1)
    login(dash_duo, "operator", f"/markets/{market.uuid}")
    live.wait_slots(2)  # a little history for the forecast
    choose(dash_duo, pid("fee-mode", market.uuid), "Predictive controller")
    field = pid("fee-param", market.uuid, field="predictive.import_limit_kwh")
    until(
        lambda: dash_duo.find_element(field).is_displayed(),
        10,
        msg="the predictive model's fields are hidden",
    )
    type_into(dash_duo, field, "3")
    preview = pid("fee-preview", market.uuid)
    dash_duo.wait_for_contains_text(preview, ", in force from ")
    dash_duo.wait_for_contains_text(preview, "aiming at 2.7 / ")  # 0.9 x the 3 kWh/slot typed
    text = dash_duo.find_element(preview).text
    assert re.match(r"would send \d+\.\d\d ct/kWh, in force from \d\d:\d\d \S+; forecast import ", text), text
    dash_duo.driver.set_window_size(1366, 768)
    dash_duo.driver.execute_script(
        "arguments[0].scrollIntoView({block: 'end'})", dash_duo.find_element(pid("fee-message", market.uuid))
    )
    screenshot(dash_duo, "market_predictive")
    click(dash_duo, pid("fee-queue", market.uuid))
    dash_duo.wait_for_contains_text(pid("fee-message", market.uuid), "predictive controller (import <= 3, ")
    setting = live.ops.settings()[market.uuid]
    assert setting.mode == "model" and setting.model["model"] == "predictive"
    assert setting.model["import_limit_kwh"] == 3.0

    def sent_by_the_agent() -> list[dict]:
        return [
            c
            for c in commands_of(live, market.uuid)
            if c["created_by"] == "agent"
            and c["status"] == APPLIED
            and c["source"].startswith("model:predictive")
        ]

    until(
        sent_by_the_agent, 3 * live.slot_seconds + 8, msg="the agent did not send the predictive model's fee"
    )
    assert dash_duo.get_logs() == []  # no callback failed

    # the flows chart now shows the model's limits and its forecast of the slot the next fee is for
    open_page(dash_duo, f"/markets/{market.uuid}")
    flows = pid("market-graph", market.uuid, chart="flows") + " .js-plotly-plot"
    dash_duo.wait_for_element(flows)

    def forecast() -> list | None:
        return dash_duo.driver.execute_script(
            "const f = document.querySelector(arguments[0]);"
            "const t = f && f.data && f.data.find((d) => d.name === 'Forecast (predictive)');"
            "const lines = ((f && f.layout && f.layout.shapes) || []).map((s) => s.y0);"
            "return t ? [t.x[0], lines] : null;",
            flows,
        )

    first_x, lines = until(forecast, 10, msg="no forecast on the flows chart")
    assert sorted(lines) == [-60.0, 3.0]  # export limit below zero, import limit above
    until(lambda: forecast()[0] != first_x, 3 * live.slot_seconds + 8, msg="the forecast did not move on")
    dash_duo.driver.execute_script(
        "document.querySelector(arguments[0]).scrollIntoView({block: 'center'})", flows
    )
    screenshot(dash_duo, "market_predictive_forecast")
    assert dash_duo.get_logs() == []


def test_con004_excel_download_has_every_closed_slot_of_every_market(live, dash_duo):
    login(dash_duo, "operator")
    live.wait_slots(3)
    # the agent has the last closed slot: the export (a moment later) holds at least that one
    at_least = until(
        lambda: (slot := live.ops.latest_slot()) == live.label(live.last_closed()) and slot,
        5,
        msg="the agent lags behind the exchange",
    )
    click(dash_duo, f"#{ids.EXPORT_BUTTON}")
    download = Path(dash_duo.download_path)
    path = until(
        lambda: (
            (download / "grid-fees_all.xlsx").is_file()
            and not list(download.glob("*.crdownload"))
            and download / "grid-fees_all.xlsx"
        ),
        15,
        msg=f"no download in {download}: {list(download.iterdir())}",
    )
    assert dash_duo.find_element(f"#{ids.EXPORT_MESSAGE}").text == ""

    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        managed = live.managed
        assert workbook.sheetnames == [m.name for m in managed] + ["Fee commands", "Scenario and settings"]
        for market in managed:
            header, *body = workbook[market.name].iter_rows(values_only=True)
            slots = [row[0].strftime("%Y-%m-%dT%H:%M") for row in body]
            assert slots[-1] >= at_least
            # every slot closed so far, from the first, as the history store has them
            assert slots == [live.label(k) for k in range(len(slots))]
            assert slots == [r["slot"] for r in live.ops.history(market.uuid, end=slots[-1])]
            exchange = live.store.history(market.uuid, to_slot=len(slots) - 1)
            column = {name: header.index(name) for name in header}
            for row, stats in zip(body, exchange, strict=True):
                assert row[column["Fee in force [ct/kWh]"]] == pytest.approx(stats["fee_ct_per_kwh"])
                assert row[column["Traded energy [kWh]"]] == pytest.approx(stats["total_traded_energy_kWh"])
                assert row[column["Fee revenue [ct]"]] == pytest.approx(stats["market_fee_revenue"])
    finally:
        workbook.close()


def _dash_update_body(dependencies: list[dict], trigger: str, market: str, states: dict[str, object]):
    """The body the renderer posts for the callback fired by ``trigger`` (a pattern-matching type)
    on ``market``, shaped as Dash 4 sends it; ``states`` by type (ALL states get no component)."""
    (callback,) = [d for d in dependencies if any(f'"{trigger}"' in i["id"] for i in d["inputs"])]

    def concrete(ident: str) -> dict:
        return {k: market if v == ["MATCH"] else v for k, v in json.loads(ident).items()}

    outputs = []
    for part in callback["output"].strip(".").split("..."):
        ident, prop = part.rsplit(".", 1)
        outputs.append({"id": concrete(ident), "property": prop})
    (trigger_input,) = callback["inputs"]
    trigger_id = concrete(trigger_input["id"])
    state = []
    for s in callback["state"]:
        if '["ALL"]' in s["id"]:
            state.append([])
            continue
        ident = concrete(s["id"])
        state.append({"id": ident, "property": s["property"], "value": states.get(ident["type"])})
    return {
        "output": callback["output"],
        "outputs": outputs if callback["output"].startswith("..") else outputs[0],  # one: a dict
        "inputs": [{"id": trigger_id, "property": trigger_input["property"], "value": 1}],
        "changedPropIds": [
            json.dumps(trigger_id, sort_keys=True, separators=(",", ":")) + "." + trigger_input["property"]
        ],
        "state": state,
    }


def test_con005_a_viewer_cannot_change_anything(live, dash_duo):
    market = live.community(0)
    login(dash_duo, "viewer", f"/markets/{market.uuid}")
    for kind in ("fee-mode", "fee-input", "fee-queue"):
        assert not dash_duo.wait_for_element(pid(kind, market.uuid)).is_enabled(), kind
    thumb = dash_duo.find_element(f"{pid('fee-slider', market.uuid)} [role=slider]")
    assert thumb.get_attribute("data-disabled") == "true"
    assert not dash_duo.find_element(f"{pid('tou-upload', market.uuid)} button").is_enabled()
    assert "viewer (viewer)" in dash_duo.find_element(f"#{ids.HEADER}").text

    # a forged click on "Queue for …" with the viewer's session and CSRF token
    cookies = {c["name"]: c["value"] for c in dash_duo.driver.get_cookies()}
    with requests.Session() as http:
        http.cookies.update(cookies)
        dependencies = http.get(f"{live.url}/_dash-dependencies", timeout=10).json()
        body = _dash_update_body(
            dependencies, "fee-queue", market.uuid, {"fee-mode": "manual", "fee-input": 4.5}
        )
        url = f"{live.url}/_dash-update-component"
        assert http.post(url, json=body, timeout=10).status_code == 403  # no CSRF header
        answer = http.post(url, json=body, headers={"X-CSRFToken": cookies["_csrf_token"]}, timeout=10)
    assert answer.status_code == 200, answer.text
    message = json.dumps(answer.json()["response"])
    assert "only a grid operator may change fees" in message and '"error"' in message
    assert live.ops.commands() == [] and live.ops.settings() == {}

    live.wait_slots(2)  # the agent had cycles to send anything queued: nothing reached the exchange
    assert live.store.fee_history() == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_con006_stale_banner_while_the_exchange_does_not_answer(live, dash_duo):
    login(dash_duo, "operator")
    dash_duo.wait_for_text_to_equal(HEADER_BADGE, "live")
    until(lambda: len(grid_rows(dash_duo, ids.OVERVIEW_GRID)) == 3, 2 * SLOT_SECONDS + TICK_S + 4)
    console = live.data
    embedded = console.client
    console.client = GridOperatorClient(
        f"http://127.0.0.1:{_closed_port()}", "operator", "operator", timeout_s=1.0, retries=0
    )
    try:
        dash_duo.wait_for_contains_text(HEADER_BADGE, "stale since", timeout=2 * TICK_S + 4)
        assert len(grid_rows(dash_duo, ids.OVERVIEW_GRID)) == 3  # the history stays on the page
        screenshot(dash_duo, "stale")
    finally:
        console.client = embedded
    dash_duo.wait_for_text_to_equal(HEADER_BADGE, "live", timeout=2 * TICK_S + 4)


def _tou_csv(path: Path, rows: int, bad_row: int | None = None) -> Path:
    lines = ["time,fee_ct_per_kwh"]
    for i in range(rows):
        fee = "abc" if i == bad_row else f"{1 + i % 4}"
        lines.append(f"{i // 4:02d}:{i % 4 * 15:02d},{fee}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_con007_bad_input_is_explained_next_to_the_control_and_nothing_is_queued(live, dash_duo, tmp_path):
    market = live.community(0)
    login(dash_duo, "operator", f"/markets/{market.uuid}")
    box, message = pid("fee-input", market.uuid), pid("fee-message", market.uuid)

    type_into(dash_duo, box, "-3")
    dash_duo.wait_for_text_to_equal(
        pid("fee-preview", market.uuid), "⚠ fee must not be negative, got -3.0 ct/kWh"
    )
    click(dash_duo, pid("fee-queue", market.uuid))
    dash_duo.wait_for_text_to_equal(message, "fee must not be negative, got -3.0 ct/kWh")
    assert dash_duo.find_element(box).get_attribute("value") == "-3"  # as typed, not clamped to 0

    type_into(dash_duo, box, "abc")  # the number input takes no letters: it stays empty
    dash_duo.wait_for_text_to_equal(pid("fee-preview", market.uuid), "enter a fee in ct/kWh")
    click(dash_duo, pid("fee-queue", market.uuid))
    dash_duo.wait_for_text_to_equal(message, "enter a fee in ct/kWh")

    choose(dash_duo, pid("fee-mode", market.uuid), "Time of use")
    upload = f"{pid('tou-upload', market.uuid)} input[type=file]"
    status = pid("tou-status", market.uuid)
    until(lambda: dash_duo.find_element(status).is_displayed(), 10, msg="the ToU section is hidden")
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not a workbook")
    for path, why in [
        (_tou_csv(tmp_path / "short.csv", 95), "not used: expected 96 quarter-hour rows, found 95"),
        (
            _tou_csv(tmp_path / "text.csv", 96, bad_row=40),
            "not used: row 42, column 'fee_ct_per_kwh': 'abc' is not a number",
        ),
        (broken, "not used: not a valid .xlsx workbook (BadZipFile"),
    ]:
        dash_duo.find_element(upload).send_keys(str(path))
        dash_duo.wait_for_contains_text(status, why)
    click(dash_duo, pid("fee-queue", market.uuid))
    dash_duo.wait_for_text_to_equal(message, "upload a 96-row table (CSV or xlsx) or pick the preset first")
    assert dash_duo.get_logs() == []  # no callback failed

    assert live.ops.commands() == [] and live.ops.settings() == {}
    live.wait_slots(2)
    assert live.store.fee_history() == []
