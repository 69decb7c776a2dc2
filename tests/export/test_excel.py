"""The history workbook, read back with openpyxl: sheets, headers, numbers, ranges and bad input."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from itertools import accumulate
from pathlib import Path

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet

from app.exchange.scenario import Scenario, dump_scenario
from app.export import excel
from app.export.excel import (
    COMMANDS_SHEET,
    HISTORY_COLUMNS,
    SETTINGS_SHEET,
    export_filename,
    history_workbook_bytes,
    sheet_titles,
    write_history_workbook,
)
from app.operator.store import APPLIED, HISTORY_FIELDS, QUEUED, REFUSED, SUPERSEDED, OperatorStore
from app.store.db import make_engine
from app.store.schema import metadata

N_SLOTS = 12
START = dt.datetime(2026, 6, 22, 23, 0)  # 12 quarter hours: the range crosses midnight
SLOTS = [(START + dt.timedelta(minutes=15 * i)).strftime("%Y-%m-%dT%H:%M") for i in range(N_SLOTS)]
MARKETS = [
    {"uuid": "m-grid", "name": "Grid", "level": 0},
    {"uuid": "m-west", "name": "West: houses [1/2]?*", "level": 1},
    {"uuid": "m-long", "name": "Community with a name much longer than thirty-one characters", "level": 1},
]
HEADERS = [c.header for c in HISTORY_COLUMNS]
COL = {c.key: i for i, c in enumerate(HISTORY_COLUMNS)}


def history_rows(market: dict, k: int) -> list[dict]:
    """Distinct, known values per market (k) and slot (i); nothing traded in the first slot."""
    rows = []
    for i, slot in enumerate(SLOTS):
        traded = 0.0 if i == 0 else 2.5 + i + k
        row = {f: 0.0 for f in HISTORY_FIELDS}
        row.update(
            market_uuid=market["uuid"],
            slot=slot,
            name=market["name"],
            level=market["level"],
            parent_uuid=None if k == 0 else "m-grid",
            min_trade_rate=None if i == 0 else 10.0 + i,
            median_trade_rate=None if i == 0 else 12.5 + i,
            avg_trade_rate=None if i == 0 else 12.25 + i,
            max_trade_rate=None if i == 0 else 15.0 + i,
            total_traded_energy_kWh=traded,
            import_kwh=1.125 * i,
            export_kwh=0.5 * i,
            self_sufficiency=None if i == 0 else 50.0 + i,
            self_consumption=80.0,
            market_fee=1.0 + k,
            next_market_fee=1.5 + k,
            market_fee_revenue=(1.0 + k) * traded,
            unmatched_kwh=0.25,
        )
        rows.append(row)
    return rows


@dataclass
class Fixture:
    store: OperatorStore
    revenue: dict[str, list[float]]  # per market uuid, per slot [ct]


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Fixture]:
    engine = make_engine(f"sqlite:///{tmp_path / 'ops.sqlite3'}")
    metadata.create_all(engine)
    store = OperatorStore(engine)
    revenue = {}
    for k, market in enumerate(MARKETS):
        rows = history_rows(market, k)
        assert store.append_history(rows) == N_SLOTS
        revenue[market["uuid"]] = [r["market_fee_revenue"] for r in rows]
    store.set_manual("m-grid", 2.5, "alice")
    store.set_model("m-west", {"kind": "tou", "peak_ct_per_kwh": 5}, "bob")
    # grid: applied from slot 2; west: refused; long: one superseded, then one still queued
    store.queue("m-grid", "Grid", 3.0, "manual:alice", "alice", running_slot=SLOTS[1])
    _, claimed = store.claim_queued()
    store.record_results({claimed[0]["id"]: {"status": APPLIED, "applies_from_slot": SLOTS[2]}})
    store.queue("m-west", MARKETS[1]["name"], 60.0, "model:tou", "agent", running_slot=SLOTS[5])
    _, claimed = store.claim_queued()
    store.record_results({claimed[0]["id"]: {"status": REFUSED, "reason": "fee above the maximum of 50"}})
    store.queue("m-long", MARKETS[2]["name"], 4.0, "manual:alice", "alice", running_slot=SLOTS[8])
    store.queue("m-long", MARKETS[2]["name"], 4.5, "manual:alice", "alice", running_slot=SLOTS[10])
    yield Fixture(store, revenue)
    engine.dispose()


def load(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(BytesIO(data))


def body(ws: Worksheet) -> list[tuple]:
    return list(ws.iter_rows(min_row=2, values_only=True))


def labels(ws: Worksheet) -> list[str]:
    return [r[0].strftime("%Y-%m-%dT%H:%M") for r in body(ws)]


def export(store: OperatorStore, start=None, end=None, markets=MARKETS, **kwargs) -> openpyxl.Workbook:  # noqa: ANN001
    return load(history_workbook_bytes(store, markets, start, end, **kwargs))


# -- market sheets ------------------------------------------------------------------------------


def test_every_market_gets_a_sheet_with_every_slot_then_the_commands_and_settings_sheets(data):
    wb = export(data.store)
    titles = sheet_titles([m["name"] for m in MARKETS])
    assert wb.sheetnames == [*titles, COMMANDS_SHEET, SETTINGS_SHEET]
    for title in titles:
        ws = wb[title]
        assert ws.max_row == 1 + N_SLOTS
        assert labels(ws) == SLOTS


def test_headers_carry_units_and_the_header_row_is_frozen_with_set_widths(data):
    wb = export(data.store)
    for ws in wb.worksheets[:3]:
        assert [c.value for c in ws[1]] == HEADERS
        assert all(c.font.bold for c in ws[1])
        assert ws.freeze_panes == "A2"
        assert ws.column_dimensions["A"].width == 18
        assert ws.column_dimensions["N"].width == 16
    assert HEADERS[0] == "Slot (start, local)"
    assert {"Min trade rate [ct/kWh]", "Traded energy [kWh]", "Self-sufficiency [%]"} <= set(HEADERS)
    assert {"Fee revenue [ct]", "Cumulative fee revenue [ct]", "Unmatched energy [kWh]"} <= set(HEADERS)
    assert wb[COMMANDS_SHEET].freeze_panes == "A2"


def test_values_are_numbers_with_fixed_decimal_formats_and_slots_are_datetimes(data):
    ws = export(data.store)["Grid"]
    row = list(ws[3])  # the second slot: every value known
    assert isinstance(row[0].value, dt.datetime)
    assert row[0].value == START + dt.timedelta(minutes=15)
    assert row[0].number_format == "yyyy-mm-dd hh:mm"
    for cell in row[1:]:
        assert isinstance(cell.value, int | float) and not isinstance(cell.value, bool), cell.coordinate
        assert cell.data_type == "n"
    formats = {c.key: row[i].number_format for i, c in enumerate(HISTORY_COLUMNS)}
    assert formats["min_trade_rate"] == formats["market_fee"] == formats["market_fee_revenue"] == "0.00"
    assert formats["total_traded_energy_kWh"] == formats["import_kwh"] == formats["unmatched_kwh"] == "0.000"
    assert formats["self_sufficiency"] == formats["self_consumption"] == "0.0"
    assert row[COL["import_kwh"]].value == pytest.approx(1.125)
    assert row[COL["market_fee"]].value == 1.0
    assert row[COL["next_market_fee"]].value == 1.5


def test_values_the_exchange_did_not_give_are_empty_cells(data):
    first = body(export(data.store)["Grid"])[0]  # nothing traded in the first slot
    assert first[COL["min_trade_rate"]] is None
    assert first[COL["max_trade_rate"]] is None
    assert first[COL["self_sufficiency"]] is None
    assert first[COL["total_traded_energy_kWh"]] == 0


def test_not_a_number_from_postgresql_is_written_as_an_empty_cell(data, monkeypatch):
    real = data.store.history

    def with_nan(market_uuid, start=None, end=None, last=None):  # noqa: ANN001
        rows = real(market_uuid, start, end, last)
        for r in rows:
            r["self_consumption"] = float("nan")
            r["avg_trade_rate"] = float("inf")
        return rows

    monkeypatch.setattr(data.store, "history", with_nan)
    rows = body(export(data.store)["Grid"])
    assert all(r[COL["self_consumption"]] is None and r[COL["avg_trade_rate"]] is None for r in rows)


def test_cumulative_revenue_is_the_running_sum_of_the_revenue_column(data):
    wb = export(data.store)
    for market, title in zip(MARKETS, wb.sheetnames, strict=False):
        rows = body(wb[title])
        revenue = [r[COL["market_fee_revenue"]] for r in rows]
        assert revenue == pytest.approx(data.revenue[market["uuid"]])
        assert [r[COL[excel._CUMULATIVE]] for r in rows] == pytest.approx(list(accumulate(revenue)))


def test_a_range_keeps_the_slots_between_its_bounds_inclusive_and_sums_from_its_start(data):
    wb = export(data.store, SLOTS[3], SLOTS[6])
    ws = wb["Grid"]
    assert labels(ws) == SLOTS[3:7]
    cumulative = [r[COL[excel._CUMULATIVE]] for r in body(ws)]
    assert cumulative == pytest.approx(list(accumulate(data.revenue["m-grid"][3:7])))
    assert labels(export(data.store, SLOTS[4], SLOTS[4])["Grid"]) == [SLOTS[4]]
    assert labels(export(data.store, None, SLOTS[1])["Grid"]) == SLOTS[:2]
    assert labels(export(data.store, SLOTS[10], None)["Grid"]) == SLOTS[10:]
    assert labels(export(data.store, "", "")["Grid"]) == SLOTS


def test_bounds_between_slots_keep_the_slots_inside(data):
    assert labels(export(data.store, "2026-06-22T23:20", "2026-06-23T00:40")["Grid"]) == SLOTS[2:7]


def test_a_date_as_bound_covers_its_whole_day(data):
    assert labels(export(data.store, "2026-06-23", "2026-06-23")["Grid"]) == SLOTS[4:]
    assert labels(export(data.store, None, "2026-06-22")["Grid"]) == SLOTS[:4]


def test_history_is_read_market_by_market_in_chunks(data, monkeypatch):
    monkeypatch.setattr(excel, "CHUNK_ROWS", 5)
    calls = []
    real = data.store.history

    def spy(market_uuid, start=None, end=None, last=None):  # noqa: ANN001
        rows = real(market_uuid, start, end, last)
        calls.append((market_uuid, len(rows)))
        return rows

    monkeypatch.setattr(data.store, "history", spy)
    wb = export(data.store)
    assert calls == [(m["uuid"], n) for m in MARKETS for n in (5, 5, 2)]
    assert labels(wb["Grid"]) == SLOTS
    assert excel.CHUNK_ROWS == 5


# -- commands, settings, scenario ---------------------------------------------------------------


def test_commands_sheet_lists_every_command_oldest_first_with_its_outcome(data):
    wb = export(data.store)
    ws = wb[COMMANDS_SHEET]
    assert [c.value for c in ws[1]] == [
        "Created at (UTC)",
        "Market",
        "Fee [ct/kWh]",
        "Source",
        "Status",
        "Applies from slot (local)",
        "Reason",
        "By",
        "Transaction id",
    ]
    rows = body(ws)
    assert [(r[1], r[2], r[4]) for r in rows] == [
        ("Grid", 3.0, APPLIED),
        (MARKETS[1]["name"], 60.0, REFUSED),
        (MARKETS[2]["name"], 4.0, SUPERSEDED),
        (MARKETS[2]["name"], 4.5, QUEUED),
    ]
    newest_last = [r[0] for r in rows]
    assert all(isinstance(t, dt.datetime) for t in newest_last) and newest_last == sorted(newest_last)
    assert abs(newest_last[-1] - dt.datetime.now(dt.UTC).replace(tzinfo=None)) < dt.timedelta(minutes=5)
    assert rows[0][5] == dt.datetime.fromisoformat(SLOTS[2])
    assert rows[0][8].startswith("console-") and rows[0][7] == "alice" and rows[0][3] == "manual:alice"
    assert rows[1][6] == "fee above the maximum of 50" and rows[1][7] == "agent"
    assert rows[3][5] is None and rows[3][8] is None
    assert ws["C2"].number_format == "0.00"


def test_commands_sheet_keeps_the_commands_whose_slot_is_in_the_range(data):
    # applies_from_slot when known (grid: slot 2), else the slot running when queued
    assert [r[2] for r in body(export(data.store, SLOTS[2], SLOTS[5])[COMMANDS_SHEET])] == [3.0, 60.0]
    assert [r[2] for r in body(export(data.store, SLOTS[6], None)[COMMANDS_SHEET])] == [4.0, 4.5]
    assert [r[2] for r in body(export(data.store, SLOTS[1], SLOTS[1])[COMMANDS_SHEET])] == []


def test_commands_are_read_in_pages(data, monkeypatch):
    monkeypatch.setattr(excel, "CHUNK_ROWS", 2)  # 4 commands: two full pages and an empty one
    assert [r[2] for r in body(export(data.store)[COMMANDS_SHEET])] == [3.0, 60.0, 4.0, 4.5]
    monkeypatch.setattr(excel, "CHUNK_ROWS", 3)
    assert [r[2] for r in body(export(data.store)[COMMANDS_SHEET])] == [3.0, 60.0, 4.0, 4.5]


def test_settings_sheet_has_each_market_setting_then_the_scenario_one_line_a_row(
    data, small_scenario: Scenario
):
    text = dump_scenario(small_scenario)
    wb = export(data.store, scenario_text=text)
    ws = wb[SETTINGS_SHEET]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == (
        "Market",
        "Level",
        "Sheet",
        "Mode",
        "Manual fee [ct/kWh]",
        "Model (JSON)",
        "Changed by",
        "Changed at (UTC)",
        "Market UUID",
    )
    grid, west, long = rows[1:4]
    assert grid[:5] == ("Grid", 0, "Grid", "manual", 2.5)
    assert grid[6] == "alice" and isinstance(grid[7], dt.datetime) and grid[8] == "m-grid"
    assert west[:4] == (MARKETS[1]["name"], 1, wb.sheetnames[1], "model")
    assert west[4] is None and west[5] == '{"kind": "tou", "peak_ct_per_kwh": 5}' and west[6] == "bob"
    assert long[:3] == (MARKETS[2]["name"], 1, wb.sheetnames[2]) and long[3:8] == (None,) * 5
    assert rows[4] == (None,) * 9 or all(v is None for v in rows[4])
    assert rows[5][0] == "Scenario" and ws.cell(6, 1).font.bold
    scenario_lines = [r[0] if r[0] is not None else "" for r in rows[6:]]
    assert scenario_lines == text.splitlines()
    assert any(line.startswith("  ") for line in scenario_lines)  # YAML indentation kept
    assert ws.cell(2, 5).number_format == "0.00"


def test_settings_rows_given_by_the_caller_replace_the_stored_ones(data):
    given = [
        {"market_uuid": "m-long", "mode": "manual", "manual_fee_ct_per_kwh": 7.25, "model": None},
        {"market_uuid": "m-gone", "name": "Old market", "mode": "model", "model": {"a": 1}, "changed_at": 0},
    ]
    rows = list(export(data.store, settings_rows=given)[SETTINGS_SHEET].iter_rows(values_only=True))
    assert rows[1][3] is None and rows[2][3] is None  # the stored settings are not used
    assert rows[3][3:5] == ("manual", 7.25)
    assert rows[4][0] == "Old market" and rows[4][2] is None and rows[4][5] == '{"a": 1}'
    assert rows[4][7] == dt.datetime(1970, 1, 1) and rows[4][8] == "m-gone"
    assert rows[6][0] == "Scenario" and rows[7][0] == "(no scenario given)"


# -- names, odd input ---------------------------------------------------------------------------


def test_sheet_titles_are_sanitised_at_most_31_characters_and_unique():
    names = [
        "West: houses [1/2]?*",
        "A" * 40,
        "A" * 35,  # the same 31 characters once cut
        "grid",
        "Grid",  # titles are compared without case
        "History",  # reserved by Excel
        "fee commands",  # the sheet after the markets
        "'quoted'",
        "",
        "Tab\x01name",
        "back\\slash",
    ]
    titles = sheet_titles(names)
    assert len(titles) == len(names)
    assert all(1 <= len(t) <= 31 for t in titles)
    assert len({t.casefold() for t in titles}) == len(titles)
    assert not any(set(t) & set("[]:*?/\\") for t in titles)
    assert not any(t.startswith("'") or t.endswith("'") for t in titles)
    assert titles[0] == "West_ houses _1_2___"
    assert titles[1] == "A" * 31 and titles[2] == "A" * 27 + " (2)"
    assert titles[3:5] == ["grid", "Grid (2)"]
    assert titles[5] == "History (2)" and titles[6] == "fee commands (2)"
    assert titles[7] == "quoted" and titles[8] == "Market" and titles[9] == "Tabname"


def test_market_names_that_excel_refuses_become_valid_unique_sheets(data):
    markets = [
        {"uuid": "m-grid", "name": "Grid", "level": 0},
        {"uuid": "m-west", "name": "GRID", "level": 1},
        {"uuid": "m-long", "name": MARKETS[2]["name"], "level": 1},
        {"uuid": "m-long", "name": MARKETS[2]["name"] + " again", "level": 1},
    ]
    wb = export(data.store, markets=markets)
    assert wb.sheetnames[:4] == [
        "Grid",
        "GRID (2)",
        "Community with a name much long",
        "Community with a name much (2)",
    ]
    assert labels(wb["GRID (2)"]) == SLOTS


def test_an_unknown_market_gets_a_sheet_with_the_header_only(data):
    markets = [*MARKETS, {"uuid": "no-such-market", "name": "Nowhere", "level": 2}]
    wb = export(data.store, markets=markets)
    assert [c.value for c in wb["Nowhere"][1]] == HEADERS and wb["Nowhere"].max_row == 1
    assert labels(wb["Grid"]) == SLOTS


def test_an_empty_store_gives_sheets_with_headers_only(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    metadata.create_all(engine)
    wb = export(OperatorStore(engine), "2026-06-22", "2026-06-23")
    assert wb.sheetnames == [*sheet_titles([m["name"] for m in MARKETS]), COMMANDS_SHEET, SETTINGS_SHEET]
    for ws in wb.worksheets[:4]:
        assert ws.max_row == 1 and ws["A1"].value is not None
    rows = list(wb[SETTINGS_SHEET].iter_rows(values_only=True))
    assert [r[0] for r in rows[1:4]] == [m["name"] for m in MARKETS] and rows[1][3] is None
    assert export(OperatorStore(engine), markets=[]).sheetnames == [COMMANDS_SHEET, SETTINGS_SHEET]
    engine.dispose()


def test_a_range_outside_the_history_gives_headers_only(data):
    wb = export(data.store, "2027-01-01", "2027-01-02")
    assert all(ws.max_row == 1 for ws in wb.worksheets[:4])


def test_start_after_end_is_a_value_error_and_nothing_is_written(data):
    out = BytesIO()
    with pytest.raises(ValueError, match="start '2026-06-23T00:00' is after end '2026-06-22T23:45'"):
        write_history_workbook(out, data.store, MARKETS, SLOTS[4], SLOTS[3], None, None)
    assert out.getvalue() == b""
    with pytest.raises(ValueError, match="after end"):
        history_workbook_bytes(data.store, MARKETS, "2026-06-23", "2026-06-22")


@pytest.mark.parametrize(
    "bad", ["yesterday", "2026-06-22 00:00", "2026-13-01", "2026-06-22T25:00", "22.06.2026"]
)
def test_a_bound_that_is_no_slot_label_or_date_is_a_value_error(data, bad: str):
    with pytest.raises(ValueError, match=f"start must be a slot label YYYY-MM-DDTHH:mm or a date.*{bad!r}"):
        history_workbook_bytes(data.store, MARKETS, bad, None)
    with pytest.raises(ValueError, match="^end must be"):
        history_workbook_bytes(data.store, MARKETS, None, bad)


def test_text_that_looks_like_a_formula_stays_text_and_control_characters_are_dropped(data):
    data.store.queue("m-grid", '=HYPERLINK("http://x")', 1.0, "manual:eve", "eve", running_slot=SLOTS[0])
    data.store.queue("m-west", "West", 1.0, "#N/A", "eve\x07", running_slot=SLOTS[0])
    ws = export(data.store)[COMMANDS_SHEET]
    cells = {(r[1].value, r[3].value): r for r in ws.iter_rows(min_row=2)}
    evil = cells[('=HYPERLINK("http://x")', "manual:eve")]
    assert evil[1].data_type == "s"
    odd = cells[("West", "#N/A")]
    assert odd[3].data_type == "s" and odd[7].value == "eve"


def test_a_failed_export_leaves_no_temporary_files(data, monkeypatch, tmp_path: Path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    real, calls = data.store.history, []

    def failing(market_uuid, start=None, end=None, last=None):  # noqa: ANN001
        calls.append(market_uuid)
        if len(calls) == 3:
            raise OSError("database went away")
        return real(market_uuid, start, end, last)

    monkeypatch.setattr(data.store, "history", failing)
    with pytest.raises(OSError, match="database went away"):
        history_workbook_bytes(data.store, MARKETS)
    assert calls == ["m-grid", "m-west", "m-long"]
    assert list((tmp_path / "tmp").iterdir()) == []
    monkeypatch.setattr(data.store, "history", real)
    assert labels(load(history_workbook_bytes(data.store, MARKETS))["Grid"]) == SLOTS
    assert list((tmp_path / "tmp").iterdir()) == []


def test_the_workbook_streams_into_an_open_file(data, tmp_path: Path):
    path = tmp_path / export_filename(SLOTS[0], SLOTS[-1])
    with path.open("wb") as out:
        write_history_workbook(out, data.store, MARKETS, SLOTS[0], SLOTS[-1], "name: x\n", None)
    wb = openpyxl.load_workbook(path, read_only=True)
    assert wb.sheetnames[-2:] == [COMMANDS_SHEET, SETTINGS_SHEET]
    assert len(list(wb["Grid"].iter_rows(min_row=2))) == N_SLOTS
    wb.close()


def test_export_filename_names_the_range_with_safe_characters():
    assert export_filename("2026-06-22T00:00", "2026-06-23T00:00") == (
        "grid-fees_2026-06-22T00-00_2026-06-23T00-00.xlsx"
    )
    assert export_filename(None, None) == "grid-fees_all.xlsx"
    assert export_filename("", "  ") == "grid-fees_all.xlsx"
    assert export_filename("2026-06-22", None) == "grid-fees_2026-06-22_last.xlsx"
    assert export_filename(None, "2026-06-22T12:00") == "grid-fees_first_2026-06-22T12-00.xlsx"
    odd = export_filename("../../etc/passwd", 'a"b;c\r\n')
    assert odd == "grid-fees_etc-passwd_a-b-c.xlsx"
    assert set(odd) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
