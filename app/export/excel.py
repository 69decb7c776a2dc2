"""The history workbook: one sheet per market, the fee commands, the settings and the scenario.

``write_history_workbook(out, store, markets, start, end, scenario_text, settings_rows)`` streams an
.xlsx into ``out``: the SpreadsheetML is generated here and each worksheet is deflated straight into
its zip entry (``ZipFile.open(name, "w")``) a chunk of rows at a time, so nothing waits in temporary
files and memory stays flat however long the history is. History is read market by market with one
ordered query each (``OperatorStore.history_chunks``, ``CHUNK_ROWS`` rows at a time), fee commands
``CHUNK_ROWS`` at a time in id order. For a Dash download::

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

Cells: numbers are written with ``repr`` (the shortest text that reads back as the same float)
and a fixed-decimal number format; datetimes as Excel serial days (1900 date system) with a date
format; text as inline strings, XML-escaped, with characters XML cannot hold dropped, Excel's
``_xHHHH_`` escapes protected and at most 32,767 characters. Text is never a formula.

Speed: 100 markets x 30 days (288,000 slot rows, 15 columns, ~200 MB of sheet XML, a 56 MB file)
take ~5.5 s of one core (``bench/console_export.py``): ~2 s ``repr`` of the floats, ~1 s the rest
of the rows' XML, ~1.7 s deflating at ``COMPRESSLEVEL`` 1 (the default level 6 makes the file
~15 % smaller and takes three times as long), ~0.9 s reading the store. Memory stays at a few MB
above the output: one chunk of rows at a time.

``start`` and ``end`` are slot labels ``YYYY-MM-DDTHH:mm`` (inclusive, compared as strings) or
dates ``YYYY-MM-DD`` (start: from 00:00, end: to the end of that day); None or "" is open.
Timestamps of commands and settings (unix seconds) are written in UTC.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import zipfile
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import asdict, dataclass, replace
from io import BytesIO
from typing import Any, BinaryIO

from sqlalchemy import func, select

from app.operator.store import OperatorStore
from app.store.schema import fee_commands

CHUNK_ROWS = 2000  # history slots / fee commands read per query, rows written to the zip at once
COMPRESSLEVEL = 1
COMMANDS_SHEET = "Fee commands"
SETTINGS_SHEET = "Scenario and settings"
MAX_TITLE = 31  # Excel's limit on sheet titles
MAX_CELL_TEXT = 32767  # Excel's limit on the text of one cell
HEADER_HEIGHT = 45  # [pt] three lines of wrapped header text

SLOT_FORMAT = "yyyy-mm-dd hh:mm"
TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
RATE, ENERGY, SHARE, REVENUE = "0.00", "0.000", "0.0", "0.00"

_BAD_TITLE_CHARS = re.compile(r"[\[\]:*?/\\]")
# Characters XML 1.0 cannot hold (controls other than tab, newline and return; lone surrogates; FFFE/F)
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_EXCEL_ESCAPE = re.compile(r"_(x[0-9A-Fa-f]{4}_)")  # Excel reads "_x0041_" as "A": write "_x005F_x0041_"
_LABEL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_UNSAFE_FILENAME = re.compile(r"[^0-9A-Za-z_.-]+")
_CUMULATIVE = "cumulative"
_EPOCH = dt.date(1899, 12, 30).toordinal()  # serial day 0 of Excel's 1900 date system (from 1900-03-01)
_UNIX_EPOCH_SERIAL = 25569  # 1970-01-01
_DAYS_IN_MINUTES = {f"{m // 60:02d}:{m % 60:02d}": m / 1440 for m in range(1440)}


@dataclass(frozen=True)
class Column:
    header: str
    key: str  # history field, or a key of the rows the sheet is built from
    number_format: str | None  # None: text
    width: float


HISTORY_COLUMNS = (
    Column("Slot start (simulated, scenario's zone)", "slot", SLOT_FORMAT, 22),
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
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESSLEVEL) as zf:
        zf.writestr("[Content_Types].xml", _content_types(len(all_titles)))
        zf.writestr("_rels/.rels", _ROOT_RELS)
        zf.writestr("docProps/app.xml", _APP_PROPS)
        zf.writestr("docProps/core.xml", _core_props(dt.datetime.now(dt.UTC)))
        zf.writestr("xl/workbook.xml", _workbook(all_titles))
        zf.writestr("xl/_rels/workbook.xml.rels", _workbook_rels(len(all_titles)))
        zf.writestr("xl/styles.xml", _STYLES)
        serials: dict[str, float | None] = {}
        for sheet, market in enumerate(markets, 1):
            with _Sheet(zf, sheet, zoned(HISTORY_COLUMNS, time_zone)) as ws:
                _write_history_sheet(ws, store, str(market.get("uuid")), start, end, serials)
        with _Sheet(zf, len(markets) + 1, zoned(COMMAND_COLUMNS, time_zone)) as ws:
            _write_commands_sheet(ws, store, start, end)
        if settings_rows is None:
            settings_rows = [asdict(s) for s in store.settings().values()]
        with _Sheet(zf, len(markets) + 2, SETTING_COLUMNS, freeze=False) as ws:
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
    """A valid, unique sheet title per name, in order.

    Excel forbids ``[]:*?/\\``, a leading or trailing apostrophe, more than 31 characters and
    "History"; titles are compared without case. Forbidden characters become ``_``, characters
    XML cannot hold are dropped, long names are cut, and a repeated title gets `` (2)``, `` (3)``…
    within the 31 characters. The titles of the two sheets that follow the markets are taken too.
    """
    taken = {"history", COMMANDS_SHEET.casefold(), SETTINGS_SHEET.casefold()}
    titles = []
    for name in names:
        base = _BAD_TITLE_CHARS.sub("_", _NOT_XML.sub("", name)).strip().strip("'").strip()
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
    ws: _Sheet,
    store: OperatorStore,
    market_uuid: str,
    start: str | None,
    end: str | None,
    serials: dict[str, float | None],
) -> None:
    """One row per slot, each one call of a row function of ``_HistoryRows``.

    The function of a row with every value known and finite is made once; a row with gaps (SQLite
    gives None, PostgreSQL NaN) takes the one without those cells, made once per pattern of gaps.
    ``serials``: slot label -> Excel serial day, filled as labels come (the markets share them).
    """
    rows = _HistoryRows(ws.letters)
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
                revenue = values[revenue_at]
                if revenue is not None and revenue - revenue == 0:  # finite (NaN, inf: not)
                    cumulative += revenue
                serial = serials.get(record[0])
                if serial is None:
                    serial = serials[record[0]] = _label_serial(record[0])
                if serial is not None and None not in values and isfinite(sum(values)):
                    lines.append(full(str(n), serial, *values, cumulative))
                    continue
                gaps = tuple(i for i, v in enumerate(values) if v is None or not isfinite(v))
                if serial is None:  # not a slot label: keep it as text rather than drop the row
                    row = rows.get(gaps, slot_text=True)
                    lines.append(row(str(n), _xml_text(record[0]), *values, cumulative))
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
                f'<c r="{letter}{{n}}" s="{_number_style(c.number_format)}"><v>{{{names[c.key]}!r}}</v></c>',
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


def _write_commands_sheet(ws: _Sheet, store: OperatorStore, start: str | None, end: str | None) -> None:
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
            row["created_at"] = _unix_serial(row["created_at"])
            row["applies_from_slot"] = _slot_value(row["applies_from_slot"])
        ws.write_rows(rows)
        if len(rows) < CHUNK_ROWS:
            return
        last_id = rows[-1]["id"]


def _write_settings_sheet(
    ws: _Sheet,
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
    ws.write_text_lines(["Scenario"], style=_BOLD_STYLE)
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
        "changed_at": _unix_serial(setting.get("changed_at")),
    }


# -- worksheet XML ------------------------------------------------------------------------------

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


class _Sheet:
    """One worksheet streamed into its zip entry: head (views, widths), header row, rows, tail.

    ``row`` is the number of the last row written. Rows are written as lists of XML strings, one
    ``write`` (and deflate) per list.
    """

    def __init__(self, zf: zipfile.ZipFile, number: int, columns: tuple[Column, ...], freeze: bool = True):
        self.columns = columns
        self.letters = [_column_letter(i) for i in range(1, len(columns) + 1)]
        self.row = 0
        self._file = zf.open(f"xl/worksheets/sheet{number}.xml", "w")
        self._write(_sheet_head(columns, freeze, selected=number == 1))
        header = "".join(
            _text_cell(f"{x}1", c.header, _HEADER_STYLE) for c, x in zip(columns, self.letters, strict=True)
        )
        self._write(f'<row r="1" ht="{HEADER_HEIGHT}" customHeight="1">{header}</row>')
        self.row = 1

    def __enter__(self) -> _Sheet:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self._write("</sheetData></worksheet>")
        finally:
            self._file.close()

    def _write(self, text: str) -> None:
        self._file.write(text.encode("utf-8"))

    def write_lines(self, lines: list[str]) -> None:
        if lines:
            self._write("".join(lines))

    def write_rows(self, rows: Iterable[dict]) -> None:
        """Rows of a short sheet from dicts by column key: text as text, numbers formatted."""
        lines = []
        for values in rows:
            self.row += 1
            n = self.row
            cells = [f'<row r="{n}">']
            for column, letter in zip(self.columns, self.letters, strict=True):
                cells.append(_cell(f"{letter}{n}", values.get(column.key), column.number_format))
            cells.append("</row>")
            lines.append("".join(cells))
        self.write_lines(lines)

    def write_text_lines(self, lines: Iterable[str], style: int = 0) -> None:
        """One text per row in column A; an empty text leaves its row empty."""
        out = []
        for text in lines:
            self.row += 1
            if text:
                out.append(f'<row r="{self.row}">{_text_cell(f"A{self.row}", text, style)}</row>')
        self.write_lines(out)


def _sheet_head(columns: tuple[Column, ...], freeze: bool, selected: bool) -> str:
    tab = ' tabSelected="1"' if selected else ""
    if freeze:
        view = (
            f'<sheetView workbookViewId="0"{tab}>'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView>'
        )
    else:
        view = f'<sheetView workbookViewId="0"{tab}/>'
    cols = "".join(
        f'<col min="{i}" max="{i}" width="{c.width!r}" customWidth="1"/>' for i, c in enumerate(columns, 1)
    )
    return (
        f'{_XML_DECL}<worksheet xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
        f'<sheetViews>{view}</sheetViews><sheetFormatPr defaultRowHeight="15"/>'
        f"<cols>{cols}</cols><sheetData>"
    )


def _cell(ref: str, value: Any, number_format: str | None) -> str:
    """A cell of any value; "" for None and numbers that are not finite (an empty cell)."""
    if value is None:
        return ""
    if isinstance(value, str) or isinstance(value, bool) or number_format is None:
        return _text_cell(ref, value)
    if isinstance(value, int | float):
        value = float(value)
        if not math.isfinite(value):
            return ""
        return f'<c r="{ref}" s="{_number_style(number_format)}"><v>{value!r}</v></c>'
    return _text_cell(ref, value)


def _text_cell(ref: str, value: Any, style: int = 0) -> str:
    s = f' s="{style}"' if style else ""
    return f'<c r="{ref}"{s} t="inlineStr"><is><t xml:space="preserve">{_xml_text(value)}</t></is></c>'


def _xml_text(value: Any) -> str:
    """``value`` as cell text: no XML-illegal characters, Excel's escapes kept literal, escaped."""
    text = _NOT_XML.sub("", str(value))
    if "_x" in text:
        text = _EXCEL_ESCAPE.sub(r"_x005F_\1", text)
    return _escape(text[:MAX_CELL_TEXT])


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _column_letter(index: int) -> str:
    """1 -> A, 26 -> Z, 27 -> AA."""
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _label_serial(label: Any) -> float | None:
    """Slot label ``YYYY-MM-DDTHH:mm`` -> Excel serial day; None when it is not a label."""
    if not isinstance(label, str) or len(label) != 16 or label[10] != "T" or not _DATE.fullmatch(label[:10]):
        return None
    fraction = _DAYS_IN_MINUTES.get(label[11:])
    try:
        day = dt.date.fromisoformat(label[:10]).toordinal() - _EPOCH
    except ValueError:
        return None
    return None if fraction is None else day + fraction


def _slot_value(label: str | None) -> float | str | None:
    """A slot label as a serial day for a date cell; anything else stays text."""
    if label is None:
        return None
    serial = _label_serial(label)
    return label if serial is None else serial


def _unix_serial(timestamp: float | None) -> float | None:
    """Unix seconds as an Excel serial day in UTC."""
    if timestamp is None:
        return None
    return timestamp / 86400 + _UNIX_EPOCH_SERIAL


# -- package parts ------------------------------------------------------------------------------

# Number formats: Excel's built-in ids where there is one, custom ids from 164
_BUILTIN_FORMATS = {"0": 1, "0.00": 2}
_FORMATS = (SLOT_FORMAT, TIME_FORMAT, RATE, ENERGY, SHARE, REVENUE, "0")


def _format_ids() -> dict[str, int]:
    ids, custom = {}, 164
    for fmt in dict.fromkeys(_FORMATS):
        if fmt in _BUILTIN_FORMATS:
            ids[fmt] = _BUILTIN_FORMATS[fmt]
        else:
            ids[fmt], custom = custom, custom + 1
    return ids


_FORMAT_IDS = _format_ids()
# Cell styles (cellXfs): 0 plain, 1 bold wrapped header, 2 bold, then one per number format
_HEADER_STYLE, _BOLD_STYLE = 1, 2
_STYLE_OF_FORMAT = {fmt: 3 + i for i, fmt in enumerate(_FORMAT_IDS)}
_SLOT_STYLE = _STYLE_OF_FORMAT[SLOT_FORMAT]


def _number_style(number_format: str | None) -> int:
    return 0 if number_format is None else _STYLE_OF_FORMAT[number_format]


def _styles() -> str:
    num_fmts = "".join(
        f'<numFmt numFmtId="{i}" formatCode="{_escape(fmt)}"/>'
        for fmt, i in _FORMAT_IDS.items()
        if fmt not in _BUILTIN_FORMATS
    )
    font = '<sz val="11"/><name val="Calibri"/><family val="2"/>'
    base = 'fillId="0" borderId="0" xfId="0"'
    xfs = [
        f'<xf numFmtId="0" fontId="0" {base}/>',
        f'<xf numFmtId="0" fontId="1" {base} applyFont="1" applyAlignment="1">'
        '<alignment vertical="top" wrapText="1"/></xf>',
        f'<xf numFmtId="0" fontId="1" {base} applyFont="1"/>',
        *(f'<xf numFmtId="{i}" fontId="0" {base} applyNumberFormat="1"/>' for i in _FORMAT_IDS.values()),
    ]
    return (
        f'{_XML_DECL}<styleSheet xmlns="{_MAIN_NS}">'
        f'<numFmts count="{num_fmts.count("<numFmt ")}">{num_fmts}</numFmts>'
        f'<fonts count="2"><font>{font}</font><font><b/>{font}</font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        f'<cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>"
    )


_STYLES = _styles()

_ROOT_RELS = (
    f'{_XML_DECL}<Relationships xmlns="{_PKG_REL_NS}">'
    f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
    '<Relationship Id="rId2" Target="docProps/core.xml" '
    'Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties"/>'
    f'<Relationship Id="rId3" Type="{_REL_NS}/extended-properties" Target="docProps/app.xml"/>'
    "</Relationships>"
)

_APP_PROPS = (
    f"{_XML_DECL}<Properties "
    'xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
    "<Application>Grid Fee Console</Application></Properties>"
)


def _core_props(now: dt.datetime) -> str:
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{_XML_DECL}<cp:coreProperties "
        'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<dc:title>Grid fee history</dc:title><dc:creator>Grid Fee Console</dc:creator>"
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified>'
        "</cp:coreProperties>"
    )


def _content_types(sheets: int) -> str:
    ct = "application/vnd.openxmlformats-officedocument"
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{ct}.spreadsheetml.worksheet+xml"/>'
        for i in range(1, sheets + 1)
    )
    return (
        f'{_XML_DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.spreadsheetml.sheet.main+xml"/>'
        f'<Override PartName="/xl/styles.xml" ContentType="{ct}.spreadsheetml.styles+xml"/>'
        f"{overrides}"
        '<Override PartName="/docProps/core.xml" '
        'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
        f'<Override PartName="/docProps/app.xml" ContentType="{ct}.extended-properties+xml"/>'
        "</Types>"
    )


def _workbook(titles: list[str]) -> str:
    sheets = "".join(
        f'<sheet name="{_escape(t)}" sheetId="{i}" r:id="rId{i}"/>' for i, t in enumerate(titles, 1)
    )
    return (
        f'{_XML_DECL}<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
        f'<workbookPr/><bookViews><workbookView activeTab="0"/></bookViews><sheets>{sheets}</sheets>'
        "</workbook>"
    )


def _workbook_rels(sheets: int) -> str:
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{_REL_NS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, sheets + 1)
    )
    return (
        f'{_XML_DECL}<Relationships xmlns="{_PKG_REL_NS}">{rels}'
        f'<Relationship Id="rId{sheets + 1}" Type="{_REL_NS}/styles" Target="styles.xml"/>'
        "</Relationships>"
    )


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
