"""Fee commands (``/audit``): what is queued for the next slot, and every command's outcome."""

from __future__ import annotations

import datetime as dt

import dash_ag_grid as dag
import dash_mantine_components as dmc
from dash import Input, Output

from app import ids
from app.client import ApiClientError, ExchangeUnavailable
from app.dashboard.auth import NotAllowed, require_operator
from app.operator.agent import send_queue
from app.operator.store import APPLIED, QUEUED, SENDING
from app.pages.common import console, is_viewer

COLUMNS = [
    {"field": "created", "headerName": "Queued at (UTC)", "width": 170},
    {"field": "market_name", "headerName": "Market", "width": 160},
    {"field": "fee_ct_per_kwh", "headerName": "Fee [ct/kWh]", "type": "rightAligned", "width": 130},
    {"field": "source", "headerName": "Source", "flex": 1, "minWidth": 150, "tooltipField": "source"},
    {"field": "status", "headerName": "Status", "width": 110},
    {"field": "outcome", "headerName": "Outcome", "flex": 3, "minWidth": 280, "tooltipField": "outcome"},
    {"field": "created_by", "headerName": "By", "width": 100},
]


def command_rows(commands: list[dict]) -> list[dict]:
    """Rows for the grids: time, market, fee, source, status and what became of it."""
    rows = []
    for c in commands:
        if c["status"] == "applied":
            outcome = f"applied from slot {c['applies_from_slot']}"
        elif c["status"] == "refused":
            outcome = f"refused: {c['reason']}"
        elif c["status"] == "superseded":
            outcome = "superseded by a later change"
        elif c["status"] == "sending":
            outcome = "sent, waiting for the exchange"
        else:
            outcome = "queued for the next slot"
        rows.append(
            {
                "id": str(c["id"]),
                "created": dt.datetime.fromtimestamp(c["created_at"], dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
                "market_name": c["market_name"],
                "fee_ct_per_kwh": round(c["fee_ct_per_kwh"], 3),
                "source": c["source"],
                "status": c["status"],
                "outcome": outcome,
                "created_by": c["created_by"],
            }
        )
    return rows


def next_slot_commands(ops, running_slot: str | None) -> list[dict]:  # noqa: ANN001
    """What the next slot will bring: commands not yet sent, and commands the exchange has
    already taken for a slot that has not started (a gsy-e-sdk script's fees, a "Send now"),
    newest first. Slot labels ``YYYY-MM-DDTHH:mm`` sort as time."""
    waiting = ops.commands((QUEUED, SENDING))
    if running_slot is None:
        return waiting
    taken = [
        c
        for c in ops.commands((APPLIED,), limit=200)
        if c["applies_from_slot"] is not None and c["applies_from_slot"] > running_slot
    ]
    return sorted(waiting + taken, key=lambda c: c["id"], reverse=True)


def _grid(grid_id: str, rows: list[dict], height: int) -> dag.AgGrid:
    return dag.AgGrid(
        id=grid_id,
        rowData=rows,
        columnDefs=COLUMNS,
        getRowId="params.data.id",
        defaultColDef={"sortable": True, "filter": True, "resizable": True},
        dashGridOptions={"animateRows": False, "tooltipShowDelay": 300},
        style={"height": f"{height}px"},
    )


def _running_slot() -> str | None:
    return console().clock_state().get("running_slot")


def layout(**_query) -> dmc.Stack:
    ops = console().ops
    return dmc.Stack(
        [
            dmc.Group(
                [
                    dmc.Title("For the next slot", order=3),
                    dmc.Button("Send now", id=ids.SEND_NOW, size="xs", disabled=is_viewer()),
                    dmc.Text(id=ids.SEND_MESSAGE, size="sm"),
                ]
            ),
            _grid(ids.QUEUE_GRID, command_rows(next_slot_commands(ops, _running_slot())), 180),
            dmc.Title("Audit log", order=3),
            _grid(ids.AUDIT_GRID, command_rows(ops.commands(limit=500)), 460),
        ],
        gap="sm",
    )


def register_callbacks(app) -> None:  # noqa: ANN001
    """This page's callbacks, on ``app`` (each Dash app of the process gets its own)."""

    @app.callback(
        Output(ids.QUEUE_GRID, "rowData"),
        Output(ids.AUDIT_GRID, "rowData"),
        Input(ids.TICK, "n_intervals"),
        prevent_initial_call=True,
    )
    def refresh(_n):
        ops = console().ops
        queue = next_slot_commands(ops, _running_slot())
        return command_rows(queue), command_rows(ops.commands(limit=500))

    @app.callback(
        Output(ids.SEND_MESSAGE, "children"),
        Input(ids.SEND_NOW, "n_clicks"),
        prevent_initial_call=True,
        running=[(Output(ids.SEND_NOW, "disabled"), True, False)],
    )
    def send_now(_clicks):
        try:
            require_operator()
        except NotAllowed as exc:
            return str(exc)
        data = console()
        try:
            results = send_queue(data.client, data.ops)
        except (ExchangeUnavailable, ApiClientError) as exc:  # stays claimed; the agent resends it
            return f"not sent now ({exc}); the agent resends them"
        applied = sum(r["status"] == "applied" for r in results.values())
        return f"sent {len(results)} command(s), {applied} applied" if results else "nothing queued"
