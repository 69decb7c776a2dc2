"""The history workbook: one sheet per market, the fee commands, the settings and the scenario.

``write_history_workbook(out, store, markets, start, end, scenario_text, settings_rows)`` streams an
.xlsx into ``out`` with the project's one Excel writer (:mod:`app.export.xlsx`), a chunk of rows at
a time, so memory stays flat however long the history is. History is read market by market with
one ordered query each (``OperatorStore.history_chunks``, ``CHUNK_ROWS`` rows at a time), fee
commands ``CHUNK_ROWS`` at a time in id order. For a Dash download::

    dcc.send_bytes(lambda out: write_history_workbook(out, store, markets, start, end, text, None),
                   export_filename(start, end))

Sheets, in order:

* one per market in ``markets`` (title: its name, sanitised and made unique, see ``sheet_titles``),
  one row per stored slot in [start, end], the header row frozen. Slots are local times (the slot
  labels, as real datetimes); rates and fees [ct/kWh], energies [kWh], shares [%], revenue [ct].
  ``Cumulative fee revenue`` is the running sum from the first exported slot. Empty cells are
  values the exchange did not give (no trade, nothing consumed or produced, or NaN/inf).
* ``Fee commands``: one row per command, oldest first. With a range, only the commands whose slot
  (``applies_from_slot``, else the slot running when it was queued) is in the range.
* ``Scenario and settings``: the fee setting of each market (and which sheet holds it), then the
  scenario text, one line per row.

Cells are written as :mod:`app.export.xlsx` says (numbers with a fixed-decimal format, slots as
date cells, text escaped and never a formula). A history row is one compiled f-string per pattern
of gaps (``_HistoryRows``): the rows are most of an export's time.

Speed: 100 markets x 30 days (288,000 slot rows, 15 columns, ~200 MB of sheet XML, a 56 MB file)
take ~5.5 s of one core (``bench/console_export.py``): ~2 s ``repr`` of the floats, ~1 s the rest
of the rows' XML, ~1.7 s deflating at ``COMPRESSLEVEL`` 1 (the default level 6 makes the file
~15 % smaller and takes three times as long), ~0.9 s reading the store. Memory stays at a few MB
above the output: one chunk of rows at a time.

``start`` and ``end`` are slot labels ``YYYY-MM-DDTHH:mm`` (inclusive, compared as slot numbers) or
dates ``YYYY-MM-DD`` (start: from 00:00, end: to the end of that day); None or "" is open.
Timestamps of commands and settings (unix seconds) are written in UTC.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict, replace
from io import BytesIO
from typing import BinaryIO

from app.exchange.stat_table import STAT
from app.export import xlsx
from app.export.xlsx import (
    BOLD_STYLE,
    RATE,
    REVENUE,
    SLOT_FORMAT,
    TIME_FORMAT,
    Column,
    Sheet,
    Workbook,
    label_serial,
    number_style,
    slot_value,
    unix_serial,
    xml_text,
)
from app.operator.store import HISTORY_FIELDS, OperatorStore

CHUNK_ROWS = 2000  # history slots / fee commands read per query, rows written to the zip at once
COMMANDS_SHEET = "Fee commands"
SETTINGS_SHEET = "Scenario and settings"
_LABEL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_UNSAFE_FILENAME = re.compile(r"[^0-9A-Za-z_.-]+")
_CUMULATIVE = "cumulative"


def _stat_column(key: str) -> Column:
    stat = STAT[key]
    return Column(stat.header, key, stat.number_format, 14)


# The statistics the history keeps (app.exchange.stat_table), in its order, with the running sum
# of the fee revenue after the revenue
HISTORY_COLUMNS = (
    Column("Slot start (simulated, scenario's zone)", "slot", SLOT_FORMAT, 22),
    *(
        column
        for key in HISTORY_FIELDS
        for column in (
            (_stat_column(key), Column("Cumulative fee revenue [ct]", _CUMULATIVE, REVENUE, 16))
            if key == "market_fee_revenue"
            else (_stat_column(key),)
        )
    ),
)

COMMAND_COLUMNS = (
    Column("Created at (wall-clock, UTC)", "created_at", TIME_FORMAT, 22),
    Column("Market", "market_name", None, 28),
    Column("Fee [ct/kWh]", "fee_ct_per_kwh", RATE, 12),
    Column("Source", "source", None, 32),
    Column("Status", "status", None, 11),
    Column("Applies from slot (simulated, scenario's zone)", "applies_from_slot", SLOT_FORMAT, 22),
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
    Column("Changed at (wall-clock, UTC)", "changed_at", TIME_FORMAT, 22),
    Column("Market UUID", "market_uuid", None, 38),
)


def zoned(columns: tuple[Column, ...], time_zone: str | None) -> tuple[Column, ...]:
    """``columns`` with "scenario's zone" in their headers replaced by ``time_zone``'s name."""
    if not time_zone:
        return columns
    return tuple(replace(c, header=c.header.replace("scenario's zone", time_zone)) for c in columns)


# The history fields in the order of the sheet's columns (without the slot and the running sum)
_HISTORY_FIELDS = tuple(c.key for c in HISTORY_COLUMNS[1:] if c.key != _CUMULATIVE)


# -- public API ---------------------------------------------------------------------------------


def write_history_workbook(
    out: BinaryIO,
    store: OperatorStore,
    markets: list[dict],
    start: str | None = None,
    end: str | None = None,
    scenario_text: str | None = None,
    settings_rows: list[dict] | None = None,
    time_zone: str | None = None,
) -> None:
    """Write the workbook into ``out`` (a binary file, seekable or not).

    ``time_zone``: the exchange's zone of the slot labels (IANA name); the slot columns' headers
    name it ("Slot start (simulated, Europe/Berlin)"), else say "scenario's zone".

    ``markets``: ``{"uuid", "name", "level"}`` each, one sheet per entry in this order; a uuid the
    store has no history for gives a sheet with the header only. ``settings_rows``: dicts with the
    fields of ``FeeSetting`` (``market_uuid``, ``mode``, ``manual_fee_ct_per_kwh``, ``model``,
    ``changed_by``, ``changed_at``); None reads them from ``store.settings()``.

    Raises ValueError when ``start`` or ``end`` is not a slot label or date, or start is after end
    (before anything is written to ``out``). An error while writing leaves ``out`` incomplete.
    """
    start, end = normalise_range(start, end)
    titles = sheet_titles([str(m.get("name") or m.get("uuid") or "") for m in markets])
    all_titles = [*titles, COMMANDS_SHEET, SETTINGS_SHEET]
    with Workbook(out, all_titles, title="Grid fee history") as wb:
        serials: dict[str, float | None] = {}
        for market in markets:
            with wb.sheet(zoned(HISTORY_COLUMNS, time_zone)) as ws:
                _write_history_sheet(ws, store, str(market.get("uuid")), start, end, serials)
        with wb.sheet(zoned(COMMAND_COLUMNS, time_zone)) as ws:
            _write_commands_sheet(ws, store, start, end)
        if settings_rows is None:
            settings_rows = [asdict(s) for s in store.settings().values()]
        with wb.sheet(SETTING_COLUMNS, freeze=False) as ws:
            _write_settings_sheet(ws, markets, titles, settings_rows, scenario_text)


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
    """A valid, unique sheet title per market name (:func:`app.export.xlsx.sheet_titles`), clear
    of the two sheets that follow the markets."""
    return xlsx.sheet_titles(names, reserved=(COMMANDS_SHEET, SETTINGS_SHEET), blank="Market")


# -- sheets -------------------------------------------------------------------------------------


def _write_history_sheet(
    ws: Sheet,
    store: OperatorStore,
    market_uuid: str,
    start: str | None,
    end: str | None,
    serials: dict[str, float | None],
) -> None:
    """One row per slot, each one call of a row function of ``_HistoryRows``.

    The function of a row with every value known and finite is made once; a row with gaps (SQLite
    gives None, PostgreSQL NaN) takes the one without those cells, made once per pattern of gaps;
    the functions are kept for every sheet and export (``_HISTORY_ROWS``).
    ``serials``: slot label -> Excel serial day, filled as labels come (the markets share them).
    """
    rows = _HISTORY_ROWS
    full = rows.get(())
    revenue_at = _HISTORY_FIELDS.index("market_fee_revenue")
    isfinite = math.isfinite
    cumulative = 0.0
    n = ws.row
    chunks = store.history_chunks(market_uuid, start, end, _HISTORY_FIELDS, CHUNK_ROWS)
    with closing(chunks):
        for chunk in chunks:
            lines = []
            for record in chunk:
                n += 1
                values = record[1:]
                try:
                    serial = serials[record[0]]
                except KeyError:  # a slot not seen yet: once per slot of the export
                    serial = serials[record[0]] = label_serial(record[0])
                if serial is not None and None not in values and isfinite(sum(values)):
                    cumulative += values[revenue_at]  # every value finite: the revenue too
                    lines.append(full(str(n), serial, *values, cumulative))
                    continue
                revenue = values[revenue_at]
                if revenue is not None and isfinite(revenue):
                    cumulative += revenue
                gaps = tuple(i for i, v in enumerate(values) if v is None or not isfinite(v))
                if serial is None:  # not a slot label: keep it as text rather than drop the row
                    row = rows.get(gaps, slot_text=True)
                    lines.append(row(str(n), xml_text(record[0]), *values, cumulative))
                else:
                    lines.append(rows.get(gaps)(str(n), serial, *values, cumulative))
            ws.write_lines(lines)
    ws.row = n


class _HistoryRows:
    """The XML of a history row from (row number, slot, *values in query order, cumulative sum).

    ``get(gaps)`` is a function leaving out the cells of the values at the indices in ``gaps``;
    ``slot_text`` takes the slot as escaped text instead of a serial day. Each function is one
    f-string compiled here from this module's constants (column letters, style numbers): the
    row is most of an export's time, and an f-string is ~25 % faster than ``str.format``, which
    parses its template on every call.
    """

    def __init__(self, letters: list[str]) -> None:
        names = {"slot": "s", _CUMULATIVE: "c", **{key: f"v{i}" for i, key in enumerate(_HISTORY_FIELDS)}}
        self._params = ", ".join(["n", "s", *(f"v{i}" for i in range(len(_HISTORY_FIELDS))), "c"])
        self._cells = [
            (
                names[c.key],
                f'<c r="{letter}{{n}}" s="{number_style(c.number_format)}"><v>{{{names[c.key]}!r}}</v></c>',
            )
            for c, letter in zip(HISTORY_COLUMNS, letters, strict=True)
        ]
        self._slot_text = (
            f'<c r="{letters[0]}{{n}}" t="inlineStr"><is><t xml:space="preserve">{{s}}</t></is></c>'
        )
        self._made: dict[tuple, Callable[..., str]] = {}

    def get(self, gaps: tuple[int, ...], slot_text: bool = False) -> Callable[..., str]:
        key = (gaps, slot_text)
        row = self._made.get(key)
        if row is None:
            skip = {f"v{i}" for i in gaps}
            cells = [cell for name, cell in self._cells if name not in skip]
            if slot_text:
                cells[0] = self._slot_text
            body = '<row r="{n}">' + "".join(cells) + "</row>"
            assert "'" not in body and "\\" not in body  # a plain f-string literal
            row = self._made[key] = eval(f"lambda {self._params}: f'{body}'")
        return row


# The row functions of every history sheet (the same columns, the same letters), made as needed
_HISTORY_ROWS = _HistoryRows([xlsx.column_letter(i) for i in range(1, len(HISTORY_COLUMNS) + 1)])


def _write_commands_sheet(ws: Sheet, store: OperatorStore, start: str | None, end: str | None) -> None:
    for rows in store.command_pages(start, end, CHUNK_ROWS):
        for row in rows:
            row["created_at"] = unix_serial(row["created_at"])
            row["applies_from_slot"] = slot_value(row["applies_from_slot"])
        ws.write_rows(rows)


def _write_settings_sheet(
    ws: Sheet,
    markets: list[dict],
    titles: list[str],
    settings_rows: list[dict],
    scenario_text: str | None,
) -> None:
    by_market = {str(s.get("market_uuid")): s for s in settings_rows}
    exported = set()
    rows = []
    for market, title in zip(markets, titles, strict=True):
        uuid = str(market.get("uuid"))
        exported.add(uuid)
        entry = {"market": market.get("name"), "level": market.get("level"), "sheet": title}
        rows.append(_setting_values(entry, uuid, by_market.get(uuid)))
    for uuid, setting in by_market.items():  # settings of markets not exported
        if uuid not in exported:
            entry = {"market": setting.get("market") or setting.get("name")}
            rows.append(_setting_values(entry, uuid, setting))
    ws.write_rows(rows)
    ws.row += 1  # an empty row
    ws.write_text_lines(["Scenario"], style=BOLD_STYLE)
    if scenario_text is None:
        ws.write_text_lines(["(no scenario given)"])
    else:
        ws.write_text_lines(scenario_text.splitlines())


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
        "changed_at": unix_serial(setting.get("changed_at")),
    }


# -- range, file name ---------------------------------------------------------------------------


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
