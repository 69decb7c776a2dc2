"""Fee commands (``/audit``): what will be in force in the next slot, and every command's outcome.

There is no "send now": the operator agent sends the queue at each slot's send point
(:mod:`app.operator.timing`), which is what makes a queued fee reach the next slot.
"""

from __future__ import annotations

import datetime as dt

import dash_ag_grid as dag
import dash_mantine_components as dmc
from dash import Dash, Input, Output, State

from app.console import ids
from app.console.components.fee_status import command_outcome
from app.console.components.formatting import browser_zone, fmt_wall_datetime, slot_when
from app.console.pages.common import console
from app.operator.store import APPLIED, QUEUED, SENDING, OperatorStore

COLUMNS = [
    {
        "field": "created",
        "headerName": "Queued at (wall-clock)",
        "headerTooltip": "when the command was queued, on the clock of the wall, in your browser's zone",
        "width": 200,
    },
    {"field": "market_name", "headerName": "Market", "width": 160},
    {"field": "fee_ct_per_kwh", "headerName": "Fee [ct/kWh]", "type": "rightAligned", "width": 130},
    {"field": "source", "headerName": "Source", "flex": 1, "minWidth": 150, "tooltipField": "source"},
    {"field": "status", "headerName": "Status", "width": 110},
    {"field": "outcome", "headerName": "Outcome", "flex": 3, "minWidth": 280, "tooltipField": "outcome"},
    {"field": "created_by", "headerName": "By", "width": 100},
]


def command_rows(commands: list[dict], state: dict, tz: dt.tzinfo | None = None) -> list[dict]:
    """Rows for the grids: time, market, fee, source, status and what became of it, with the
    exact slot (``state``: the console's clock state, for where a queued command goes). The
    wall-clock time is shown in ``tz`` (the browser's zone; UTC when None) with its zone's name."""
    rows = []
    for c in commands:
        rows.append(
            {
                "id": str(c["id"]),
                "created": fmt_wall_datetime(c["created_at"], tz),
                "market_name": c["market_name"],
                "fee_ct_per_kwh": round(c["fee_ct_per_kwh"], 3),
                "source": c["source"],
                "status": c["status"],
                "outcome": command_outcome(c, state)[0],
                "created_by": c["created_by"],
            }
        )
    return rows


def next_slot_commands(ops: OperatorStore, state: dict) -> list[dict]:
    """What will be in force in the next slot (N+1), newest first: commands the exchange has
    taken for N+1 (the agent's batch, a gsy-e-sdk script's fees), the batch on its way, and the
    queue while it still goes with N's batch (before the send point; after it, the queue is for
    N+2 and shows in the audit log only). Slot labels ``YYYY-MM-DDTHH:mm`` sort as time."""
    running, next_slot = state.get("running_slot"), state.get("next_slot")
    waiting = ops.commands((SENDING,))
    if state.get("target_slot") is None or state.get("target_slot") == next_slot:
        waiting += ops.commands((QUEUED,))
    if running is None:
        return sorted(waiting, key=lambda c: c["id"], reverse=True)
    taken = [c for c in ops.commands((APPLIED,), limit=200) if c["applies_from_slot"] == next_slot]
    return sorted(waiting + taken, key=lambda c: c["id"], reverse=True)


def queue_title(state: dict) -> str:
    """ "In force from 12:15 CEST (the next slot)": the first grid's title."""
    nxt = state.get("next_slot")
    if not nxt:
        return "Queued (slot unknown: no clock from the exchange)"
    when = slot_when(nxt, state.get("time_zone"), state.get("running_slot"))
    return f"In force from {when} (the next slot)"


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


def layout(**_query) -> dmc.Stack:
    data = console()
    state = data.clock_state()
    return dmc.Stack(
        [
            dmc.Title(queue_title(state), id=ids.QUEUE_TITLE, order=3),
            _grid(ids.QUEUE_GRID, command_rows(next_slot_commands(data.ops, state), state), 180),
            dmc.Title("Audit log", order=3),
            _grid(ids.AUDIT_GRID, command_rows(data.ops.commands(limit=500), state), 460),
        ],
        gap="sm",
    )


def register_callbacks(app: Dash) -> None:
    """This page's callbacks, on ``app`` (each Dash app of the process gets its own)."""

    @app.callback(
        Output(ids.QUEUE_TITLE, "children"),
        Output(ids.QUEUE_GRID, "rowData"),
        Output(ids.AUDIT_GRID, "rowData"),
        Input(ids.TICK, "n_intervals"),
        State(ids.BROWSER_TZ, "data"),
        prevent_initial_call=True,
    )
    def refresh(_n, tz_name):
        data = console()
        state = data.clock_state()
        queue = next_slot_commands(data.ops, state)
        tz = browser_zone(tz_name)
        return (
            queue_title(state),
            command_rows(queue, state, tz),
            command_rows(data.ops.commands(limit=500), state, tz),
        )
