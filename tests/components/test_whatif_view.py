"""What-if's KPI table: the zero-fee candidate is the reference once, not a column that wins ties."""

from __future__ import annotations

from app.console.components.whatif_view import grid_rows, kpi_grid

ROWS = [
    {
        "id": f"{m}:{k}",
        "market": m,
        "label": k,
        "unit": "kWh",
        "better": "lower",
        "baseline": 10.0,
        "values": {
            "zero fee": 7.0 if k == "energy" else 10.0,
            "tou": 8.0,
            "controller": 9.0 if k == "peak" else 7.0,
        },
        "best": [],
    }
    for m in ("Grid", "North")
    for k in ("peak", "energy")
]


def test_wiv001_zero_candidate_left_out_and_best_among_the_rest():
    grid = kpi_grid(ROWS, ["zero fee", "tou", "controller"], "g", ["zero", "tou", "controller"])
    headers = [c["headerName"] for c in grid.columnDefs]
    assert "zero fee" not in headers and headers.count("Zero fee (reference)") == 1
    rows = grid.rowData
    # energy: the zero-fee run ties with the controller at 7 kWh; only the controller wins
    assert rows[0]["best"] == "tou" and rows[1]["best"] == "controller"
    assert [r["first"] for r in rows] == [True, False, True, False]  # grouped by market


def test_wiv002_without_kinds_every_candidate_stays():
    rows = grid_rows(ROWS, ["zero fee", "tou"])
    assert rows[0]["best_cols"] == ["c1"]
