"""The oracle: every flexible asset scheduled with perfect foresight, the physical limit of fees."""

import numpy as np
import pytest

from app.exchange.generate import generate_scenario
from app.exchange.grid import build_grid
from app.exchange.profiles import ProfileSource
from app.exchange.scenario import parse_scenario
from app.operator.backtest import ZERO, backtest
from app.operator.oracle import (
    GREEDY_FEES_CT_PER_KWH,
    Fleet,
    RunFlows,
    fees_of_run,
    fixed_batteries,
    greedy_fee_path,
    oracle_fixed_batteries,
    oracle_peaks,
    pooled,
    run_flows,
    scenario_fleet,
    schedule,
)

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


def _fleet(load_kwh, pv_kwh=None, battery=None, flex=()):
    """A hand-made fleet: ``battery`` = (house, usable kWh, step kWh), full at the start, lossless;
    ``flex`` = ((house, step kWh, first slot, slots, energy kWh), ...)."""
    load = np.asarray(load_kwh, dtype=float)
    pv = np.zeros_like(load) if pv_kwh is None else np.asarray(pv_kwh, dtype=float)
    bats = [battery] if battery else []
    return Fleet(
        load_kwh=load,
        pv_kwh=pv,
        bat_house=np.array([b[0] for b in bats], dtype=int),
        bat_capacity_kwh=np.array([b[1] for b in bats], dtype=float),
        bat_min_kwh=np.zeros(len(bats)),
        bat_initial_kwh=np.array([b[1] for b in bats], dtype=float),
        bat_step_kwh=np.array([b[2] for b in bats], dtype=float),
        bat_eta=np.ones(len(bats)),
        flex_house=np.array([f[0] for f in flex], dtype=int),
        flex_step_kwh=np.array([f[1] for f in flex], dtype=float),
        windows=tuple((i, f[2], f[3], f[4], f[4]) for i, f in enumerate(flex)),
    )


def test_a_battery_serves_only_its_own_house_where_pooling_would_lend_it_to_the_neighbour():
    """Two houses, two slots. House 0 (load 1, 0) owns a full 2 kWh battery; house 1 loads 1, 3.
    Without assets the root imports 2, 3. The battery can only cover house 0's own 1 kWh in slot
    0, so the peak stays 3 (slot 1). Pooled, it would give 0.5 and 1.5 kWh to the root: 1.5, 1.5."""
    fleet = _fleet([[1.0, 1.0], [0.0, 3.0]], battery=(0, 2.0, 2.0))
    own = schedule(fleet, zero_peaks_kwh=(3.0, 1.0))
    assert own.peak_import_kwh == pytest.approx(3.0, abs=1e-6)
    lent = schedule(pooled(fleet), zero_peaks_kwh=(3.0, 1.0))
    assert lent.peak_import_kwh == pytest.approx(1.5, abs=1e-6)


def test_a_battery_may_serve_its_own_houses_ev_and_the_ev_moves_to_the_emptier_slot():
    """House 0 (no base load) has an EV needing 2 kWh over slots 0-1 at most 2 kWh/slot and a full
    1 kWh battery; house 1 loads 3, 1. Best: the EV takes its 2 kWh in slot 1 and the battery
    serves 1 of them: root 3, 1 + 2 - 1 = 2, peak 3 (house 1's own slot 0, which nothing can
    touch). With house 1 loading 1, 1 instead: EV 1 + 1, battery 0.5 + 0.5: peak 1.5 + 0.5 = 2."""
    ev = ((0, 2.0, 0, 2, 2.0),)
    stuck = schedule(
        _fleet([[0.0, 3.0], [0.0, 1.0]], battery=(0, 1.0, 1.0), flex=ev), zero_peaks_kwh=(5.0, 1.0)
    )
    assert stuck.peak_import_kwh == pytest.approx(3.0, abs=1e-6)
    even = schedule(
        _fleet([[0.0, 1.0], [0.0, 1.0]], battery=(0, 1.0, 1.0), flex=ev), zero_peaks_kwh=(3.0, 1.0)
    )
    assert even.peak_import_kwh == pytest.approx(1.5, abs=1e-6)
    assert even.net_kwh == pytest.approx([1.5, 1.5], abs=1e-6)


def test_a_battery_does_not_export_into_the_grid():
    """House 0 has only a full 1 kWh battery and PV 1 kWh in slot 0 of 2 with no load: nothing
    of the battery may leave, so the root exports exactly the PV and imports house 1's 1 kWh."""
    fleet = _fleet([[0.0, 1.0], [0.0, 1.0]], pv_kwh=[[1.0, 0.0], [0.0, 0.0]], battery=(0, 1.0, 1.0))
    result = schedule(fleet, zero_peaks_kwh=(1.0, 1.0))
    assert result.net_kwh == pytest.approx([0.0, 1.0], abs=1e-6)


@pytest.mark.parametrize("seed", [5, 11])
def test_per_house_oracle_lies_between_the_pooled_bound_and_the_zero_fee_run(seed):
    """On a generated grid: the oracle (each battery only for its own house) does no worse than
    the zero-fee run in either direction, and no better than the pooled bound (whose batteries
    may serve any house) on what both minimise, I / I_0 + E / E_0."""
    scenario = generate_scenario(2, 8, seed=seed)
    zero = backtest(scenario, ZERO, days=2, judge_from_slot=96)
    peaks = zero.peaks(zero.market_uuids[0])
    own = oracle_peaks(scenario, 2, judge_from_slot=96, zero_peaks_kwh=peaks)
    lent = oracle_peaks(scenario, 2, judge_from_slot=96, zero_peaks_kwh=peaks, per_house=False)
    assert own.status.startswith("Optimization terminated successfully")
    assert own.peak_import_kwh <= peaks[0] + 1e-6 and own.peak_export_kwh <= peaks[1] + 1e-6
    assert own.objective >= lent.objective - 1e-6


@pytest.mark.parametrize("seed", [5, 11])
def test_scheduling_only_the_judged_days_gives_the_same_limit_as_the_whole_run(seed):
    """The days before the judged ones have no peak to keep: leaving the batteries' charge free at
    the judged start finds the same optimum as scheduling those days too (from the scenario's
    start charge)."""
    scenario = generate_scenario(2, 8, seed=seed)
    zero = backtest(scenario, ZERO, days=2, judge_from_slot=96)
    peaks = zero.peaks(zero.market_uuids[0])
    whole = schedule(scenario_fleet(scenario, 2), judge_from_slot=96, zero_peaks_kwh=peaks)
    judged = oracle_peaks(scenario, 2, judge_from_slot=96, zero_peaks_kwh=peaks)
    assert judged.objective == pytest.approx(whole.objective, abs=1e-6)
    assert np.isnan(judged.net_kwh[:96]).all()


def test_with_the_owners_even_rate_an_ev_cannot_wait_for_the_emptier_slot():
    """An EV needing 2 kWh over 2 slots (2 kWh/slot at most) beside a house loading 3, 1: the assets
    could put it all into slot 1 (peak 3), but the simulation's owners charge at least the even
    rate of what is left whatever the fee, 1 kWh in slot 0: peak 4, what fees can reach."""
    fleet = _fleet([[0.0, 3.0], [0.0, 1.0]], flex=((0, 2.0, 0, 2, 2.0),))
    assert schedule(fleet, zero_peaks_kwh=(4.0, 1.0)).peak_import_kwh == pytest.approx(3.0, abs=1e-6)
    owners = schedule(fleet, zero_peaks_kwh=(4.0, 1.0), even_rate=True)
    assert owners.peak_import_kwh == pytest.approx(4.0, abs=1e-6)
    assert owners.net_kwh == pytest.approx([4.0, 2.0], abs=1e-6)


def test_with_the_batteries_fixed_only_the_ev_moves_and_the_run_bounds_it():
    """Two houses, three slots. House 0 has an EV needing 2 kWh in slots 0-2 (at most 2 kWh/slot)
    and a battery that, in the run, charged 1 kWh in slot 0 and discharged 1 kWh in slot 2; house
    1 loads 2, 1, 1. Fixed, house 0 carries 1, 0, -1: net without the EV 3, 1, 0. The EV's best
    keeps out of slot 0 -> peak 3 (slot 0 is fixed). With the even rate (2/3 at least in slot 0):
    3 2/3 in slot 0, the rest (4/3) spread so slot 1 stays below: peak 3 2/3."""
    fleet = _fleet([[0.0, 2.0], [0.0, 1.0], [0.0, 1.0]], battery=(0, 2.0, 2.0), flex=((0, 2.0, 0, 3, 2.0),))
    flows = RunFlows(
        charge_kwh=np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]),
        discharge_kwh=np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]]),
        curtailed_kwh=np.zeros((3, 2)),
        import_kwh=np.zeros(3),
        export_kwh=np.zeros(3),
    )
    frozen = fixed_batteries(fleet, flows)
    assert len(frozen.bat_capacity_kwh) == 0
    assert frozen.load_kwh == pytest.approx(np.array([[1.0, 2.0], [0.0, 1.0], [-1.0, 1.0]]))
    free = schedule(frozen, zero_peaks_kwh=(5.0, 1.0))
    assert free.peak_import_kwh == pytest.approx(3.0, abs=1e-6)
    owners = schedule(frozen, zero_peaks_kwh=(5.0, 1.0), even_rate=True)
    assert owners.peak_import_kwh == pytest.approx(3.0 + 2.0 / 3.0, abs=1e-6)
    # the battery as a lever does better: it can discharge 1 kWh into the EV in slot 0 instead
    assert schedule(fleet, zero_peaks_kwh=(5.0, 1.0)).peak_import_kwh < 3.0 - 1e-6


def test_replaying_a_runs_fees_gives_its_flows_and_the_fixed_battery_oracle_bounds_that_run():
    """The zero-fee run, replayed from its fees, has the backtest's root flows; the oracle with its
    batteries fixed lies between the even-rate oracle (batteries free) and the run itself."""
    zero = backtest(SCENARIO, ZERO, days=2, judge_from_slot=96)
    peaks = zero.peaks(zero.market_uuids[0])
    fees = fees_of_run(SCENARIO, zero.series["fee_ct_per_kwh"], zero.market_uuids)
    assert fees.shape == (192, build_grid(SCENARIO).n_markets) and not fees.any()
    flows = run_flows(SCENARIO, fees)
    assert flows.import_kwh == pytest.approx(zero.series["import_kwh"][:, 0], abs=1e-9)
    assert flows.export_kwh == pytest.approx(zero.series["export_kwh"][:, 0], abs=1e-9)
    assert not flows.curtailed_kwh.any()  # no fee: nobody curtails
    fixed = oracle_fixed_batteries(SCENARIO, 2, flows, judge_from_slot=96, zero_peaks_kwh=peaks)
    free = oracle_peaks(SCENARIO, 2, judge_from_slot=96, zero_peaks_kwh=peaks, even_rate=True)
    assert fixed.status.startswith("Optimization terminated successfully")
    assert fixed.peak_import_kwh <= peaks[0] + 1e-6 and fixed.peak_export_kwh <= peaks[1] + 1e-6
    assert fixed.objective >= free.objective - 1e-6


def test_the_one_fee_search_keeps_zero_fees_when_nothing_is_over_its_aim_and_replays_exactly():
    """Aiming above the zero-fee peaks, the lowest fee (0) always stays within: the run is the
    zero-fee run. Aiming at half of them it sends fees from its candidates, only on judged slots,
    and replaying that fee path gives the same root flows; the fixed-battery oracle of that run
    is no worse than the run on I / I_0 + E / E_0."""
    zero = backtest(SCENARIO, ZERO, days=2, judge_from_slot=96)
    peaks = zero.peaks(zero.market_uuids[0])
    calm = greedy_fee_path(SCENARIO, 2, 96, (peaks[0] + 1, peaks[1] + 1), baseline_peaks=peaks)
    assert not calm.fee_ct_per_kwh.any()
    assert calm.import_kwh == pytest.approx(zero.series["import_kwh"][:, 0], abs=1e-9)
    tight = greedy_fee_path(SCENARIO, 2, 96, (peaks[0] / 2, peaks[1] / 2), baseline_peaks=peaks)
    assert not tight.fee_ct_per_kwh[:96].any() and tight.fee_ct_per_kwh[96:].any()
    assert set(tight.fee_ct_per_kwh) <= set(GREEDY_FEES_CT_PER_KWH)
    fees = np.zeros((192, build_grid(SCENARIO).n_markets))
    fees[:, 0] = tight.fee_ct_per_kwh
    flows = run_flows(SCENARIO, fees)
    assert flows.import_kwh == pytest.approx(tight.import_kwh, abs=1e-9)
    assert flows.export_kwh == pytest.approx(tight.export_kwh, abs=1e-9)
    assert tight.kpis["peak_import_kwh"] == pytest.approx(tight.import_kwh[96:].max())
    run = tight.kpis["peak_import_kwh"] / peaks[0] + tight.kpis["peak_export_kwh"] / peaks[1]
    fixed = oracle_fixed_batteries(SCENARIO, 2, flows, judge_from_slot=96, zero_peaks_kwh=peaks)
    assert fixed.objective <= run + 1e-6
