"""The history workbook, read back with openpyxl: sheets, headers, numbers, ranges and bad input."""

from __future__ import annotations

import datetime as dt
import math
import random
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from itertools import accumulate
from pathlib import Path
from xml.etree import ElementTree

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet

from app.exchange.scenario import Scenario, dump_scenario
from app.export import excel, xlsx
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
            fee_ct_per_kwh=1.0 + k,
            next_fee_ct_per_kwh=1.5 + k,
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


def export(store: OperatorStore, start=None, end=None, markets=MARKETS, **kwargs) -> openpyxl.Workbook:
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
        assert ws.column_dimensions["A"].width == 22
        assert ws.column_dimensions["N"].width == 16
    assert HEADERS[0] == "Slot start (simulated, scenario's zone)"  # says which clock, which zone
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
    assert formats["min_trade_rate"] == formats["fee_ct_per_kwh"] == formats["market_fee_revenue"] == "0.00"
    assert formats["total_traded_energy_kWh"] == formats["import_kwh"] == formats["unmatched_kwh"] == "0.000"
    assert formats["self_sufficiency"] == formats["self_consumption"] == "0.0"
    assert row[COL["import_kwh"]].value == pytest.approx(1.125)
    assert row[COL["fee_ct_per_kwh"]].value == 1.0
    assert row[COL["next_fee_ct_per_kwh"]].value == 1.5


def test_values_the_exchange_did_not_give_are_empty_cells(data):
    first = body(export(data.store)["Grid"])[0]  # nothing traded in the first slot
    assert first[COL["min_trade_rate"]] is None
    assert first[COL["max_trade_rate"]] is None
    assert first[COL["self_sufficiency"]] is None
    assert first[COL["total_traded_energy_kWh"]] == 0


def with_values(store: OperatorStore, monkeypatch, **replace) -> None:
    """Make the store's history give ``replace``'s values (field -> value) in every row."""
    real = store.history_chunks

    def patched(market_uuid, start=None, end=None, fields=HISTORY_FIELDS, size=2000):
        at = {f: i for i, f in enumerate(fields, 1)}
        for chunk in real(market_uuid, start, end, fields, size):
            rows = [list(r) for r in chunk]
            for r in rows:
                for field, value in replace.items():
                    r[at[field]] = value
            yield [tuple(r) for r in rows]

    monkeypatch.setattr(store, "history_chunks", patched)


def test_not_a_number_from_postgresql_is_written_as_an_empty_cell(data, monkeypatch):
    with_values(data.store, monkeypatch, self_consumption=float("nan"), avg_trade_rate=float("inf"))
    rows = body(export(data.store)["Grid"])
    assert all(r[COL["self_consumption"]] is None and r[COL["avg_trade_rate"]] is None for r in rows)
    assert all(r[COL["import_kwh"]] is not None for r in rows)


def test_a_revenue_that_is_not_a_number_is_empty_and_left_out_of_the_running_sum(data, monkeypatch):
    with_values(data.store, monkeypatch, market_fee_revenue=float("-inf"))
    rows = body(export(data.store)["Grid"])
    assert [r[COL["market_fee_revenue"]] for r in rows] == [None] * N_SLOTS
    assert [r[COL[excel._CUMULATIVE]] for r in rows] == [0.0] * N_SLOTS


def test_gaps_anywhere_in_a_row_leave_exactly_those_cells_empty(data, monkeypatch):
    rnd = random.Random(3)
    real = data.store.history_chunks
    written = []

    def gappy(market_uuid, start=None, end=None, fields=HISTORY_FIELDS, size=2000):
        for chunk in real(market_uuid, start, end, fields, size):
            rows = []
            for r in chunk:
                values = [rnd.choice([None, math.nan, math.inf, v, v, v]) for v in r[1:]]
                rows.append((r[0], *values))
                if market_uuid == "m-grid":
                    written.append(dict(zip(fields, values, strict=True)))
            yield rows

    monkeypatch.setattr(data.store, "history_chunks", gappy)
    rows = body(export(data.store)["Grid"])
    assert len(rows) == len(written) == N_SLOTS
    cumulative = 0.0
    for row, source in zip(rows, written, strict=True):
        for field, value in source.items():
            got = row[COL[field]]
            if value is None or not math.isfinite(value):
                assert got is None, field
            else:
                assert got == value and isinstance(got, float), field
        revenue = source["market_fee_revenue"]
        cumulative += revenue if revenue is not None and math.isfinite(revenue) else 0.0
        assert row[COL[excel._CUMULATIVE]] == pytest.approx(cumulative)


def test_a_slot_that_is_no_label_is_kept_as_text(data, monkeypatch):
    real = data.store.history_chunks

    def odd(market_uuid, start=None, end=None, fields=HISTORY_FIELDS, size=2000):
        for chunk in real(market_uuid, start, end, fields, size):
            yield [("slot <7> & more", *chunk[0][1:]), *chunk[1:]]

    monkeypatch.setattr(data.store, "history_chunks", odd)
    ws = export(data.store)["Grid"]
    assert ws["A2"].value == "slot <7> & more" and ws["A2"].data_type == "s"
    assert ws["A3"].value == dt.datetime.fromisoformat(SLOTS[1])
    assert ws.max_row == 1 + N_SLOTS


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


def test_history_is_read_market_by_market_with_one_query_in_chunks(data, monkeypatch):
    monkeypatch.setattr(excel, "CHUNK_ROWS", 5)
    calls = []
    real = data.store.history_chunks

    def spy(market_uuid, start=None, end=None, fields=HISTORY_FIELDS, size=2000):
        calls.append((market_uuid, start, end, size))
        for chunk in real(market_uuid, start, end, fields, size):
            calls.append(len(chunk))
            yield chunk

    monkeypatch.setattr(data.store, "history_chunks", spy)
    wb = export(data.store, SLOTS[1], None)
    assert calls == [x for m in MARKETS for x in ((m["uuid"], SLOTS[1], None, 5), 5, 5, 1)]
    assert labels(wb["Grid"]) == SLOTS[1:]


# -- commands, settings, scenario ---------------------------------------------------------------


def test_commands_sheet_lists_every_command_oldest_first_with_its_outcome(data):
    wb = export(data.store)
    ws = wb[COMMANDS_SHEET]
    assert [c.value for c in ws[1]] == [
        "Created at (wall-clock, UTC)",
        "Market",
        "Fee [ct/kWh]",
        "Source",
        "Status",
        "Applies from slot (simulated, scenario's zone)",
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
        "Changed at (wall-clock, UTC)",
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


def test_a_failed_export_raises_leaves_no_temporary_files_and_the_next_one_works(
    data, monkeypatch, tmp_path: Path
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    real, calls = data.store.history_chunks, []

    def failing(market_uuid, *args):
        calls.append(market_uuid)
        if len(calls) == 3:
            raise OSError("database went away")
        yield from real(market_uuid, *args)

    monkeypatch.setattr(data.store, "history_chunks", failing)
    with pytest.raises(OSError, match="database went away"):
        history_workbook_bytes(data.store, MARKETS)
    assert calls == ["m-grid", "m-west", "m-long"]
    assert list((tmp_path / "tmp").iterdir()) == []
    monkeypatch.setattr(data.store, "history_chunks", real)
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


# -- text, package ------------------------------------------------------------------------------

ODD_TEXT = 'Föhr & "Süd" <Netz> 東京 ≥ 5 ct'


def test_markup_characters_and_non_ascii_text_survive_everywhere(data):
    markets = [{"uuid": "m-grid", "name": ODD_TEXT, "level": 0}, *MARKETS[1:]]
    data.store.queue("m-west", ODD_TEXT, 2.0, f"manual:{ODD_TEXT}", "zoë", running_slot=SLOTS[3])
    scenario = f"name: {ODD_TEXT}\n  <tag> & 'quote'\n"
    wb = export(data.store, markets=markets, scenario_text=scenario)
    title = wb.sheetnames[0]
    assert title == ODD_TEXT  # nothing Excel forbids in a title, and 31 characters
    assert labels(wb[title]) == SLOTS
    commands = body(wb[COMMANDS_SHEET])
    assert (ODD_TEXT, 2.0, f"manual:{ODD_TEXT}", "zoë") in [(r[1], r[2], r[3], r[7]) for r in commands]
    rows = list(wb[SETTINGS_SHEET].iter_rows(values_only=True))
    assert rows[1][0] == ODD_TEXT and rows[1][2] == ODD_TEXT
    assert [r[0] for r in rows[-2:]] == [f"name: {ODD_TEXT}", "  <tag> & 'quote'"]


def test_excel_escape_sequences_in_text_are_written_so_excel_shows_them_literally():
    # Excel reads "_x0041_" in a cell as "A"; openpyxl does not unescape, so look at the XML
    assert xlsx.xml_text("a_x0041_b_x12_") == "a_x005F_x0041_b_x12_"
    assert xlsx.xml_text('<&">') == "&lt;&amp;&quot;&gt;"
    assert xlsx.xml_text("bell\x07 and \ufffe gone, tab\tkept") == "bell and  gone, tab\tkept"
    assert xlsx.xml_text("x" * 40000) == "x" * 32767


def test_the_package_is_well_formed_with_every_part_declared_and_deflated(data):
    raw = history_workbook_bytes(data.store, MARKETS, scenario_text="a: 1\n")
    with zipfile.ZipFile(BytesIO(raw)) as z:
        assert z.testzip() is None
        names = z.namelist()
        assert names[0] == "[Content_Types].xml"
        for name in names:
            ElementTree.fromstring(z.read(name))  # every part is well-formed XML
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
        types = z.read("[Content_Types].xml").decode()
        sheets = sorted(n for n in names if n.startswith("xl/worksheets/"))
        assert len(sheets) == len(MARKETS) + 2
        for part in [*sheets, "xl/workbook.xml", "xl/styles.xml", "docProps/core.xml", "docProps/app.xml"]:
            assert f'PartName="/{part}"' in types
        rels = z.read("xl/_rels/workbook.xml.rels").decode()
        assert all(f'Target="{n.removeprefix("xl/")}"' in rels for n in sheets)
        assert z.read("xl/worksheets/sheet1.xml").count(b'tabSelected="1"') == 1
        assert b"tabSelected" not in z.read("xl/worksheets/sheet2.xml")


def test_the_workbook_streams_into_a_file_that_cannot_seek(data):
    class Pipe:  # what a web server's response stream offers: write, no seek or tell
        def __init__(self) -> None:
            self.parts: list[bytes] = []

        def write(self, b: bytes) -> int:
            self.parts.append(bytes(b))
            return len(b)

        def flush(self) -> None:
            pass

    pipe = Pipe()
    write_history_workbook(pipe, data.store, MARKETS, None, None, None, None)
    wb = load(b"".join(pipe.parts))
    assert labels(wb["Grid"]) == SLOTS and len(pipe.parts) > 3


def test_every_column_of_every_sheet_has_its_width_and_a_bold_wrapped_header(data):
    wb = export(data.store)
    sheets = [(ws, HISTORY_COLUMNS) for ws in wb.worksheets[:3]]
    sheets += [(wb[COMMANDS_SHEET], excel.COMMAND_COLUMNS), (wb[SETTINGS_SHEET], excel.SETTING_COLUMNS)]
    for ws, columns in sheets:
        for i, column in enumerate(columns, 1):
            letter = xlsx.column_letter(i)
            assert ws.column_dimensions[letter].width == column.width, (ws.title, letter)
            assert ws.cell(1, i).value == column.header
            assert ws.cell(1, i).font.bold and ws.cell(1, i).alignment.wrap_text
        assert ws.row_dimensions[1].height == xlsx.HEADER_HEIGHT
    assert wb[SETTINGS_SHEET].freeze_panes is None
    assert [xlsx.column_letter(i) for i in (1, 15, 26, 27, 52, 703)] == ["A", "O", "Z", "AA", "AZ", "AAA"]


def test_numbers_of_the_commands_and_settings_sheets_are_numbers_with_their_formats(data):
    wb = export(data.store)
    ws = wb[COMMANDS_SHEET]
    assert ws["A2"].is_date and ws["A2"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert ws["C2"].data_type == "n" and ws["C2"].value == 3.0
    assert ws["F2"].is_date and ws["F2"].number_format == "yyyy-mm-dd hh:mm"
    settings = wb[SETTINGS_SHEET]
    assert (
        settings["B2"].value == 0 and settings["B2"].data_type == "n" and settings["B2"].number_format == "0"
    )
    assert settings["E2"].value == 2.5 and settings["E2"].number_format == "0.00"
    assert settings["H2"].is_date and settings["H2"].number_format == "yyyy-mm-dd hh:mm:ss"


def test_market_names_with_markup_or_the_same_cut_get_unique_valid_titles(data):
    long = "Netzgebiet Süd & Ost <Umspannwerk> Nummer "
    markets = [
        {"uuid": "m-grid", "name": long + "1", "level": 0},
        {"uuid": "m-west", "name": long + "2", "level": 1},
        {"uuid": "m-long", "name": 'a/b\\c?d*e[f]g:"h"', "level": 1},
    ]
    wb = export(data.store, markets=markets)
    assert wb.sheetnames[:3] == [long[:31].rstrip(), long[:27].rstrip() + " (2)", 'a_b_c_d_e_f_g_"h"']
    for title in wb.sheetnames[:3]:
        assert labels(wb[title]) == SLOTS


def test_an_empty_range_gives_a_valid_workbook_with_header_rows_only(data):
    raw = history_workbook_bytes(data.store, MARKETS, "2030-01-01", "2030-01-01", "a: 1\n")
    with zipfile.ZipFile(BytesIO(raw)) as z:
        for name in z.namelist():
            ElementTree.fromstring(z.read(name))
    wb = load(raw)
    for ws in [*wb.worksheets[:3], wb[COMMANDS_SHEET]]:
        assert ws.max_row == 1 and [c.value for c in ws[1]][0] is not None
        assert ws.freeze_panes == "A2"
    assert wb[SETTINGS_SHEET]["A2"].value == "Grid"


def test_an_output_that_fails_while_writing_raises_its_error(data):
    class Full:  # a disk that fills up after 100 kB
        def __init__(self) -> None:
            self.size = 0

        def write(self, b: bytes) -> int:
            self.size += len(b)
            if self.size > 100_000:
                raise OSError(28, "No space left on device")
            return len(b)

        def flush(self) -> None:
            pass

    markets = [
        {"uuid": m["uuid"], "name": f"{m['name']} {i}", "level": 1} for i in range(40) for m in MARKETS
    ]
    with pytest.raises(OSError, match="No space left"):
        write_history_workbook(Full(), data.store, markets, None, None, None, None)


def test_the_history_streams_from_either_backend_and_nan_is_an_empty_cell(store_url: str):
    # PostgreSQL reads through a server-side cursor and keeps NaN (SQLite turns it into NULL)
    engine = make_engine(store_url)
    metadata.create_all(engine)
    store = OperatorStore(engine)
    rows = history_rows(MARKETS[0], 0)
    for row in rows[::2]:
        row["self_consumption"] = float("nan")
    assert store.append_history(rows) == N_SLOTS
    chunks = list(store.history_chunks("m-grid", SLOTS[1], None, ("import_kwh",), size=5))
    assert [len(c) for c in chunks] == [5, 5, 1]
    assert chunks[0][0] == (SLOTS[1], 1.125)
    wb = export(store, markets=MARKETS[:1])
    got = body(wb["Grid"])
    assert labels(wb["Grid"]) == SLOTS
    assert [r[COL["self_consumption"]] for r in got] == [None if i % 2 == 0 else 80.0 for i in range(N_SLOTS)]
    engine.dispose()


def test_slot_columns_name_the_exchanges_zone():
    from app.export.excel import COMMAND_COLUMNS, HISTORY_COLUMNS, zoned

    assert zoned(HISTORY_COLUMNS, "Europe/Berlin")[0].header == "Slot start (simulated, Europe/Berlin)"
    headers = [c.header for c in zoned(COMMAND_COLUMNS, "Europe/Berlin")]
    assert "Applies from slot (simulated, Europe/Berlin)" in headers
    assert "Created at (wall-clock, UTC)" in headers  # wall-clock stays UTC, named
    assert zoned(HISTORY_COLUMNS, None) == HISTORY_COLUMNS
