"""The registry: one tagged type for all models, dispatch, audit-log lines, readable errors."""

import datetime as dt

import pytest

from app.tariffs import constant, controller, critical_peak, peak_tiers, predictive, tou
from app.tariffs.base import FeeLimits, MarketHistory, SlotInfo
from app.tariffs.registry import MODEL_LABELS, compute_fee, describe, parse_model

from .helpers import LIMITS, MONDAY, history, slot_after

GRID = tou.preset_challenge_2020()["grid"]
EXAMPLES = {
    "constant": {"model": "constant", "fee_ct_per_kwh": 2},
    "tou": {"model": "tou", "table": {"all": GRID}},
    "peak_tiers": {"model": "peak_tiers", **peak_tiers.preset_challenge_2020().model_dump(exclude={"model"})},
    "controller": {"model": "controller", "import_limit_kwh": 40, "export_limit_kwh": 30},
    "predictive": {"model": "predictive", "import_limit_kwh": 40, "export_limit_kwh": 30},
    "critical_peak": {
        "model": "critical_peak",
        "base": {"model": "constant", "fee_ct_per_kwh": 2},
        "multiplier": 5,
        "events": [{"from": "17:00", "to": "20:00", "days": ["monday", "tuesday"]}],
    },
}
CLASSES = {
    "constant": constant.ConstantParams,
    "tou": tou.TouParams,
    "peak_tiers": peak_tiers.PeakTierParams,
    "controller": controller.ControllerParams,
    "predictive": predictive.PredictiveParams,
    "critical_peak": critical_peak.CriticalPeakParams,
}


def test_every_model_has_a_label():
    assert set(MODEL_LABELS) == set(EXAMPLES) == set(CLASSES)


@pytest.mark.parametrize("kind", EXAMPLES)
def test_parse_model_builds_the_tagged_model_and_its_json_parses_back(kind):
    model = parse_model(EXAMPLES[kind])
    assert type(model) is CLASSES[kind]
    assert model.model == kind
    assert parse_model(model.model_dump(mode="json")) == model


@pytest.mark.parametrize("kind", EXAMPLES)
def test_compute_fee_runs_the_models_own_function(kind):
    model = parse_model(EXAMPLES[kind])
    h = history([22.0, 50.0, 10.0, 3.0], [0.0, 5.0, 40.0, 0.0], fees=[2.0] * 4)
    slot = SlotInfo(5, MONDAY.replace(hour=17))
    module = {
        "constant": constant,
        "tou": tou,
        "peak_tiers": peak_tiers,
        "controller": controller,
        "predictive": predictive,
    }.get(kind, critical_peak)
    assert compute_fee(model, h, slot, LIMITS) == module.next_fee(h, slot, model, LIMITS)


def test_the_registry_gives_the_acceptance_fees():
    model = parse_model(EXAMPLES["peak_tiers"])
    h = history([22.0] * 4)
    assert compute_fee(model, h, slot_after(h), LIMITS) == 3.0
    cpp = parse_model(EXAMPLES["critical_peak"])
    assert compute_fee(cpp, MarketHistory(), SlotInfo(1, MONDAY.replace(hour=18)), FeeLimits(0, 8)) == 8.0


def test_describe_says_in_one_line_what_set_the_fee():
    assert describe(parse_model(EXAMPLES["constant"])) == "constant 2 ct/kWh"
    assert describe(parse_model(EXAMPLES["peak_tiers"])) == "peak tiers (max, 4-slot mean, challenge 2020)"
    assert describe(peak_tiers.preset_challenge_2020("net", "upper_bound", 30.0)) == (
        "peak tiers (net, 4-slot mean, challenge 2020, SDK upper-bound rule, cap 30 ct/kWh)"
    )
    own = peak_tiers.PeakTierParams(
        thresholds_kwh_per_slot=[5, 8], fees_ct_per_kwh=[1, 4], above_all_ct_per_kwh=9
    )
    assert describe(own) == "peak tiers (max, 4-slot mean, 2 tiers 5-8 kWh/slot -> 1-4 ct/kWh)"
    assert (
        describe(parse_model(EXAMPLES["tou"]))
        == f"time of use (challenge 2020 grid, {min(GRID):g}-{max(GRID):g} ct/kWh)"
    )
    days = tou.TouParams(table={"weekday": [1.0] * 96, "saturday": [2.0] * 96, "sunday": [2.0] * 96})
    assert describe(days) == "time of use (weekday/saturday/sunday, 1-2 ct/kWh)"
    assert describe(parse_model(EXAMPLES["controller"])) == (
        "congestion controller (import <= 40, export <= 30 kWh/slot, kp 2, ki 1 ct/kWh, fee 0-30 ct/kWh, "
        "step <= 2 ct/kWh)"
    )
    assert describe(parse_model(EXAMPLES["critical_peak"])) == (
        "critical peak x5 (17:00-20:00 mon,tue) on constant 2 ct/kWh"
    )


def test_describe_writes_large_and_small_numbers_plainly():
    big = peak_tiers.PeakTierParams(
        thresholds_kwh_per_slot=[1000, 1234567, 5e6],
        fees_ct_per_kwh=[0.00001, 0.1 + 0.2, 30],
        above_all_ct_per_kwh=9,
    )
    assert (
        describe(big) == "peak tiers (max, 4-slot mean, 3 tiers 1000-5000000 kWh/slot -> 0.00001-30 ct/kWh)"
    )
    assert (
        describe(parse_model({"model": "constant", "fee_ct_per_kwh": 1.2345678})) == "constant 1.23457 ct/kWh"
    )


def test_describe_fits_the_audit_columns():
    many = dict(EXAMPLES["critical_peak"])
    many["events"] = [
        {"start": dt.datetime(2026, 1, d, 17).isoformat(), "end": dt.datetime(2026, 1, d, 19).isoformat()}
        for d in range(1, 29)
    ] + [{"from": f"{h:02d}:00", "to": f"{h:02d}:30"} for h in range(10)]
    many["base"] = EXAMPLES["controller"] | {"deadband": 0.05, "forecast_weight": 0.5}
    line = describe(parse_model(many))
    assert "28 dated events" in line and "7 more windows" in line and "deadband 5 %" in line
    assert len(line) < 500 and "\n" not in line


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"model": "constant", "fee_ct_per_kwh": -1},
            "^fee_ct_per_kwh: Input should be greater than or equal to 0$",
        ),
        ({"model": "constant"}, "^fee_ct_per_kwh: Field required$"),
        ({"model": "constant", "fee_ct_per_kwh": 1, "fee": 2}, "^fee: Extra inputs are not permitted$"),
        (
            {"fee_ct_per_kwh": 1},
            "^model: missing; one of constant, tou, peak_tiers, controller, predictive, critical_peak$",
        ),
        ({"model": "flat"}, "^model: Input tag 'flat' found using 'model' does not match"),
        (
            {"model": "tou", "table": {"all": [1.0] * 95}},
            "^table: 'all': expected 96 quarter-hour values, found 95$",
        ),
        (
            {"model": "tou", "table": {"all": [1.0] * 40 + ["x"] + [1.0] * 55}},
            "^table.all\\[40\\]: Input should be",
        ),
        (
            {"model": "critical_peak", "multiplier": 2, "base": {"model": "constant", "fee_ct_per_kwh": -1}},
            "^base.fee_ct_per_kwh: Input should be greater than or equal to 0$",
        ),
        (
            {
                "model": "critical_peak",
                "multiplier": 2,
                "base": EXAMPLES["constant"],
                "events": [{"from": "7"}],
            },
            "^events\\[0\\].from: '7' is not a time HH:MM \\(00:00 .. 23:59\\); "
            "events\\[0\\].to: Field required$",
        ),
        (
            {**EXAMPLES["peak_tiers"], "fees_ct_per_kwh": [1.0]},
            "^fees_ct_per_kwh has 1 values but thresholds_kwh_per_slot has 6",
        ),
    ],
)
def test_parse_model_names_the_field_path_and_the_problem(data, message):
    with pytest.raises(ValueError, match=message):
        parse_model(data)


def test_parse_model_wants_an_object():
    with pytest.raises(ValueError, match="a fee model is a JSON object, got list"):
        parse_model([1, 2])
