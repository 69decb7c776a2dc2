"""Critical-peak overlay: the base fee times the multiplier inside events, the base fee outside."""

import datetime as dt

import numpy as np
import pytest
from pydantic import ValidationError

from app.tariffs.base import FeeLimits, MarketHistory, SlotInfo
from app.tariffs.critical_peak import CriticalPeakParams, event_mask, next_fee

from .helpers import LIMITS, MONDAY, history, slot_at

CONSTANT_4 = {"model": "constant", "fee_ct_per_kwh": 4.0}


def cpp(events, base=CONSTANT_4, multiplier=3.0):
    return CriticalPeakParams.model_validate({"base": base, "multiplier": multiplier, "events": events})


def fee_at(params, when, limits=LIMITS):
    return next_fee(MarketHistory(), slot_at(when), params, limits)


def test_a_dated_event_multiplies_the_fee_from_its_start_up_to_its_end():
    params = cpp([{"start": "2026-06-22T17:00", "end": "2026-06-22T19:00"}])
    at = MONDAY.replace
    assert fee_at(params, at(hour=16, minute=45)) == 4.0
    assert fee_at(params, at(hour=17)) == 12.0
    assert fee_at(params, at(hour=18, minute=45)) == 12.0
    assert fee_at(params, at(hour=19)) == 4.0
    assert fee_at(params, at(hour=17) + dt.timedelta(days=1)) == 4.0  # a dated event does not repeat


def test_a_daily_window_applies_on_its_weekdays_only():
    params = cpp([{"from": "17:00", "to": "20:00", "days": ["Mon", "wednesday"]}])
    fees = [fee_at(params, MONDAY.replace(hour=18) + dt.timedelta(days=d)) for d in range(7)]
    assert fees == [12.0, 4.0, 12.0, 4.0, 4.0, 4.0, 4.0]
    assert fee_at(params, MONDAY.replace(hour=20)) == 4.0


def test_a_window_past_midnight_belongs_to_the_day_it_starts_on():
    friday = MONDAY + dt.timedelta(days=4)
    params = cpp([{"from": "22:00", "to": "02:00", "days": ["friday"]}])
    assert fee_at(params, friday.replace(hour=23)) == 12.0
    assert fee_at(params, friday.replace(hour=1) + dt.timedelta(days=1)) == 12.0  # Saturday 01:00
    assert fee_at(params, friday.replace(hour=1)) == 4.0  # Friday 01:00 is Thursday's night
    assert fee_at(params, friday.replace(hour=2) + dt.timedelta(days=1)) == 4.0


def test_a_window_to_24_00_covers_the_last_slot_of_the_day():
    params = cpp([{"from": "18:00", "to": "24:00"}])  # every day when no days are given
    assert fee_at(params, MONDAY.replace(hour=23, minute=45)) == 12.0
    assert fee_at(params, MONDAY.replace(hour=0)) == 4.0


def test_the_raised_fee_is_clamped_to_the_limits():
    params = cpp([{"from": "00:00", "to": "24:00"}], multiplier=20)
    assert fee_at(params, MONDAY, FeeLimits(0, 50)) == 50.0


def test_a_timezone_aware_slot_is_compared_by_its_local_clock():
    params = cpp([{"from": "17:00", "to": "18:00"}])
    aware = MONDAY.replace(hour=17, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert fee_at(params, aware) == 12.0


def test_the_base_model_sees_its_own_fees_not_the_raised_ones():
    """A controller under an event: after the event it goes on from its own fee, not 3 x that."""
    base = {"model": "controller", "import_limit_kwh": 40, "export_limit_kwh": 40, "base_fee_ct_per_kwh": 5}
    params = cpp([{"from": "17:00", "to": "18:00"}], base=base)  # slots 68..71 of the day
    fees = [5.0] * 72
    fees[68:72] = [15.0] * 4
    h = history([40.0] * 72, fees=fees)  # at the limit: the controller holds its fee
    after = SlotInfo(73, MONDAY.replace(hour=18, minute=15))
    assert next_fee(h, after, params, LIMITS) == 5.0
    during = SlotInfo(70, MONDAY.replace(hour=17, minute=30))  # with slots 0..68 closed
    assert next_fee(history([40.0] * 69, fees=fees[:69]), during, params, LIMITS) == 15.0


def test_event_mask_marks_slot_starts_inside_any_event():
    params = cpp(
        [
            {"start": "2026-06-22T01:00", "end": "2026-06-22T01:30"},
            {"from": "02:00", "to": "02:15", "days": ["mon"]},
        ]
    )
    starts = np.datetime64("2026-06-22T00:00") + np.arange(12) * np.timedelta64(15, "m")
    assert np.flatnonzero(event_mask(starts, params.events)).tolist() == [4, 5, 8]


def test_events_survive_a_json_round_trip():
    params = cpp([{"start": "2026-06-22T17:00", "end": "2026-06-22T19:00"}, {"from": "7:30", "to": "09:00"}])
    data = params.model_dump(mode="json")
    assert data["events"][1] == {
        "from": "07:30",
        "to": "09:00",
        "days": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
    }
    assert CriticalPeakParams.model_validate(data) == params


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([{"start": "2026-06-22T17:00", "end": "2026-06-22T17:00"}], "end .* must be after start"),
        ([{"start": "2026-06-22T17:00+02:00", "end": "2026-06-22T18:00+02:00"}], "without a UTC offset"),
        ([{"from": "17:00", "to": "17:00"}], "the window 17:00-17:00 is empty"),
        ([{"from": "24:00", "to": "02:00"}], "'24:00' is not a time HH:MM \\(00:00 .. 23:59\\)"),
        ([{"from": "17:00", "to": "20:00", "days": ["funday"]}], "'funday' is not a weekday"),
        ([{"from": "17:00", "to": "20:00", "days": []}], "at least 1 item"),
        ([{"when": "tomorrow"}], "an event is"),
    ],
)
def test_bad_events_are_refused(events, message):
    with pytest.raises(ValidationError, match=message):
        cpp(events)


@pytest.mark.parametrize("multiplier", [0.5, 21])
def test_the_multiplier_lies_between_1_and_20(multiplier):
    with pytest.raises(ValidationError, match="multiplier"):
        cpp([], multiplier=multiplier)


def test_an_overlay_cannot_stack_on_another_overlay():
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        cpp([], base={"model": "critical_peak", "base": CONSTANT_4, "multiplier": 2})
