"""The what-if workbook: the KPI table, then one sheet per candidate with its per-slot series."""

from __future__ import annotations

import io

import openpyxl
import pytest
from whatif_scenario import SCENARIO

from app.whatif.runs import BASELINE, KPI_ROWS, SHEET_COLUMNS, Candidate, run_whatif, whatif_workbook


@pytest.fixture(scope="module")
def result():
    tiers = {"model": "constant", "fee_ct_per_kwh": 5.0}
    candidates = [Candidate.zero("zero: fee"), Candidate("KPIs", {0: tiers, 1: tiers})]  # awkward names
    return run_whatif(SCENARIO, candidates, days=1, workers=1)


def test_wif010_workbook_has_the_kpi_sheet_and_one_sheet_per_candidate(result):
    wb = openpyxl.load_workbook(io.BytesIO(whatif_workbook(result)))
    assert wb.sheetnames == ["KPIs", "zero_ fee", "KPIs (2)"]
    kpis = wb["KPIs"]
    header = [c.value for c in kpis[1]]
    assert header == ["Market", "KPI", "Unit", "Better", BASELINE, "zero: fee", "KPIs", "Best"]
    body = list(kpis.iter_rows(min_row=2, max_row=1 + len(result.rows), values_only=True))
    assert len(body) == len(result.market_uuids) * len(KPI_ROWS)
    for row, values in zip(result.rows, body, strict=True):
        assert values[:4] == (row["market"], row["label"], row["unit"], row["better"])
        assert values[5] == pytest.approx(row["values"]["zero: fee"])  # Excel keeps 15 digits
        assert values[6] == pytest.approx(row["values"]["KPIs"])
        assert values[7] == (", ".join(row["best"]) or None)

    for title, name in (("zero_ fee", "zero: fee"), ("KPIs (2)", "KPIs")):
        ws = wb[title]
        assert [c.value for c in ws[1]] == ["Slot", "Market", *(h for _, h, _ in SHEET_COLUMNS)]
        assert ws.max_row == 1 + len(result.slot_labels) * len(result.market_uuids)
        first = [c.value for c in ws[2]]
        assert first[0].strftime("%Y-%m-%dT%H:%M") == result.slot_labels[0]
        assert first[1] == result.market_names[0]
        assert first[2] == pytest.approx(result.series(name, "import_kwh", result.market_uuids[0])[0])


def test_wif011_best_values_are_green_and_market_and_kpi_stay_in_view(result):
    wb = openpyxl.load_workbook(io.BytesIO(whatif_workbook(result)))
    kpis = wb["KPIs"]
    assert kpis.freeze_panes == "C2" and wb["zero_ fee"].freeze_panes == "C2"
    for n, row in enumerate(result.rows, start=2):
        for col, name in ((6, "zero: fee"), (7, "KPIs")):
            cell = kpis.cell(n, col)
            green = cell.fill.fgColor.rgb == "FFC6EFCE" and cell.fill.fill_type == "solid"
            assert green == (name in row["best"]), (row["market"], row["label"], name)
            assert cell.number_format == "0.00"
    assert any(row["best"] for row in result.rows)  # the check above saw a green cell
    slot = wb["zero_ fee"]["A2"]
    assert slot.is_date and slot.number_format == "yyyy-mm-dd hh:mm"
