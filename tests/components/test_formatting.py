"""Number, time and colour helpers of ``app.console.components.formatting``."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from app.console.components import formatting as f


def test_fmt001_fixed_decimals_units_and_missing():
    assert f.fmt_number(3.14159) == "3.14"
    assert f.fmt_number(3.14159, 3, "ct/kWh") == "3.142 ct/kWh"
    assert f.fmt_number(2, 0, "kWh") == "2 kWh"
    assert f.fmt_number(None, unit="kWh") == f.MISSING == "–"
    assert f.fmt_number(float("nan"), unit="kWh") == "–"
    assert f.fmt_number(-0.001) == "0.00"  # no "-0.00"
    assert f.fmt_number(-1.5, 1) == "-1.5"
    assert f.fmt_price(3.5) == "3.50 ct/kWh"
    assert f.fmt_energy(12) == "12.00 kWh"
    assert f.fmt_money(125.4) == "125.40 ct"
    assert f.fmt_percent(87.54) == "87.5 %"
    assert f.fmt_percent(None) == "–"


def test_fmt002_missing_and_clean_number():
    assert f.is_missing(None) and f.is_missing(float("nan"))
    assert not f.is_missing(0) and not f.is_missing(0.0)
    assert f.clean_number(float("nan")) is None
    assert f.clean_number(3) == 3.0 and isinstance(f.clean_number(3), float)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (42, "0:42"),
        (41.2, "0:42"),
        (0, "0:00"),
        (-5, "0:00"),
        (2520, "42:00"),
        (3725, "1:02:05"),
        (None, "–"),
    ],
)
def test_fmt003_duration_rounds_up_to_seconds_never_negative_hours_when_long(seconds, text):
    assert f.fmt_duration_s(seconds) == text


def test_fmt004_clock_in_given_zone():
    ts = dt.datetime(2026, 6, 22, 13, 5, 59, tzinfo=dt.UTC).timestamp()
    assert f.fmt_clock(ts, dt.UTC) == "13:05"
    assert f.fmt_clock(ts, dt.timezone(dt.timedelta(hours=2))) == "15:05"
    assert f.fmt_clock(None) == "–"


def test_fmt005_slot_labels_parse_naive_and_bad_labels_are_refused():
    assert f.slot_label_to_datetime("2026-06-22T13:15") == dt.datetime(2026, 6, 22, 13, 15)
    assert f.slot_label_to_datetime("2026-06-22T13:15").tzinfo is None
    assert f.slot_time("2026-06-22T13:15") == "13:15"
    assert f.slot_date("2026-06-22T13:15") == "2026-06-22"
    assert f.slot_time(None) == f.slot_date(None) == "–"
    for bad in ("2026-06-22 13:15", "13:15", "", None):
        with pytest.raises(ValueError, match="slot label"):
            f.slot_label_to_datetime(bad)


def test_fmt006_axis_title_carries_its_unit_in_brackets():
    assert f.with_unit("Price", f.UNIT_PRICE) == "Price [ct/kWh]"


def test_fmt007_palette_means_one_thing_per_colour():
    colours = dict(f.PALETTE)
    assert {"import", "export", "fee", "revenue", "over_limit"} <= colours.keys()
    assert all(re.fullmatch(r"#[0-9A-F]{6}", c) for c in colours.values())
    assert len(set(colours.values())) == len(colours)  # no colour with two meanings
    with pytest.raises(TypeError):
        f.PALETTE["import"] = "#000000"  # type: ignore[index]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1000.0, "1000"),
        (1e3, "1000"),
        (1e6, "1000000"),
        (1234567.0, "1234567"),
        (1e16, "10000000000000000"),
        (1e-05, "0.00001"),
        (0.1 + 0.2, "0.3"),
        (2.5, "2.5"),
        (-0.0, "0"),
        (-3.25, "-3.25"),
        (7, "7"),
        (None, ""),
        (float("nan"), ""),
        (float("inf"), "inf"),
    ],
)
def test_fmt008_plain_number_has_no_exponent_and_reads_back(value, text):
    assert f.plain_number(value) == text
    if text not in ("", "inf"):
        assert "e" not in text.lower()
        assert float(text) == pytest.approx(value, rel=1e-12)
