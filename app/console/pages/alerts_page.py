"""Alerts (``/alerts``): what needs attention now, who acknowledged it, what fired before, and
the flow limits the rules check (set here, audited).

The operator agent evaluates the rules at every slot (:mod:`app.operator.alerts`), so alerts fire
and resolve with no browser open; this page shows and acknowledges them. A viewer sees all of it
and changes nothing: the buttons are disabled for viewers and the server refuses them anyway.
"""

from __future__ import annotations

import datetime as dt
import math

import dash_mantine_components as dmc
from dash import ALL, MATCH, Dash, Input, Output, State, ctx, html, no_update

from app.console import ids
from app.console.auth import NotAllowed, require_operator
from app.console.components.formatting import MISSING, browser_zone, fmt_wall_datetime, plain_number
from app.console.components.page import heading, note
from app.console.pages.common import console, is_viewer
from app.operator.alerts import ALERTING, RULES

SHOWN_HISTORY = 100


def _when(ts: float | None, slot: str | None, tz: dt.tzinfo | None) -> str:
    """ "slot 2026-06-22 13:15 (simulated) · 20:14:05 CET (wall-clock)"."""
    if ts is None:
        return MISSING
    sim = f"slot {slot.replace('T', ' ')} (simulated), " if slot else ""
    return f"{sim}{fmt_wall_datetime(ts, tz)[11:]} (wall-clock)"


def _table(head: list[str], rows: list[list], caption: str) -> dmc.Table:
    return dmc.Table(
        [
            html.Caption(caption, style={"textAlign": "left", "captionSide": "top", "fontWeight": 600}),
            dmc.TableThead(dmc.TableTr([dmc.TableTh(h) for h in head])),
            dmc.TableTbody([dmc.TableTr([dmc.TableTd(c) for c in row]) for row in rows]),
        ],
        striped=True,
        highlightOnHover=True,
        withTableBorder=True,
        fz="sm",
    )


def active_table(open_alerts: list[dict], viewer: bool, tz: dt.tzinfo | None) -> list:
    if not open_alerts:
        return [
            dmc.Paper(
                [
                    dmc.Text("All clear", fw=600, c="#1B5E20"),
                    dmc.Text(
                        "No alert is open. The operator agent checks every market at each slot: over "
                        "its import or export limit, a model's fee at its cap for 2 h, a refused fee "
                        "command, a revenue spike; and the exchange: no new slot for two slot "
                        "lengths, unreachable.",
                        size="sm",
                    ),
                ],
                p="sm",
                withBorder=True,
                bg="green.0",
            )
        ]
    rows = []
    for a in open_alerts:
        state = dmc.Badge(
            "firing" if a["state"] == ALERTING else "pending",
            color="red" if a["state"] == ALERTING else "orange",
            variant="filled" if a["state"] == ALERTING else "light",
        )
        if a["acked_by"]:
            ack = f"by {a['acked_by']} at {fmt_wall_datetime(a['acked_at'], tz)[11:]}"
        else:
            ack = dmc.Button(
                "Acknowledge",
                id={"type": "alert-ack", "alert": a["id"]},
                size="compact-sm",
                variant="light",
                disabled=viewer,
            )
        rows.append(
            [
                state,
                RULES[a["rule"]].title if a["rule"] in RULES else a["rule"],
                a["market_name"],
                a["message"],
                _when(a["firing_at"] or a["started_at"], a["firing_slot"] or a["started_slot"], tz),
                ack,
            ]
        )
    return [_table(["State", "Rule", "Market", "Why", "Since", "Acknowledged"], rows, "Open alerts")]


def history_table(done: list[dict], tz: dt.tzinfo | None) -> list:
    if not done:
        return [
            dmc.Text(
                "No alert has fired and resolved yet; resolved alerts will be listed here.",
                c="dimmed",
                size="sm",
            )
        ]
    rows = [
        [
            RULES[a["rule"]].title if a["rule"] in RULES else a["rule"],
            a["market_name"],
            a["message"],
            _when(a["firing_at"], a["firing_slot"], tz),
            _when(a["resolved_at"], a["resolved_slot"], tz),
            f"{a['acked_by']}" if a["acked_by"] else "not acknowledged",
        ]
        for a in done[:SHOWN_HISTORY]
    ]
    return [_table(["Rule", "Market", "Why (last)", "Fired", "Resolved", "Acknowledged by"], rows, "History")]


def _limit_input(direction: str, market_uuid: str, value_kwh: float | None, viewer: bool) -> dmc.NumberInput:
    """The import or export limit [kWh/slot] of one market (empty: no limit that way)."""
    return dmc.NumberInput(
        id={"type": f"limit-{direction}", "market": market_uuid},
        label=f"{direction.capitalize()} limit [kWh/slot]",
        value=value_kwh,
        min=0,
        size="xs",
        w=170,
        disabled=viewer,
    )


def limits_form(viewer: bool) -> list:
    data = console()
    limits = data.limits()
    cards = []
    for m in data.markets():
        lim = limits.get(m["uuid"])
        source = (
            "none set" if lim is None else ("set in the console" if lim.source == "console" else "scenario")
        )
        cards.append(
            dmc.Group(
                [
                    dmc.Text(m["name"], fw=500, w=170, size="sm"),
                    _limit_input("import", m["uuid"], lim.import_kwh if lim else None, viewer),
                    _limit_input("export", m["uuid"], lim.export_kwh if lim else None, viewer),
                    dmc.Button(
                        "Save limits",
                        id={"type": "limit-save", "market": m["uuid"]},
                        size="xs",
                        variant="light",
                        disabled=viewer,
                    ),
                    dmc.Text(
                        source, id={"type": "limit-message", "market": m["uuid"]}, size="sm", c="dimmed"
                    ),
                ],
                align="flex-end",
                gap="sm",
            )
        )
    return cards


def limit_audit(tz: dt.tzinfo | None) -> list:
    changes = console().alerts.limit_changes(limit=50)
    if not changes:
        return [
            dmc.Text(
                "No limit was changed in the console; the scenario's limits apply.", size="sm", c="dimmed"
            )
        ]
    rows = [
        [
            fmt_wall_datetime(c["changed_at"], tz) + " (wall-clock)",
            c["market_name"],
            MISSING if c["import_kwh"] is None else plain_number(c["import_kwh"]),
            MISSING if c["export_kwh"] is None else plain_number(c["export_kwh"]),
            c["changed_by"],
        ]
        for c in changes
    ]
    return [
        _table(
            ["Changed at", "Market", "Import [kWh/slot]", "Export [kWh/slot]", "By"], rows, "Limit changes"
        )
    ]


def layout(**_query) -> dmc.Stack:
    data = console()
    viewer = is_viewer()
    tz = browser_zone(None)
    return dmc.Stack(
        [
            heading("Alerts", "checked by the operator agent at every slot, with or without a browser open"),
            html.Div(id=ids.ALERTS_MESSAGE, role="status", style={"fontSize": "14px"}),
            html.Div(active_table(data.alerts.open_alerts(), viewer, tz), id=ids.ALERTS_ACTIVE),
            html.Div(history_table(data.alerts.history(), tz), id=ids.ALERTS_HISTORY),
            dmc.Title("Flow limits", order=4),
            note(
                "energy a market's connection may carry per slot; empty: no limit that way. "
                + ("Viewers cannot change them." if viewer else "A change applies from the next evaluation.")
            ),
            html.Div(limits_form(viewer), id=ids.ALERTS_LIMITS),
            html.Div(limit_audit(tz), id=ids.ALERTS_LIMIT_AUDIT),
        ],
        gap="sm",
    )


def _limit(value: object) -> float | None:
    if value in (None, ""):
        return None
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError("a limit is a positive number of kWh per slot, or empty for none")
    return number


def save_limits(market_uuid: str, import_kwh: object, export_kwh: object) -> str:
    """Store a market's limits for the operator signed in; the message to show."""
    user = require_operator()
    data = console()
    market = data.market(market_uuid)
    if market is None or not user.may_manage(market_uuid, market["name"]):
        raise NotAllowed(f"{user.username} may not manage this market")
    imp, exp = _limit(import_kwh), _limit(export_kwh)
    data.alerts.set_limits(market_uuid, market["name"], imp, exp, user.username)
    shown = [plain_number(v) or "none" for v in (imp, exp)]
    return f"saved by {user.username}: import {shown[0]}, export {shown[1]} kWh/slot"


def acknowledge(alert_id: int) -> str:
    user = require_operator()
    data = console()
    alert = data.alerts.alert(alert_id)
    if alert is None:
        return "no such alert"
    if not data.alerts.acknowledge(alert_id, user.username):
        return "already acknowledged or resolved"
    return f"acknowledged by {user.username}: {alert['market_name']}, {alert['message']}"


def register_callbacks(app: Dash) -> None:
    """This page's callbacks, on ``app`` (each Dash app of the process gets its own)."""

    @app.callback(
        Output(ids.ALERTS_ACTIVE, "children"),
        Output(ids.ALERTS_HISTORY, "children"),
        Output(ids.ALERTS_LIMIT_AUDIT, "children"),
        Input(ids.TICK, "n_intervals"),
        Input(ids.ALERTS_MESSAGE, "children"),
        State(ids.BROWSER_TZ, "data"),
        prevent_initial_call=True,
    )
    def refresh(_n, _message, tz_name):
        data = console()
        tz = browser_zone(tz_name)
        return (
            active_table(data.alerts.open_alerts(), is_viewer(), tz),
            history_table(data.alerts.history(), tz),
            limit_audit(tz),
        )

    @app.callback(
        Output(ids.ALERTS_MESSAGE, "children"),
        Input({"type": "alert-ack", "alert": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def ack(_clicks):
        if not ctx.triggered_id or not ctx.triggered[0].get("value"):
            return no_update
        try:
            return acknowledge(int(ctx.triggered_id["alert"]))
        except NotAllowed as exc:
            return str(exc).replace("change fees", "acknowledge alerts")

    @app.callback(
        Output({"type": "limit-message", "market": MATCH}, "children"),
        Input({"type": "limit-save", "market": MATCH}, "n_clicks"),
        State({"type": "limit-import", "market": MATCH}, "value"),
        State({"type": "limit-export", "market": MATCH}, "value"),
        prevent_initial_call=True,
        running=[(Output({"type": "limit-save", "market": MATCH}, "loading"), True, False)],
    )
    def save(_clicks, import_kwh, export_kwh):
        try:
            return save_limits(ctx.triggered_id["market"], import_kwh, export_kwh)
        except (NotAllowed, ValueError) as exc:
            return f"not saved: {exc}"
