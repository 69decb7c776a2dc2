"""Backtests run the exchange with the live timing and report the KPIs of reference §2.10."""

import numpy as np
import pytest

from app.exchange.generate import generate_scenario
from app.exchange.grid import build_grid
from app.operator.backtest import ZERO, backtest
from app.operator.kpis import market_kpis
from app.tariffs.registry import parse_model

SCENARIO = generate_scenario(2, 6, seed=3)
GRID = build_grid(SCENARIO)
COMMUNITY = [m.uuid for m in GRID.markets if m.level == 1][0]


def test_a_model_fee_computed_after_slot_n_applies_from_slot_n_plus_2():
    result = backtest(SCENARIO, {COMMUNITY: parse_model({"model": "constant", "fee_ct_per_kwh": 5})}, days=1)
    fees = result.series["fee_ct_per_kwh"][:, result.market_uuids.index(COMMUNITY)]
    assert fees[:2].tolist() == [1.0, 1.0]  # the scenario's fee until the first model fee lands
    assert (fees[2:] == 5.0).all()


def test_zero_baseline_earns_nothing_and_every_kpi_is_reported_with_the_baseline():
    base = backtest(SCENARIO, ZERO, days=1)
    assert all(k["fee_revenue_ct"] == 0 for k in base.kpis.values())
    steered = backtest(SCENARIO, {}, days=1, baseline=base, limits_kwh={COMMUNITY: (5.0, 5.0)})
    kpis = steered.kpis[COMMUNITY]
    for key in (
        "peak_import_kwh",
        "peak_export_kwh",
        "peak_import_pct_of_baseline",
        "load_factor",
        "slots_over_limit",
        "fee_revenue_ct",
        "avg_trade_rate",
        "self_sufficiency",
        "unmatched_kwh",
        "fee_volatility",
    ):
        assert np.isfinite(kpis[key]), key
    assert kpis["fee_revenue_ct"] > 0


def test_kpis_by_hand():
    k = market_kpis(
        import_kwh=np.array([1.0, 4.0, 2.0, np.nan]),
        export_kwh=np.array([0.0, 0.0, 3.0, 1.0]),
        fee_ct_per_kwh=np.array([1.0, 1.0, 2.0, 2.0]),
        fee_revenue_ct=np.array([1.0, 4.0, 10.0, 2.0]),
        traded_kwh=np.array([1.0, 4.0, 5.0, 1.0]),
        avg_trade_rate=np.array([30.0, 20.0, np.nan, 10.0]),
        consumption_kwh=np.array([2.0, 4.0, 4.0, 0.0]),
        unmatched_kwh=np.array([0.0, 0.0, 0.5, 0.0]),
        baseline_peaks=(8.0, 6.0),
        limits_kwh=(3.0, 2.5),
    )
    assert k["peak_import_kwh"] == 4.0 and k["peak_export_kwh"] == 3.0
    assert k["peak_import_pct_of_baseline"] == 50.0 and k["peak_export_pct_of_baseline"] == 50.0
    assert k["load_factor"] == pytest.approx((7 / 4) / 4)
    assert k["slots_over_limit"] == 2 and k["energy_over_limit_kwh"] == pytest.approx(1.5)
    assert k["fee_revenue_ct"] == 17.0 and k["unmatched_kwh"] == 0.5
    assert k["avg_trade_rate"] == pytest.approx((30 + 80 + 10) / 6)
    assert k["self_sufficiency"] == pytest.approx(30.0)
    assert k["fee_changes"] == 1


def test_judged_kpis_cover_only_the_slots_after_the_tuning_days():
    whole = backtest(SCENARIO, ZERO, days=2)
    judged = backtest(SCENARIO, ZERO, days=2, judge_from_slot=96)
    root = whole.market_uuids[0]
    imports = whole.series["import_kwh"][:, 0]
    assert np.array_equal(judged.series["import_kwh"][:, 0], imports)  # both days were run
    assert judged.kpis[root]["peak_import_kwh"] == pytest.approx(imports[96:].max())
    assert judged.kpis[root]["import_kwh"] == pytest.approx(imports[96:].sum())
    assert whole.kpis[root]["import_kwh"] == pytest.approx(imports.sum())
