"""Per-market charts: plotly figures from history rows, and the ``Patch`` objects that append slots.

A market's card shows six figures, built by :func:`market_figures` from the market's history rows
(dicts as ``app.operator.store.OperatorStore.history`` returns them, oldest first). New slots are
appended with :func:`append_patches` instead of rebuilding the figures, so the browser keeps zoom,
legend state and range-selector choices (together with ``layout.uirevision``) and only the new
points travel.

Both functions take their per-trace arrays from one private function, ``_trace_columns``, in the
order of :data:`FIGURE_TRACES`; that shared source is what keeps the patch indices in step with the
traces. Trace order (index in ``figure.data``) per figure:

===================== ===========================================================================
figure                traces
===================== ===========================================================================
``price``             0 min–max band (bars from min to max; arrays ``x``, ``y`` = max − min,
                      ``base`` = min, ``customdata`` = [min, max]), 1 median, 2 average,
                      3 fee in force — all [ct/kWh]
``volume``            0 traded energy [kWh]
``flows``             0 import [kWh] (positive), 1 export [kWh] (``y`` negative, ``customdata``
                      the positive amount for the hover)
``revenue``           0 fee revenue per slot [ct] (bars), 1 cumulative fee revenue [ct] (``y2``)
``fee``               0 fee in force, 1 fee queued for the next slot — [ct/kWh], steps (``hv``)
``self_sufficiency``  0 self-sufficiency [%]
===================== ===========================================================================

Slots without trades have no price: every price series (band, median, average) is ``None`` there,
so plotly leaves a gap. The band is drawn as one floating bar per slot rather than as a
``fill="tonexty"`` area, because plotly.js does not honour gaps in filled areas: the fill is drawn
across ``None`` (plotly/plotly.js#2736, plotly/plotly.py#5105). Bars of a full slot width with no
gap between them look like a stepped band and leave no-trade slots empty.

All data arrays are plain Python lists (never numpy arrays): plotly ≥ 6 serialises numpy arrays as
base64 typed arrays (``{"dtype": ..., "bdata": ...}``), which a ``Patch`` ``Extend`` cannot extend.
x values are naive ``datetime`` objects (slot starts, simulated time); Dash serialises them in
patches the same way plotly does in figures ("2026-06-22T13:00:00").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import plotly.graph_objects as go
from dash import Patch

from app.console.components.formatting import (
    PALETTE,
    chart_layout,
    clean_number,
    slot_axis,
    slot_label_to_datetime,
    with_unit,
)
from app.exchange.stat_table import STAT


def _titled(key: str, label: str | None = None) -> str:
    """``label`` (default: the statistic's own) with the unit of the slot statistic ``key``."""
    stat = STAT[key]
    return with_unit(stat.label if label is None else label, stat.unit)


_REVENUE = STAT["market_fee_revenue"].label  # "Fee revenue"

FIGURE_TRACES: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "price": ("Min–max", "Median", "Average", STAT["fee_ct_per_kwh"].label),
        "volume": ("Traded",),
        "flows": (STAT["import_kwh"].label, STAT["export_kwh"].label),
        "revenue": (f"{_REVENUE} per slot", f"Cumulative {_REVENUE.lower()}"),
        "fee": ("In force", "Queued"),
        "self_sufficiency": (STAT["self_sufficiency"].label,),
    }
)
"""Figure name → legend names of its traces, in ``figure.data`` order (the patch indices)."""

# the axes' titles: the statistics' labels and units (app.exchange.stat_table); a figure of
# several statistics names what they share
X_TITLE = with_unit("Slot start", "simulated time")
Y_TITLES: MappingProxyType[str, str] = MappingProxyType(
    {
        "price": _titled("avg_trade_rate", "Trade rate"),
        "volume": _titled("total_traded_energy_kWh"),
        "flows": _titled("import_kwh", "Import (+) / export (−)"),
        "revenue": _titled("market_fee_revenue", f"{_REVENUE} per slot"),
        "fee": _titled("fee_ct_per_kwh", "Grid fee"),
        "self_sufficiency": _titled("self_sufficiency"),
    }
)
Y2_TITLE_REVENUE = _titled("market_fee_revenue", f"Cumulative {_REVENUE.lower()}")

DEFAULT_SLOT_MINUTES = 15
RANGE_BUTTONS = (
    {"count": 6, "label": "6 h", "step": "hour", "stepmode": "backward"},
    {"count": 1, "label": "day", "step": "day", "stepmode": "backward"},
    {"label": "all", "step": "all"},
)

_MARKER = {"size": 4}


# -- data ------------------------------------------------------------------------------------------


def cumulative_revenue_ct(rows: Sequence[Mapping], previous_cumulative_ct: float = 0.0) -> list[float]:
    """Running total of ``market_fee_revenue`` [ct] over ``rows``, continuing ``previous_cumulative_ct``.

    A slot without revenue (``None``) adds nothing, so the cumulative line never breaks. The last
    value is what the next :func:`append_patches` call takes as ``previous_cumulative_ct``.
    """
    total = float(previous_cumulative_ct)
    out = []
    for row in rows:
        total += clean_number(row.get("market_fee_revenue")) or 0.0
        out.append(total)
    return out


def _prices(row: Mapping) -> tuple[float | None, float | None, float | None, float | None]:
    """(min, median, avg, max) [ct/kWh] of a slot, all ``None`` when nothing was traded.

    A slot counts as "no trade" when the exchange says so with ``None`` rates, and also when it
    reports zero traded energy (then any rates it sends are placeholders, not prices).
    """
    traded = clean_number(row.get("total_traded_energy_kWh"))
    if traded is not None and traded <= 0:
        return None, None, None, None
    return (
        clean_number(row.get("min_trade_rate")),
        clean_number(row.get("median_trade_rate")),
        clean_number(row.get("avg_trade_rate")),
        clean_number(row.get("max_trade_rate")),
    )


def _negated(value: float | None) -> float | None:
    return None if value is None else 0.0 - value  # 0.0 - 0.0 is 0.0, where -0.0 would hover "-0.00"


def _trace_columns(
    figure: str, rows: Sequence[Mapping], previous_cumulative_ct: float = 0.0
) -> list[dict[str, list]]:
    """The data arrays of each trace of ``figure`` for ``rows``, in :data:`FIGURE_TRACES` order.

    Each entry maps a trace attribute (``x``, ``y``; ``base`` and ``customdata`` for the band,
    ``customdata`` for export) to a list with one value per row. The single source for both
    building and appending.
    """
    x = [slot_label_to_datetime(row["slot"]) for row in rows]
    if figure == "price":
        prices = [_prices(row) for row in rows]
        band_y, band_base, band_custom = [], [], []
        for lo, _, _, hi in prices:
            both = lo is not None and hi is not None
            band_y.append(hi - lo if both else None)  # type: ignore[operator]
            band_base.append(lo if both else None)
            band_custom.append([lo, hi] if both else [None, None])
        return [
            {"x": x, "y": band_y, "base": band_base, "customdata": band_custom},
            {"x": list(x), "y": [p[1] for p in prices]},
            {"x": list(x), "y": [p[2] for p in prices]},
            {"x": list(x), "y": [clean_number(row.get("fee_ct_per_kwh")) for row in rows]},
        ]
    if figure == "volume":
        return [{"x": x, "y": [clean_number(row.get("total_traded_energy_kWh")) for row in rows]}]
    if figure == "flows":
        exports = [clean_number(row.get("export_kwh")) for row in rows]
        return [
            {"x": x, "y": [clean_number(row.get("import_kwh")) for row in rows]},
            {"x": list(x), "y": [_negated(value) for value in exports], "customdata": exports},
        ]
    if figure == "revenue":
        return [
            {"x": x, "y": [clean_number(row.get("market_fee_revenue")) for row in rows]},
            {"x": list(x), "y": cumulative_revenue_ct(rows, previous_cumulative_ct)},
        ]
    if figure == "fee":
        return [
            {"x": x, "y": [clean_number(row.get("fee_ct_per_kwh")) for row in rows]},
            {"x": list(x), "y": [clean_number(row.get("next_fee_ct_per_kwh")) for row in rows]},
        ]
    if figure == "self_sufficiency":
        return [{"x": x, "y": [clean_number(row.get("self_sufficiency")) for row in rows]}]
    raise ValueError(f"unknown figure {figure!r}; known: {', '.join(FIGURE_TRACES)}")


def infer_slot_minutes(rows: Sequence[Mapping], default: float = DEFAULT_SLOT_MINUTES) -> float:
    """Slot length [min] as the smallest step between consecutive slot labels, else ``default``."""
    starts = sorted({slot_label_to_datetime(row["slot"]) for row in rows})
    steps = [(b - a).total_seconds() / 60 for a, b in zip(starts, starts[1:], strict=False)]
    return min(steps) if steps else float(default)


# -- figures ---------------------------------------------------------------------------------------


LEGEND_ROOM_PX = 74
"""Top margin [px]: two legend rows of 10 px text (about 40 px) over the range buttons (24 px)."""


def _layout(
    fig: go.Figure, figure: str, uirevision: str, height_px: int, *, right_margin_px: int = 16
) -> None:
    """The console's chart look with the legend on top and the range buttons above the plot."""
    chart_layout(
        fig,
        y_title=Y_TITLES[figure],
        # the legend at the very top of the figure (container coordinates: its one or two rows
        # never reach down), the range buttons just above the plot: neither covers the other
        legend={"yref": "container", "yanchor": "top", "y": 1},
        xaxis={
            **slot_axis(X_TITLE),
            "rangeselector": {"buttons": list(RANGE_BUTTONS), "x": 0, "y": 1.02, "yanchor": "bottom"},
        },
        height_px=height_px,
        top_px=LEGEND_ROOM_PX,
        right_px=right_margin_px,
        uirevision=uirevision,
    )


def _hover(key: str, decimals: int = 2) -> str:
    """The hover text of a trace of the slot statistic ``key``: its value and unit."""
    return f"%{{y:.{decimals}f}} {STAT[key].unit}"


def _bar(figure: str, index: int, col: dict[str, list], colour: str, width_ms: float, **extra: Any) -> go.Bar:
    """Trace ``index`` of ``figure`` (named as in :data:`FIGURE_TRACES`): bars of ``width_ms``
    in the palette's ``colour``; ``extra`` goes to ``go.Bar``, a ``marker`` in it joins the colour."""
    marker = {"color": PALETTE[colour], **extra.pop("marker", {})}
    return go.Bar(
        name=FIGURE_TRACES[figure][index], x=col["x"], y=col["y"], width=width_ms, marker=marker, **extra
    )


def _line(
    figure: str,
    index: int,
    col: dict[str, list],
    colour: str,
    hover: str,
    *,
    markers: bool = True,
    **line: Any,
) -> go.Scatter:
    """Trace ``index`` of ``figure``: a line in the palette's ``colour`` (``line``: its width,
    dash, shape) with a gap where a value is ``None``; with ``markers`` a dot per slot, so a slot
    between two gaps stays visible."""
    return go.Scatter(
        name=FIGURE_TRACES[figure][index],
        x=col["x"],
        y=col["y"],
        mode="lines+markers" if markers else "lines",
        marker=_MARKER if markers else None,
        line={"color": PALETTE[colour], **line},
        connectgaps=False,
        hovertemplate=hover,
    )


def _price_figure(cols: list[dict[str, list]], bar_ms: float) -> go.Figure:
    band, median, avg, fee = cols
    return go.Figure(
        [
            _bar(
                "price",
                0,
                band,
                "price",
                bar_ms,
                base=band["base"],
                customdata=band["customdata"],
                marker={"line": {"width": 0}},
                opacity=0.35,
                hovertemplate=f"%{{customdata[0]:.2f}}–%{{customdata[1]:.2f}} {STAT['max_trade_rate'].unit}",
            ),
            _line("price", 1, median, "median", _hover("median_trade_rate"), width=2),
            _line("price", 2, avg, "avg", _hover("avg_trade_rate"), width=1.5, dash="dot"),
            _line("price", 3, fee, "fee", _hover("fee_ct_per_kwh"), markers=False, width=2, shape="hv"),
        ],
        layout={"bargap": 0},
    )


def _volume_figure(cols: list[dict[str, list]], bar_ms: float) -> go.Figure:
    (traded,) = cols
    return go.Figure(
        _bar("volume", 0, traded, "traded", bar_ms, hovertemplate=_hover("total_traded_energy_kWh"))
    )


VIOLATION_FILL = "rgba(214, 39, 40, 0.18)"
"""The shading behind a slot whose import or export was over its limit."""


def violation_shapes(
    rows: Sequence[Mapping], limits: tuple[float | None, float | None] | None, slot_ms: float
) -> list[dict]:
    """A shaded band (plotly ``rect`` shape) behind each slot of ``rows`` over its import or
    export limit [kWh]; what the flows chart shows and what a new slot appends to it."""
    if not limits or (limits[0] is None and limits[1] is None):
        return []
    imp_limit, exp_limit = limits
    shapes = []
    for row in rows:
        imp, exp = row.get("import_kwh"), row.get("export_kwh")
        over = (imp_limit is not None and imp is not None and imp > imp_limit) or (
            exp_limit is not None and exp is not None and exp > exp_limit
        )
        if over:
            start = slot_label_to_datetime(row["slot"])
            shapes.append(
                {
                    "type": "rect",
                    "xref": "x",
                    "yref": "paper",
                    "x0": start,
                    "x1": start + dt.timedelta(milliseconds=slot_ms),
                    "y0": 0,
                    "y1": 1,
                    "fillcolor": VIOLATION_FILL,
                    "line": {"width": 0},
                    "layer": "below",
                    "name": "over the limit",
                }
            )
    return shapes


def add_limit_lines(fig: go.Figure | Patch, limits: tuple[float | None, float | None]) -> None:
    """The (import, export) limits per slot [kWh] as dashed lines on a flows chart, import above
    and export below zero (a ``None`` limit draws no line). Shapes, not traces, so the trace
    order (and the patch indices) stay as documented."""
    for value, y, text in (
        (limits[0], limits[0], "import limit"),
        (limits[1], _negated(limits[1]), "export limit"),
    ):
        if value is None:
            continue
        fig.add_hline(
            y=y,
            line={"color": PALETTE["over_limit"], "dash": "dash", "width": 1},
            annotation_text=text,
            annotation_font_color=PALETTE["over_limit"],
            annotation_position="top left" if y > 0 else "bottom left",
        )


def _flows_figure(
    cols: list[dict[str, list]],
    bar_ms: float,
    limit_kwh: float | None,
    limits: tuple[float | None, float | None] | None = None,
) -> go.Figure:
    imp, exp = cols
    fig = go.Figure(
        [
            _bar("flows", 0, imp, "import", bar_ms, hovertemplate=_hover("import_kwh")),
            _bar(
                "flows",
                1,
                exp,
                "export",
                bar_ms,
                customdata=exp["customdata"],  # the export as a positive amount, for the hover
                hovertemplate=f"%{{customdata:.2f}} {STAT['export_kwh'].unit}",
            ),
        ],
        layout={"barmode": "relative"},
    )
    if limits is None and limit_kwh is not None:
        limits = (limit_kwh, limit_kwh)
    if limits is not None:
        add_limit_lines(fig, limits)
    return fig


def _revenue_figure(cols: list[dict[str, list]], bar_ms: float) -> go.Figure:
    per_slot, cumulative = cols
    fig = go.Figure(
        [
            _bar(
                "revenue",
                0,
                per_slot,
                "revenue",
                bar_ms,
                opacity=0.6,
                hovertemplate=_hover("market_fee_revenue"),
            ),
            go.Scatter(
                name=FIGURE_TRACES["revenue"][1],
                x=cumulative["x"],
                y=cumulative["y"],
                yaxis="y2",
                mode="lines",
                line={"color": PALETTE["revenue"], "width": 2},
                hovertemplate=_hover("market_fee_revenue"),
            ),
        ]
    )
    fig.update_layout(
        yaxis2={
            "title": {"text": Y2_TITLE_REVENUE},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
        },
        yaxis={"rangemode": "tozero"},
    )
    return fig


def _fee_figure(cols: list[dict[str, list]]) -> go.Figure:
    in_force, queued = cols
    return go.Figure(
        [
            _line("fee", 0, in_force, "fee", _hover("fee_ct_per_kwh"), width=2, shape="hv"),
            _line(
                "fee",
                1,
                queued,
                "fee_queued",
                _hover("next_fee_ct_per_kwh"),
                markers=False,
                width=1.5,
                dash="dash",
                shape="hv",
            ),
        ]
    )


def _self_sufficiency_figure(cols: list[dict[str, list]]) -> go.Figure:
    (share,) = cols
    decimals = STAT["self_sufficiency"].decimals
    fig = go.Figure(
        _line("self_sufficiency", 0, share, "self_sufficiency", _hover("self_sufficiency", decimals), width=2)
    )
    fig.update_layout(yaxis={"range": [0, 105], "tickvals": [0, 20, 40, 60, 80, 100]})
    return fig


def market_figures(
    rows: Sequence[Mapping],
    *,
    previous_cumulative_ct: float = 0.0,
    slot_minutes: float | None = None,
    limit_kwh: float | None = None,
    uirevision: str | None = None,
    height_px: int = 260,
    limits: tuple[float | None, float | None] | None = None,
) -> dict[str, go.Figure]:
    """The six figures of one market, keyed as in :data:`FIGURE_TRACES`.

    Parameters
    ----------
    rows : history rows of one market, oldest first (may be empty: the traces then exist with
        empty arrays, ready for :func:`append_patches`).
    previous_cumulative_ct : fee revenue [ct] earned before ``rows[0]``, when ``rows`` is only the
        tail of the history, so the cumulative line starts at the right height.
    slot_minutes : slot length [min] for the bar widths; inferred from ``rows`` when ``None``. Pass
        it when the figure may start with a single slot (one bar's width cannot be inferred).
    limit_kwh : import/export limit per slot [kWh]; drawn as dashed red lines at ±limit in "flows".
    limits : (import, export) limits per slot [kWh], either None; win over ``limit_kwh``. Drawn
        as dashed lines (import up, export down) and every slot over one is shaded red
        (:func:`violation_shapes`, which a new slot's patch appends to).
    uirevision : kept constant while the same market is shown, so zoom and legend clicks survive
        updates; defaults to the market uuid of the rows.
    height_px : figure height [px].
    """
    minutes = slot_minutes if slot_minutes is not None else infer_slot_minutes(rows)
    slot_ms = minutes * 60_000
    revision = uirevision or (str(rows[0].get("market_uuid")) if rows else "market")

    def cols(name: str) -> list[dict[str, list]]:
        return _trace_columns(name, rows, previous_cumulative_ct)

    figures = {
        "price": _price_figure(cols("price"), slot_ms),
        "volume": _volume_figure(cols("volume"), 0.8 * slot_ms),
        "flows": _flows_figure(cols("flows"), 0.8 * slot_ms, limit_kwh, limits),
        "revenue": _revenue_figure(cols("revenue"), 0.8 * slot_ms),
        "fee": _fee_figure(cols("fee")),
        "self_sufficiency": _self_sufficiency_figure(cols("self_sufficiency")),
    }
    for shape in violation_shapes(rows, limits or ((limit_kwh, limit_kwh) if limit_kwh else None), slot_ms):
        figures["flows"].add_shape(**shape)
    for name, fig in figures.items():
        _layout(fig, name, revision, height_px, right_margin_px=72 if name == "revenue" else 16)
        if not rows:  # an empty store: no made-up axis ("Jan 2000 - Oct 2000"), say what comes
            fig.update_xaxes(visible=False)
            fig.update_yaxes(visible=False)
            fig.add_annotation(
                text="no slot yet: the first one shows when it closes",
                showarrow=False,
                xref="paper",
                yref="paper",
                x=0.5,
                y=0.5,
                font={"color": "#5c636a"},
            )
    return figures


# -- live appends ----------------------------------------------------------------------------------


def reveal_patch(patch: Patch, figure: str) -> None:
    """Undo the empty state of :func:`market_figures` in ``patch`` (the first slot arrived): show
    the axes, drop the "no slot yet" note."""
    patch["layout"]["xaxis"]["visible"] = True
    patch["layout"]["yaxis"]["visible"] = True
    if figure == "revenue":
        patch["layout"]["yaxis2"]["visible"] = True
    patch["layout"]["annotations"] = []


def append_patches(
    figures_spec: Iterable[str],
    new_rows: Sequence[Mapping],
    previous_cumulative_ct: float = 0.0,
) -> dict[str, Patch]:
    """One ``Patch`` per figure that appends ``new_rows`` to its traces (``figure.data[i].x`` …).

    Parameters
    ----------
    figures_spec : the figure names to patch, e.g. :data:`FIGURE_TRACES` (all of them), the dict
        :func:`market_figures` returned, or the subset a card shows. Trace indices follow
        :data:`FIGURE_TRACES`, the order :func:`market_figures` builds.
    new_rows : the market's slots not yet in the figures, oldest first.
    previous_cumulative_ct : cumulative fee revenue [ct] of the last slot already plotted, so the
        cumulative line continues from it (see :func:`cumulative_revenue_ct`).

    Each patch records one ``Extend`` operation per trace array, in the order ``x``, ``y``
    (then ``base``, ``customdata`` where the trace has them). With no new rows the patches are empty; a
    callback may return ``dash.no_update`` instead.
    """
    patches: dict[str, Patch] = {}
    for name in figures_spec:
        if name not in FIGURE_TRACES:
            raise ValueError(f"unknown figure {name!r}; known: {', '.join(FIGURE_TRACES)}")
        patch = Patch()
        if new_rows:
            for index, arrays in enumerate(_trace_columns(name, new_rows, previous_cumulative_ct)):
                for attribute, values in arrays.items():
                    patch["data"][index][attribute].extend(values)
        patches[name] = patch
    return patches


def patch_extends(patch: Patch) -> dict[tuple[Any, ...], list]:
    """The ``Extend`` operations of a patch as {(trace index, attribute): values}, for tests and logs.

    Reads ``patch.to_plotly_json()`` (Dash 4.4 records ``{"operation": "Extend", "location":
    ["data", i, attribute], "params": {"value": [...]}}``).
    """
    out: dict[tuple[Any, ...], list] = {}
    for op in patch.to_plotly_json()["operations"]:
        if op["operation"] == "Extend" and op["location"][:1] == ["data"]:
            out[tuple(op["location"][1:])] = list(op["params"]["value"])
    return out
