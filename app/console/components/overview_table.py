"""The overview grid: one row per managed market with its last slot's KPIs and fees.

Built with dash-ag-grid 35. Rows carry ``id`` = market uuid and the grid sets
``getRowId="params.data.id"``, so a new slot updates rows in place (no flicker, selection and
scroll kept) whether the callback sends fresh ``rowData`` or a ``rowTransaction``; the same id comes
back in ``cellClicked["rowId"]`` when the operator clicks a row, which the page uses to open that
market.

Numbers are formatted in the browser by a dash-ag-grid "function" string (a JavaScript expression
that dash-ag-grid evaluates in a sandbox exposing ``params`` and ``d3``), so sorting and filtering
still work on the raw numbers. Import and export cells over a row's ``limit_kwh`` get the CSS class
``over-limit`` (for stylesheets and tests) and, so it shows without any stylesheet, a red
background via dash-ag-grid's ``cellStyle.styleConditions``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dash_ag_grid as dag

from app.console.components.formatting import (
    MISSING,
    PALETTE,
    UNIT_ENERGY,
    UNIT_PRICE,
    clean_number,
    with_unit,
)
from app.exchange.stat_table import STAT

OVER_LIMIT_CLASS = "over-limit"
_LIMIT = "params.data[params.colDef.field.replace('_kwh', '_limit_kwh')]"
OVER_LIMIT_CONDITION = f"{_LIMIT} != null && params.value != null && params.value > {_LIMIT}"
"""JavaScript condition (dash-ag-grid expression): the cell's energy exceeds the row's limit for
that direction (``import_limit_kwh`` for the ``import_kwh`` column) [kWh]."""
FLOW_FORMATTER = {
    "function": f"params.value == null ? '{MISSING}' : d3.format('.2f')(params.value)"
    f" + ({_LIMIT} != null ? ' / ' + d3.format('~g')({_LIMIT}) : '')"
}
"""An import/export cell as "12.30 / 25": the energy and, where set, its limit [kWh]."""
ALERT_CLASS = "alerting"


SLOT_FORMATTER = {"function": f"params.value == null ? '{MISSING}' : params.value.replace('T', ' ')"}
"""The slot label "2026-06-22T13:15" shown as "2026-06-22 13:15" (sorting uses the label)."""
SLOT_FILTER_VALUE = {"function": "params.data.slot == null ? null : params.data.slot.replace('T', ' ')"}
"""The column's text filter matches what is shown."""
CELL_PADDING_PX = 8
"""Space left and right of a cell's text [px] (the Quartz theme's default is 15)."""
SLOT_WIDTH_PX = 140
"""Wide enough for "2026-06-22 13:15" (~111 px in the grid's 14 px font, ~10 % more in wider
fallback fonts) plus the cell's padding: the column never cuts it at 1366 px."""


def fixed_decimals_formatter(decimals: int = 2) -> dict[str, str]:
    """A dash-ag-grid ``valueFormatter`` showing ``decimals`` fixed decimals, "–" for null.

    ``d3.format`` alone would print null as "0.00", which reads as a real zero (e.g. a price in a
    slot without trades), hence the null test.
    """
    return {"function": f"params.value == null ? '{MISSING}' : d3.format('.{decimals}f')(params.value)"}


def _text(field: str, header: str, **extra: object) -> dict:
    return {
        "field": field,
        "headerName": header,
        "cellDataType": "text",
        "filter": "agTextColumnFilter",
    } | extra


def _number(field: str, header: str, unit: str | None, decimals: int = 2, **extra: object) -> dict:
    return {
        "field": field,
        "headerName": with_unit(header, unit) if unit else header,
        "cellDataType": "number",
        "type": "rightAligned",
        "filter": "agNumberColumnFilter",
        "valueFormatter": fixed_decimals_formatter(decimals),
    } | extra


def _flow(field: str, header: str, colour: str) -> dict:
    """An import/export column: text in the flow's colour, red background over the row's limit."""
    return _number(
        field,
        header,
        UNIT_ENERGY,
        valueFormatter=FLOW_FORMATTER,
        headerTooltip=f"{header} in the last slot / its limit per slot [{UNIT_ENERGY}]",
        cellClassRules={OVER_LIMIT_CLASS: OVER_LIMIT_CONDITION},
        cellStyle={
            "styleConditions": [
                {
                    "condition": OVER_LIMIT_CONDITION,
                    "style": {"backgroundColor": PALETTE["over_limit"], "color": "white", "fontWeight": 600},
                }
            ],
            "defaultStyle": {"color": colour},
        },
    )


def overview_columns() -> list[dict]:
    """The grid's ``columnDefs``: market, level, last slot, prices, energies, fees, revenue, mode.

    Every numeric column names its unit in the header, is right-aligned (AG Grid column type
    ``rightAligned``), filters numerically and shows fixed decimals. Fields match
    :func:`overview_rows`.
    """
    return [
        _text(
            "market",
            "Market",
            pinned="left",
            minWidth=175,  # "Community North" indented a level, whole
            # the tree's depth as indentation (the level column is left out of the overview)
            cellStyle={"function": "({paddingLeft: (8 + 14 * (params.data.level || 0)) + 'px'})"},
        ),
        _text(
            "alert",
            "Alert",
            pinned="left",
            minWidth=130,  # the short alert ("over import limit"); the tooltip has the rest
            tooltipField="alert_detail",
            headerTooltip="the market's open alerts (Alerts page for all)",
            cellClassRules={ALERT_CLASS: "params.data.alert_state == 'alerting'"},
            cellStyle={
                "styleConditions": [
                    {
                        "condition": "params.data.alert_state == 'alerting'",
                        "style": {"color": "#C92A2A", "fontWeight": 600},
                    },
                    {"condition": "params.data.alert_state == 'pending'", "style": {"color": "#B34700"}},
                ]
            },
        ),
        _number(
            "level",
            "Level",
            None,
            0,
            headerTooltip="Depth in the grid tree: 0 = the grid",
            minWidth=56,
            maxWidth=80,
        ),
        _text(
            "slot",
            "Last slot",
            headerTooltip="Start of the last closed slot (simulated time)",
            valueFormatter=SLOT_FORMATTER,
            filterValueGetter=SLOT_FILTER_VALUE,
            minWidth=SLOT_WIDTH_PX,
        ),
        # units and the labels that fit from the table of slot statistics (app.exchange.stat_table);
        # the grid's column ids and its shorter price labels are the grid's own (they fit 1366 px)
        _number("min_ct_per_kwh", "Min price", STAT["min_trade_rate"].unit),
        _number("median_ct_per_kwh", "Median price", STAT["median_trade_rate"].unit),
        _number("avg_ct_per_kwh", "Avg price", STAT["avg_trade_rate"].unit),
        _number("max_ct_per_kwh", "Max price", STAT["max_trade_rate"].unit),
        _number("traded_kwh", "Traded", STAT["total_traded_energy_kWh"].unit),
        _flow("import_kwh", STAT["import_kwh"].label, PALETTE["import"]),
        _flow("export_kwh", STAT["export_kwh"].label, "#8F5300"),  # the export orange, dark enough for text
        _number(
            "self_sufficiency_pct",
            STAT["self_sufficiency"].label,
            STAT["self_sufficiency"].unit,
            STAT["self_sufficiency"].decimals,
        ),
        _number("fee_revenue_slot_ct", "Fee revenue slot", STAT["market_fee_revenue"].unit),
        # grows without end: room for "123456.78" (~66 px) and the padding
        _number(
            "fee_revenue_cumulative_ct",
            "Fee revenue cumulative",
            STAT["market_fee_revenue"].unit,
            minWidth=88,
        ),
        _number("fee_in_force_ct_per_kwh", STAT["fee_ct_per_kwh"].label, STAT["fee_ct_per_kwh"].unit),
        _number(
            "fee_queued_ct_per_kwh",
            STAT["next_fee_ct_per_kwh"].label,
            STAT["next_fee_ct_per_kwh"].unit,
            headerTooltip=(
                "Fee in force from the slot after the running one (the header names it): "
                "the console's queued command, else the exchange's"
            ),
        ),
        _text(
            "mode",
            "Mode",
            headerTooltip="manual, or the tariff model that sets the fee",
            tooltipField="mode",
            minWidth=120,  # "Time-of-use table" whole, not "Time-of-use…"
        ),
    ]


# Columns shown under a common header that carries the unit (the flat headers keep the unit too,
# as the header tooltip): 16 columns fit 1366 px this way.
GROUPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    # the pinned columns under a group header too: an empty pinned group row is an ARIA row
    # without cells (axe's aria-required-children)
    ("Market", (("market", "Name"), ("alert", "Alert"))),
    (
        f"Trade price [{UNIT_PRICE}]",
        (("median_ct_per_kwh", "Median"), ("avg_ct_per_kwh", "Avg")),
    ),
    (
        f"Energy [{UNIT_ENERGY}]",
        (("traded_kwh", "Traded"), ("import_kwh", "Import / limit"), ("export_kwh", "Export / limit")),
    ),
    (f"Fee [{UNIT_PRICE}]", (("fee_in_force_ct_per_kwh", "In force"), ("fee_queued_ct_per_kwh", "Queued"))),
)


HIDDEN_IN_OVERVIEW = (
    "min_ct_per_kwh",
    "max_ct_per_kwh",
    "level",
    "self_sufficiency_pct",
    "fee_revenue_slot_ct",
)
"""Left out of the grid shown, so that what the operator needs (market, alert, import/export
against the limits, fees in force and queued, mode) fits 1366 px without scrolling sideways: the
price band, self-sufficiency and the revenue per slot are on each market's page (and in the Excel
export), the level shows in the name's indentation."""


def alert_summary(alerts: Sequence[Mapping]) -> tuple[str | None, str, str | None]:
    """(state, short text, full text) of a market's open alerts for its overview row."""
    if not alerts:
        return None, "", None
    first = alerts[0]  # firing first
    state = first["state"]
    value, threshold = first.get("value"), first.get("threshold")
    if first["rule"] == "over_limit" and value is not None and threshold:
        way = first.get("message", "import").split(" ")[0]
        short = f"{way} {100 * value / threshold:.0f} % of limit"
    else:
        short = first["rule"].replace("_", " ")
    if state != "alerting":
        short = f"pending: {short}"
    if len(alerts) > 1:
        short += f" (+{len(alerts) - 1})"
    return state, short, "; ".join(f"{a['state']}: {a['message']}" for a in alerts)


def overview_column_groups() -> list[dict]:
    """``overview_columns`` under group headers with the units; short child headers, the full
    header (with unit) as each child's tooltip. What ``overview_grid`` shows."""
    flat = {c["field"]: c for c in overview_columns()}
    grouped = {field for _, children in GROUPS for field, _ in children}
    out: list[dict] = []
    for column in overview_columns():
        field = column["field"]
        if field in HIDDEN_IN_OVERVIEW:
            continue
        if field not in grouped:
            out.append(column)
            continue
        group = next(g for g in GROUPS if any(f == field for f, _ in g[1]))
        if group[1][0][0] != field:
            continue  # the group was added at its first column
        out.append(
            {
                "headerName": group[0],
                "marryChildren": True,
                "children": [
                    {
                        **flat[f],
                        "headerName": short,
                        "headerTooltip": flat[f].get("headerTooltip", flat[f]["headerName"]),
                    }
                    for f, short in group[1]
                ],
            }
        )
    return out


def overview_rows(
    latest: Sequence[Mapping],
    cumulative_revenue: Mapping[str, float],
    queued: Mapping[str, float],
    modes: Mapping[str, str],
    limits_kwh: Mapping[str, float] | None = None,
    flow_limits: Mapping | None = None,
    alerts: Mapping[str, Sequence[Mapping]] | None = None,
) -> list[dict]:
    """Grid rows from each market's latest history row, in the order of ``latest``.

    Parameters
    ----------
    latest : the newest history row of each market (``market_uuid``, ``name``, ``level``,
        ``slot`` and the ``HISTORY_FIELDS``).
    cumulative_revenue : market uuid → fee revenue [ct] summed over all its slots so far.
    queued : market uuid → fee [ct/kWh] the console has queued for the next slot. A market with
        no queued command shows the exchange's ``next_fee_ct_per_kwh`` (the fee it accepted for the
        next slot), so the column always says what the next slot will charge.
    modes : market uuid → fee mode ("manual" or the tariff model's name).
    limits_kwh : market uuid → one import/export limit per slot [kWh]; a ``limit_kwh`` in the
        history row is used when the market is not in it.
    flow_limits : market uuid → :class:`app.operator.alerts.Limits` (import and export apart);
        they win over ``limits_kwh``. Drive the over-limit marking and the "/ limit" in the cells.
    alerts : market uuid → its open alerts (firing first), for the Alert column.

    NaN becomes ``None`` (JSON has no NaN; the grid shows "–").
    """
    limits = limits_kwh or {}
    flows = flow_limits or {}
    rows = []
    for row in latest:
        uuid = row["market_uuid"]
        queued_fee = queued.get(uuid)
        one = clean_number(limits.get(uuid, row.get("limit_kwh")))
        both = flows.get(uuid)
        state, short, detail = alert_summary((alerts or {}).get(uuid, ()))
        rows.append(
            {
                "id": uuid,
                "market": row.get("name"),
                "level": row.get("level"),
                "parent_id": row.get("parent_uuid"),
                "slot": row.get("slot"),
                "min_ct_per_kwh": clean_number(row.get("min_trade_rate")),
                "median_ct_per_kwh": clean_number(row.get("median_trade_rate")),
                "avg_ct_per_kwh": clean_number(row.get("avg_trade_rate")),
                "max_ct_per_kwh": clean_number(row.get("max_trade_rate")),
                "traded_kwh": clean_number(row.get("total_traded_energy_kWh")),
                "import_kwh": clean_number(row.get("import_kwh")),
                "export_kwh": clean_number(row.get("export_kwh")),
                "self_sufficiency_pct": clean_number(row.get("self_sufficiency")),
                "fee_revenue_slot_ct": clean_number(row.get("market_fee_revenue")),
                "fee_revenue_cumulative_ct": clean_number(cumulative_revenue.get(uuid)),
                "fee_in_force_ct_per_kwh": clean_number(row.get("fee_ct_per_kwh")),
                "fee_queued_ct_per_kwh": clean_number(
                    queued_fee if queued_fee is not None else row.get("next_fee_ct_per_kwh")
                ),
                "mode": modes.get(uuid) or "scenario fee",
                "limit_kwh": one,
                "import_limit_kwh": clean_number(both.import_kwh) if both else one,
                "export_limit_kwh": clean_number(both.export_kwh) if both else one,
                "alert": short,
                "alert_state": state,
                "alert_detail": detail,
            }
        )
    return rows


# narrow columns with wrapped two-line headers: all 16 columns fit 1366 px without scrolling
DEFAULT_COL_DEF = {
    "sortable": True,
    "filter": True,
    "resizable": True,
    "minWidth": 72,
    "flex": 1,
    "wrapHeaderText": True,
    "autoHeaderHeight": True,
    "suppressHeaderMenuButton": True,
    "suppressHeaderFilterButton": True,  # the filters are in the floating row instead
    "floatingFilter": True,
}
GRID_OPTIONS = {
    "pagination": False,
    "animateRows": False,
    # AG Grid ≥ 32.2 takes an object here ("single" is deprecated): a click selects the row,
    # which highlights the market the cards show; no checkbox column.
    "rowSelection": {"mode": "singleRow", "checkboxes": False, "enableClickSelection": True},
    "domLayout": "autoHeight",
    "tooltipShowDelay": 300,
    # Quartz with 8 px instead of 15 px on each side of a cell: 16 columns then fit 1366 px without
    # cutting values or breaking headers inside words
    "theme": {"function": f"themeQuartz.withParams({{cellHorizontalPadding: {CELL_PADDING_PX}}})"},
    # no rows yet (a fresh store): say what will appear and when, not "No Rows To Show"
    "localeText": {
        "noRowsToShow": (
            "No slot has closed yet: each market's row appears when the exchange closes its first "
            "slot (within one slot length)."
        )
    },
}


def overview_grid(rows: list[dict], grid_id: str | dict) -> dag.AgGrid:
    """The overview ``AgGrid`` with ``rows`` from :func:`overview_rows`.

    For navigation, listen to ``Input(grid_id, "cellClicked")``: its ``rowId`` is the market uuid
    (from ``getRowId``). ``selectedRows`` holds the clicked row's data as well.
    """
    return dag.AgGrid(
        id=grid_id,
        rowData=rows,
        columnDefs=overview_column_groups(),
        getRowId="params.data.id",
        defaultColDef=dict(DEFAULT_COL_DEF),
        dashGridOptions=dict(GRID_OPTIONS),
        columnSize="responsiveSizeToFit",
    )
