"""Every model, any valid params, any history: a finite fee within the exchange's limits.

The operator agent sends what a model returns without a second look, so this must hold for
empty histories, all-NaN stats, +-inf, 1e300 and negative flows, fees of any value, and slots
with or without a day of history behind them.
"""

from __future__ import annotations

import datetime as dt
import math
import os

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from app.tariffs.base import FeeLimits, MarketHistory, SlotInfo
from app.tariffs.registry import compute_fee, parse_model

EXAMPLES = int(os.environ.get("TARIFF_PROPERTY_EXAMPLES", "250"))  # more for a long hunt
WILD = [0.0, -0.0, 1e-300, 1e300, -1e300, math.inf, -math.inf, math.nan, 1.7976931348623157e308]

wild_floats = st.one_of(
    st.floats(0, 200),  # realistic flows and fees
    st.sampled_from(WILD),
    st.floats(allow_nan=True, allow_infinity=True),
)
fee = st.floats(0, 1e4)
gain = st.one_of(st.floats(0, 1e3), st.sampled_from([0.0, 1e300]))


@st.composite
def histories(draw) -> MarketHistory:
    # 90+ reaches back a day at 15 min, 670+ a week (the predictive controller's last week)
    n = draw(st.one_of(st.integers(0, 8), st.integers(90, 200), st.integers(670, 700)))
    if draw(st.booleans()):
        first = draw(st.integers(0, 10_000))
        slots = np.arange(first, first + n, dtype=np.int64)
    else:  # gaps, repeats, any order
        slots = np.resize(np.array(draw(st.lists(st.integers(0, 10_000), min_size=1, max_size=12))), n)

    def column() -> np.ndarray:
        kind = draw(st.sampled_from(["drawn", "nan", "constant"]))
        if kind == "nan":
            return np.full(n, np.nan)
        if kind == "constant":
            return np.full(n, draw(wild_floats))
        # a drawn pattern repeated to length n: cheap to generate, still mixes wild values
        return np.resize(np.array(draw(st.lists(wild_floats, min_size=1, max_size=12)), dtype=float), n)

    return MarketHistory(slots, column(), column(), column())


@st.composite
def slots(draw) -> SlotInfo:
    start = draw(st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1)))
    return SlotInfo(draw(st.integers(0, 10_100)), start, draw(st.sampled_from([15, 30, 60])))


@st.composite
def limits(draw) -> FeeLimits:
    low = draw(st.floats(0, 50))
    return FeeLimits(low, low + draw(st.floats(0, 200)))


@st.composite
def ordered(draw, n: int, low: float = 0.0, high: float = 1e4) -> list[float]:
    return sorted(draw(st.lists(st.floats(low, high), min_size=n, max_size=n)))


def constant_models():
    return st.builds(lambda f: {"model": "constant", "fee_ct_per_kwh": f}, fee)


@st.composite
def tou_models(draw) -> dict:
    keys = draw(st.sampled_from([["all"], ["weekday", "saturday", "sunday"]]))
    column = st.lists(st.floats(0, 1e3), min_size=1, max_size=8).map(lambda v: np.resize(v, 96).tolist())
    return {"model": "tou", "table": {k: draw(column) for k in keys}}


@st.composite
def peak_tier_models(draw) -> dict:
    thresholds = sorted(draw(st.sets(st.floats(0, 1e4), min_size=1, max_size=8)))
    return {
        "model": "peak_tiers",
        "thresholds_kwh_per_slot": thresholds,
        "fees_ct_per_kwh": draw(st.lists(fee, min_size=len(thresholds), max_size=len(thresholds))),
        "above_all_ct_per_kwh": draw(fee),
        "look_back_slots": draw(st.integers(1, 96)),
        "measure": draw(st.sampled_from(["max", "net"])),
        "rule": draw(st.sampled_from(["upper_bound", "lower_bound"])),
        "cap_ct_per_kwh": draw(st.none() | fee),
    }


@st.composite
def flow_limits_and_fee_range(draw) -> dict:
    """What both controllers have: import and export limits, a base fee between its min and max."""
    low, base, high = draw(ordered(3, 0, 1e3))
    return {
        "import_limit_kwh": draw(st.floats(1e-3, 1e6)),
        "export_limit_kwh": draw(st.floats(1e-3, 1e6)),
        "base_fee_ct_per_kwh": base,
        "min_fee_ct_per_kwh": low,
        "max_fee_ct_per_kwh": high,
    }


@st.composite
def controller_models(draw) -> dict:
    return {
        "model": "controller",
        **draw(flow_limits_and_fee_range()),
        "kp_ct_per_kwh": draw(gain),
        "ki_ct_per_kwh": draw(gain),
        "max_step_ct_per_kwh": draw(st.floats(1e-3, 100)),
        "deadband": draw(st.floats(0, 1)),
        "forecast_weight": draw(st.floats(0, 1)),
    }


@st.composite
def predictive_models(draw) -> dict:
    return {
        "model": "predictive",
        **draw(flow_limits_and_fee_range()),
        "target_share": draw(st.floats(1e-3, 1.5)),
        "gain_ct_per_kwh": draw(gain),
        "weight_yesterday": draw(st.floats(0.01, 1)),
        "weight_last_week": draw(st.floats(0, 1)),
        "trend": draw(st.floats(0, 1)),
        "max_rise_ct_per_kwh": draw(st.floats(1e-3, 100)),
        "max_fall_ct_per_kwh": draw(st.floats(1e-3, 100)),
        "hold_window_slots": draw(st.integers(1, 192)),
        "release_slots": draw(st.floats(1e-3, 96)),
        "smooth_slots": draw(st.integers(0, 8)),
    }


@st.composite
def events(draw) -> dict:
    if draw(st.booleans()):
        start = draw(st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1)))
        end = start + dt.timedelta(minutes=draw(st.integers(1, 60 * 24 * 3)))
        return {"start": start.isoformat(), "end": end.isoformat()}
    begin, end = draw(st.lists(st.integers(0, 1439), min_size=2, max_size=2, unique=True))
    days = draw(
        st.lists(st.sampled_from(["monday", "tue", "Wed", "thursday", "fri", "saturday", "sun"]), min_size=1)
    )
    return {"from": f"{begin // 60}:{begin % 60:02d}", "to": f"{end // 60:02d}:{end % 60:02d}", "days": days}


base_models = st.one_of(
    constant_models(), tou_models(), peak_tier_models(), controller_models(), predictive_models()
)


@st.composite
def critical_peak_models(draw) -> dict:
    return {
        "model": "critical_peak",
        "base": draw(base_models),
        "multiplier": draw(st.floats(1, 20)),
        "events": draw(st.lists(events(), max_size=4)),
    }


def check(data: dict, history: MarketHistory, slot: SlotInfo, fee_limits: FeeLimits) -> float:
    fee = compute_fee(parse_model(data), history, slot, fee_limits)
    assert type(fee) is float
    assert math.isfinite(fee)
    assert fee_limits.min_ct_per_kwh <= fee <= fee_limits.max_ct_per_kwh
    return fee


@settings(max_examples=EXAMPLES, deadline=None)
@given(constant_models(), histories(), slots(), limits())
def test_constant_fee_is_finite_and_within_limits(data, history, slot, fee_limits):
    check(data, history, slot, fee_limits)


@settings(max_examples=EXAMPLES, deadline=None)
@given(tou_models(), histories(), slots(), limits())
def test_time_of_use_fee_is_finite_and_within_limits(data, history, slot, fee_limits):
    check(data, history, slot, fee_limits)


@settings(max_examples=EXAMPLES, deadline=None)
@given(peak_tier_models(), histories(), slots(), limits())
def test_peak_tier_fee_is_finite_within_limits_and_one_of_the_tiers(data, history, slot, fee_limits):
    fee = check(data, history, slot, fee_limits)
    candidates = [*data["fees_ct_per_kwh"], data["above_all_ct_per_kwh"]]
    if data["cap_ct_per_kwh"] is not None:
        candidates = [min(c, data["cap_ct_per_kwh"]) for c in candidates]
    assert fee in {fee_limits.clamp(c) for c in candidates}


@settings(max_examples=EXAMPLES, deadline=None)
@given(controller_models(), histories(), slots(), limits())
def test_controller_fee_is_finite_within_limits_and_moves_at_most_one_step(data, history, slot, fee_limits):
    fee = check(data, history, slot, fee_limits)
    last = history.fee_ct_per_kwh[-1] if len(history) else math.nan
    low = max(data["min_fee_ct_per_kwh"], fee_limits.min_ct_per_kwh)
    high = min(data["max_fee_ct_per_kwh"], fee_limits.max_ct_per_kwh)
    if low <= high and math.isfinite(last) and low <= last <= high:
        assert abs(fee - last) <= data["max_step_ct_per_kwh"] * (1 + 1e-9)


@settings(max_examples=EXAMPLES, deadline=None)
@given(predictive_models(), histories(), slots(), limits())
def test_predictive_fee_is_finite_within_limits_and_rises_or_falls_at_most_one_step(
    data, history, slot, fee_limits
):
    fee = check(data, history, slot, fee_limits)
    last = history.fee_ct_per_kwh[-1] if len(history) else math.nan
    low = max(data["min_fee_ct_per_kwh"], fee_limits.min_ct_per_kwh)
    high = min(data["max_fee_ct_per_kwh"], fee_limits.max_ct_per_kwh)
    if low <= high and math.isfinite(last) and low <= last <= high:
        assert fee - last <= data["max_rise_ct_per_kwh"] * (1 + 1e-9) + 1e-9
        assert last - fee <= data["max_fall_ct_per_kwh"] * (1 + 1e-9) + 1e-9


@settings(max_examples=EXAMPLES, deadline=None)
@given(critical_peak_models(), histories(), slots(), limits())
def test_critical_peak_fee_is_finite_and_within_limits(data, history, slot, fee_limits):
    check(data, history, slot, fee_limits)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(base_models, critical_peak_models()), histories(), slots(), limits())
def test_models_are_pure_functions_of_their_inputs(data, history, slot, fee_limits):
    model = parse_model(data)
    before = [
        a.copy() for a in (history.slot, history.import_kwh, history.export_kwh, history.fee_ct_per_kwh)
    ]
    first = compute_fee(model, history, slot, fee_limits)
    assert compute_fee(model, history, slot, fee_limits) == first
    after = (history.slot, history.import_kwh, history.export_kwh, history.fee_ct_per_kwh)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(before, after, strict=True))
