"""Overview (``/``): every managed market's last slot in one table, and the Excel export."""

from __future__ import annotations

import dash_mantine_components as dmc
from dash import Dash, Input, Output, State, dcc, html, no_update

from app.console import ids
from app.console.components.overview_table import overview_grid, overview_rows
from app.console.components.page import heading
from app.console.pages.common import console, open_market_on
from app.console.pages.export import excel_download


def overview_data() -> list[dict]:
    """The table rows: last slot per managed market, cumulative revenue, queued fee, mode."""
    data = console()
    snapshot = data.overview()
    managed = {m["uuid"]: m for m in data.markets()}
    latest = [r for r in snapshot["latest"] if r["market_uuid"] in managed]
    order = {m["uuid"]: k for k, m in enumerate(data.tree())}  # the tree's order: parents first
    latest.sort(key=lambda r: (order.get(r["market_uuid"], len(order)), r["level"], r["name"]))
    return overview_rows(
        latest,
        snapshot["cumulative"],
        data.queued(),
        data.modes(),
        flow_limits=data.limits(),
        alerts=data.alerts_by_market(),
    )


def layout(**_query) -> dmc.Stack:
    return dmc.Stack(
        [
            heading(
                "Markets",
                "last closed slot of every market you manage (simulated time); click a row, "
                "or press Enter on it, to open it",
            ),
            overview_grid(overview_data(), ids.OVERVIEW_GRID),
            dcc.Store(id=ids.OVERVIEW_SLOT),
            dmc.Paper(
                dmc.Group(
                    [
                        dmc.Text("Excel export of the slot history", fw=600, size="sm"),
                        # native date inputs, labelled: Dash's DatePickerRange carries ARIA
                        # attributes its elements may not have (axe: critical)
                        html.Label(
                            [
                                "from (simulated date, empty: all) ",
                                dcc.Input(id=ids.EXPORT_FROM, type="date", style={"width": 150}),
                            ],
                            style={"fontSize": "14px"},
                        ),
                        html.Label(
                            ["to ", dcc.Input(id=ids.EXPORT_TO, type="date", style={"width": 150})],
                            style={"fontSize": "14px"},
                        ),
                        dmc.Button("Download .xlsx", id=ids.EXPORT_BUTTON, size="xs", variant="light"),
                        dmc.Text(id=ids.EXPORT_MESSAGE, size="sm", c="red"),
                        dcc.Download(id=ids.EXPORT_DOWNLOAD),
                    ],
                    gap="md",
                ),
                p="sm",
                withBorder=True,
            ),
        ],
        gap="sm",
    )


def register_callbacks(app: Dash) -> None:
    """This page's callbacks, on ``app`` (each Dash app of the process gets its own)."""

    @app.callback(
        Output(ids.OVERVIEW_GRID, "rowData"),
        Output(ids.OVERVIEW_SLOT, "data"),
        Input(ids.TICK, "n_intervals"),
        State(ids.OVERVIEW_SLOT, "data"),
        prevent_initial_call=True,
    )
    def refresh_rows(_n, shown):
        rows = overview_data()
        fingerprint = [
            (
                r["id"],
                r["slot"],
                r["fee_queued_ct_per_kwh"],
                r["mode"],
                r["alert_detail"],
                r["import_limit_kwh"],
                r["export_limit_kwh"],
            )
            for r in rows
        ]
        if fingerprint == shown:
            return no_update, no_update
        return rows, fingerprint

    open_market_on(app, ids.OVERVIEW_GRID, "cellClicked", lambda cell: cell.get("rowId"))

    @app.callback(
        Output(ids.EXPORT_DOWNLOAD, "data"),
        Output(ids.EXPORT_MESSAGE, "children"),
        Input(ids.EXPORT_BUTTON, "n_clicks"),
        State(ids.EXPORT_FROM, "value"),
        State(ids.EXPORT_TO, "value"),
        prevent_initial_call=True,
        running=[(Output(ids.EXPORT_BUTTON, "loading"), True, False)],
    )
    def download_excel(_clicks, start_date, end_date):
        try:
            return excel_download(start_date or None, end_date or None), ""
        except ValueError as exc:
            return no_update, str(exc)
