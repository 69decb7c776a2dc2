"""Time-of-use table: the model, the CSV and Excel loaders and their error messages."""

import datetime as dt
import io

import openpyxl
import pytest
from pydantic import ValidationError

from app.tariffs.base import FeeLimits, MarketHistory
from app.tariffs.tou import (
    TouParams,
    TouTableError,
    load_tou_csv,
    load_tou_csv_columns,
    load_tou_xlsx,
    load_tou_xlsx_columns,
    next_fee,
    preset_challenge_2020,
    quarter_hour_label,
)

from .helpers import LIMITS, MONDAY, slot_at

PRESET = preset_challenge_2020()
TIMES = [quarter_hour_label(q) for q in range(96)]


def sdk_csv(rows: list[str] | None = None) -> bytes:
    """GSy's ToU.csv layout: ``Time;Community;Grid;;;...`` and ``00:00:00;0,42;1,68``."""
    if rows is None:
        rows = [
            f"{t}:00;{str(c).replace('.', ',')};{str(g).replace('.', ',')}"
            for t, c, g in zip(TIMES, PRESET["community"], PRESET["grid"], strict=True)
        ]
    return ("Time;Community;Grid;;;;;;;;;;;\r\n" + "\r\n".join(rows) + "\r\n").encode()


def one_column_csv(values: list[object], times: list[str] = TIMES) -> str:
    return "time,fee\n" + "".join(f"{t},{v}\n" for t, v in zip(times, values, strict=True))


# --- the model ---------------------------------------------------------------------------------


def test_the_preset_is_the_challenge_table():
    assert set(PRESET) == {"community", "grid"}
    assert PRESET["community"][0] == 0.42 and PRESET["grid"][0] == 1.68
    assert PRESET["grid"][52] == 6.48  # 13:00, as the SDK's lookup of a 12:45 market slot showed
    assert PRESET["grid"] == pytest.approx([4 * c for c in PRESET["community"]])


def test_the_fee_is_the_value_of_the_quarter_hour_the_slot_starts_in():
    params = TouParams(table={"all": PRESET["grid"]})
    assert next_fee(MarketHistory(), slot_at(MONDAY.replace(hour=13)), params, LIMITS) == 6.48
    assert (
        next_fee(MarketHistory(), slot_at(MONDAY.replace(hour=23, minute=45)), params, LIMITS)
        == PRESET["grid"][95]
    )
    hourly = slot_at(MONDAY.replace(hour=13), minutes=60)  # an hourly slot takes its first quarter hour
    assert next_fee(MarketHistory(), hourly, params, LIMITS) == 6.48


def test_a_table_per_day_type_is_looked_up_by_the_slots_day():
    params = TouParams(table={"weekday": [1.0] * 96, "saturday": [2.0] * 96, "sunday": [3.0] * 96})
    fees = [
        next_fee(MarketHistory(), slot_at(MONDAY + dt.timedelta(days=d)), params, LIMITS) for d in range(7)
    ]
    assert fees == [1.0] * 5 + [2.0, 3.0]


def test_the_limits_apply_to_table_values():
    params = TouParams(table={"all": [80.0] * 96})
    assert next_fee(MarketHistory(), slot_at(MONDAY), params, FeeLimits(0, 50)) == 50.0


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"all": [1.0] * 95}, "'all': expected 96 quarter-hour values, found 95"),
        (
            {"weekday": [1.0] * 96},
            "one list for each of 'weekday', 'saturday' and 'sunday'; got \\['weekday'\\]",
        ),
        ({"all": [1.0] * 96, "sunday": [1.0] * 96}, "either one list 'all'"),
        ({"all": [1.0] * 37 + [-0.5] + [1.0] * 58}, "'all'\\[37\\] \\(09:15\\): -0.5 ct/kWh is negative"),
        ({"all": [1.0] * 95 + [float("nan")]}, "finite number"),
    ],
)
def test_incomplete_or_negative_tables_are_refused(table, message):
    with pytest.raises(ValidationError, match=message):
        TouParams(table=table)


# --- CSV -----------------------------------------------------------------------------------------


def test_the_sdk_csv_with_semicolons_and_decimal_commas_loads():
    assert load_tou_csv(sdk_csv(), column="Grid") == PRESET["grid"]
    assert load_tou_csv(sdk_csv(), column="community") == PRESET["community"]  # case-insensitive
    assert load_tou_csv_columns(sdk_csv()) == {"Community": PRESET["community"], "Grid": PRESET["grid"]}


def test_a_comma_separated_table_with_a_bom_and_rows_in_any_order_loads():
    values = [q / 10 for q in range(96)]
    text = one_column_csv(values[::-1], TIMES[::-1])
    assert load_tou_csv(("\ufeff" + text).encode()) == values
    assert load_tou_csv(text) == values


def test_95_rows_are_refused_naming_the_missing_quarter_hour():
    rows = sdk_csv().decode().splitlines()
    del rows[96]  # the 23:45 row
    with pytest.raises(
        TouTableError, match="^expected 96 quarter-hour rows, found 95 \\(23:45 is missing\\)$"
    ):
        load_tou_csv("\n".join(rows), column="Grid")


def test_text_in_a_fee_cell_is_refused_naming_row_and_column():
    rows = sdk_csv().decode().splitlines()
    rows[37] = rows[37].rsplit(";", 1)[0] + ";abc"  # line 38 of the file (the header is line 1)
    with pytest.raises(TouTableError, match="^row 38, column 'Grid': 'abc' is not a number$"):
        load_tou_csv("\n".join(rows), column="Grid")


def test_a_negative_fee_is_refused():
    values = [1.0] * 96
    values[10] = "-0.5"
    with pytest.raises(TouTableError, match="^row 12, column 'fee': '-0.5' is negative; a fee must be >= 0"):
        load_tou_csv(one_column_csv(values))


@pytest.mark.parametrize(
    ("cell", "problem"), [("", "empty cell"), ("nan", "is not a number"), ("1e999", "finite")]
)
def test_empty_and_non_finite_fees_are_refused(cell, problem):
    values: list[object] = [1.0] * 96
    values[0] = cell
    with pytest.raises(TouTableError, match=f"^row 2, column 'fee': .*{problem}"):
        load_tou_csv(one_column_csv(values))


def test_a_duplicate_time_is_refused_naming_both_rows_and_the_missing_one():
    times = list(TIMES)
    times[5] = "00:00"
    with pytest.raises(
        TouTableError,
        match="^row 7, column 'time': 00:00 appears twice \\(rows 2 and 7\\); 01:15 is missing$",
    ):
        load_tou_csv(one_column_csv([1.0] * 96, times))


@pytest.mark.parametrize(
    ("time", "problem"),
    [
        ("00:07", "not the start of a quarter hour"),
        ("25:00", "not a time of day"),
        ("noon", "not a time HH:MM"),
    ],
)
def test_bad_times_are_refused(time, problem):
    times = list(TIMES)
    times[3] = time
    with pytest.raises(TouTableError, match=f"^row 5, column 'time': .*{problem}"):
        load_tou_csv(one_column_csv([1.0] * 96, times))


def test_97_rows_name_the_repeated_time():
    with pytest.raises(TouTableError, match="found 97 \\(repeated: 00:00 in rows 2 and 98\\)"):
        load_tou_csv(one_column_csv([1.0] * 97, [*TIMES, "00:00"]))


def test_a_file_that_is_not_utf8_is_refused():
    with pytest.raises(TouTableError, match="not UTF-8 text \\(byte 0xfc at offset 8\\)"):
        load_tou_csv("time;Gebühr\n00:00;1\n".encode("latin-1"))


def test_an_empty_file_is_refused():
    with pytest.raises(TouTableError, match="the file is empty"):
        load_tou_csv(b"\n\n")


def test_several_fee_columns_need_a_choice_and_unknown_columns_are_named():
    with pytest.raises(TouTableError, match="2 fee columns \\('Community', 'Grid'\\): choose one"):
        load_tou_csv(sdk_csv())
    with pytest.raises(
        TouTableError, match="no column 'House'; the table's fee columns are 'Community', 'Grid'"
    ):
        load_tou_csv(sdk_csv(), column="House")


def test_a_bad_cell_in_a_column_not_chosen_does_not_matter():
    rows = sdk_csv().decode().splitlines()
    rows[37] = rows[37].rsplit(";", 1)[0] + ";abc"
    assert load_tou_csv("\n".join(rows), column="Community") == PRESET["community"]


# --- Excel ---------------------------------------------------------------------------------------


def workbook(rows: list[list[object]]) -> bytes:
    wb = openpyxl.Workbook()
    for row in rows:
        wb.active.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_an_excel_table_with_time_cells_loads():
    rows = [["Time", "Community", "Grid"]] + [
        [dt.time(q // 4, q % 4 * 15), c, g]
        for q, c, g in zip(range(96), PRESET["community"], PRESET["grid"], strict=True)
    ]
    data = workbook(rows)
    assert load_tou_xlsx(data, column="Grid") == PRESET["grid"]
    assert load_tou_xlsx_columns(data) == {"Community": PRESET["community"], "Grid": PRESET["grid"]}


def test_an_excel_table_with_text_times_and_decimal_comma_text_loads():
    rows = [["Zeit", "Netz"]] + [[f"{t}:00", f"{q},5"] for q, t in enumerate(TIMES)]
    assert load_tou_xlsx(workbook(rows)) == [q + 0.5 for q in range(96)]


def test_text_in_an_excel_cell_is_refused_naming_row_and_column():
    rows = [["Time", "Grid"]] + [[t, 1.0] for t in TIMES]
    rows[37][1] = "abc"
    with pytest.raises(TouTableError, match="^row 38, column 'Grid': 'abc' is not a number$"):
        load_tou_xlsx(workbook(rows))


def test_an_excel_table_with_95_rows_is_refused():
    rows = [["Time", "Grid"]] + [[t, 1.0] for t in TIMES[1:]]
    with pytest.raises(
        TouTableError, match="^expected 96 quarter-hour rows, found 95 \\(00:00 is missing\\)$"
    ):
        load_tou_xlsx(workbook(rows))


@pytest.mark.parametrize(
    "data",
    [b"", b"not a zip at all", sdk_csv(), workbook([["Time", "Grid"]])[:300]],
    ids=["empty", "text", "csv", "truncated"],
)
def test_a_broken_xlsx_file_is_refused(data):
    with pytest.raises(TouTableError, match="^not a valid .xlsx workbook"):
        load_tou_xlsx(data)
