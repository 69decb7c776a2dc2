"""Number, time and colour conventions shared by every console component.

One place decides how a value looks on screen, so the header, the charts and the grid never
disagree: fixed decimals, an en dash for a value that is missing (``None`` or NaN, e.g. no trade in
the slot), the unit after the number, ``Label [unit]`` for axis titles and column headers, and one
palette in which a colour means the same thing everywhere (import is always blue, export always
orange, over-limit always red).

Units follow the API: rates and fees [ct/kWh], energy [kWh], revenue [ct], self-sufficiency [%]
(the table of slot statistics' units).
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app import slots
from app.exchange.stat_table import ENERGY_UNIT, MONEY_UNIT, RATE_UNIT, SHARE_UNIT

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

MISSING = "–"  # en dash: what a missing value (None / NaN) looks like everywhere

# the units of the slot statistics' table (app.exchange.stat_table)
UNIT_PRICE, UNIT_ENERGY, UNIT_MONEY, UNIT_PERCENT = RATE_UNIT, ENERGY_UNIT, MONEY_UNIT, SHARE_UNIT

# Colour-blind-safe (Okabe–Ito based) colours, each with one meaning across the console.
PALETTE: MappingProxyType[str, str] = MappingProxyType(
    {
        "import": "#0072B2",  # energy into the market from its parent (blue)
        "export": "#E69F00",  # energy out of the market to its parent (orange)
        "fee": "#CC79A7",  # grid fee in force (reddish purple)
        "fee_queued": "#9E5A89",  # fee queued for the next slot (darker purple, dashed)
        "revenue": "#009E73",  # fee revenue (bluish green)
        "price": "#56B4E9",  # min–max price band (sky blue)
        "median": "#1B3A5C",  # median trade rate (dark navy)
        "avg": "#6B6B6B",  # volume-weighted average trade rate (grey)
        "traded": "#4D7EA8",  # traded energy (steel blue)
        "self_sufficiency": "#2E8B57",  # self-sufficiency (green)
        "over_limit": "#D62728",  # a limit exceeded, or an alarm such as a stale connection (red)
        "live": "#237032",  # connection is live (green; 6:1 on white, white text on it too)
        "warning": "#C2410C",  # needs attention soon, e.g. the fee deadline is near (orange-red, 5:1)
        "muted": "#868E96",  # secondary text
    }
)


def is_missing(value: object) -> bool:
    """True for ``None`` and NaN: the slot has no value (e.g. no trade), shown as a gap or "–"."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def clean_number(value: float | int | None) -> float | None:
    """``value`` as a float, or ``None`` when missing, so it serialises to JSON ``null`` (a gap)."""
    return None if is_missing(value) else float(value)  # type: ignore[arg-type]


def fmt_number(value: float | int | None, decimals: int = 2, unit: str | None = None) -> str:
    """``value`` with fixed ``decimals`` and an optional unit ("12.35 ct/kWh"); "–" if missing.

    A missing value gets no unit: "–" alone reads as "nothing", "– ct/kWh" as a broken number.
    """
    if is_missing(value):
        return MISSING
    text = f"{float(value):.{decimals}f}"  # type: ignore[arg-type]
    if text.startswith("-") and float(text) == 0:  # no "-0.00"
        text = text[1:]
    return f"{text} {unit}" if unit else text


def plain_number(value: float | int | None, significant: int = 12) -> str:
    """``value`` as one would type it: no exponent, no float noise, no trailing zeros; "" if missing.

    ``1000.0`` -> "1000", ``1e6`` -> "1000000", ``1e-05`` -> "0.00001", ``0.1 + 0.2`` -> "0.3",
    ``1234567.0`` -> "1234567". For numbers in editable text (a list of thresholds) and in labels:
    Python's ``:g`` writes "1e+06" and keeps six significant digits, so 1234567 would come back
    from the form as 1234570. ``significant`` digits are kept (12 hide binary noise).
    """
    if is_missing(value):
        return ""
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        return repr(number)  # "inf", "-inf": float() reads them back
    text = format(Decimal(f"{number:.{significant}g}"), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def fmt_price(value_ct_per_kwh: float | None, decimals: int = 2) -> str:
    """A rate or fee, e.g. "3.50 ct/kWh"."""
    return fmt_number(value_ct_per_kwh, decimals, UNIT_PRICE)


def fmt_energy(value_kwh: float | None, decimals: int = 2) -> str:
    """An energy, e.g. "12.00 kWh"."""
    return fmt_number(value_kwh, decimals, UNIT_ENERGY)


def fmt_money(value_ct: float | None, decimals: int = 2) -> str:
    """A revenue in cents, e.g. "125.40 ct"."""
    return fmt_number(value_ct, decimals, UNIT_MONEY)


def fmt_percent(value_pct: float | None, decimals: int = 1) -> str:
    """A percentage, e.g. "87.5 %"."""
    return fmt_number(value_pct, decimals, UNIT_PERCENT)


def with_unit(label: str, unit: str) -> str:
    """An axis title or column header with its unit: ``with_unit("Price", "ct/kWh")`` → "Price [ct/kWh]"."""
    return f"{label} [{unit}]"


def slot_axis(title: str) -> dict:
    """A chart's x axis of slot starts: dates, hovered to the minute, titled ``title``."""
    return {"type": "date", "title": {"text": title}, "hoverformat": "%Y-%m-%d %H:%M"}


def chart_layout(
    fig: Figure,
    *,
    y_title: str,
    xaxis: dict,
    legend: dict,
    height_px: int,
    top_px: int,
    right_px: int = 16,
    uirevision: str,
    **more: object,
) -> None:
    """The look every console chart shares: white template, a horizontal legend in small type at
    the right (``legend`` sets its height: y and anchors), one hover box for all traces at an x,
    titled axes, room for axis titles left and below. ``more`` goes to ``fig.update_layout``."""
    fig.update_layout(
        template="plotly_white",
        uirevision=uirevision,
        height=height_px,
        margin={"l": 64, "r": right_px, "t": top_px, "b": 48},
        legend={"orientation": "h", **legend, "xanchor": "right", "x": 1, "font": {"size": 10}},
        hovermode="x unified",
        xaxis=xaxis,
        yaxis={"title": {"text": y_title}},
        **more,
    )


def fmt_duration_s(seconds: float | None) -> str:
    """A countdown in wall-clock seconds as "M:SS" (or "H:MM:SS" from one hour); "–" if missing.

    Rounded up so "0:00" only shows when the time is really up; negative values show "0:00".
    """
    if is_missing(seconds):
        return MISSING
    total = max(0, math.ceil(float(seconds)))  # type: ignore[arg-type]
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def fmt_clock(timestamp_s: float | None, tz: dt.tzinfo | None = None) -> str:
    """A Unix time [s] as "HH:MM" in ``tz`` (the server's local time when ``None``); "–" if missing."""
    if is_missing(timestamp_s):
        return MISSING
    return dt.datetime.fromtimestamp(float(timestamp_s), tz).strftime("%H:%M")  # type: ignore[arg-type]


def browser_zone(name: str | None) -> dt.tzinfo:
    """The browser's time zone from its IANA name (``Intl.DateTimeFormat().resolvedOptions()``),
    UTC when unknown or not a zone this server knows."""
    try:
        return ZoneInfo(name) if name else dt.UTC
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def fmt_wall_clock(timestamp_s: float | None, tz: dt.tzinfo | None = None, seconds: bool = True) -> str:
    """A wall-clock Unix time [s] as "HH:MM:SS CET" in ``tz`` (UTC when None), its zone named:
    wall-clock times are told apart from the simulated slot times by the zone and by "wall-clock"
    where they stand; "–" if missing."""
    if is_missing(timestamp_s):
        return MISSING
    when = dt.datetime.fromtimestamp(float(timestamp_s), tz or dt.UTC)  # type: ignore[arg-type]
    return when.strftime("%H:%M:%S %Z" if seconds else "%H:%M %Z").strip()


def fmt_wall_datetime(timestamp_s: float | None, tz: dt.tzinfo | None = None) -> str:
    """A wall-clock Unix time [s] as "2026-12-06 20:14:05 CET" in ``tz`` (UTC when None)."""
    if is_missing(timestamp_s):
        return MISSING
    return dt.datetime.fromtimestamp(float(timestamp_s), tz or dt.UTC).strftime("%Y-%m-%d %H:%M:%S %Z")  # type: ignore[arg-type]


def slot_label_to_datetime(label: str) -> dt.datetime:
    """The start of a slot from its label "YYYY-MM-DDTHH:mm" as a naive datetime (simulated time).

    Naive on purpose: slot labels carry no zone, and plotly draws naive datetimes as they are, so
    the axis shows the same wall-clock time as the label.
    """
    return slots.parse(label)


def slot_time(label: str | None) -> str:
    """The "HH:MM" of a slot label, "–" when there is none."""
    return MISSING if not label else slot_label_to_datetime(label).strftime("%H:%M")


def slot_date(label: str | None) -> str:
    """The simulated date "YYYY-MM-DD" of a slot label, "–" when there is none."""
    return MISSING if not label else slot_label_to_datetime(label).date().isoformat()


def slot_when(label: str | None, tz_name: str | None = None, running_slot: str | None = None) -> str:
    """A slot as the operator reads it in a sentence: "12:15 CEST" (simulated time, in the
    exchange's zone ``tz_name``; its IANA name in brackets when it has no abbreviation).

    The date follows when it is not the running slot's ("00:00 CEST on 2026-06-23"), and always
    when ``running_slot`` is not given.
    """
    if not label:
        return MISSING
    start = slot_label_to_datetime(label)
    zone = ""
    if tz_name:
        try:
            zone = " " + (start.replace(tzinfo=ZoneInfo(tz_name)).tzname() or tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            zone = f" ({tz_name})"
    text = f"{start:%H:%M}{zone}"
    if running_slot is None or running_slot[:10] != label[:10]:
        text += f" on {start:%Y-%m-%d}"
    return text
