"""A market's figures (traces, units, gaps) and the Patch objects that append slots."""

from __future__ import annotations

import datetime as dt
import json
import math

import plotly.graph_objects as go
import plotly.io as pio
import pytest
from component_rows import MARKET, day, history_row
from dash import Patch
from plotly.io.json import to_json_plotly

from app.console.components.formatting import PALETTE
from app.console.components.market_charts import (
    FIGURE_TRACES,
    append_patches,
    cumulative_revenue_ct,
    infer_slot_minutes,
    market_figures,
    patch_extends,
    reveal_patch,
    violation_shapes,
)
from app.operator.store import history_row as store_history_row

UNIT_IN_BRACKETS = r"\[[^\]]+\]$"


def extends_xy(x: list, *ys: list) -> dict[tuple[int, str], list]:
    """``patch_extends`` of a patch that appends ``x`` and ``ys[k]`` to trace k's x and y."""
    extends = {}
    for k, y in enumerate(ys):
        extends[k, "x"], extends[k, "y"] = x, y
    return extends


def _json(obj) -> dict:
    """What the browser receives: Dash serialises outputs with plotly's encoder."""
    return json.loads(to_json_plotly(obj))


def test_mch001_trace_names_and_order():
    figures = market_figures(day(8))
    assert list(figures) == list(FIGURE_TRACES)
    for name, fig in figures.items():
        assert isinstance(fig, go.Figure)
        assert tuple(t.name for t in fig.data) == FIGURE_TRACES[name], name
    price = figures["price"]
    assert [t.type for t in price.data] == ["bar", "scatter", "scatter", "scatter"]


def test_mch002_every_axis_titled_with_unit():
    figures = market_figures(day(4))
    for name, fig in figures.items():
        layout = fig.layout
        assert layout.xaxis.title.text == "Slot start [simulated time]", name
        for axis in (layout.xaxis, layout.yaxis):
            assert axis.title.text.endswith("]") and "[" in axis.title.text, (name, axis.title.text)
    titles = {name: fig.layout.yaxis.title.text for name, fig in figures.items()}
    assert titles == {
        "price": "Trade rate [ct/kWh]",
        "volume": "Traded energy [kWh]",
        "flows": "Import (+) / export (−) [kWh]",
        "revenue": "Fee revenue per slot [ct]",
        "fee": "Grid fee [ct/kWh]",
        "self_sufficiency": "Self-sufficiency [%]",
    }
    assert figures["revenue"].layout.yaxis2.title.text == "Cumulative fee revenue [ct]"
    assert figures["revenue"].data[1].yaxis == "y2"
    assert figures["revenue"].layout.yaxis2.overlaying == "y"


def test_mch003_datetime_x_compact_layout_and_range_buttons():
    rows = day(3, start="2026-06-22T13:00")
    for fig in market_figures(rows).values():
        assert list(fig.data[0].x) == [dt.datetime(2026, 6, 22, 13, m) for m in (0, 15, 30)]
        layout = fig.layout
        assert layout.xaxis.type == "date"
        assert layout.uirevision == MARKET  # zoom survives updates of the same market
        assert layout.template == pio.templates["plotly_white"]
        # the legend at the figure's top (container coordinates), the buttons above the plot
        assert layout.legend.orientation == "h" and layout.legend.yref == "container"
        assert layout.legend.y == 1 and layout.legend.yanchor == "top"
        assert layout.margin.t <= 80 and layout.margin.l <= 80
        buttons = layout.xaxis.rangeselector.buttons
        assert [(b.label, b.step, b.count) for b in buttons] == [
            ("6 h", "hour", 6),
            ("day", "day", 1),
            ("all", "all", None),
        ]
    assert market_figures(rows, uirevision="pinned")["fee"].layout.uirevision == "pinned"


def test_mch004_no_price_where_nothing_traded():
    rows = day(5, no_trade=(1, 2))
    # an exchange that reports placeholder rates with zero traded energy: still no price
    rows[4] |= {"total_traded_energy_kWh": 0.0, "min_trade_rate": 0.0, "max_trade_rate": 0.0}
    band, median, avg, fee = market_figures(rows)["price"].data
    assert list(band.y) == [5.0, None, None, 5.0, None]  # max − min
    assert list(band.base) == [10.0, None, None, 13.0, None]
    assert [list(c) for c in band.customdata] == [
        [10.0, 15.0],
        [None, None],
        [None, None],
        [13.0, 18.0],
        [None, None],
    ]
    assert list(median.y) == [12.0, None, None, 15.0, None]
    assert list(avg.y) == [12.5, None, None, 15.5, None]
    assert list(fee.y) == [2.0, 2.0, 2.0, 2.0, 3.0]  # the fee is in force whether or not anyone trades
    assert median.connectgaps is False and avg.connectgaps is False
    assert "lines" in median.mode and "markers" in median.mode  # a slot between gaps stays visible
    assert list(market_figures(rows)["self_sufficiency"].data[0].y) == [40.0, None, None, 40.0, 40.0]


def test_mch005_nan_is_a_gap_too():
    rows = day(2)
    rows[1] |= {"median_trade_rate": float("nan"), "self_sufficiency": float("nan")}
    figures = market_figures(rows)
    assert list(figures["price"].data[1].y) == [12.0, None]
    assert _json(figures["self_sufficiency"])["data"][0]["y"] == [40.0, None]


def test_mch006_flows_import_positive_export_negative_in_palette_colours():
    flows = market_figures(day(2))["flows"]
    imp, exp = flows.data
    assert list(imp.y) == [3.0, 4.0]
    assert list(exp.y) == [-1.0, -2.0]
    assert list(exp.customdata) == [1.0, 2.0]  # hover shows the export as a positive amount
    assert imp.marker.color == PALETTE["import"] and exp.marker.color == PALETTE["export"]
    assert flows.layout.barmode == "relative"
    (zero_export,) = market_figures([history_row("2026-06-22T00:00", export_kwh=0.0)])["flows"].data[1].y
    assert math.copysign(1.0, zero_export) == 1.0  # 0.0, not -0.0 (which would hover as "-0.00")


def test_mch007_limit_lines_are_shapes_not_traces():
    flows = market_figures(day(2), limit_kwh=5.0)["flows"]
    assert len(flows.data) == 2
    assert sorted(s.y0 for s in flows.layout.shapes) == [-5.0, 5.0]
    assert {s.line.color for s in flows.layout.shapes} == {PALETTE["over_limit"]}


def test_mch008_revenue_bars_and_cumulative_from_previous():
    rows = day(4)  # revenue 0, 1, 2, 3 ct
    rows[2]["market_fee_revenue"] = None
    per_slot, cumulative = market_figures(rows, previous_cumulative_ct=100.0)["revenue"].data
    assert per_slot.type == "bar" and list(per_slot.y) == [0.0, 1.0, None, 3.0]
    assert list(cumulative.y) == [100.0, 101.0, 101.0, 104.0]
    assert cumulative_revenue_ct(rows, 100.0) == [100.0, 101.0, 101.0, 104.0]
    assert per_slot.marker.color == PALETTE["revenue"]


def test_mch009_fee_steps_in_force_and_queued():
    in_force, queued = market_figures(day(6))["fee"].data
    assert in_force.line.shape == "hv" and queued.line.shape == "hv"
    assert list(in_force.y) == [2.0, 2.0, 2.0, 2.0, 3.0, 3.0]
    assert list(queued.y) == [2.0, 2.0, 2.0, 3.0, 3.0, 3.0]
    assert queued.line.dash == "dash"
    assert in_force.line.color == PALETTE["fee"]


def test_mch010_bar_width_is_the_slot():
    assert infer_slot_minutes(day(3, minutes=60)) == 60
    assert infer_slot_minutes(day(1)) == 15
    figures = market_figures(day(3, minutes=60))
    assert figures["price"].data[0].width == 3_600_000  # ms: band covers the whole slot
    assert market_figures(day(1), slot_minutes=60)["volume"].data[0].width == pytest.approx(0.8 * 3_600_000)


def test_mch011_arrays_are_json_lists_even_when_empty():
    """Patch Extend needs every array the patches touch as a JSON list in the figure (plotly ≥ 6
    writes numpy arrays as base64 objects, which cannot be extended)."""
    for rows in ([], day(3)):
        for name, fig in market_figures(rows).items():
            for index, arrays in enumerate(_extends(append_patches([name], day(1))[name])):
                trace = _json(fig)["data"][index]
                assert isinstance(trace[arrays[0]], list), (name, index, arrays)


def _extends(patch: Patch) -> list[list[str]]:
    """Per trace index, the attributes a patch extends."""
    out: dict[int, list[str]] = {}
    for index, attribute in patch_extends(patch):
        out.setdefault(index, []).append(attribute)
    return [out[i] for i in sorted(out)]


def test_mch012_patch_operations_carry_x_and_y():
    new = day(6)[4:]  # 01:00 and 01:15
    patches = append_patches(FIGURE_TRACES, new, previous_cumulative_ct=6.0)
    assert set(patches) == set(FIGURE_TRACES)
    x = [dt.datetime(2026, 6, 22, 1, 0), dt.datetime(2026, 6, 22, 1, 15)]

    ops = patches["volume"].to_plotly_json()
    assert ops["__dash_patch_update"] == "__dash_patch_update"
    assert ops["operations"] == [
        {"operation": "Extend", "location": ["data", 0, "x"], "params": {"value": x}},
        {"operation": "Extend", "location": ["data", 0, "y"], "params": {"value": [4.0, 4.0]}},
    ]
    price = extends_xy(x, [5.0, 5.0], [16.0, 17.0], [16.5, 17.5], [3.0, 3.0])
    price |= {(0, "base"): [14.0, 15.0], (0, "customdata"): [[14.0, 19.0], [15.0, 20.0]]}
    assert patch_extends(patches["price"]) == price
    assert patch_extends(patches["flows"]) == extends_xy(x, [7.0, 8.0], [-5.0, -6.0]) | {
        (1, "customdata"): [5.0, 6.0],
    }
    # revenue 4 and 5 ct on top of the 6 ct of slots 0..3
    assert patch_extends(patches["revenue"]) == extends_xy(x, [4.0, 5.0], [10.0, 15.0])
    assert patch_extends(patches["fee"]) == extends_xy(x, [3.0, 3.0], [3.0, 3.0])
    assert patch_extends(patches["self_sufficiency"]) == extends_xy(x, [40.0, 40.0])
    # on the wire: datetimes as plotly writes them in figures
    wire = _json(patches["volume"])["operations"][0]["params"]["value"]
    assert wire == ["2026-06-22T01:00:00", "2026-06-22T01:15:00"]


def _apply(figure_json: dict, patch_json: dict) -> dict:
    """What Dash's renderer does with Extend operations."""
    for op in patch_json["operations"]:
        assert op["operation"] == "Extend"
        target = figure_json
        for key in op["location"]:
            target = target[key]
        target.extend(op["params"]["value"])
    return figure_json


@pytest.mark.parametrize("split", [0, 1, 5])
def test_mch013_patches_continue_the_figures_exactly(split):
    rows = day(8, no_trade=(2, 6))
    whole = market_figures(rows, slot_minutes=15)
    start = market_figures(rows[:split], slot_minutes=15, uirevision=MARKET)
    previous = cumulative_revenue_ct(rows[:split])[-1] if split else 0.0
    patches = append_patches(whole, rows[split:], previous_cumulative_ct=previous)
    for name in FIGURE_TRACES:
        patched = _apply(_json(start[name]), _json(patches[name]))
        assert patched["data"] == _json(whole[name])["data"], name


def test_mch014_subset_empty_and_unknown():
    patches = append_patches(["price", "fee"], day(1))
    assert set(patches) == {"price", "fee"}
    assert append_patches(["price"], [])["price"].to_plotly_json()["operations"] == []
    with pytest.raises(ValueError, match="unknown figure"):
        append_patches(["prices"], day(1))


def test_mch015_rows_as_the_operator_store_builds_them():
    """Rows straight from ``app.operator.store.history_row`` (what the agent stores) plot."""
    market = {
        "area_uuid": "u-1",
        "name": "House 1",
        "level": 3,
        "parent_uuid": "u-c",
        "last_market_stats": {
            "min_trade_rate": None,
            "median_trade_rate": None,
            "avg_trade_rate": None,
            "max_trade_rate": None,
            "total_traded_energy_kWh": 0.0,
            "current_market_fee": 1.5,
            "next_market_fee": 2.0,
            "market_fee_revenue": 0.0,
        },
        "area_throughput": {"import": 1.2, "export": 0.0},
        "self_sufficiency": None,
    }
    rows = [store_history_row(market, "2026-06-22T00:00")]
    figures = market_figures(rows)
    assert figures["price"].layout.uirevision == "u-1"
    assert list(figures["price"].data[1].y) == [None]
    assert list(figures["fee"].data[1].y) == [2.0]
    assert list(figures["flows"].data[0].y) == [1.2]


def test_mch016_import_and_export_limits_apart_and_violations_shaded():
    rows = day(2)  # imports 3 and 4 kWh
    limit = 3.5
    flows = market_figures(rows, limits=(limit, None))["flows"]
    lines = [s for s in flows.layout.shapes if s.type == "line"]
    assert [s.y0 for s in lines] == [limit]  # no export line without an export limit
    shaded = [s for s in flows.layout.shapes if s.type == "rect"]
    over = [r for r in rows if r["import_kwh"] > limit]
    assert len(shaded) == len(over) == 1
    assert violation_shapes(over[:1], (limit, None), 15 * 60_000)[0]["x0"] == dt.datetime.fromisoformat(
        over[0]["slot"]
    )
    assert violation_shapes(rows, None, 15 * 60_000) == []


def test_mch017_empty_store_says_what_comes_instead_of_a_made_up_axis():
    figures = market_figures([])
    for fig in figures.values():
        assert fig.layout.xaxis.visible is False
        assert "no slot yet" in fig.layout.annotations[0].text
    patch = Patch()
    reveal_patch(patch, "flows")
    assert len(patch._operations) == 3  # x and y axes shown, the note dropped
