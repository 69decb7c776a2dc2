"""Congestion controller: PI in velocity form, rate limit, clamps, no windup, closed loop."""

import datetime as dt
import math

import numpy as np
import pytest
from pydantic import ValidationError

from app.tariffs.base import FeeLimits, MarketHistory, SlotInfo
from app.tariffs.controller import ControllerParams, next_fee, slot_errors

from .helpers import LIMITS, MONDAY, history, slot_after, with_reference

NAN = math.nan


params = with_reference(
    ControllerParams,
    import_limit_kwh=40.0,
    export_limit_kwh=30.0,
    kp_ct_per_kwh=2.0,
    ki_ct_per_kwh=1.0,
    base_fee_ct_per_kwh=5.0,
    min_fee_ct_per_kwh=1.0,
    max_fee_ct_per_kwh=30.0,
    max_step_ct_per_kwh=2.0,
)


def fee(imports, exports=None, fees=None, limits=LIMITS, **change):
    h = history(imports, exports, fees)
    return next_fee(h, slot_after(h), params(**change), limits)


def test_the_error_is_the_worse_direction_relative_to_its_limit():
    h = history([60.0, 0.0, 20.0], [0.0, 45.0, NAN])
    errors = slot_errors(h, params())
    assert errors[:2].tolist() == [0.5, 0.5]  # import 50 % over 40; export 50 % over 30
    assert math.isnan(errors[2])


def test_one_pi_step_by_hand():
    # errors 0 then 0.25: 5 + kp * (0.25 - 0) + ki * 0.25 = 5 + 0.5 + 0.25
    assert fee([40.0, 50.0], fees=[5.0, 5.0]) == pytest.approx(5.75)


def test_over_the_limit_the_fee_rises_by_at_most_the_maximum_step():
    assert fee([100.0, 100.0], fees=[5.0, 5.0], ki_ct_per_kwh=10.0) == 7.0
    assert fee([math.inf], fees=[5.0]) == 7.0


def test_under_the_limit_a_fee_above_the_minimum_falls():
    assert fee([20.0, 20.0], fees=[10.0, 10.0]) == pytest.approx(9.5)  # ki * -0.5
    assert fee([0.0, 0.0], fees=[1.2, 1.2]) == 1.0  # down to the minimum, not below
    assert fee([0.0, 0.0], fees=[1.0, 1.0]) == 1.0


def test_at_the_maximum_it_stays_while_over_and_falls_as_soon_as_the_error_turns_negative():
    over = [80.0] * 50  # 50 slots 100 % over the limit with the fee held at its maximum
    assert fee(over, fees=[30.0] * 50) == 30.0
    # one slot under the limit: the fee falls at once (a positional PI would first unwind 50 slots of
    # accumulated error and stay at the maximum)
    # 30 + kp * (-0.1 - 1.0) + ki * -0.1 = 27.7, rate-limited to one step of 2
    assert fee([*over, 36.0], fees=[30.0] * 51) == 28.0
    assert fee([*over, 36.0], fees=[30.0] * 51, max_step_ct_per_kwh=5.0) == pytest.approx(27.7)


def test_the_exchange_limits_apply_over_the_params():
    assert fee([100.0], fees=[8.0], limits=FeeLimits(0, 8)) == 8.0
    assert fee([0.0], fees=[3.0], limits=FeeLimits(2.5, 100)) == 2.5


def test_without_a_known_fee_it_starts_from_the_base_fee():
    assert fee([], fees=[]) == 5.0
    assert fee([40.0], fees=[NAN]) == 5.0  # error 0: P kick 0, I 0
    assert fee([50.0], fees=[math.inf]) == pytest.approx(5.0 + 2.0 * 0.25 + 0.25)


def test_slots_with_unknown_flows_are_skipped_and_nothing_known_holds_the_fee():
    # errors 0.25 (slot 0) and 0 (slot 2); slot 1 is unknown
    assert fee([50.0, NAN, 40.0], fees=[5.0, 5.0, 6.0]) == pytest.approx(6.0 + 2.0 * -0.25)
    assert fee([NAN, NAN], fees=[5.0, 6.0]) == 6.0


def test_a_deadband_ignores_small_errors_and_shrinks_larger_ones():
    assert fee([42.0, 42.0], fees=[5.0, 5.0], deadband=0.1) == 5.0  # 5 % over: inside the band
    # 25 % over counts as 15 %: 5 + 2 * 0.15 + 0.15
    assert fee([40.0, 50.0], fees=[5.0, 5.0], deadband=0.1) == pytest.approx(5.45)


def test_the_look_ahead_raises_the_fee_before_yesterdays_peak_comes_back():
    # 101 closed slots (0..100) of 20 kWh, 50 % under the limit, except slot 6 yesterday: 120 kWh,
    # the same time of day as the slot the fee is for (102 = 6 + 96).
    imports = [20.0] * 101
    imports[6] = 120.0
    h = history(imports, fees=[5.0] * 101)
    slot = slot_after(h)
    assert slot.slot == 102
    feedback_only = next_fee(h, slot, params(), LIMITS)
    look_ahead = next_fee(h, slot, params(forecast_weight=0.5), LIMITS)
    assert feedback_only == pytest.approx(4.5)  # ki * -0.5
    # E_now = 0.5 * -0.5 + 0.5 * 2 = 0.75, E_before = -0.5: 5 + 2 * 1.25 + 0.75, rate-limited to +2
    assert look_ahead == 7.0
    # after yesterday's peak slot has passed, the look-ahead lowers the fee again
    later = next_fee(
        h, SlotInfo(103, slot.start + dt.timedelta(minutes=15)), params(forecast_weight=0.5), LIMITS
    )
    assert later < 5.0


def test_the_look_ahead_needs_yesterday_in_the_history():
    # only 10 slots: no slot a day back, so the look-ahead changes nothing
    assert fee([20.0] * 10, fees=[5.0] * 10, forecast_weight=1.0) == fee([20.0] * 10, fees=[5.0] * 10)


def test_the_closed_loop_brings_the_peak_down_to_the_limit():
    """The market's import falls with the fee (60 kWh at 0 ct, -2 kWh per ct/kWh); limit 40 kWh.

    Timing as on the exchange: when slot n closes, the fee computed applies from n + 2.
    """
    p = params(kp_ct_per_kwh=5.0, ki_ct_per_kwh=5.0, base_fee_ct_per_kwh=2.0)
    fees = [2.0, 2.0]
    imports: list[float] = []
    for n in range(80):
        imports.append(max(0.0, 60.0 - 2.0 * fees[n]))
        h = MarketHistory(np.arange(n + 1), np.array(imports), np.zeros(n + 1), np.array(fees[: n + 1]))
        fees.append(next_fee(h, SlotInfo(n + 2, MONDAY + dt.timedelta(minutes=15 * (n + 2))), p, LIMITS))
    assert imports[0] == 56.0
    assert max(imports[-20:]) <= 40.0 * 1.01
    assert np.diff(fees).max() <= 2.0 + 1e-12
    assert fees[-1] == pytest.approx(10.0, abs=0.1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"import_limit_kwh": 0}, "import_limit_kwh"),
        ({"export_limit_kwh": -5}, "export_limit_kwh"),
        ({"kp_ct_per_kwh": -1}, "kp_ct_per_kwh"),
        ({"max_step_ct_per_kwh": 0}, "max_step_ct_per_kwh"),
        ({"min_fee_ct_per_kwh": 40}, "min_fee_ct_per_kwh \\(40.0\\) is above max_fee_ct_per_kwh \\(30.0\\)"),
        ({"base_fee_ct_per_kwh": 0.5}, "base_fee_ct_per_kwh \\(0.5\\) must lie between"),
        ({"deadband": 1.5}, "deadband"),
        ({"forecast_weight": 2}, "forecast_weight"),
        ({"ki_ct_per_kwh": math.nan}, "ki_ct_per_kwh"),
    ],
)
def test_bad_parameters_are_refused_with_a_clear_message(change, message):
    with pytest.raises(ValidationError, match=message):
        params(**change)
