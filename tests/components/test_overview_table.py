"""The overview grid: column definitions, rows and the AgGrid component."""

from __future__ import annotations

import json
import re

import dash_ag_grid as dag
from component_rows import MARKET, history_row
from plotly.io.json import to_json_plotly

from app.console.components.formatting import PALETTE
from app.console.components.overview_table import (
    CELL_PADDING_PX,
    HIDDEN_IN_OVERVIEW,
    OVER_LIMIT_CLASS,
    OVER_LIMIT_CONDITION,
    alert_summary,
    fixed_decimals_formatter,
    overview_column_groups,
    overview_columns,
    overview_grid,
    overview_rows,
)
from app.operator.alerts import Limits

NUMERIC_HEADERS = {
    "min_ct_per_kwh": "Min price [ct/kWh]",
    "median_ct_per_kwh": "Median price [ct/kWh]",
    "avg_ct_per_kwh": "Avg price [ct/kWh]",
    "max_ct_per_kwh": "Max price [ct/kWh]",
    "traded_kwh": "Traded [kWh]",
    "import_kwh": "Import [kWh]",
    "export_kwh": "Export [kWh]",
    "self_sufficiency_pct": "Self-sufficiency [%]",
    "fee_revenue_slot_ct": "Fee revenue slot [ct]",
    "fee_revenue_cumulative_ct": "Fee revenue cumulative [ct]",
    "fee_in_force_ct_per_kwh": "Fee in force [ct/kWh]",
    "fee_queued_ct_per_kwh": "Fee queued [ct/kWh]",
}


def _by_field() -> dict[str, dict]:
    return {col["field"]: col for col in overview_columns()}


def test_ovt001_columns_in_order_with_units():
    columns = overview_columns()
    fields = [c["field"] for c in columns]
    assert fields == ["market", "alert", "level", "slot", *NUMERIC_HEADERS, "mode"]
    assert len(set(fields)) == len(fields)
    by_field = _by_field()
    for field, header in NUMERIC_HEADERS.items():
        assert by_field[field]["headerName"] == header
        assert re.search(r"\[[^\]]+\]$", header)


def test_ovt002_numeric_columns_right_aligned_fixed_decimals_numeric_filter():
    by_field = _by_field()
    for field in [*NUMERIC_HEADERS, "level"]:
        col = by_field[field]
        assert col["type"] == "rightAligned", field
        assert col["filter"] == "agNumberColumnFilter", field
        assert set(col["valueFormatter"]) == {"function"}, field
    assert by_field["min_ct_per_kwh"]["valueFormatter"] == fixed_decimals_formatter(2)
    assert by_field["self_sufficiency_pct"]["valueFormatter"] == fixed_decimals_formatter(1)
    assert by_field["level"]["valueFormatter"] == fixed_decimals_formatter(0)
    assert fixed_decimals_formatter(2) == {
        "function": "params.value == null ? '–' : d3.format('.2f')(params.value)"
    }
    for field in ("market", "alert", "slot", "mode"):
        assert by_field[field]["filter"] == "agTextColumnFilter"
        assert "type" not in by_field[field]
    assert by_field["market"]["pinned"] == "left" and by_field["alert"]["pinned"] == "left"


def test_ovt008_what_1366_px_shows_without_scrolling_sideways():
    """The grid shown keeps what the operator needs at a glance, the rest is on the market page."""
    shown = [c.get("field") or [k["field"] for k in c["children"]] for c in overview_column_groups()]
    flat = [f for f in shown for f in (f if isinstance(f, list) else [f])]
    assert flat[:2] == ["market", "alert"]  # pinned, in one group (an empty pinned group row is
    assert shown[0] == ["market", "alert"]  # an ARIA row without cells)
    for needed in ("import_kwh", "export_kwh", "fee_in_force_ct_per_kwh", "fee_queued_ct_per_kwh", "mode"):
        assert needed in flat
    assert not set(HIDDEN_IN_OVERVIEW) & set(flat)
    assert len(flat) <= 12  # what the screenshot at 1366x768 shows without a sideways scroll


def test_ovt009_rows_carry_both_limits_and_the_alerts():
    firing = {
        "state": "alerting",
        "rule": "over_limit",
        "message": "import 12 kWh over its limit of 10 kWh per slot in slot 13:15 (120 %)",
        "value": 12.0,
        "threshold": 10.0,
    }
    pending = {"state": "pending", "rule": "revenue_spike", "message": "fee revenue 90 ct"}
    (row,) = overview_rows(
        [history_row("2026-06-22T13:15", import_kwh=12.0)],
        {},
        {},
        {},
        flow_limits={MARKET: Limits(10.0, None, "console")},
        alerts={MARKET: [firing, pending]},
    )
    assert (row["import_limit_kwh"], row["export_limit_kwh"]) == (10.0, None)
    assert row["alert_state"] == "alerting"
    assert row["alert"] == "import 120 % of limit (+1)"  # short: the whole message is the tooltip
    assert "pending: fee revenue 90 ct" in row["alert_detail"]
    assert alert_summary([pending])[:2] == ("pending", "pending: revenue spike")


def test_ovt003_over_limit_marks_import_and_export_only():
    by_field = _by_field()
    for field, hue in (("import_kwh", "import"), ("export_kwh", "export")):
        col = by_field[field]
        assert col["cellClassRules"] == {OVER_LIMIT_CLASS: OVER_LIMIT_CONDITION}
        (rule,) = col["cellStyle"]["styleConditions"]
        assert rule["condition"] == OVER_LIMIT_CONDITION
        assert rule["style"]["backgroundColor"] == PALETTE["over_limit"]
        text = PALETTE[hue] if hue == "import" else "#8F5300"  # orange text dark enough (axe)
        assert col["cellStyle"]["defaultStyle"] == {"color": text}
    # the column's own direction: import against import_limit_kwh, export against export_limit_kwh
    assert "params.colDef.field.replace('_kwh', '_limit_kwh')" in OVER_LIMIT_CONDITION
    others = [c for f, c in by_field.items() if f not in ("import_kwh", "export_kwh", "alert", "market")]
    assert not any("cellClassRules" in c or "cellStyle" in c for c in others)


def test_ovt004_one_row_per_market_with_its_figures_queued_fee_mode_and_limits_nulls_for_nan():
    latest = [
        history_row("2026-06-22T13:15", import_kwh=7.5, next_fee_ct_per_kwh=2.5),
        history_row(
            "2026-06-22T13:15",
            market_uuid="m-grid",
            name="Grid",
            level=1,
            parent_uuid=None,
            min_trade_rate=None,
            median_trade_rate=float("nan"),
            avg_trade_rate=None,
            max_trade_rate=None,
            total_traded_energy_kWh=0.0,
            self_sufficiency=None,
            limit_kwh=50.0,
        ),
    ]
    rows = overview_rows(
        latest,
        cumulative_revenue={MARKET: 123.4},
        queued={"m-grid": 4.0},
        modes={MARKET: "manual", "m-grid": "time_of_use"},
        limits_kwh={MARKET: 5.0},
    )
    assert [r["id"] for r in rows] == [MARKET, "m-grid"]
    community, grid = rows
    assert community == {
        "id": MARKET,
        "market": "Community 1",
        "level": 2,
        "parent_id": "m-grid",
        "slot": "2026-06-22T13:15",
        "min_ct_per_kwh": 10.0,
        "median_ct_per_kwh": 12.0,
        "avg_ct_per_kwh": 12.5,
        "max_ct_per_kwh": 15.0,
        "traded_kwh": 4.0,
        "import_kwh": 7.5,
        "export_kwh": 1.0,
        "self_sufficiency_pct": 40.0,
        "fee_revenue_slot_ct": 8.0,
        "fee_revenue_cumulative_ct": 123.4,
        "fee_in_force_ct_per_kwh": 2.0,
        "fee_queued_ct_per_kwh": 2.5,  # nothing queued by the console: what the exchange accepted
        "mode": "manual",
        "limit_kwh": 5.0,
        "import_limit_kwh": 5.0,
        "export_limit_kwh": 5.0,
        "alert": "",
        "alert_state": None,
        "alert_detail": None,
    }
    assert grid["fee_queued_ct_per_kwh"] == 4.0  # the console's queued command wins
    assert grid["median_ct_per_kwh"] is None  # NaN → null
    assert grid["min_ct_per_kwh"] is None and grid["self_sufficiency_pct"] is None
    assert grid["fee_revenue_cumulative_ct"] is None
    assert grid["limit_kwh"] == 50.0  # from the history row
    assert grid["mode"] == "time_of_use"
    json.dumps(rows, allow_nan=False)
    fields = {c["field"] for c in overview_columns()}
    assert fields <= community.keys()


def test_ovt005_grid_keys_rows_by_market_uuid_with_the_column_groups():
    rows = overview_rows([history_row("2026-06-22T13:15")], {}, {}, {})
    grid = overview_grid(rows, "overview-grid")
    assert isinstance(grid, dag.AgGrid)
    assert grid.id == "overview-grid"
    assert grid.getRowId == "params.data.id"
    assert grid.rowData == rows
    assert grid.columnDefs == overview_column_groups()
    children = [c for g in grid.columnDefs for c in g.get("children", [g])]
    shown = [c["field"] for c in overview_columns() if c["field"] not in HIDDEN_IN_OVERVIEW]
    assert [c["field"] for c in children] == shown
    assert grid.defaultColDef["sortable"] is True and grid.defaultColDef["filter"] is True
    options = grid.dashGridOptions
    assert options["pagination"] is False and options["animateRows"] is False
    assert options["rowSelection"] == {"mode": "singleRow", "checkboxes": False, "enableClickSelection": True}
    json.loads(to_json_plotly(grid))  # serialisable as a layout / callback output
    assert overview_grid(rows, {"type": "grid", "page": "overview"}).id == {
        "type": "grid",
        "page": "overview",
    }


def test_ovt006_last_slot_is_shown_whole_with_a_space_and_filters_on_what_is_shown():
    slot = _by_field()["slot"]
    assert slot["valueFormatter"] == {
        "function": "params.value == null ? '–' : params.value.replace('T', ' ')"
    }
    assert slot["filterValueGetter"]["function"].endswith("params.data.slot.replace('T', ' ')")
    # "2026-06-22 13:15" is ~111 px in the grid's 14 px font, plus the cell padding
    assert slot["minWidth"] >= 111 + 2 * CELL_PADDING_PX + 10
    assert "maxWidth" not in slot
    by_field = _by_field()
    assert by_field["fee_revenue_cumulative_ct"]["minWidth"] >= 66 + 2 * CELL_PADDING_PX  # "123456.78"
    grid = overview_grid([], "overview-grid")
    assert grid.dashGridOptions["theme"] == {
        "function": f"themeQuartz.withParams({{cellHorizontalPadding: {CELL_PADDING_PX}}})"
    }
