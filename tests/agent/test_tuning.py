"""Tuning a model on days before the ones it is judged on: one rule (app.operator.tuning) for the
bench and What-if, and a score that charges for curtailed energy and a dearer price."""

import numpy as np
import pytest

from app.exchange.generate import generate_scenario
from app.exchange.grid import build_grid
from app.exchange.scenario import parse_scenario
from app.operator.backtest import ZERO, backtest
from app.operator.tuning import tune_model, tuning_score

SCENARIO = generate_scenario(2, 4, seed=7)
GRID = build_grid(SCENARIO)
MANAGED = [m.uuid for m in GRID.markets if m.level <= 1]
ROOT = GRID.markets[0].uuid
ZERO_KPIS = {"export_kwh": 100.0, "avg_trade_rate": 10.0}


def test_the_score_charges_curtailed_energy_and_a_dearer_price_on_top_of_the_worse_peak():
    calm = {
        "peak_import_pct_of_baseline": 60.0,
        "peak_export_pct_of_baseline": 70.0,
        "unmatched_kwh": 0.0,
        "avg_trade_rate": 10.0,
    }
    assert tuning_score(calm, ZERO_KPIS) == pytest.approx(70.0)  # the worse direction
    # the same peaks bought by curtailing all the export energy and doubling the price
    dear = calm | {"unmatched_kwh": 100.0, "avg_trade_rate": 20.0}
    assert tuning_score(dear, ZERO_KPIS, waste_pp=10, price_pp=10) == pytest.approx(70.0 + 10 + 10)
    # a cheaper price than without fees earns nothing back
    assert tuning_score(calm | {"avg_trade_rate": 5.0}, ZERO_KPIS) == pytest.approx(70.0)
    # a lower peak that costs 3 x the price loses to the calm one at 10 points per 100 %
    low_but_dear = calm | {"peak_export_pct_of_baseline": 55.0, "avg_trade_rate": 30.0}
    assert tuning_score(low_but_dear, ZERO_KPIS) > tuning_score(calm, ZERO_KPIS)


def test_a_run_may_start_at_any_slot_of_the_scenario_with_that_days_profiles():
    data = SCENARIO.model_dump(mode="json")
    for community in data["grid"]["communities"]:
        for house in community["houses"]:
            house["assets"] = [a for a in house["assets"] if a["type"] in ("load", "pv")]
    rigid = parse_scenario(data)  # no state to carry over: the days are the same either way
    whole = backtest(rigid, ZERO, days=2)
    later = backtest(rigid, ZERO, days=1, start_slot=96)
    assert later.slot_labels == whole.slot_labels[96:]
    np.testing.assert_allclose(later.series["import_kwh"], whole.series["import_kwh"][96:])


def test_tuning_keeps_the_lowest_score_of_the_grid_on_the_days_that_end_at_end_slot():
    limits = {u: (2.0, 2.0) if u != ROOT else (6.0, 6.0) for u in MANAGED}
    grid = {"target_share": (0.5, 1.0), "gain_ct_per_kwh": (5.0, 40.0)}
    result = tune_model(SCENARIO, "predictive", grid, tune_days=2, limits_kwh=limits, end_slot=3 * 96)
    assert [row.change for row in result.rows] == [
        {"target_share": 0.5, "gain_ct_per_kwh": 5.0},
        {"target_share": 0.5, "gain_ct_per_kwh": 40.0},
        {"target_share": 1.0, "gain_ct_per_kwh": 5.0},
        {"target_share": 1.0, "gain_ct_per_kwh": 40.0},
    ]
    best = min(result.rows, key=lambda row: row.score)
    assert result.best == best.change
    assert result.scored_from_slot == 96 + 96  # days 1-2 replayed, day 2 scored (day 1 warms up)
    # the row's figures are those of the same days replayed with that setting
    from app.operator.tuning import predictive_params
    from app.tariffs.registry import parse_model

    models = {u: parse_model(predictive_params(*limits[u], **best.change)) for u in MANAGED}
    zero = backtest(SCENARIO, ZERO, days=2, judge_from_slot=96, start_slot=96)
    again = backtest(SCENARIO, models, days=2, baseline=zero, judge_from_slot=96, start_slot=96).kpis[ROOT]
    assert best.peak_import_pct == pytest.approx(again["peak_import_pct_of_baseline"])
    assert best.score == pytest.approx(tuning_score(again, zero.kpis[ROOT]))
    # no tuning days: nothing to choose
    assert tune_model(SCENARIO, "predictive", grid, tune_days=0, limits_kwh=limits).best == {}
