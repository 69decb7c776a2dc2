"""Slot labels, parsing and numbering: one module (``app.slots``) that every part shares."""

from __future__ import annotations

import datetime as dt

import pytest

from app import slots
from app.exchange.clock import BadSlot, SimClock


def test_a_label_names_the_start_of_the_slot_in_simulated_local_time():
    assert slots.label(dt.datetime(2026, 6, 22, 13, 15)) == "2026-06-22T13:15"
    assert slots.parse("2026-06-22T13:15") == dt.datetime(2026, 6, 22, 13, 15)


@pytest.mark.parametrize("bad", ["2026-06-22 13:15", "13:15", "", None, "2026-06-22T13:15:00"])
def test_a_string_that_is_not_a_label_is_refused_with_the_string_in_the_message(bad):
    with pytest.raises(ValueError, match="not a slot label"):
        slots.parse(bad)


def test_shift_crosses_midnight_and_goes_back():
    assert slots.shift("2026-06-22T23:45", 1, 15) == "2026-06-23T00:00"
    assert slots.shift("2026-06-23T00:00", -2, 15) == "2026-06-22T23:30"
    assert slots.shift("2026-06-22T12:00", 2, 60) == "2026-06-22T14:00"


def test_consecutive_slots_have_consecutive_numbers_and_a_day_has_96():
    day = slots.labels(dt.datetime(2026, 6, 22), 97, 15)
    numbers = [slots.number(label) for label in day]
    assert numbers == list(range(numbers[0], numbers[0] + 97))
    assert numbers[0] % 96 == 0  # midnight is slot 0 of its day: the models read time of day from it
    assert slots.number(slots.parse(day[5])) == numbers[5] == slots.number(numbers[5])


def test_the_exchange_clock_labels_and_reads_back_with_the_same_rule():
    clock = SimClock(start=dt.datetime(2026, 6, 22), slot_length_min=15, slot_seconds=0)
    assert [clock.label(n) for n in range(3)] == slots.labels(dt.datetime(2026, 6, 22), 3, 15)
    assert clock.slot_of(slots.shift(clock.label(0), 7, 15)) == 7
    with pytest.raises(BadSlot):
        clock.slot_of("22.06.2026 13:15")


@pytest.mark.parametrize("length", [2, 3, 5, 15, 60])
def test_every_label_of_a_market_of_any_allowed_slot_length_has_a_stored_number_of_its_own(length):
    # Grid Singularity allows 2 to 60 minute slots: the operator's tables number them in minutes
    labels = slots.labels(dt.datetime(2026, 3, 28, 22, 0), 3 * 24 * 60 // length, length)
    numbers = [slots.minutes(label) for label in labels]
    assert len(set(numbers)) == len(labels)
    assert numbers == sorted(numbers)  # numbers order as the labels do
    assert [slots.from_minutes(n) for n in numbers] == labels
    assert numbers[1] - numbers[0] == length


def test_a_stored_slot_number_counts_minutes_from_2000_and_none_stays_none():
    assert slots.minutes("2000-01-01T00:00") == 0
    assert slots.minutes(dt.datetime(2000, 1, 2, 0, 15)) == 1440 + 15
    assert slots.from_minutes(-15) == "1999-12-31T23:45"
    assert slots.to_column(None) is None and slots.from_column(None) is None
    assert slots.from_column(slots.to_column("2026-06-22T13:15")) == "2026-06-22T13:15"
    with pytest.raises(ValueError, match="not a slot label"):
        slots.to_column("2026-06-22 13:15")


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("2024-06-21T00:30", "2024-06-21T00:30"),
        ("2024-06-21T00:30:00", "2024-06-21T00:30"),  # gsy-e's market_slot with seconds
        ("2024-06-21T00:30:00+02:00", "2024-06-21T00:30"),
        ("2024-06-21 00:30", None),
        ("next slot", None),
        ("", None),
        (None, None),
        (1718929800, None),
    ],
)
def test_a_slot_another_exchange_sends_is_read_as_its_label_or_as_no_slot(sent, read):
    # what the gsy link stores and counts with: never a string that is not a label
    assert slots.read(sent) == read
