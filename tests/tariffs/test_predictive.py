"""Predictive controller: its forecast, its learned fee, the hold, and a closed loop that learns."""

import math

import numpy as np
import pytest
from pydantic import ValidationError

from app.operator.fee_service import target_slot
from app.slots import label, labels, parse
from app.tariffs.base import FeeLimits, MarketHistory, SlotInfo
from app.tariffs.predictive import PredictiveParams, deferred_import_kwh, forecast_kwh, next_fee
from app.tariffs.registry import compute_fee, describe, parse_model

from .helpers import LIMITS, MONDAY, history, slot_after, with_reference

DAY = 96


params = with_reference(
    PredictiveParams,
    import_limit_kwh=20.0,
    export_limit_kwh=20.0,
    target_share=1.0,
    gain_ct_per_kwh=10.0,
    weight_yesterday=1.0,
    weight_last_week=0.0,
    trend=0.5,
    base_fee_ct_per_kwh=2.0,
    max_fee_ct_per_kwh=40.0,
    max_rise_ct_per_kwh=100.0,
    max_fall_ct_per_kwh=100.0,
    smooth_slots=0,
)


def two_days(import_at, fee_at=lambda s: 0.0):
    """Slots 0..2*DAY-3 closed (so slot 2*DAY-1 is the one a fee is computed for)."""
    slots = range(2 * DAY - 2)
    return history([import_at(s) for s in slots], None, [fee_at(s) for s in slots])


def test_the_forecast_is_the_same_slot_yesterday_plus_todays_trend():
    # yesterday flat 10 kWh with 30 at the target's quarter hour; today runs 2 kWh above yesterday
    target = 2 * DAY - 1
    h = two_days(lambda s: (30.0 if s == target - DAY else 10.0) + (2.0 if s >= DAY else 0.0))
    imp, exp = forecast_kwh(h, target, 15, params(trend=0.5))
    assert imp == pytest.approx(30.0 + 0.5 * 2.0)
    assert exp == 0.0
    assert forecast_kwh(h, target, 15, params(trend=0.0))[0] == pytest.approx(30.0)


def test_last_week_counts_with_its_weight_and_a_missing_day_drops_out():
    target = 8 * DAY
    h = history([0.0] * (7 * DAY + 10))  # slots 0 .. 7*DAY+9
    imports = h.import_kwh.copy()
    imports[target - 7 * DAY] = 40.0  # last week
    imports[target - DAY] = 20.0  # yesterday
    h = MarketHistory(h.slot, imports, h.export_kwh, h.fee_ct_per_kwh)
    p = params(weight_yesterday=0.75, weight_last_week=0.25, trend=0.0)
    assert forecast_kwh(h, target, 15, p)[0] == pytest.approx(0.75 * 20 + 0.25 * 40)
    imports[target - DAY] = math.nan  # yesterday unknown: last week alone
    h = MarketHistory(h.slot, imports, h.export_kwh, h.fee_ct_per_kwh)
    assert forecast_kwh(h, target, 15, p)[0] == pytest.approx(40.0)


def test_without_a_day_of_history_the_forecast_is_the_last_slot():
    h = history([5.0, 7.0, 12.0], [0.0, 0.0, 3.0])
    assert forecast_kwh(h, 4, 15, params()) == (12.0, 3.0)
    assert forecast_kwh(history([]), 4, 15, params()) == (None, None)


def test_the_fee_is_yesterdays_fee_of_that_slot_moved_by_the_forecast_error():
    target = 2 * DAY - 1
    yesterday_fee = lambda s: 6.0 if s == target - DAY else 1.0  # noqa: E731
    on_target = two_days(lambda s: 20.0, yesterday_fee)
    assert next_fee(on_target, SlotInfo(target, MONDAY, 15), params(trend=0), LIMITS) == pytest.approx(6.0)
    over = two_days(lambda s: 25.0, yesterday_fee)  # 25 % over the 20 kWh target
    assert next_fee(over, SlotInfo(target, MONDAY, 15), params(trend=0), LIMITS) == pytest.approx(6.0 + 2.5)
    under = two_days(lambda s: 10.0, yesterday_fee)  # half the target: the fee is lowered
    assert next_fee(under, SlotInfo(target, MONDAY, 15), params(trend=0), LIMITS) == pytest.approx(6.0 - 5.0)


def test_the_learned_fee_can_be_the_mean_of_the_slots_around_it():
    target = 2 * DAY - 1
    yesterday_fee = lambda s: 10.0 if s == target - DAY else 0.0  # noqa: E731  a one-slot cliff
    h = two_days(lambda s: 20.0, yesterday_fee)
    p = params(trend=0.0)
    assert next_fee(h, SlotInfo(target, MONDAY, 15), p, LIMITS) == pytest.approx(10.0)
    smooth = p.model_copy(update={"smooth_slots": 2})  # the mean of five slots of yesterday
    assert next_fee(h, SlotInfo(target, MONDAY, 15), smooth, LIMITS) == pytest.approx(10.0 / 5)


def test_both_directions_count_each_against_its_own_target():
    h = history([10.0] * 4, [30.0] * 4, [0.0] * 4)  # export 50 % over its 20 kWh target
    assert next_fee(h, slot_after(h), params(), LIMITS) == pytest.approx(0.0 + 10.0 * 0.5)


def test_the_fee_rises_at_once_but_falls_at_most_one_step_per_slot():
    h = history([40.0] * 4, None, [10.0] * 4)  # 100 % over the target
    assert next_fee(h, slot_after(h), params(max_rise_ct_per_kwh=3.0), LIMITS) == pytest.approx(13.0)
    low = history([0.0] * 4, None, [10.0] * 4)
    assert next_fee(low, slot_after(low), params(max_fall_ct_per_kwh=0.5), LIMITS) == pytest.approx(9.5)


def test_deferred_energy_holds_the_fee_until_it_has_been_served():
    # yesterday's evening took 18 kWh per slot; today the fee held it at 8: 10 kWh per slot deferred
    target = 2 * DAY - 1
    evening = lambda s: (s % DAY) >= DAY - 20  # noqa: E731
    h = two_days(lambda s: (8.0 if s >= DAY else 18.0) if evening(s) else 8.0, lambda s: 12.0)
    p = params(trend=0.0, hold_window_slots=8, release_slots=4.0)
    assert deferred_import_kwh(h, 15, p) == pytest.approx(8 * 10.0)
    # the forecast (18) is under the target (20), so the law alone would lower the fee ...
    assert (
        next_fee(h, SlotInfo(target, MONDAY, 15), p.model_copy(update={"release_slots": 96.0}), LIMITS) < 12
    )
    # ... but 80 kWh would come back at once where 4 slots take only 4 * 2 kWh: hold 12 ct/kWh
    assert next_fee(h, SlotInfo(target, MONDAY, 15), p, LIMITS) == pytest.approx(12.0)


def test_nothing_measured_holds_the_running_fee_or_starts_from_the_base_fee():
    assert next_fee(history([]), SlotInfo(1, MONDAY, 15), params(base_fee_ct_per_kwh=3.0), LIMITS) == 3.0
    h = history([math.nan] * 3, [math.nan] * 3, [7.0] * 3)
    assert next_fee(h, slot_after(h), params(), LIMITS) == 7.0


def test_fee_bounds_and_the_exchanges_limits_clamp_the_fee():
    h = history([1e300] * 3, [math.inf] * 3, [5.0] * 3)
    assert next_fee(h, slot_after(h), params(max_fee_ct_per_kwh=30.0), LIMITS) == 30.0
    assert next_fee(h, slot_after(h), params(), FeeLimits(0.0, 12.0)) == 12.0


def test_params_are_checked_with_messages_naming_the_field():
    with pytest.raises(ValidationError, match="import_limit_kwh"):
        params(import_limit_kwh=0)
    with pytest.raises(ValidationError, match="base_fee_ct_per_kwh"):
        params(base_fee_ct_per_kwh=50.0)
    with pytest.raises(ValidationError, match="cannot both be 0"):
        params(weight_yesterday=0.0, weight_last_week=0.0)
    with pytest.raises(ValueError, match="target_share"):
        parse_model({"model": "predictive", "import_limit_kwh": 1, "export_limit_kwh": 1, "target_share": 0})


def test_the_registry_runs_and_describes_it():
    model = parse_model({"model": "predictive", "import_limit_kwh": 25, "export_limit_kwh": 60})
    h = history([10.0] * 3, None, [2.0] * 3)
    assert compute_fee(model, h, slot_after(h), LIMITS) == next_fee(h, slot_after(h), model, LIMITS)
    assert describe(model).startswith("predictive controller (import <= 25, export <= 60 kWh/slot")


def test_closed_loop_it_learns_a_daily_peak_down_under_the_limit():
    """A market whose evening peak (40 kWh) is twice its limit (20 kWh) and whose import falls
    as the fee rises; the fee computed after slot n closed is in force in n + 2. Day 1 is over
    the limit; from day 4 on no slot is."""
    limit_kwh = 20.0
    p = params(import_limit_kwh=limit_kwh, target_share=0.9, gain_ct_per_kwh=10.0, max_fall_ct_per_kwh=2.0)
    quarter = np.arange(DAY)
    demand = 8.0 + 32.0 * np.exp(-(((quarter - 76) / 6.0) ** 2))  # kWh per slot without a fee
    days = 8
    n_slots = days * DAY
    imports, fees = np.full(n_slots, np.nan), np.full(n_slots, np.nan)
    in_force = np.full(n_slots + 2, 0.0)
    for n in range(n_slots):
        fees[n] = in_force[n]
        imports[n] = demand[n % DAY] / (1 + in_force[n] / 10.0)
        h = MarketHistory(np.arange(n + 1), imports[: n + 1], np.zeros(n + 1), fees[: n + 1])
        in_force[n + 2] = next_fee(h.tail(7 * DAY + 8), SlotInfo(n + 2, MONDAY, 15), p, LIMITS)
    peaks = imports.reshape(days, DAY).max(axis=1)
    assert peaks[0] > limit_kwh
    assert (peaks[3:] <= limit_kwh).all(), peaks
    assert np.isfinite(fees).all() and fees.max() <= 40.0


def two_days_export(export_at, import_at=lambda s: 0.0, fee_at=lambda s: 0.0):
    slots = range(2 * DAY - 2)
    return history([import_at(s) for s in slots], [export_at(s) for s in slots], [fee_at(s) for s in slots])


def test_export_alone_lifts_the_fee_only_to_its_cap_while_import_is_on_target():
    """A noon export 50 % over target with import far below it: without a cap the fee rises by
    gain x 0.5 (and curtails every owner once past the feed-in rate); with a 3 ct/kWh cap it stops
    there. An import above target lifts the fee past the cap as before."""
    target = 2 * DAY - 1
    exporting = two_days_export(lambda s: 30.0, fee_at=lambda s: 2.0)
    slot = SlotInfo(target, MONDAY, 15)
    uncapped = next_fee(exporting, slot, params(trend=0, gain_ct_per_kwh=20.0), LIMITS)
    assert uncapped == pytest.approx(2.0 + 20.0 * 0.5)
    capped = params(trend=0, gain_ct_per_kwh=20.0, export_fee_cap_ct_per_kwh=3.0)
    assert next_fee(exporting, slot, capped, LIMITS) == pytest.approx(3.0)
    both = two_days_export(lambda s: 30.0, import_at=lambda s: 30.0, fee_at=lambda s: 2.0)
    assert next_fee(both, slot, capped, LIMITS) == pytest.approx(2.0 + 20.0 * 0.5)


def test_export_cap_lowers_a_high_fee_no_faster_than_the_largest_fall():
    target = 2 * DAY - 1
    exporting = two_days_export(lambda s: 30.0, fee_at=lambda s: 20.0)  # in force: 20
    capped = params(trend=0, gain_ct_per_kwh=20.0, export_fee_cap_ct_per_kwh=3.0, max_fall_ct_per_kwh=1.0)
    assert next_fee(exporting, SlotInfo(target, MONDAY, 15), capped, LIMITS) == pytest.approx(19.0)


def test_a_leak_forgets_part_of_the_learned_fee_each_day():
    target = 2 * DAY - 1
    on_target = two_days(lambda s: 20.0, lambda s: 10.0)
    slot = SlotInfo(target, MONDAY, 15)
    assert next_fee(on_target, slot, params(trend=0), LIMITS) == pytest.approx(10.0)
    assert next_fee(on_target, slot, params(trend=0, leak=0.1), LIMITS) == pytest.approx(9.0)
    with pytest.raises(ValidationError):
        params(leak=0.9)


@pytest.mark.parametrize("slot_length_min", [5, 15, 60])
def test_forecast_of_a_market_with_other_slot_lengths_comes_from_the_same_time_yesterday(slot_length_min):
    """Stored history is read by label (Grid Singularity allows 2-60 minute slots): its slots must be
    counted in the market's own slot length, like the target slot a queued fee reaches."""
    start = parse("2026-06-21T00:00")
    per_day = 1440 // slot_length_min
    closed = labels(start, 2 * per_day - 2, slot_length_min)
    yesterday_18 = label(start.replace(hour=18))
    rows = [
        {"slot": slot, "import_kwh": 30.0 if slot == yesterday_18 else 5.0, "export_kwh": 0.0}
        for slot in closed
    ]
    history = MarketHistory.from_rows(rows, slot_length_min)
    assert np.all(np.diff(history.slot) == 1)  # one number per slot, none shared

    today_18 = target_slot(parse("2026-06-22T18:00"), slot_length_min)
    x_imp, _ = forecast_kwh(history, today_18.slot, slot_length_min, params(trend=0.0))
    assert x_imp == pytest.approx(30.0)  # yesterday's 18:00 peak, not a 5 kWh neighbour
