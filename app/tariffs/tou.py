"""Time-of-use table: a fixed fee per quarter hour of the day, optionally per day type.

The SDK's ``rest_tou_strategy.py`` with a table uploaded as CSV or Excel (GSy's ``ToU.csv``:
``Time;Community;Grid`` with a decimal comma, 96 rows ``00:00:00`` .. ``23:45:00``). The fee for
a slot is the table's value for the quarter hour the slot *starts* in (``SlotInfo.quarter_hour``),
so hourly slots take the value of their first quarter hour, as the SDK does. The table is either
one list for every day (``{"all": [...]}``) or one per day type (``weekday``, ``saturday``,
``sunday``: ``SlotInfo.day_type``); a table for some day types only would leave days without a
fee, so it is refused.

The loaders refuse anything but a complete table, with a message naming the row and column to fix:
an operator uploads the file from the dashboard and must see what is wrong without opening a log.
Row numbers are those a spreadsheet program or a text editor shows (the header is row 1).
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import functools
import io
import math
import re
import warnings
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from app.tariffs.base import FeeLimits, MarketHistory, SlotInfo

QUARTER_HOURS = 96
DAY_TYPES = ("weekday", "saturday", "sunday")
PRESET_DIR = Path(__file__).with_name("presets")
_MAX_ROWS = 10_000  # an uploaded sheet longer than this is not a 96-row table; stop reading early

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_TIME_HEADERS = ("time", "zeit", "uhrzeit", "start")


class TouTableError(ValueError):
    """An uploaded time-of-use table that cannot be used; the message says where and why."""


def quarter_hour_label(index: int) -> str:
    """``"HH:MM"`` of quarter hour ``index`` (0..95)."""
    return f"{index // 4:02d}:{index % 4 * 15:02d}"


class TouParams(BaseModel):
    """A 96-value table per day type [ct/kWh]: ``{"all": [...]}`` or one list per day type."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: Literal["tou"] = "tou"
    table: dict[str, list[float]]

    @field_validator("table")
    @classmethod
    def _complete_table(cls, table: dict[str, list[float]]) -> dict[str, list[float]]:
        keys = set(table)
        if keys != {"all"} and keys != set(DAY_TYPES):
            raise ValueError(
                "the table needs either one list 'all' or one list for each of 'weekday', 'saturday' "
                f"and 'sunday'; got {sorted(keys)}"
            )
        for key, values in table.items():
            if len(values) != QUARTER_HOURS:
                raise ValueError(
                    f"{key!r}: expected {QUARTER_HOURS} quarter-hour values, found {len(values)}"
                )
            for i, value in enumerate(values):
                if value < 0:
                    raise ValueError(
                        f"{key!r}[{i}] ({quarter_hour_label(i)}): {value} ct/kWh is negative; "
                        "a fee must be >= 0"
                    )
        return table


def next_fee(history: MarketHistory, slot: SlotInfo, params: TouParams, limits: FeeLimits) -> float:
    """The table's fee [ct/kWh] for the quarter hour (and day type) ``slot`` starts in, inside ``limits``.

    The history is not read: a time-of-use tariff is published in advance and does not react.
    """
    values = params.table.get("all") or params.table[slot.day_type]
    return limits.clamp(values[slot.quarter_hour])


# ---------------------------------------------------------------------------------------------
# Loading a table from CSV or Excel


def load_tou_csv(data: bytes | str, column: str | None = None) -> list[float]:
    """The 96 fees [ct/kWh] of one column of a CSV table, in quarter-hour order from 00:00.

    ``column`` names the fee column (case-insensitive); it may be left out when the table has one
    fee column only. Separators ``,``, ``;`` or tab; a decimal comma is accepted (``0,42``).
    Raises ``TouTableError``.
    """
    return _one_column(_csv_rows(data), column)


def load_tou_csv_columns(data: bytes | str) -> dict[str, list[float]]:
    """Every fee column of a CSV table: ``{header: 96 fees [ct/kWh]}``. Raises ``TouTableError``."""
    return _columns(_csv_rows(data), None)


def load_tou_xlsx(data: bytes, column: str | None = None) -> list[float]:
    """As ``load_tou_csv``, from the first sheet of an Excel ``.xlsx`` workbook.

    Time cells may be text (``HH:MM``, ``HH:MM:SS``) or Excel times; fee cells numbers or text.
    Formulas count with the value Excel saved for them.
    """
    return _one_column(_xlsx_rows(data), column)


def load_tou_xlsx_columns(data: bytes) -> dict[str, list[float]]:
    """Every fee column of the first sheet of an ``.xlsx`` workbook, as ``load_tou_csv_columns``."""
    return _columns(_xlsx_rows(data), None)


MAX_UPLOAD_BYTES = 1_000_000
"""An upload larger than this is refused before it is read: a 96-row table is a few kB (an .xlsx
with styles some tens of kB)."""


def decode_upload(contents: object, filename: object) -> dict[str, list[float]]:
    """Every fee column of a table uploaded in the browser: ``{header: 96 fees [ct/kWh]}``.

    The one decoder of uploads (the market page's fee control and What-if): ``contents`` is what
    ``dcc.Upload`` gives (``data:<type>;base64,<bytes>``), checked to be whole base64 and at most
    ``MAX_UPLOAD_BYTES``; ``.xlsx``/``.xlsm`` are read as Excel, ``.xls`` refused, anything else
    read as CSV. Raises ``TouTableError`` saying what is wrong.
    """

    if not isinstance(contents, str) or "," not in contents:
        raise TouTableError("nothing was uploaded")
    encoded = contents.split(",", 1)[1]
    if len(encoded) > MAX_UPLOAD_BYTES * 4 // 3 + 4:
        raise TouTableError(f"the file is not a 96-row table (at most {MAX_UPLOAD_BYTES // 1000} kB)")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise TouTableError(f"the upload did not arrive whole (not base64: {exc})") from None
    if len(raw) > MAX_UPLOAD_BYTES:
        raise TouTableError(
            f"{len(raw) / 1e6:.1f} MB is not a 96-row table (at most {MAX_UPLOAD_BYTES // 1000} kB)"
        )
    lower = str(filename or "").lower()
    if lower.endswith((".xlsx", ".xlsm")):
        return load_tou_xlsx_columns(raw)
    if lower.endswith(".xls"):
        raise TouTableError("an old Excel .xls workbook: save it as .xlsx or CSV")
    return load_tou_csv_columns(raw)


def preset_challenge_2020() -> dict[str, list[float]]:
    """The 2020 challenge's table: ``{"community": 96 fees, "grid": 96 fees}`` [ct/kWh].

    From GSy's ``ToU.csv`` (0.42-6.48 ct/kWh; grid = 4 x community), shipped in ``presets/``.
    """
    return {name: list(values) for name, values in _challenge_2020().items()}


@functools.cache
def _challenge_2020() -> dict[str, tuple[float, ...]]:
    columns = load_tou_csv_columns((PRESET_DIR / "challenge_2020_tou.csv").read_bytes())
    return {name.removesuffix("_ct_per_kwh"): tuple(values) for name, values in columns.items()}


# A table as read from a file, before any checks: (row number, cells) with the header first.
_Rows = list[tuple[int, list[object]]]


def _csv_rows(data: bytes | str) -> _Rows:
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise TouTableError(
                f"the file is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}); "
                "save the table as 'CSV UTF-8'"
            ) from None
    elif isinstance(data, str):
        text = data.removeprefix("\ufeff")
    else:
        raise TouTableError(f"expected the file's bytes or text, got {type(data).__name__}")
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = ";" if ";" in first else "\t" if "\t" in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: _Rows = []
    try:
        for cells in reader:
            rows.append((reader.line_num, list(cells)))
            if len(rows) > _MAX_ROWS:
                break
    except csv.Error as exc:
        raise TouTableError(f"row {reader.line_num}: not a readable CSV line ({exc})") from None
    return rows


def _xlsx_rows(data: bytes) -> _Rows:
    import openpyxl  # only needed for Excel uploads

    if not isinstance(data, bytes | bytearray):
        raise TouTableError(f"expected the .xlsx file's bytes, got {type(data).__name__}")
    rows: _Rows = []
    try:
        with warnings.catch_warnings():
            # openpyxl warns about styles and extensions it skips; they do not matter for the values
            warnings.simplefilter("ignore")
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            try:
                sheet = workbook.worksheets[0]
                for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
                    rows.append((number, list(cells)))
                    if len(rows) > _MAX_ROWS:
                        break
            finally:
                workbook.close()
    except Exception as exc:  # a broken zip, bad XML, no sheet: all mean the same to the operator
        raise TouTableError(
            f"not a valid .xlsx workbook ({type(exc).__name__}: {exc}); save the table from Excel as "
            "'Excel Workbook (.xlsx)' or as CSV"
        ) from None
    return rows


def _blank(cell: object) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _header_name(cell: object) -> str:
    return "" if cell is None else str(cell).strip()


def _columns(rows: _Rows, column: str | None) -> dict[str, list[float]]:
    """Check a raw table and return ``{fee column: 96 fees}``, of ``column`` only when given."""
    rows = [(number, cells) for number, cells in rows if not all(_blank(c) for c in cells)]
    if not rows:
        raise TouTableError("the file is empty: expected a header row and 96 quarter-hour rows")
    header = [_header_name(c) for c in rows[0][1]]
    data = rows[1:]
    named = [i for i, name in enumerate(header) if name]  # SDK files end the header with ';;;;'
    if not named:
        raise TouTableError(f"row {rows[0][0]}: the header row has no column names")
    time_col = next((i for i in named if header[i].lower() in _TIME_HEADERS), named[0])
    fee_cols = [i for i in named if i != time_col]
    if not fee_cols:
        raise TouTableError(f"row {rows[0][0]}: no fee column next to the time column {header[time_col]!r}")
    seen: dict[str, int] = {}
    for i in fee_cols:
        if header[i].lower() in seen:
            raise TouTableError(f"row {rows[0][0]}: the column name {header[i]!r} appears twice")
        seen[header[i].lower()] = i
    if column is not None:
        key = column.strip().lower()
        if key not in seen:
            available = ", ".join(repr(header[i]) for i in fee_cols)
            raise TouTableError(f"no column {column!r}; the table's fee columns are {available}")
        fee_cols = [seen[key]]

    time_name = header[time_col]
    quarters: list[int | None] = []
    first_time_error: TouTableError | None = None
    for number, cells in data:
        try:
            quarters.append(_quarter(_cell(cells, time_col), number, time_name))
        except TouTableError as exc:
            quarters.append(None)
            first_time_error = first_time_error or exc
    if len(data) != QUARTER_HOURS:
        detail = "" if first_time_error else _time_detail(quarters, [n for n, _ in data])
        more = "more than " if len(data) > _MAX_ROWS else ""
        raise TouTableError(f"expected {QUARTER_HOURS} quarter-hour rows, found {more}{len(data)}{detail}")
    if first_time_error:
        raise first_time_error
    checked = [q for q in quarters if q is not None]  # all of them, now
    first_row: dict[int, int] = {}
    for (number, _), quarter in zip(data, checked, strict=True):
        if quarter in first_row:
            missing = sorted(set(range(QUARTER_HOURS)) - set(checked))
            raise TouTableError(
                f"row {number}, column {time_name!r}: {quarter_hour_label(quarter)} appears twice "
                f"(rows {first_row[quarter]} and {number}); {_labels(missing)} missing"
            )
        first_row[quarter] = number

    table: dict[str, list[float]] = {}
    for i in fee_cols:
        values = [0.0] * QUARTER_HOURS
        for (number, cells), quarter in zip(data, checked, strict=True):
            values[quarter] = _fee(_cell(cells, i), number, header[i])
        table[header[i]] = values
    return table


def _one_column(rows: _Rows, column: str | None) -> list[float]:
    if column is None:
        table = _columns(rows, None)
        if len(table) > 1:
            names = ", ".join(repr(name) for name in table)
            raise TouTableError(f"the table has {len(table)} fee columns ({names}): choose one")
        return next(iter(table.values()))
    return next(iter(_columns(rows, column).values()))


def _cell(cells: list[object], index: int) -> object:
    return cells[index] if index < len(cells) else None


def _labels(quarters: list[int]) -> str:
    shown = ", ".join(quarter_hour_label(q) for q in quarters[:5])
    more = f" and {len(quarters) - 5} more" if len(quarters) > 5 else ""
    return f"{shown}{more} {'is' if len(quarters) == 1 else 'are'}"


def _time_detail(quarters: list[int | None], numbers: list[int]) -> str:
    """Which quarter hours a table of the wrong length lacks or repeats, for the error message."""
    seen: dict[int, int] = {}
    repeated = []
    for quarter, number in zip(quarters, numbers, strict=True):
        if quarter is None:
            continue
        if quarter in seen:
            repeated.append(f"{quarter_hour_label(quarter)} in rows {seen[quarter]} and {number}")
        seen.setdefault(quarter, number)
    missing = sorted(set(range(QUARTER_HOURS)) - set(seen))
    parts = []
    if missing and len(missing) < QUARTER_HOURS:
        parts.append(f"{_labels(missing)} missing")
    if repeated:
        parts.append("repeated: " + ", ".join(repeated[:5]))
    return f" ({'; '.join(parts)})" if parts else ""


def _quarter(cell: object, number: int, column: str) -> int:
    """The quarter hour (0..95) a time cell names; text ``H:MM[:SS]`` or an Excel time."""
    where = f"row {number}, column {column!r}"
    if _blank(cell):
        raise TouTableError(f"{where}: empty cell, expected a time HH:MM")
    if isinstance(cell, dt.datetime):
        cell = cell.time()
    if isinstance(cell, dt.time):
        seconds = round(cell.hour * 3600 + cell.minute * 60 + cell.second + cell.microsecond / 1e6)
    elif isinstance(cell, dt.timedelta):
        seconds = round(cell.total_seconds())
    elif isinstance(cell, int | float) and not isinstance(cell, bool) and 0 <= cell < 1:
        seconds = round(cell * 86400)  # an Excel time stored as a fraction of a day
    elif isinstance(cell, str) and (m := _TIME.fullmatch(cell.strip())):
        hours, minutes, secs = int(m[1]), int(m[2]), int(m[3] or 0)
        if hours > 23 or minutes > 59 or secs > 59:
            raise TouTableError(f"{where}: {cell.strip()!r} is not a time of day")
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise TouTableError(f"{where}: {cell!r} is not a time HH:MM or HH:MM:SS")
    if seconds % 900 or not 0 <= seconds < 86400:
        raise TouTableError(f"{where}: {cell!s} is not the start of a quarter hour (HH:00, :15, :30, :45)")
    return seconds // 900


def _fee(cell: object, number: int, column: str) -> float:
    """A fee cell as ct/kWh: a number or its text (decimal point or comma), finite and >= 0."""
    where = f"row {number}, column {column!r}"
    if _blank(cell):
        raise TouTableError(f"{where}: empty cell, expected a fee in ct/kWh")
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        value, shown = float(cell), repr(cell)
    elif isinstance(cell, str):
        text = cell.strip()
        if text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")
        if not _NUMBER.fullmatch(text):
            raise TouTableError(f"{where}: {cell!r} is not a number")
        value, shown = float(text), repr(cell)
    else:
        raise TouTableError(f"{where}: {cell!r} is not a number")
    if not math.isfinite(value):
        raise TouTableError(f"{where}: {shown} is not a finite number")
    if value < 0:
        raise TouTableError(f"{where}: {shown} is negative; a fee must be >= 0 ct/kWh")
    return value
