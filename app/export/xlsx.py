"""Streaming .xlsx writer: the one Excel writer of the project (history export and What-if).

SpreadsheetML is generated here and each worksheet is deflated straight into its zip entry
(``ZipFile.open(name, "w")``) a chunk of rows at a time, so nothing waits in temporary files and
memory stays flat however long a sheet is. It is several times faster than openpyxl's write-only
mode for the history export (100 markets x 30 days in ~5.5 s, ``bench/console_export.py``), which
is why it is hand-made: the sheets need only numbers with a format, text, frozen panes, column
widths, bold and one highlight fill.

    with Workbook(out, ["KPIs", "Run A"], title="What-if") as wb:
        with wb.sheet(KPI_COLUMNS, freeze_cols=2) as ws:
            ws.write_values(["Community North", 1.5], highlight={1})

Cells: numbers are written with ``repr`` (the shortest text that reads back as the same float)
and the column's number format; datetimes as Excel serial days (1900 date system) with a date
format; text as inline strings, XML-escaped, with characters XML cannot hold dropped, Excel's
``_xHHHH_`` escapes protected and at most 32,767 characters. Text is never a formula.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zipfile
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO

COMPRESSLEVEL = 1  # level 6 makes files ~15 % smaller and takes three times as long
MAX_TITLE = 31  # Excel's limit on sheet titles
MAX_CELL_TEXT = 32767  # Excel's limit on the text of one cell
HEADER_HEIGHT = 45  # [pt] three lines of wrapped header text

SLOT_FORMAT = "yyyy-mm-dd hh:mm"
TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
RATE, ENERGY, SHARE, REVENUE = "0.00", "0.000", "0.0", "0.00"
HIGHLIGHT_RGB = "FFC6EFCE"  # Excel's "good" green: the best value of a row

_BAD_TITLE_CHARS = re.compile(r"[\[\]:*?/\\]")
# Characters XML 1.0 cannot hold (controls other than tab, newline and return; lone surrogates; FFFE/F)
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_EXCEL_ESCAPE = re.compile(r"_(x[0-9A-Fa-f]{4}_)")  # Excel reads "_x0041_" as "A": write "_x005F_x0041_"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EPOCH = dt.date(1899, 12, 30).toordinal()  # serial day 0 of Excel's 1900 date system (from 1900-03-01)
_UNIX_EPOCH_SERIAL = 25569  # 1970-01-01
_DAYS_IN_MINUTES = {f"{m // 60:02d}:{m % 60:02d}": m / 1440 for m in range(1440)}


@dataclass(frozen=True)
class Column:
    header: str
    key: str  # the key of the rows (dicts) the sheet is built from
    number_format: str | None  # None: text
    width: float


def sheet_titles(names: list[str], reserved: Iterable[str] = (), blank: str = "Sheet") -> list[str]:
    """A valid, unique sheet title per name, in order.

    Excel forbids ``[]:*?/\\``, a leading or trailing apostrophe, more than 31 characters and
    "History"; titles are compared without case. Forbidden characters become ``_``, characters
    XML cannot hold are dropped, long names are cut, and a repeated title gets `` (2)``, `` (3)``…
    within the 31 characters. ``reserved``: titles of other sheets of the workbook, taken too;
    ``blank``: the title of a name with nothing left.
    """
    taken = {"history", *(r.casefold() for r in reserved)}
    titles = []
    for name in names:
        base = _BAD_TITLE_CHARS.sub("_", _NOT_XML.sub("", name)).strip().strip("'").strip()
        base = base[:MAX_TITLE].rstrip().rstrip("'") or blank
        title, n = base, 1
        while title.casefold() in taken:
            n += 1
            suffix = f" ({n})"
            title = base[: MAX_TITLE - len(suffix)].rstrip().rstrip("'") + suffix
        taken.add(title.casefold())
        titles.append(title)
    return titles


_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


class Sheet:
    """One worksheet streamed into its zip entry: head (views, widths), header row, rows, tail.

    ``row`` is the number of the last row written. Rows are written as lists of XML strings, one
    ``write`` (and deflate) per list.
    """

    def __init__(
        self,
        zf: zipfile.ZipFile,
        number: int,
        columns: tuple[Column, ...],
        freeze: bool = True,
        freeze_cols: int = 0,
    ):
        self.columns = columns
        self.letters = [column_letter(i) for i in range(1, len(columns) + 1)]
        self.row = 0
        self._file = zf.open(f"xl/worksheets/sheet{number}.xml", "w")
        self._write(_sheet_head(columns, freeze, freeze_cols, selected=number == 1))
        header = "".join(
            _text_cell(f"{x}1", c.header, HEADER_STYLE) for c, x in zip(columns, self.letters, strict=True)
        )
        self._write(f'<row r="1" ht="{HEADER_HEIGHT}" customHeight="1">{header}</row>')
        self.row = 1

    def __enter__(self) -> Sheet:
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

    def write_values(
        self, values: list[Any], style: int | None = None, highlight: Collection[int] = ()
    ) -> None:
        """One row from values by position (fewer than the columns: the rest stay empty), each
        with its column's number format; ``style`` (e.g. ``BOLD_STYLE``) for every cell instead;
        the cells at the positions in ``highlight`` filled green."""
        self.row += 1
        n = self.row
        cells = [f'<row r="{n}">']
        for i, (value, column, letter) in enumerate(zip(values, self.columns, self.letters, strict=False)):
            ref = f"{letter}{n}"
            if style is not None and value is not None:
                cells.append(_text_cell(ref, value, style))
            else:
                cells.append(_cell(ref, value, column.number_format, highlight=i in highlight))
        cells.append("</row>")
        self.write_lines(["".join(cells)])

    def write_text_lines(self, lines: Iterable[str], style: int = 0) -> None:
        """One text per row in column A; an empty text leaves its row empty."""
        out = []
        for text in lines:
            self.row += 1
            if text:
                out.append(f'<row r="{self.row}">{_text_cell(f"A{self.row}", text, style)}</row>')
        self.write_lines(out)


def _sheet_head(columns: tuple[Column, ...], freeze: bool, freeze_cols: int, selected: bool) -> str:
    tab = ' tabSelected="1"' if selected else ""
    if freeze and freeze_cols:
        corner = f"{column_letter(freeze_cols + 1)}2"
        view = (
            f'<sheetView workbookViewId="0"{tab}>'
            f'<pane xSplit="{freeze_cols}" ySplit="1" topLeftCell="{corner}" activePane="bottomRight" '
            'state="frozen"/>'
            f'<selection pane="bottomRight" activeCell="{corner}" sqref="{corner}"/></sheetView>'
        )
    elif freeze:
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


def _cell(ref: str, value: Any, number_format: str | None, highlight: bool = False) -> str:
    """A cell of any value; "" for None and numbers that are not finite (an empty cell).

    A ``datetime`` (naive: local time as it reads) is a serial day in a date-formatted column."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime) and number_format is not None:
        value = datetime_serial(value)
    if isinstance(value, str) or isinstance(value, bool) or number_format is None:
        return _text_cell(ref, value)
    if isinstance(value, int | float):
        value = float(value)
        if not math.isfinite(value):
            return ""
        return f'<c r="{ref}" s="{number_style(number_format, highlight)}"><v>{value!r}</v></c>'
    return _text_cell(ref, value)


def _text_cell(ref: str, value: Any, style: int = 0) -> str:
    s = f' s="{style}"' if style else ""
    return f'<c r="{ref}"{s} t="inlineStr"><is><t xml:space="preserve">{xml_text(value)}</t></is></c>'


def xml_text(value: Any) -> str:
    """``value`` as cell text: no XML-illegal characters, Excel's escapes kept literal, escaped."""
    text = _NOT_XML.sub("", str(value))
    if "_x" in text:
        text = _EXCEL_ESCAPE.sub(r"_x005F_\1", text)
    return _escape(text[:MAX_CELL_TEXT])


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def column_letter(index: int) -> str:
    """1 -> A, 26 -> Z, 27 -> AA."""
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def label_serial(label: Any) -> float | None:
    """Slot label ``YYYY-MM-DDTHH:mm`` -> Excel serial day; None when it is not a label."""
    if not isinstance(label, str) or len(label) != 16 or label[10] != "T" or not _DATE.fullmatch(label[:10]):
        return None
    fraction = _DAYS_IN_MINUTES.get(label[11:])
    try:
        day = dt.date.fromisoformat(label[:10]).toordinal() - _EPOCH
    except ValueError:
        return None
    return None if fraction is None else day + fraction


def slot_value(label: str | None) -> float | str | None:
    """A slot label as a serial day for a date cell; anything else stays text."""
    if label is None:
        return None
    serial = label_serial(label)
    return label if serial is None else serial


def datetime_serial(when: dt.datetime) -> float:
    """A naive datetime as an Excel serial day (the wall-clock time as it reads)."""
    midnight = dt.datetime.combine(when.date(), dt.time())
    return when.toordinal() - _EPOCH + (when - midnight).total_seconds() / 86400


def unix_serial(timestamp: float | None) -> float | None:
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
# Cell styles (cellXfs): 0 plain, 1 bold wrapped header, 2 bold, then one per number format, then
# the same number formats on the highlight fill
HEADER_STYLE, BOLD_STYLE = 1, 2
_STYLE_OF_FORMAT = {fmt: 3 + i for i, fmt in enumerate(_FORMAT_IDS)}
_HIGHLIGHT_OF_FORMAT = {fmt: 3 + len(_FORMAT_IDS) + i for i, fmt in enumerate(_FORMAT_IDS)}
SLOT_STYLE = _STYLE_OF_FORMAT[SLOT_FORMAT]


def number_style(number_format: str | None, highlight: bool = False) -> int:
    """The cell style (``s``) of a number format; ``ValueError`` for a format not declared here."""
    if number_format is None:
        return 0
    table = _HIGHLIGHT_OF_FORMAT if highlight else _STYLE_OF_FORMAT
    try:
        return table[number_format]
    except KeyError:
        raise ValueError(f"number format {number_format!r} is not one of {list(_FORMAT_IDS)}") from None


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
        *(
            f'<xf numFmtId="{i}" fontId="0" fillId="2" borderId="0" xfId="0" applyNumberFormat="1" '
            'applyFill="1"/>'
            for i in _FORMAT_IDS.values()
        ),
    ]
    return (
        f'{_XML_DECL}<styleSheet xmlns="{_MAIN_NS}">'
        f'<numFmts count="{num_fmts.count("<numFmt ")}">{num_fmts}</numFmts>'
        f'<fonts count="2"><font>{font}</font><font><b/>{font}</font></fonts>'
        '<fills count="3"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill>'
        f'<fill><patternFill patternType="solid"><fgColor rgb="{HIGHLIGHT_RGB}"/></patternFill></fill>'
        "</fills>"
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


def _core_props(now: dt.datetime, title: str) -> str:
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{_XML_DECL}<cp:coreProperties "
        'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:title>{_escape(title)}</dc:title>"
        "<dc:creator>Grid Fee Console</dc:creator>"
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


# -- the workbook -------------------------------------------------------------------------------


class Workbook:
    """An .xlsx streamed into ``out`` (a binary file, seekable or not): the package parts first,
    then the sheets one after the other, in the order of ``titles`` (from :func:`sheet_titles`).

    Use it as a context manager and open each sheet with :meth:`sheet`, itself a context manager;
    an error inside leaves ``out`` incomplete.
    """

    def __init__(self, out: BinaryIO, titles: list[str], title: str = "Grid Fee Console") -> None:
        self._titles = titles
        self._zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESSLEVEL)
        self._next = 1
        zf, sheets = self._zip, len(titles)
        zf.writestr("[Content_Types].xml", _content_types(sheets))
        zf.writestr("_rels/.rels", _ROOT_RELS)
        zf.writestr("docProps/app.xml", _APP_PROPS)
        zf.writestr("docProps/core.xml", _core_props(dt.datetime.now(dt.UTC), title))
        zf.writestr("xl/workbook.xml", _workbook(titles))
        zf.writestr("xl/_rels/workbook.xml.rels", _workbook_rels(sheets))
        zf.writestr("xl/styles.xml", _STYLES)

    def sheet(self, columns: tuple[Column, ...], freeze: bool = True, freeze_cols: int = 0) -> Sheet:
        """The next sheet: header row from ``columns`` (frozen with ``freeze``, and the first
        ``freeze_cols`` columns too)."""
        if self._next > len(self._titles):
            raise ValueError(f"the workbook has {len(self._titles)} sheet titles; no room for another sheet")
        number, self._next = self._next, self._next + 1
        return Sheet(self._zip, number, columns, freeze=freeze, freeze_cols=freeze_cols)

    def __enter__(self) -> Workbook:
        return self

    def __exit__(self, *exc: object) -> None:
        self._zip.close()
