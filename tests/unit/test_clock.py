import datetime as dt

import pytest

from app.exchange.clock import BadSlot, SimClock

CLOCK = SimClock(dt.datetime(2026, 6, 21), 15, slot_seconds=5)


def test_slot_labels_round_trip():
    assert CLOCK.label(0) == "2026-06-21T00:00"
    assert CLOCK.label(53) == "2026-06-21T13:15"
    assert CLOCK.slot_of("2026-06-22T00:15") == 97


@pytest.mark.parametrize(
    "label", ["2026-06-21 13:15", "2026-06-21T13:10", "2020-01-01T00:00", "", None, "13:15"]
)
def test_bad_slot_strings_are_refused(label):
    with pytest.raises(BadSlot):
        CLOCK.slot_of(label)


def test_completion_and_deadline():
    assert CLOCK.slot_end_wall(100.0) == 105.0
    assert CLOCK.completion(100.0, now=102.5) == 0.5
    assert CLOCK.completion(100.0, now=200) == 1.0
    assert SimClock(dt.datetime(2026, 6, 21), 15, slot_seconds=0).fast_forward
