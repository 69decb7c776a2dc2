"""Peak tiers (the "Aziiz" rule): a true moving average, both readings of the tier table."""

import math

import pytest
from pydantic import ValidationError

from app.tariffs.base import FeeLimits
from app.tariffs.peak_tiers import PeakTierParams, moving_peak_kwh, next_fee, preset_challenge_2020

from .helpers import LIMITS, history, slot_after

NAN = math.nan


def fee(imports, exports=None, limits=LIMITS, **preset):
    h = history(imports, exports)
    return next_fee(h, slot_after(h), preset_challenge_2020(**preset), limits)


def test_the_preset_is_the_challenge_table():
    p = preset_challenge_2020()
    assert p.thresholds_kwh_per_slot == [10, 15, 20, 25, 30, 50]
    assert p.fees_ct_per_kwh == [0.9, 2.1, 3.0, 3.9, 6.0, 30.0]
    assert p.above_all_ct_per_kwh == 2000
    assert (p.look_back_slots, p.measure, p.rule, p.cap_ct_per_kwh) == (4, "max", "lower_bound", None)


def test_22_kwh_average_gives_3_ct_with_the_docs_rule():
    assert fee([20.0, 24.0, 21.0, 23.0]) == 3.0


def test_22_kwh_average_gives_3_9_ct_with_the_sdk_rule():
    assert fee([20.0, 24.0, 21.0, 23.0], rule="upper_bound") == 3.9


def test_the_sdk_example_with_a_true_moving_average_gives_30_3_2_1_0_9():
    balances = [40.0, 0.0, 0.0, 0.0]
    fees = [fee(balances[: n + 1], measure="net", rule="upper_bound") for n in range(4)]
    assert fees == [30.0, 3.0, 2.1, 0.9]  # averages 40, 20, 13.3, 10; the SDK's bug gave 30, 0.9, 0.9, 0.9


@pytest.mark.parametrize(
    ("load_kwh", "docs_fee", "sdk_fee"),
    [
        (0.0, 0.9, 0.9),
        (9.99, 0.9, 0.9),  # below the first threshold: the lowest tier under both rules
        (10.0, 0.9, 0.9),
        (10.01, 0.9, 2.1),
        (15.0, 2.1, 2.1),
        (49.9, 6.0, 30.0),
        (50.0, 30.0, 30.0),
        (50.1, 30.0, 100.0),  # SDK: above all -> 2000 ct/kWh, clamped to the limit of 100
        (1e6, 30.0, 100.0),
    ],
)
def test_tier_boundaries_under_both_rules(load_kwh, docs_fee, sdk_fee):
    assert fee([load_kwh]) == docs_fee
    assert fee([load_kwh], rule="upper_bound") == sdk_fee


def test_the_cap_limits_the_above_all_fee():
    assert fee([80.0], rule="upper_bound", cap_ct_per_kwh=30.0) == 30.0


def test_the_net_measure_averages_each_slots_absolute_balance():
    # import 30 / export 0, then import 0 / export 10: |30| and |-10| average 20 -> 3 ct (docs rule)
    assert fee([30.0, 0.0], [0.0, 10.0], measure="net") == 3.0
    # the larger direction per slot: 30 and 10 average 20 as well; export alone counts too
    assert fee([30.0, 0.0], [0.0, 10.0], measure="max") == 3.0
    assert fee([0.0, 0.0], [26.0, 26.0], measure="max") == 3.9


def test_only_the_last_look_back_slots_count():
    assert fee([100.0, 100.0, 0.0, 0.0, 0.0, 0.0]) == 0.9
    assert moving_peak_kwh(history([100.0, 0.0, 0.0, 0.0, 0.0]), 5, "max") == 20.0


def test_slots_with_unknown_flows_are_skipped():
    assert moving_peak_kwh(history([40.0, NAN, NAN, 0.0]), 4, "max") == 20.0
    assert moving_peak_kwh(history([40.0, 5.0], [0.0, NAN]), 4, "net") == 40.0


def test_an_empty_or_unknown_history_gives_the_lowest_tier():
    assert fee([]) == 0.9
    assert fee([NAN, NAN]) == 0.9
    assert fee([math.inf], [math.inf], measure="net") == 0.9  # inf - inf is unknown, not a peak


def test_an_infinite_load_gives_the_top_tier_inside_the_limits():
    assert fee([math.inf]) == 30.0
    assert fee([math.inf], rule="upper_bound", limits=FeeLimits(0, 50)) == 50.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"thresholds_kwh_per_slot": [10, 10]}, "strictly increasing: \\[1\\] = 10.0 follows \\[0\\] = 10.0"),
        ({"thresholds_kwh_per_slot": [-1, 10]}, "must be >= 0"),
        ({"fees_ct_per_kwh": [0.9, -2]}, "\\[1\\] = -2.0 ct/kWh is negative"),
        ({"fees_ct_per_kwh": [0.9]}, "fees_ct_per_kwh has 1 values but thresholds_kwh_per_slot has 2"),
        ({"look_back_slots": 0}, "greater than or equal to 1"),
        ({"look_back_slots": 97}, "less than or equal to 96"),
        ({"measure": "mean"}, "'max' or 'net'"),
        ({"cap_ct_per_kwh": -1}, "cap_ct_per_kwh"),
    ],
)
def test_bad_parameters_are_refused_with_a_clear_message(change, message):
    params = {"thresholds_kwh_per_slot": [10, 20], "fees_ct_per_kwh": [1, 2], "above_all_ct_per_kwh": 5}
    with pytest.raises(ValidationError, match=message):
        PeakTierParams(**(params | change))
