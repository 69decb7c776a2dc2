"""The what-if page's results: the KPI grid, the overlay charts, the duration curve, progress bars.

Pure builders from an ``app.whatif.WhatIfResult`` (or its KPI rows): the page's callbacks call
them and return what they give. Candidates are columns ``c0``..``c5`` of the grid (names can hold
dots and spaces, which AG Grid would read as paths); a row's best cells carry the CSS class
``whatif-best`` and a green background. Every candidate has one colour in every chart, the zero-fee
baseline is grey and dotted.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence

import dash_ag_grid as dag
import dash_mantine_components as dmc
import numpy as np
import plotly.graph_objects as go
from dash import html

from app import slots
from app.console.components.formatting import (
    MISSING,
    PALETTE,
    UNIT_ENERGY,
    UNIT_PRICE,
    chart_layout,
    slot_axis,
    with_unit,
)
from app.whatif.runs import WhatIfResult, best_of

CANDIDATE_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
BASELINE_COLOUR = PALETTE["muted"]
BEST_CLASS = "whatif-best"
BEST_BACKGROUND = "#C6EFCE"


def colour(index: int) -> str:
    return CANDIDATE_COLOURS[index % len(CANDIDATE_COLOURS)]


# -- the KPI grid -------------------------------------------------------------------------------


def grid_rows(rows: Sequence[Mapping], candidates: Sequence[str]) -> list[dict]:
    """The KPI rows flattened for AG Grid: candidate values as ``c0``.. and ``best_cols``; the
    best among ``candidates`` only (a zero-fee candidate left out of them cannot win a tie with
    the reference it repeats). ``first`` marks a market's first row (its name shows there only)."""

    out = []
    previous = None
    for row in rows:
        flat = {k: row[k] for k in ("id", "market", "label", "unit", "better", "baseline")}
        values = {name: row["values"].get(name) for name in candidates}
        for k, name in enumerate(candidates):
            flat[f"c{k}"] = values[name]
        best = best_of(values, "min" if row["better"] == "lower" else "max") if values else []
        flat["best"] = ", ".join(best)
        flat["best_cols"] = [f"c{k}" for k, name in enumerate(candidates) if name in best]
        flat["first"] = row["market"] != previous
        previous = row["market"]
        out.append(flat)
    return out


def kpi_grid(
    rows: Sequence[Mapping], candidates: Sequence[str], grid_id: str, kinds: Sequence[str] | None = None
) -> dag.AgGrid:
    """The KPI table: one row per market and KPI, the zero-fee reference, then each candidate.

    ``kinds`` (a model kind per candidate): a "zero" candidate is the reference again and is left
    out. Compact: the market's name on its first row only, the table scrolls inside a fixed height.
    """
    if kinds is not None:
        candidates = [name for name, kind in zip(candidates, kinds, strict=True) if kind != "zero"]
    # counts (slots over limit) without decimals, everything else with two; "–" for none
    decimals = {
        "function": f"params.value == null ? '{MISSING}' : "
        "d3.format(params.data.unit === 'slots' ? '.0f' : '.2f')(params.value)"
    }
    columns: list[dict] = [
        {
            "field": "market",
            "headerName": "Market",
            "pinned": "left",
            "width": 150,
            # grouped by market: its name on its first row only
            "valueFormatter": {"function": "params.data.first ? params.value : ''"},
        },
        {"field": "label", "headerName": "KPI", "pinned": "left", "width": 250},
        {"field": "unit", "headerName": "Unit", "width": 90},
        {"field": "better", "headerName": "Better", "width": 85},
        {
            "field": "baseline",
            "headerName": "Zero fee (reference)",
            "type": "rightAligned",
            "valueFormatter": decimals,
            "cellStyle": {"color": BASELINE_COLOUR},
            "width": 150,
        },
    ]
    for k, name in enumerate(candidates):
        best = f"params.data.best_cols.includes('c{k}')"
        columns.append(
            {
                "field": f"c{k}",
                "headerName": name,
                "type": "rightAligned",
                "valueFormatter": decimals,
                "cellClassRules": {BEST_CLASS: best},
                "cellStyle": {
                    "styleConditions": [
                        {"condition": best, "style": {"backgroundColor": BEST_BACKGROUND, "fontWeight": 600}}
                    ]
                },
                "headerStyle": {"color": colour(k)},
                "width": 140,
            }
        )
    columns.append({"field": "best", "headerName": "Best", "width": 160})
    return dag.AgGrid(
        id=grid_id,
        rowData=grid_rows(rows, candidates),
        columnDefs=columns,
        getRowId="params.data.id",
        defaultColDef={"sortable": False, "resizable": True, "filter": True},
        dashGridOptions={
            "suppressCellFocus": True,
            "rowHeight": 30,
            "rowClassRules": {"whatif-market-start": "params.data.first"},
        },
        style={"width": "100%", "height": f"{min(len(rows), 12) * 30 + 60}px"},
    )


# -- charts -------------------------------------------------------------------------------------


def _x(labels: Sequence[str]) -> list[dt.datetime]:
    return [slots.parse(label) for label in labels]


def _values(array: np.ndarray, sign: float = 1.0) -> list[float | None]:
    return [None if not math.isfinite(v) else 0.0 + sign * float(v) for v in np.asarray(array, dtype=float)]


def _layout(
    fig: go.Figure, title: str, y_title: str, x_title: str, height_px: int, date_axis: bool = True
) -> go.Figure:
    chart_layout(
        fig,
        y_title=y_title,
        legend={"yanchor": "bottom", "y": 1.02},
        xaxis=slot_axis(x_title) if date_axis else {"title": {"text": x_title}},
        height_px=height_px,
        top_px=64,
        uirevision="whatif",
        title={"text": title, "x": 0, "xanchor": "left", "y": 0.98, "yanchor": "top", "font": {"size": 13}},
    )
    return fig


def flows_figure(result: WhatIfResult, market_uuid: str, height_px: int = 300) -> go.Figure:
    """Import (+, solid) and export (−, dashed) per slot of every candidate in one market."""
    x = _x(result.slot_labels)
    fig = go.Figure()
    for k, name in enumerate(result.candidates):
        for series, sign, dash, label in (
            ("import_kwh", 1.0, "solid", "import"),
            ("export_kwh", -1.0, "dot", "export"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=_values(result.series(name, series, market_uuid), sign),
                    name=f"{name}: {label}",
                    legendgroup=name,
                    mode="lines",
                    line={"color": colour(k), "dash": dash, "width": 1.5},
                    hovertemplate=f"%{{y:.2f}} {UNIT_ENERGY}",
                )
            )
    return _layout(
        fig,
        "Import and export per slot",
        with_unit("Import (+) / export (−)", UNIT_ENERGY),
        "Slot start [simulated time]",
        height_px,
    )


def fee_figure(result: WhatIfResult, market_uuid: str, height_px: int = 260) -> go.Figure:
    """The fee in force per slot of every candidate in one market (steps)."""
    x = _x(result.slot_labels)
    fig = go.Figure(
        [
            go.Scatter(
                x=x,
                y=_values(result.series(name, "fee_ct_per_kwh", market_uuid)),
                name=name,
                mode="lines",
                line={"color": colour(k), "shape": "hv", "width": 1.5},
                hovertemplate=f"%{{y:.2f}} {UNIT_PRICE}",
            )
            for k, name in enumerate(result.candidates)
        ]
    )
    return _layout(
        fig, "Fee in force", with_unit("Grid fee", UNIT_PRICE), "Slot start [simulated time]", height_px
    )


def duration_points(import_kwh: np.ndarray, slot_minutes: float) -> tuple[list[float], list[float]]:
    """(hours, import) of a load-duration curve: the slots' imports sorted from the highest down.

    Hour ``h`` of the curve reads "for ``h`` hours the import was at least this"; NaN slots are left
    out.
    """
    values = np.asarray(import_kwh, dtype=float)
    values = np.sort(values[np.isfinite(values)])[::-1]
    hours = (np.arange(1, len(values) + 1) * slot_minutes / 60).tolist()
    return hours, values.tolist()


def duration_figure(
    result: WhatIfResult, market_uuid: str, slot_minutes: float = 15, height_px: int = 300
) -> go.Figure:
    """Duration curve of import: every candidate, the zero-fee baseline and the import limit."""
    fig = go.Figure()
    j = result.baseline.market_uuids.index(market_uuid)
    hours, base = duration_points(result.baseline.series["import_kwh"][:, j], slot_minutes)
    fig.add_trace(
        go.Scatter(
            x=hours,
            y=base,
            name="zero fee (reference)",
            mode="lines",
            line={"color": BASELINE_COLOUR, "dash": "dot", "width": 1.5},
            hovertemplate=f"%{{y:.2f}} {UNIT_ENERGY}",
        )
    )
    for k, name in enumerate(result.candidates):
        hours, values = duration_points(result.series(name, "import_kwh", market_uuid), slot_minutes)
        fig.add_trace(
            go.Scatter(
                x=hours,
                y=values,
                name=name,
                mode="lines",
                line={"color": colour(k), "width": 1.8},
                hovertemplate=f"%{{y:.2f}} {UNIT_ENERGY}",
            )
        )
    limit = result.limits_kwh[market_uuid][0]
    fig.add_hline(
        y=limit,
        line={"color": PALETTE["over_limit"], "dash": "dash", "width": 1},
        annotation_text=f"limit {limit:.1f} {UNIT_ENERGY}",
        annotation_position="top right",
    )
    return _layout(
        fig,
        "Duration curve of import (slots sorted from the highest)",
        with_unit("Import per slot", UNIT_ENERGY),
        "Hours at or above [h]",
        height_px,
        date_axis=False,
    )


# -- progress -----------------------------------------------------------------------------------


def progress_bars(shares: Mapping[str, float], names: Sequence[str] | None = None) -> dmc.Stack:
    """One labelled bar per run (``{run name: share done 0..1}``), in ``names`` order.

    One component (a list would be read by a background callback's ``set_progress`` as the
    values of several progress outputs).
    """
    out = []
    for k, name in enumerate(names or list(shares)):
        pct = round(100 * float(shares.get(name, 0.0)))
        out.append(
            dmc.Group(
                [
                    dmc.Text(name, size="xs", w=180, truncate="end"),
                    dmc.Progress(
                        value=pct,
                        color=BASELINE_COLOUR if k == 0 else colour(k - 1),
                        size="lg",
                        style={"flex": 1},
                        className="whatif-bar",
                    ),
                    html.Span(
                        f"{pct} %", className="whatif-pct", style={"width": "48px", "fontSize": "12px"}
                    ),
                ],
                gap="xs",
                wrap="nowrap",
            )
        )
    return dmc.Stack(out, gap=4)
