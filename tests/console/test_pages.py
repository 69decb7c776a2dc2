"""The plain functions behind the console's callbacks, tested without a browser."""

import base64

import pytest

from app.console.auth import NotAllowed
from app.console.pages import audit, market, overview
from app.operator.store import APPLIED, QUEUED


def test_overview_rows_show_every_managed_market_after_a_cycle(console):
    console.cycles(2)
    with console.as_user("operator"):
        rows = overview.overview_data()
    assert [r["market"] for r in rows] == ["Grid", "Community 1", "Community 2"]
    assert {r["slot"] for r in rows} == {console.runner.clock.label(1)}
    assert all(r["fee_in_force_ct_per_kwh"] is not None for r in rows)


def test_manual_fee_message_follows_the_command_to_the_slot_the_exchange_charges_it(console):
    """Fast-forward (SLOT_SECONDS=0): the send point of the running slot has passed at once, so
    the console says the slot after the next, and that is the slot the exchange charges it from."""
    console.cycles(1)
    c = console.community()
    clock = console.runner.clock
    running = console.store.clock_state().running_slot
    when = f"{clock.label(running + 2)[11:]} CEST"  # the scenario's zone: Europe/Berlin in June
    with console.as_user("operator"):
        sent = market.apply_setting(c.uuid, "manual", 4.5, {}, None)
        assert market.command_message(sent) == (f"4.50 ct/kWh queued: in force from {when}", "blue")
    (command,) = console.data.ops.commands()
    assert command["status"] == QUEUED and command["source"] == "manual:operator"
    console.cycles(3)
    charged = {r["slot"]: r["fee_ct_per_kwh"] for r in console.store.history(c.uuid)}
    assert charged[running + 1] == 1.0 and charged[running + 2] == 4.5  # the exchange's own history
    with console.as_user("operator"):
        assert market.command_message(sent) == (f"4.50 ct/kWh in force from {when}", "green")
        rows = audit.command_rows(console.data.ops.commands(), console.data.clock_state())
    assert rows[0]["outcome"] == f"in force from {when}"


def test_a_refused_fee_says_why_in_red_and_queues_nothing(console):
    with console.as_user("operator"):
        assert market.command_message({"error": "fee must be >= 0"}) == ("fee must be >= 0", "red")


@pytest.mark.parametrize("bad", [-1, "abc", None, float("nan"), 10_000])
def test_bad_manual_fee_is_refused_and_nothing_is_queued(console, bad):
    with console.as_user("operator"), pytest.raises(ValueError):
        market.apply_setting(console.community().uuid, "manual", bad, {}, None)
    assert console.data.ops.commands() == []


def test_manual_fee_preview_says_what_it_sends_or_why_not(console):
    c = console.community().uuid
    with console.as_user("operator"):
        assert market.preview_text(c, "manual", {}, None, "") == "enter a fee in ct/kWh"
        assert market.preview_text(c, "manual", {}, None, -1) == "⚠ fee must not be negative, got -1.0 ct/kWh"
        assert market.preview_text(c, "manual", {}, None, 4.5) == "sends 4.50 ct/kWh"


def test_viewer_and_nobody_cannot_change_a_fee_even_with_a_forged_request(console):
    for user in ("viewer", None):
        with console.as_user(user), pytest.raises(NotAllowed):
            market.apply_setting(console.community().uuid, "manual", 3.0, {}, None)
    assert console.data.ops.commands() == []
    assert console.data.ops.settings() == {}


def test_model_setting_is_stored_and_its_fee_queued_then_sent_every_cycle(console):
    console.cycles(2)
    c = console.community()
    values = {"constant.fee_ct_per_kwh": 3.0}
    with console.as_user("operator"):
        running = console.store.clock_state().running_slot
        when = f"{console.runner.clock.label(running + 2)[11:]} CEST"
        assert market.preview_text(c.uuid, "constant", values, None, None) == (
            f"would send 3.00 ct/kWh, in force from {when}; then a new fee every slot"
        )
        sent = market.apply_setting(c.uuid, "constant", None, values, None)
        text, _ = market.command_message(sent)
    assert text == f"constant 3 ct/kWh: 3.00 ct/kWh queued: in force from {when}; then a new fee every slot"
    assert console.data.ops.settings()[c.uuid].model == {"model": "constant", "fee_ct_per_kwh": 3.0}
    console.cycles(3)
    sources = [cmd["source"] for cmd in console.data.ops.commands() if cmd["status"] == APPLIED]
    assert len(sources) == 3 and all(s.startswith("model:constant") for s in sources)  # one per cycle
    # what the operator queued by hand was superseded by the model's fee of the first cycle
    assert [cmd["status"] for cmd in console.data.ops.commands()][-1] == "superseded"


def test_model_form_errors_name_the_field(console):
    with console.as_user("operator"):
        text = market.preview_text(
            console.community().uuid, "controller", {"controller.import_limit_kwh": "x"}, None, 1
        )
    assert text.startswith("⚠ Import limit [kWh/slot]")


def _upload(text: str) -> str:
    return "data:text/csv;base64," + base64.b64encode(text.encode()).decode()


def test_tou_upload_of_95_rows_or_text_is_refused_with_the_reason():
    rows = [f"{h:02d}:{m:02d},{1 + h / 10:.2f}" for h in range(24) for m in (0, 15, 30, 45)]
    ok = "time,fee\n" + "\n".join(rows)
    table, status = market.tou_table_from("tou-upload", _upload(ok), None, "tou.csv")
    assert len(table["all"]) == 96 and "96 values" in status
    short = "time,fee\n" + "\n".join(rows[:95])
    table, status = market.tou_table_from("tou-upload", _upload(short), None, "tou.csv")
    assert table is market.no_update and "95" in status
    texty = "time,fee\n" + "\n".join(rows).replace("01:15,1.10", "01:15,abc")
    table, status = market.tou_table_from("tou-upload", _upload(texty), None, "tou.csv")
    assert table is market.no_update and "abc" in status
    table, status = market.tou_table_from("tou-upload", "data:;base64,bm90IGEgemlw", None, "tou.xlsx")
    assert table is market.no_update and status.startswith("not used:")


def test_tou_upload_on_the_market_page_is_capped_and_checked_as_on_what_if():
    """An attacker's upload past the browser: 50 MB of base64, broken base64, an .xls, no comma."""
    from app.tariffs.tou import MAX_UPLOAD_BYTES

    huge = "data:text/csv;base64," + "QUFB" * (MAX_UPLOAD_BYTES // 2)  # ~1.5 MB once decoded
    table, status = market.tou_table_from("tou-upload", huge, None, "tou.csv")
    assert table is market.no_update and "at most 1000 kB" in status
    table, status = market.tou_table_from("tou-upload", "data:text/csv;base64,%%%", None, "tou.csv")
    assert table is market.no_update and "did not arrive whole" in status
    table, status = market.tou_table_from("tou-upload", _upload("x"), None, "tou.xls")
    assert table is market.no_update and ".xls" in status
    table, status = market.tou_table_from("tou-upload", "no comma at all", None, "tou.csv")
    assert table is market.no_update and "nothing was uploaded" in status


def test_tou_preset_gives_the_challenge_table():
    table, status = market.tou_table_from("tou-preset", None, "challenge 2020: grid", None)
    assert table["all"][0] == 1.68 and "preset" in status


def test_new_slots_are_only_those_after_the_last_shown(console):
    console.cycles(3)
    c = console.community()
    with console.as_user("operator"):
        first = console.runner.clock.label(0)
        rows = market.new_slots(c.uuid, first)
        assert [r["slot"] for r in rows] == [console.runner.clock.label(1), console.runner.clock.label(2)]
        assert market.new_slots(c.uuid, rows[-1]["slot"]) == []


def test_header_says_stale_with_the_reason_when_the_exchange_does_not_answer(console):
    from app.client import GridOperatorClient
    from app.console.pages.shell_callbacks import header_state

    with console.as_user("operator"):
        assert header_state()["connected"] is True
        console.data.cache.clear()
        console.data.client = GridOperatorClient(
            "http://127.0.0.1:9", "operator", "operator", retries=0, timeout_s=0.5
        )
        state = header_state()
    assert state["connected"] is False and state["stale_since"] and state["reason"]


def test_next_slot_list_holds_unsent_commands_and_fees_taken_for_a_slot_not_yet_started(console):
    """A gsy-e-sdk script's fee (taken by the exchange during slot N for N+1) is "for the next
    slot" like a console command still queued; a fee already in force is not."""
    console.cycles(2)
    ops, clock = console.data.ops, console.runner.clock
    running = console.store.clock_state().running_slot
    c = console.community()
    sdk = {"market_uuid": c.uuid, "market_name": c.name, "fee_ct_per_kwh": 6.0, "status": "applied"}
    ops.record_sent([{**sdk, "applies_from_slot": clock.label(running)}], "gsy-sdk:dso", "operator", "t-old")
    ops.record_sent(
        [{**sdk, "applies_from_slot": clock.label(running + 1)}], "gsy-sdk:dso", "operator", "t-new"
    )
    ops.queue(c.uuid, c.name, 2.0, source="manual:operator", user="operator")
    before_send = {
        "running_slot": clock.label(running),
        "next_slot": clock.label(running + 1),
        "target_slot": clock.label(running + 1),
        "time_zone": "Europe/Berlin",
    }
    rows = audit.command_rows(audit.next_slot_commands(ops, before_send), before_send)
    assert [(r["source"], r["fee_ct_per_kwh"]) for r in rows] == [
        ("manual:operator", 2.0),
        ("gsy-sdk:dso", 6.0),
    ]
    when = f"{clock.label(running + 1)[11:]} CEST"
    assert rows[0]["outcome"] == f"queued: in force from {when}"
    assert rows[1]["outcome"] == f"in force from {when}"
    assert audit.queue_title(before_send) == f"In force from {when} (the next slot)"
    # after the send point the queue goes with the next slot's batch: not in force in the next slot
    after_send = {**before_send, "target_slot": clock.label(running + 2)}
    assert [c["source"] for c in audit.next_slot_commands(ops, after_send)] == ["gsy-sdk:dso"]
    unknown = {"running_slot": None, "next_slot": None, "target_slot": None}
    assert len(audit.next_slot_commands(ops, unknown)) == 1  # no clock reading: the unsent ones only


def test_predictive_model_preview_names_the_slot_and_its_forecast_then_the_agent_runs_it(console):
    """The predictive controller is one of the form's models: the preview says what it would send,
    from which slot (fast-forward: the slot after the next) and what it forecasts there."""
    from app.tariffs.forms import FORMS, parse_form
    from app.tariffs.registry import compute_fee, parse_model

    console.cycles(3)
    c = console.community()
    values = {f"predictive.{f.name}": f.default for f in FORMS["predictive"]}
    values |= {"predictive.import_limit_kwh": 4.0, "predictive.export_limit_kwh": 6.0}
    values |= {"predictive.target_share": 0.5}
    with console.as_user("operator"):
        running = console.store.clock_state().running_slot
        when = f"{console.runner.clock.label(running + 2)[11:]} CEST"
        text = market.preview_text(c.uuid, "predictive", values, None, None)
        history, slot, limits = market._model_inputs(c.uuid)
        model = parse_model(parse_form("predictive", values))
    assert slot.start.strftime("%Y-%m-%dT%H:%M") == console.runner.clock.label(running + 2)
    fee = compute_fee(model, history, slot, limits)
    assert text.startswith(f"would send {fee:.2f} ct/kWh, in force from {when}; forecast import ")
    assert text.endswith("kWh/slot, aiming at 2 / 3; then a new fee every slot")
    with console.as_user("operator"):
        sent = market.apply_setting(c.uuid, "predictive", None, values, None)
    assert console.data.ops.settings()[c.uuid].model["model"] == "predictive"
    assert sent["what"].startswith("predictive controller (import <= 4, export <= 6 kWh/slot, target 50 %")
    console.cycles(2)
    sources = [cmd["source"] for cmd in console.data.ops.commands() if cmd["status"] == APPLIED]
    assert len(sources) == 2 and all(s.startswith("model:predictive controller") for s in sources)
