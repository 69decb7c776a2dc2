"""The history workbook: one sheet per market, the fee commands, the settings and the scenario.

``write_history_workbook(out, store, markets, start, end, scenario_text, settings_rows)`` streams an
.xlsx into ``out`` with openpyxl's write-only mode: each row goes to a temporary file on disk as it
is appended and the file is zipped into ``out`` once, so memory stays flat however long the history
is. History is read market by market, ``CHUNK_ROWS`` slots at a time, and fee commands
``CHUNK_ROWS`` at a time in id order. For a Dash download::

    dcc.send_bytes(lambda out: write_history_workbook(out, store, markets, start, end, text, None),
                   export_filename(start, end))

Sheets, in order:

* one per market in ``markets`` (title: its name, sanitised and made unique, see ``sheet_titles``),
  one row per stored slot in [start, end], the header row frozen. Slots are local times (the slot
  labels, as real datetimes); rates and fees [ct/kWh], energies [kWh], shares [%], revenue [ct].
  ``Cumulative fee revenue`` is the running sum from the first exported slot. Empty cells are
  values the exchange did not give (no trade, nothing consumed or produced).
* ``Fee commands``: one row per command, oldest first. With a range, only the commands whose slot
  (``applies_from_slot``, else the slot running when it was queued) is in the range.
* ``Scenario and settings``: the fee setting of each market (and which sheet holds it), then the
  scenario text, one line per row.

Speed: openpyxl spends ~10 us on each cell, about 5,000 history rows (15 columns) a second on
the reference machine: a day of 100 markets takes ~2 s, 30 days ~60 s (``bench/console_export.py``),
so a console should run long ranges as a background callback. Memory stays at a few MB; the
sheets wait as XML in temporary files (about 5x the .xlsx) until ``save`` zips them.

``start`` and ``end`` are slot labels ``YYYY-MM-DDTHH:mm`` (inclusive, compared as strings) or
dates ``YYYY-MM-DD`` (start: from 00:00, end: to the end of that day); None or "" is open.
Timestamps of commands and settings (unix seconds) are written in UTC.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import asdict, dataclass
from io import BytesIO
from typing import Any, BinaryIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from sqlalchemy import func, select

from app.operator.store import OperatorStore
from app.store.schema import fee_commands

CHUNK_ROWS = 2000  # history slots / fee commands read per query
COMMANDS_SHEET = "Fee commands"
SETTINGS_SHEET = "Scenario and settings"
MAX_TITLE = 31  # Excel's limit on sheet titles
MAX_CELL_TEXT = 32767  # Excel's limit on the text of one cell

SLOT_FORMAT = "yyyy-mm-dd hh:mm"
TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
RATE, ENERGY, SHARE, REVENUE = "0.00", "0.000", "0.0", "0.00"

_BAD_TITLE_CHARS = re.compile(r"[\[\]:*?/\\]")
_LABEL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_UNSAFE_FILENAME = re.compile(r"[^0-9A-Za-z_.-]+")
_BOLD = Font(bold=True)
_CUMULATIVE = "cumulative"


@dataclass(frozen=True)
class Column:
    header: str
    key: str  # history field, or a key of the rows the sheet is built from
    number_format: str | None  # None: text
    width: float


HISTORY_COLUMNS = (
    Column("Slot (start, local)", "slot", SLOT_FORMAT, 18),
    Column("Min trade rate [ct/kWh]", "min_trade_rate", RATE, 14),
    Column("Median trade rate [ct/kWh]", "median_trade_rate", RATE, 14),
    Column("Avg trade rate [ct/kWh]", "avg_trade_rate", RATE, 14),
    Column("Max trade rate [ct/kWh]", "max_trade_rate", RATE, 14),
    Column("Traded energy [kWh]", "total_traded_energy_kWh", ENERGY, 14),
    Column("Import [kWh]", "import_kwh", ENERGY, 12),
    Column("Export [kWh]", "export_kwh", ENERGY, 12),
    Column("Self-sufficiency [%]", "self_sufficiency", SHARE, 14),
    Column("Self-consumption [%]", "self_consumption", SHARE, 14),
    Column("Fee in force [ct/kWh]", "market_fee", RATE, 13),
    Column("Fee queued [ct/kWh]", "next_market_fee", RATE, 13),
    Column("Fee revenue [ct]", "market_fee_revenue", REVENUE, 13),
    Column("Cumulative fee revenue [ct]", _CUMULATIVE, REVENUE, 16),
    Column("Unmatched energy [kWh]", "unmatched_kwh", ENERGY, 14),
)

COMMAND_COLUMNS = (
    Column("Created at (UTC)", "created_at", TIME_FORMAT, 20),
    Column("Market", "market_name", None, 28),
    Column("Fee [ct/kWh]", "fee_ct_per_kwh", RATE, 12),
    Column("Source", "source", None, 32),
    Column("Status", "status", None, 11),
    Column("Applies from slot (local)", "applies_from_slot", SLOT_FORMAT, 18),
    Column("Reason", "reason", None, 40),
    Column("By", "created_by", None, 14),
    Column("Transaction id", "transaction_id", None, 46),
)

SETTING_COLUMNS = (
    Column("Market", "market", None, 28),
    Column("Level", "level", "0", 7),
    Column("Sheet", "sheet", None, 24),
    Column("Mode", "mode", None, 9),
    Column("Manual fee [ct/kWh]", "manual_fee_ct_per_kwh", RATE, 14),
    Column("Model (JSON)", "model", None, 48),
    Column("Changed by", "changed_by", None, 14),
    Column("Changed at (UTC)", "changed_at", TIME_FORMAT, 20),
    Column("Market UUID", "market_uuid", None, 38),
)


# -- public API ---------------------------------------------------------------------------------


def write_history_workbook(
    out: BinaryIO,
    store: OperatorStore,
    markets: list[dict],
    start: str | None = None,
    end: str | None = None,
    scenario_text: str | None = None,
    settings_rows: list[dict] | None = None,
) -> None:
    """Write the workbook into ``out`` (a binary file, seekable or not).

    ``markets``: ``{"uuid", "name", "level"}`` each, one sheet per entry in this order; a uuid the
    store has no history for gives a sheet with the header only. ``settings_rows``: dicts with the
    fields of ``FeeSetting`` (``market_uuid``, ``mode``, ``manual_fee_ct_per_kwh``, ``model``,
    ``changed_by``, ``changed_at``); None reads them from ``store.settings()``.

    Raises ValueError when ``start`` or ``end`` is not a slot label or date, or start is after end
    (before anything is written to ``out``).
    """
    start, end = normalise_range(start, end)
    titles = sheet_titles([str(m.get("name") or m.get("uuid") or "") for m in markets])
    wb = Workbook(write_only=True)
    try:
        for market, title in zip(markets, titles, strict=True):
            ws = wb.create_sheet(title)
            _write_history_sheet(ws, store, str(market.get("uuid")), start, end)
            ws.close()  # its temporary file is complete: close it rather than hold one open per market
        ws = wb.create_sheet(COMMANDS_SHEET)
        _write_commands_sheet(ws, store, start, end)
        ws.close()
        if settings_rows is None:
            settings_rows = [asdict(s) for s in store.settings().values()]
        _write_settings_sheet(wb.create_sheet(SETTINGS_SHEET), markets, titles, settings_rows, scenario_text)
        wb.save(out)
    except BaseException:
        _discard_temporary_files(wb)
        raise


def history_workbook_bytes(
    store: OperatorStore,
    markets: list[dict],
    start: str | None = None,
    end: str | None = None,
    scenario_text: str | None = None,
    settings_rows: list[dict] | None = None,
) -> bytes:
    """``write_history_workbook`` into memory; the .xlsx file's bytes."""
    buffer = BytesIO()
    write_history_workbook(buffer, store, markets, start, end, scenario_text, settings_rows)
    return buffer.getvalue()


def export_filename(start: str | None, end: str | None) -> str:
    """``grid-fees_2026-06-22T00-00_2026-06-23T00-00.xlsx``; only ``[0-9A-Za-z_.-]``.

    An open end is ``first`` / ``last``; with neither bound: ``grid-fees_all.xlsx``.
    """
    start, end = (str(v).strip() if v is not None else "" for v in (start, end))
    if not start and not end:
        return "grid-fees_all.xlsx"
    return f"grid-fees_{_filename_part(start, 'first')}_{_filename_part(end, 'last')}.xlsx"


def normalise_range(start: str | None, end: str | None) -> tuple[str | None, str | None]:
    """The bounds as slot labels (dates widened to whole days); ValueError when unusable."""
    lo, hi = _bound(start, "start"), _bound(end, "end")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"start {start!r} is after end {end!r}: nothing to export")
    return lo, hi


def sheet_titles(names: list[str]) -> list[str]:
    """A valid, unique sheet title per name, in order.

    Excel forbids ``[]:*?/\\``, a leading or trailing apostrophe, more than 31 characters and
    "History"; titles are compared without case. Forbidden characters become ``_``, long names
    are cut, and a repeated title gets `` (2)``, `` (3)``… within the 31 characters. The titles of
    the two sheets that follow the markets are taken too.
    """
    taken = {"history", COMMANDS_SHEET.casefold(), SETTINGS_SHEET.casefold()}
    titles = []
    for name in names:
        base = _BAD_TITLE_CHARS.sub("_", ILLEGAL_CHARACTERS_RE.sub("", name)).strip().strip("'").strip()
        base = base[:MAX_TITLE].rstrip().rstrip("'") or "Market"
        title, n = base, 1
        while title.casefold() in taken:
            n += 1
            suffix = f" ({n})"
            title = base[: MAX_TITLE - len(suffix)].rstrip().rstrip("'") + suffix
        taken.add(title.casefold())
        titles.append(title)
    return titles


# -- sheets -------------------------------------------------------------------------------------


def _write_history_sheet(
    ws: WriteOnlyWorksheet, store: OperatorStore, market_uuid: str, start: str | None, end: str | None
) -> None:
    _begin(ws, HISTORY_COLUMNS)
    # One styled cell per column, refilled for every row: openpyxl writes a row as it is appended,
    # so reusing the cells is safe and saves a cell and a style lookup per value (~1/8 of the time).
    slot_cell, *value_cells = (_template(ws, c) for c in HISTORY_COLUMNS)
    keys = [c.key for c in HISTORY_COLUMNS[1:]]
    cumulative = 0.0
    isfinite, from_label = math.isfinite, dt.datetime.fromisoformat
    for chunk in _history_chunks(store, market_uuid, start, end):
        for record in chunk:
            revenue = record["market_fee_revenue"]
            if revenue is not None and isfinite(revenue):
                cumulative += revenue
            try:
                slot_cell.value = from_label(record["slot"])
            except ValueError:  # not a label; keep it as text rather than drop the row
                slot_cell.value = _clean_text(record["slot"])
            row: list[Any] = [slot_cell]
            for key, cell in zip(keys, value_cells, strict=True):
                value = cumulative if key == _CUMULATIVE else record[key]
                if value is None or not isfinite(value):  # SQLite gives None, PostgreSQL NaN
                    row.append(None)
                else:
                    cell.value = value
                    row.append(cell)
            ws.append(row)


def _history_chunks(
    store: OperatorStore, market_uuid: str, start: str | None, end: str | None
) -> Iterator[list[dict]]:
    """The market's rows in [start, end], oldest first, at most ``CHUNK_ROWS`` per list."""
    slots = store.slots(market_uuid)
    lo = 0 if start is None else bisect_left(slots, start)
    hi = len(slots) if end is None else bisect_right(slots, end)
    for i in range(lo, hi, CHUNK_ROWS):
        yield store.history(market_uuid, slots[i], slots[min(i + CHUNK_ROWS, hi) - 1])


def _write_commands_sheet(ws: WriteOnlyWorksheet, store: OperatorStore, start: str | None, end: str | None):
    _begin(ws, COMMAND_COLUMNS)
    c = fee_commands.c
    slot = func.coalesce(c.applies_from_slot, c.running_slot)
    query = select(fee_commands).where(c.exchange == store.exchange)
    if start is not None:
        query = query.where(slot >= start)
    if end is not None:
        query = query.where(slot <= end)
    last_id = None
    while True:
        page = query if last_id is None else query.where(c.id > last_id)
        with store.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(page.order_by(c.id).limit(CHUNK_ROWS))]
        for row in rows:
            row["created_at"] = _utc(row["created_at"])
            row["applies_from_slot"] = _slot(row["applies_from_slot"])
            ws.append(_row(ws, COMMAND_COLUMNS, row))
        if len(rows) < CHUNK_ROWS:
            return
        last_id = rows[-1]["id"]


def _write_settings_sheet(
    ws: WriteOnlyWorksheet,
    markets: list[dict],
    titles: list[str],
    settings_rows: list[dict],
    scenario_text: str | None,
) -> None:
    _begin(ws, SETTING_COLUMNS, freeze=False)
    by_market = {str(s.get("market_uuid")): s for s in settings_rows}
    exported = set()
    for market, title in zip(markets, titles, strict=True):
        uuid = str(market.get("uuid"))
        exported.add(uuid)
        entry = {"market": market.get("name"), "level": market.get("level"), "sheet": title}
        ws.append(_row(ws, SETTING_COLUMNS, _setting_values(entry, uuid, by_market.get(uuid))))
    for uuid, setting in by_market.items():  # settings of markets not exported
        if uuid not in exported:
            entry = {"market": setting.get("market") or setting.get("name")}
            ws.append(_row(ws, SETTING_COLUMNS, _setting_values(entry, uuid, setting)))
    ws.append([])
    ws.append([_text_cell(ws, "Scenario", bold=True)])
    if scenario_text is None:
        ws.append([_text_cell(ws, "(no scenario given)")])
        return
    for line in scenario_text.splitlines():
        ws.append([_text_cell(ws, line)] if line else [])


def _setting_values(entry: dict, market_uuid: str, setting: dict | None) -> dict:
    entry["market_uuid"] = market_uuid
    if setting is None:
        return entry
    model = setting.get("model")
    if model is not None and not isinstance(model, str):
        model = json.dumps(model, sort_keys=True)
    return {
        **entry,
        "mode": setting.get("mode"),
        "manual_fee_ct_per_kwh": setting.get("manual_fee_ct_per_kwh"),
        "model": model,
        "changed_by": setting.get("changed_by"),
        "changed_at": _utc(setting.get("changed_at")),
    }


def _discard_temporary_files(wb: Workbook) -> None:
    """Remove the files of the sheets written so far after a failure.

    openpyxl removes a write-only sheet's temporary file when ``save`` has zipped it, else only when
    the process exits: a web worker would keep every failed export's files (hundreds of MB for a
    long range) until restarted. ``_writer`` is openpyxl's (3.1) and the only handle on them.
    """
    for ws in wb.worksheets:
        with suppress(Exception):
            if not ws.closed:
                ws.close()  # ends its row stream and closes its file
        writer = getattr(ws, "_writer", None)
        if writer is not None:
            with suppress(OSError, ValueError):  # already removed by a save that failed later
                writer.cleanup()


# -- cells --------------------------------------------------------------------------------------


def _begin(ws: WriteOnlyWorksheet, columns: tuple[Column, ...], freeze: bool = True) -> None:
    """Widths and frozen header (write-only sheets take them before the first row), header row."""
    for i, column in enumerate(columns, 1):
        ws.column_dimensions[get_column_letter(i)].width = column.width
    if freeze:
        ws.freeze_panes = "A2"
    ws.append([_text_cell(ws, c.header, bold=True) for c in columns])


def _template(ws: WriteOnlyWorksheet, column: Column) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws)
    if column.number_format is not None:
        cell.number_format = column.number_format
    return cell


def _row(ws: WriteOnlyWorksheet, columns: tuple[Column, ...], values: dict) -> list:
    """Cells of one row of a short sheet: text as text (never a formula), numbers formatted."""
    row: list[Any] = []
    for column in columns:
        value = values.get(column.key)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            row.append(None)
        elif column.number_format is None or isinstance(value, str):
            row.append(_text_cell(ws, value))
        else:
            cell = WriteOnlyCell(ws, value)
            cell.number_format = column.number_format
            row.append(cell)
    return row


def _text_cell(ws: WriteOnlyWorksheet, value: Any, bold: bool = False) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, _clean_text(value))
    cell.data_type = "s"  # "=..." stays text: a market name or reason is never run as a formula
    if bold:
        cell.font = _BOLD
    return cell


def _clean_text(value: Any) -> str:
    return ILLEGAL_CHARACTERS_RE.sub("", str(value))[:MAX_CELL_TEXT]


def _utc(timestamp: float | None) -> dt.datetime | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).replace(tzinfo=None)


def _slot(label: str | None) -> dt.datetime | str | None:
    if label is None:
        return None
    try:
        return dt.datetime.fromisoformat(label)
    except ValueError:
        return label


def _bound(value: str | None, which: str) -> str | None:
    if value is None or not str(value).strip():
        return None
    given = str(value).strip()
    label = given + ("T00:00" if which == "start" else "T23:59") if _DATE.fullmatch(given) else given
    if _LABEL.fullmatch(label):
        try:
            dt.datetime.fromisoformat(label)
            return label
        except ValueError:
            pass
    raise ValueError(f"{which} must be a slot label YYYY-MM-DDTHH:mm or a date YYYY-MM-DD, got {given!r}")


def _filename_part(value: str, missing: str) -> str:
    return _UNSAFE_FILENAME.sub("-", value).strip("-.")[:40] or missing
