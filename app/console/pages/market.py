"""A market (``/markets/<uuid>``): its charts, others beside it to compare, and its fee control.

Charts start with the last two days of history and then grow by ``Patch`` appends on every tick
that brought new slots (one callback for every card, by pattern-matching ids). The fee control's
callbacks are one set for all markets too; every write checks on the server that the user is a
grid operator allowed to manage that market, whatever the browser sent.
"""

from __future__ import annotations

import dash_mantine_components as dmc
import plotly.graph_objects as go
from dash import ALL, MATCH, Dash, Input, Output, Patch, State, ctx, dcc, html, no_update

from app.console import ids
from app.console.auth import NotAllowed, require_operator
from app.console.components.fee_control import fee_control
from app.console.components.fee_status import command_outcome, queued_text
from app.console.components.formatting import PALETTE, UNIT_ENERGY, plain_number
from app.console.components.market_charts import (
    FIGURE_TRACES,
    add_limit_lines,
    append_patches,
    market_figures,
    reveal_patch,
    violation_shapes,
)
from app.console.pages.common import console, is_viewer
from app.console.pages.shell_callbacks import fee_timing
from app.operator import fee_service
from app.tariffs import tou
from app.tariffs.base import HISTORY_FOR_MODELS, FeeLimits, MarketHistory, SlotInfo
from app.tariffs.forms import parse_form
from app.tariffs.predictive import PredictiveParams, forecast_kwh
from app.tariffs.registry import FeeModel, describe, parse_model

INITIAL_SLOTS = 2 * 96


# -- layout -----------------------------------------------------------------------------------
def market_card(market: dict, cols: int) -> dmc.Paper:
    data = console()
    rows = data.history(market["uuid"], last=INITIAL_SLOTS)
    total = data.overview()["cumulative"].get(market["uuid"], 0.0) or 0.0
    before = total - sum(r["market_fee_revenue"] or 0.0 for r in rows)
    lim = data.limits().get(market["uuid"])
    limits = (lim.import_kwh, lim.export_kwh) if lim is not None and lim.any else None
    figures = market_figures(
        rows,
        previous_cumulative_ct=before,
        slot_minutes=15,
        uirevision=market["uuid"],
        height_px=240,
        limits=limits,
    )
    overlay = forecast_overlay(market["uuid"])
    if overlay is not None:
        add_forecast(figures["flows"], overlay)
    graphs = [
        dcc.Graph(
            id={"type": "market-graph", "market": market["uuid"], "chart": name},
            figure=figures[name],
            config={"displaylogo": False, "displayModeBar": False},
            style={"height": "240px"},
        )
        for name in FIGURE_TRACES
    ]
    return dmc.Paper(
        [
            dmc.Group(
                [
                    dmc.Title(market["name"], order=4),
                    dmc.Badge(("grid", "community", "house")[market["level"]], variant="light"),
                ]
            ),
            dmc.SimpleGrid(graphs, cols=max(1, 3 - cols), spacing="xs"),
            dcc.Store(
                id={"type": "market-last", "market": market["uuid"]},
                data={"slot": rows[-1]["slot"] if rows else None, "cumulative": total, "limits": limits},
            ),
            dcc.Store(id={"type": "market-forecast", "market": market["uuid"]}, data=overlay is not None),
        ],
        p="xs",
        withBorder=True,
    )


def layout(market_id: str | None = None, **_query) -> html.Div:
    data = console()
    market = data.market(market_id or "")
    if market is None:
        return dmc.Alert(
            f"No market {market_id!r} among the markets you manage.", title="Unknown market", color="red"
        )
    others = [{"value": m["uuid"], "label": m["name"]} for m in data.markets() if m["uuid"] != market["uuid"]]
    setting = data.ops.settings().get(market["uuid"])
    manual = (
        setting.manual_fee_ct_per_kwh
        if setting and setting.manual_fee_ct_per_kwh is not None
        else market.get("next_fee_ct_per_kwh", 0.0)
    )
    timing_now = fee_timing(data.clock_state())
    control = fee_control(
        market,
        setting.mode if setting else "manual",
        manual,
        setting.model if setting else None,
        data.fee_limits(),
        disabled=is_viewer(),
        queue_label=timing_now["before"] if (timing_now["send_s"] or 0) > 0 else timing_now["after"],
    )
    return dmc.Grid(
        [
            dmc.GridCol(
                [
                    dmc.Group(
                        [
                            dmc.Title(market["name"], order=3),
                            dmc.MultiSelect(
                                id=ids.MARKET_COMPARE,
                                data=others,
                                placeholder="compare with ...",
                                w=360,
                                size="xs",
                                clearable=True,
                            ),
                        ],
                        justify="space-between",
                        mb="xs",
                    ),
                    html.Div(id=ids.MARKET_CARDS, children=market_card(market, 1)),
                    dcc.Store(id=ids.MARKET_ID, data=market["uuid"]),
                ],
                span={"base": 12, "lg": 9},
            ),
            dmc.GridCol(control, span={"base": 12, "lg": 3}),
        ]
    )


# -- charts -----------------------------------------------------------------------------------


def new_slots(market_uuid: str, after: str | None) -> list[dict]:
    rows = console().history(market_uuid, start=after)
    return [r for r in rows if after is None or r["slot"] > after]


# -- the predictive controller's forecast and limits on the flows chart ------------------------
FORECAST_TRACE = 2  # index in the flows figure: after import (0) and export (1), see market_charts


def forecast_overlay(market_uuid: str) -> dict | None:
    """What the market's predictive controller expects of the slot its next fee is for: ``{"x":
    slot start, "import_kwh", "export_kwh", "import_limit_kwh", "export_limit_kwh"}``; None when
    the market is not run by it (or its setting cannot be read)."""
    setting = console().ops.settings().get(market_uuid)
    if setting is None or setting.mode != "model" or (setting.model or {}).get("model") != "predictive":
        return None
    try:
        model = parse_model(setting.model)
    except ValueError:
        return None
    history, slot, _ = _model_inputs(market_uuid)
    imp, exp = forecast_kwh(history, slot.slot, slot.slot_length_min, model)
    return {
        "x": slot.start,
        "import_kwh": imp,
        "export_kwh": exp,
        "import_limit_kwh": model.import_limit_kwh,
        "export_limit_kwh": model.export_limit_kwh,
    }


def _forecast_points(overlay: dict) -> tuple[list, list]:
    y = [overlay["import_kwh"], None if overlay["export_kwh"] is None else -overlay["export_kwh"]]
    return [overlay["x"], overlay["x"]], y


def add_forecast(figure: go.Figure | Patch, overlay: dict) -> None:
    """The limits as dashed lines (import above, export below zero) and the forecast of the next
    fee's slot as a trace after the documented ones (so the patch indices stay as they are)."""

    x, y = _forecast_points(overlay)
    figure.add_trace(
        go.Scatter(
            name="Forecast (predictive)",
            x=x,
            y=y,
            mode="markers",
            marker={
                "symbol": "diamond-open",
                "size": 11,
                "color": PALETTE["over_limit"],
                "line": {"width": 2},
            },
            hovertemplate=f"forecast %{{y:.2f}} {UNIT_ENERGY}<extra></extra>",
        )
    )
    add_limit_lines(figure, (overlay["import_limit_kwh"], overlay["export_limit_kwh"]))


# -- fee control ------------------------------------------------------------------------------


def tou_table_from(trigger: str, contents: str | None, preset: str | None, filename: str | None):
    """(table, status message) from an upload or a preset; a bad file keeps the old table."""

    if trigger == "tou-preset":
        if not preset:
            return no_update, no_update
        column = "grid" if preset.endswith("grid") else "community"
        return {"all": tou.preset_challenge_2020()[column]}, f"preset: {preset}"
    if not contents:
        return no_update, no_update
    try:
        columns = tou.decode_upload(contents, filename)
    except ValueError as exc:  # TouTableError: what is wrong with the file
        return no_update, f"not used: {exc}"
    name, values = next(iter(columns.items()))
    span = f"{plain_number(min(values))}-{plain_number(max(values))}"
    return {"all": values}, f"{filename}: column {name!r}, 96 values, {span} ct/kWh"


def params_of(states: list[dict]) -> dict[str, object]:
    return {s["id"]["field"]: s["value"] for s in states}


def preview_text(market_uuid: str, mode: str, values: dict, table: dict | None, manual: object) -> str:
    """What the setting would send and from which slot it is in force, or why it cannot; for the
    predictive controller also its forecast of that slot against its targets."""
    if mode == "manual":
        try:
            fee = fee_service.manual_fee(manual, console().fee_limits())
        except ValueError as exc:
            return str(exc) if manual in (None, "") else f"⚠ {exc}"
        return f"sends {fee:.2f} ct/kWh"  # the queue button right above names the slot
    try:
        model = parse_model(parse_form(mode, values, table))
        fee = model_fee_for_next_slot(market_uuid, model)
    except ValueError as exc:
        return f"⚠ {exc}"
    text = f"would send {fee:.2f} ct/kWh, {queued_text(console().clock_state())}"
    if mode == "predictive":
        text += f"; {forecast_text(market_uuid, model)}"
    return text + "; then a new fee every slot"


def _model_inputs(market_uuid: str) -> tuple[MarketHistory, SlotInfo, FeeLimits]:
    """(history, target slot, fee limits) a model computes the next queued fee from: the market's
    last ``HISTORY_FOR_MODELS`` closed slots and the slot a fee queued now is in force from."""
    data = console()
    slot, limits = data.model_target()
    history = MarketHistory.from_rows(
        data.history(market_uuid, last=HISTORY_FOR_MODELS), slot.slot_length_min
    )
    return history, slot, limits


def model_fee_for_next_slot(market_uuid: str, model: FeeModel) -> float:
    """The fee [ct/kWh] ``model`` sets for the slot a fee queued now is in force from."""
    _, slot, limits = _model_inputs(market_uuid)
    return fee_service.model_fee_ct_per_kwh(console().ops, market_uuid, model, slot, limits)


def forecast_text(market_uuid: str, model: PredictiveParams) -> str:
    """The predictive controller's forecast of the slot it sets the fee for, against its targets."""
    history, slot, _ = _model_inputs(market_uuid)
    imp, exp = forecast_kwh(history, slot.slot, slot.slot_length_min, model)
    if imp is None and exp is None:
        return "no forecast yet (no history)"
    aim_imp = model.target_share * model.import_limit_kwh
    aim_exp = model.target_share * model.export_limit_kwh
    shown = [plain_number(round(v, 1)) if v is not None else "?" for v in (imp, exp)]
    return (
        f"forecast import {shown[0]} / export {shown[1]} kWh/slot, aiming at "
        f"{plain_number(round(aim_imp, 1))} / {plain_number(round(aim_exp, 1))}"
    )


def apply_setting(market_uuid: str, mode: str, manual: object, values: dict, table: dict | None) -> dict:
    """Store the market's setting and queue its fee; ``{"id": command id, "what": "4.50 ct/kWh"}``.

    The command goes with the agent's next batch: in force from the slot after the running one
    when queued before the send point, from the one after that when queued later
    (:func:`app.console.components.fee_status.command_outcome` says which, and follows the command).
    Raises ``NotAllowed`` for a viewer or a market the user may not manage, ``ValueError`` for a
    bad value; nothing is stored or queued then.
    """
    user = require_operator()
    data = console()
    market = data.market(market_uuid)
    if market is None or not user.may_manage(market_uuid, market["name"]):
        raise NotAllowed(f"{user.username} may not manage this market")
    running = data.clock_state().get("running_slot")
    if mode == "manual":
        fee = fee_service.manual_fee(manual, data.fee_limits())
        command_id = fee_service.queue_manual(data.ops, market, fee, user.username, running)
        return {"id": command_id, "what": f"{fee:.2f} ct/kWh", "then": ""}
    model = parse_model(parse_form(mode, values, table))
    fee = model_fee_for_next_slot(market_uuid, model)
    command_id = fee_service.queue_model(data.ops, market, model, fee, user.username, running)
    what = f"{describe(model)}: {fee:.2f} ct/kWh"
    return {"id": command_id, "what": what, "then": "; then a new fee every slot"}


def command_message(sent: dict | None) -> tuple[str, str]:
    """(text, colour) of the fee message under the queue button: the refusal, or the command's
    status now ("4.50 ct/kWh queued: in force from 12:15 CEST" → "… in force from 12:15 CEST")."""
    if not sent:
        return "", "dimmed"
    if "error" in sent:
        return sent["error"], "red"
    data = console()
    command = data.ops.command(int(sent["id"]))
    if command is None:
        return f"{sent['what']}: the command is no longer in the store", "red"
    text, colour = command_outcome(command, data.clock_state())
    return f"{sent['what']} {text}{sent.get('then', '')}", colour


def register_callbacks(app: Dash) -> None:
    """This page's callbacks, on ``app`` (each Dash app of the process gets its own)."""

    @app.callback(
        Output(ids.MARKET_CARDS, "children"),
        Input(ids.MARKET_COMPARE, "value"),
        State(ids.MARKET_ID, "data"),
        prevent_initial_call=True,
    )
    def compare(others, primary):
        data = console()
        chosen = [primary, *(others or [])][:4]
        markets = [m for u in chosen if (m := data.market(u)) is not None]
        return dmc.SimpleGrid(
            [market_card(m, len(markets)) for m in markets], cols=len(markets), spacing="sm"
        )

    @app.callback(
        Output({"type": "market-graph", "market": MATCH, "chart": ALL}, "figure"),
        Output({"type": "market-last", "market": MATCH}, "data"),
        Input(ids.TICK, "n_intervals"),
        State({"type": "market-last", "market": MATCH}, "data"),
        prevent_initial_call=True,
    )
    def append_new_slots(_n, last):
        market_uuid = ctx.outputs_list[1]["id"]["market"]
        rows = new_slots(market_uuid, (last or {}).get("slot"))
        charts = [o["id"]["chart"] for o in ctx.outputs_list[0]]
        if not rows:
            return [no_update] * len(charts), no_update
        cumulative = (last or {}).get("cumulative") or 0.0
        patches = append_patches(charts, rows, previous_cumulative_ct=cumulative)
        if (last or {}).get("slot") is None:  # the first slot: the charts leave their empty state
            for chart in charts:
                reveal_patch(patches[chart], chart)
        limits = (last or {}).get("limits")
        if limits and "flows" in patches:  # drawn with its limits: shade the new slots over one
            shapes = violation_shapes(rows, tuple(limits), 15 * 60_000)
            if shapes:
                patches["flows"]["layout"]["shapes"].extend(shapes)
        cumulative += sum(r["market_fee_revenue"] or 0.0 for r in rows)
        state = {"slot": rows[-1]["slot"], "cumulative": cumulative, "limits": limits}
        return [patches[c] for c in charts], state

    @app.callback(
        Output({"type": "market-graph", "market": MATCH, "chart": "flows"}, "figure", allow_duplicate=True),
        Input({"type": "market-last", "market": MATCH}, "data"),
        State({"type": "market-forecast", "market": MATCH}, "data"),
        prevent_initial_call=True,
    )
    def move_forecast(_last, shown):
        """The forecast marker moves on to the slot the next fee is for, once a slot closed."""
        if not shown:
            return no_update
        overlay = forecast_overlay(ctx.outputs_list["id"]["market"])
        if overlay is None:
            return no_update
        patch = Patch()
        patch["data"][FORECAST_TRACE]["x"], patch["data"][FORECAST_TRACE]["y"] = _forecast_points(overlay)
        return patch

    @app.callback(
        Output({"type": "fee-slider", "market": MATCH}, "value"),
        Output({"type": "fee-input", "market": MATCH}, "value"),
        Input({"type": "fee-slider", "market": MATCH}, "value"),
        Input({"type": "fee-input", "market": MATCH}, "value"),
        prevent_initial_call=True,
    )
    def sync_manual(slider, box):
        if ctx.triggered_id and ctx.triggered_id["type"] == "fee-slider":
            return no_update, slider
        if isinstance(box, int | float):
            return box, no_update
        return no_update, no_update

    @app.callback(
        Output({"type": "fee-section", "market": MATCH, "mode": ALL}, "style"),
        Output({"type": "fee-mode-badge", "market": MATCH}, "children"),
        Input({"type": "fee-mode", "market": MATCH}, "value"),
    )
    def show_mode(mode):
        sections = [o["id"]["mode"] for o in ctx.outputs_list[0]]
        return [None if s == mode else {"display": "none"} for s in sections], mode

    @app.callback(
        Output({"type": "tou-table", "market": MATCH}, "data"),
        Output({"type": "tou-status", "market": MATCH}, "children"),
        Input({"type": "tou-upload", "market": MATCH}, "contents"),
        Input({"type": "tou-preset", "market": MATCH}, "value"),
        State({"type": "tou-upload", "market": MATCH}, "filename"),
        prevent_initial_call=True,
    )
    def load_tou(contents, preset, filename):
        return tou_table_from(ctx.triggered_id["type"], contents, preset, filename)

    @app.callback(
        output=Output({"type": "fee-preview", "market": MATCH}, "children"),
        inputs={
            "mode": Input({"type": "fee-mode", "market": MATCH}, "value"),
            "params": Input({"type": "fee-param", "market": MATCH, "field": ALL}, "value"),
            "table": Input({"type": "tou-table", "market": MATCH}, "data"),
            "manual": Input({"type": "fee-input", "market": MATCH}, "value"),
            # a model's fee moves on when a slot closed, the slot it names at the send point; twice
            # a slot, not every tick (a callback per tick slows the page on a busy machine)
            "_last": Input({"type": "market-last", "market": MATCH}, "data"),
            "_target": Input(ids.FEE_TARGET, "data"),
        },
    )
    def preview(mode, params, table, manual, _last, _target):
        market_uuid = ctx.outputs_list["id"]["market"]
        return preview_text(market_uuid, mode, params_of(ctx.args_grouping["params"]), table, manual)

    @app.callback(
        output=Output({"type": "fee-command", "market": MATCH}, "data"),
        inputs={"_clicks": Input({"type": "fee-queue", "market": MATCH}, "n_clicks")},
        state={
            "mode": State({"type": "fee-mode", "market": MATCH}, "value"),
            "manual": State({"type": "fee-input", "market": MATCH}, "value"),
            "params": State({"type": "fee-param", "market": MATCH, "field": ALL}, "value"),
            "table": State({"type": "tou-table", "market": MATCH}, "data"),
        },
        prevent_initial_call=True,
        running=[(Output({"type": "fee-queue", "market": MATCH}, "loading"), True, False)],
    )
    def queue_fee(_clicks, mode, manual, params, table):
        market_uuid = ctx.triggered_id["market"]
        values = params_of(ctx.args_grouping["params"])
        try:
            return apply_setting(market_uuid, mode, manual, values, table)
        except (NotAllowed, ValueError) as exc:
            return {"error": str(exc)}

    @app.callback(
        Output({"type": "fee-message", "market": MATCH}, "children"),
        Output({"type": "fee-message", "market": MATCH}, "c"),
        Input({"type": "fee-command", "market": MATCH}, "data"),
        Input(ids.TICK, "n_intervals"),
        prevent_initial_call=True,
    )
    def follow_command(sent, _n):
        """The message follows the command: queued → sent → in force from 12:15 / refused."""
        if not sent and ctx.triggered_id == ids.TICK:
            return no_update, no_update
        return command_message(sent)
