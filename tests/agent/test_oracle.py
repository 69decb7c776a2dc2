"""The oracle: every flexible asset scheduled with perfect foresight, the physical limit of fees."""

import numpy as np
import pytest

from app.exchange.generate import generate_scenario
from app.exchange.grid import build_grid
from app.exchange.profiles import ProfileSource
from app.exchange.scenario import parse_scenario
from app.operator.backtest import ZERO, backtest
from app.operator.oracle import oracle_peaks

SCENARIO = generate_scenario(2, 8, seed=5)


def _profiles(scenario, days: int) -> tuple[np.ndarray, np.ndarray]:
    source = ProfileSource(scenario, build_grid(scenario))
    load = np.concatenate([source.day(d).load_kwh.sum(axis=1) for d in range(days)])
    pv = np.concatenate([source.day(d).pv_kwh.sum(axis=1) for d in range(days)])
    return load, pv


def test_without_flexible_assets_the_oracle_has_nothing_to_move():
    data = SCENARIO.model_dump(mode="json")
    for community in data["grid"]["communities"]:
        for house in community["houses"]:
            house["assets"] = [a for a in house["assets"] if a["type"] in ("load", "pv")]
    rigid = parse_scenario(data)
    load, pv = _profiles(rigid, 2)
    result = oracle_peaks(rigid, 2)
    assert result.net_kwh == pytest.approx(load - pv, abs=1e-6)
    assert result.peak_import_kwh == pytest.approx((load - pv).max(), abs=1e-6)
    assert result.peak_export_kwh == pytest.approx((pv - load).max(), abs=1e-6)


def test_shifting_lowers_both_peaks_below_the_zero_fee_run_and_curtailment_takes_export_to_zero():
    zero = backtest(SCENARIO, ZERO, days=2, judge_from_slot=96)
    peaks = zero.peaks(zero.market_uuids[0])
    shifted = oracle_peaks(SCENARIO, 2, judge_from_slot=96, zero_peaks_kwh=peaks)
    assert shifted.status.startswith("Optimization terminated successfully")
    assert shifted.peak_import_kwh < peaks[0] and shifted.peak_export_kwh <= peaks[1] + 1e-6
    assert shifted.curtailed_kwh == 0.0
    curtailing = oracle_peaks(SCENARIO, 2, judge_from_slot=96, zero_peaks_kwh=peaks, curtailment=True)
    assert curtailing.peak_export_kwh == pytest.approx(0.0, abs=1e-6)
    assert curtailing.peak_import_kwh <= shifted.peak_import_kwh + 1e-6
