"""Tuning a fee model's parameters by replaying days: the one rule for the bench and What-if.

A model's parameters (a controller's gain, the share of the limit it aims at, ...) are chosen by
running every candidate of a small grid on *tuning* days through ``app.operator.backtest`` (the
live timing, fees for n+2 computed after n closed) and keeping the one with the lowest score.
Those days must come before the days a model is judged on: a setting chosen on the very days it
is judged looks better than it will be.

**The score** (lower is better), of the grid market's (root's) flows on the scored slots:

    score = max(peak import %, peak export %)                  # of the zero-fee run's peaks
          + waste_pp * unmatched_kwh / zero-fee export_kwh      # energy thrown away
          + price_pp * max(avg price / zero-fee avg price - 1, 0)   # what members pay more

A setting that lowers the export peak by curtailing every kWh of PV, or holds the peaks by
pricing the whole day near the largest fee, pays for it here: ``waste_pp`` points per 100 % of the
zero-fee export energy left unmatched and ``price_pp`` points per 100 % the average trade price
rises above the zero-fee one. Both are stated in the result, so a reader sees what the chosen
setting was traded off against.

**Warm-up.** A candidate is scored on the second half of the tuning days: the first half is the
models' warm-up (the predictive controller learns from the same slot yesterday and has no such
history on day 1).

**Which days.** ``end_slot`` is where the tuning days end (default: ``tune_days`` after the
scenario's start); the replay starts ``tune_days`` before it with the assets as the scenario
starts them. For "the last T days" of a live market, ``end_slot`` is its last closed slot + 1.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from app.exchange.grid import build_grid
from app.exchange.scenario import Scenario
from app.operator.backtest import ZERO, BacktestResult, Cancelled, backtest
from app.tariffs.registry import parse_model

WASTE_PP = 10.0
"""Points per 100 % of the zero-fee export energy left unmatched (curtailed)."""
PRICE_PP = 10.0
"""Points per 100 % the average trade price rises above the zero-fee run's."""

CONTROLLER_GRID: dict[str, tuple] = {  # PI controller: the issue-5 tuning, with these alternatives
    "ki_ct_per_kwh": (2.0, 5.0, 10.0),
    "forecast_weight": (0.0, 0.5),
}
PREDICTIVE_GRID: dict[str, tuple] = {  # gain 25 and smoothing 2 as issue 20 tuned them first
    "target_share": (0.5, 0.75, 0.9),
    "export_fee_cap_ct_per_kwh": (None, 2.5),
    "leak": (0.0, 0.1),
}


START_PARAMS: dict[str, dict[str, float]] = {  # what the bench and the tuning start from
    "controller": {
        "kp_ct_per_kwh": 2.0,
        "ki_ct_per_kwh": 5.0,
        "base_fee_ct_per_kwh": 1.0,
        "min_fee_ct_per_kwh": 0.0,
        "max_fee_ct_per_kwh": 40.0,
        "max_step_ct_per_kwh": 6.0,
        "max_step_down_ct_per_kwh": 0.5,
        "forecast_weight": 0.0,
    },
    "predictive": {
        "base_fee_ct_per_kwh": 1.0,
        "max_fee_ct_per_kwh": 40.0,
        "max_fall_ct_per_kwh": 0.5,
        "gain_ct_per_kwh": 25.0,
        "smooth_slots": 2,
    },
}


def start_params(model: str, import_limit_kwh: float, export_limit_kwh: float, **change: float) -> dict:
    """``model``'s parameters the bench starts from (:data:`START_PARAMS`) in a market of these
    limits [kWh/slot] (at least 0.1 each), with ``change`` applied."""
    return {
        "model": model,
        "import_limit_kwh": max(import_limit_kwh, 0.1),
        "export_limit_kwh": max(export_limit_kwh, 0.1),
        **START_PARAMS[model],
    } | change


def controller_params(import_limit_kwh: float, export_limit_kwh: float, **change: float) -> dict:
    """The PI controller's parameters the bench starts from, with ``change`` applied."""
    return start_params("controller", import_limit_kwh, export_limit_kwh, **change)


def predictive_params(import_limit_kwh: float, export_limit_kwh: float, **change: float) -> dict:
    """The predictive controller's parameters the bench starts from, with ``change`` applied."""
    return start_params("predictive", import_limit_kwh, export_limit_kwh, **change)


def base_params(model: str) -> Callable[..., dict]:
    """``(import limit, export limit, **change) -> parameters`` of a tunable model."""
    return functools.partial(start_params, model)


DEFAULT_GRIDS: dict[str, dict[str, tuple]] = {"controller": CONTROLLER_GRID, "predictive": PREDICTIVE_GRID}


def tuning_score(
    kpis: Mapping[str, float],
    zero_kpis: Mapping[str, float],
    waste_pp: float = WASTE_PP,
    price_pp: float = PRICE_PP,
) -> float:
    """The score above (lower is better) of a run's root KPIs against the zero-fee run's."""
    worse = max(kpis["peak_import_pct_of_baseline"], kpis["peak_export_pct_of_baseline"])
    waste = kpis["unmatched_kwh"] / max(zero_kpis["export_kwh"], 1e-9)
    zero_price = zero_kpis.get("avg_trade_rate", float("nan"))
    price = kpis.get("avg_trade_rate", float("nan"))
    dearer = max(price / zero_price - 1, 0.0) if math.isfinite(price) and zero_price > 0 else 0.0
    return worse + waste_pp * waste + price_pp * dearer


@dataclass(frozen=True)
class TuningRow:
    """One candidate on the scored tuning slots (root market)."""

    change: dict  # the parameters this candidate sets
    peak_import_pct: float  # of the zero-fee run's peak
    peak_export_pct: float
    unmatched_pct: float  # of the zero-fee run's export energy
    avg_price_ct_per_kwh: float
    score: float


@dataclass(frozen=True)
class TuningResult:
    model: str
    best: dict  # the winning candidate's change ({} without tuning days)
    rows: list[TuningRow]  # in the grid's order
    tune_days: int
    scored_from_slot: int  # slots before this are warm-up
    zero_avg_price_ct_per_kwh: float
    waste_pp: float
    price_pp: float


def candidate_changes(grid_values: Mapping[str, tuple]) -> list[dict]:
    """Every combination of the grid, in order (the last key varies fastest)."""
    return [
        dict(zip(grid_values, values, strict=True)) for values in itertools.product(*grid_values.values())
    ]


def tune_model(
    scenario: Scenario,
    model: str,
    grid_values: Mapping[str, tuple] | None = None,
    tune_days: int = 7,
    *,
    limits_kwh: Mapping[str, tuple[float, float]] | None = None,
    end_slot: int | None = None,
    markets: list[str] | None = None,
    make: Callable[..., dict] | None = None,
    make_models: Callable[[dict], Mapping[str, object]] | None = None,
    waste_pp: float = WASTE_PP,
    price_pp: float = PRICE_PP,
    scored_zero: BacktestResult | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TuningResult:
    """Run every candidate of ``grid_values`` on the ``tune_days`` days ending at ``end_slot``
    and return the best (lowest ``tuning_score``) with the whole table.

    ``model``: ``"controller"`` or ``"predictive"`` (or any, with ``make``). ``limits_kwh``:
    ``{market uuid: (import, export) [kWh/slot]}`` of every market the model runs in (default
    ``markets``: the grid and communities); every candidate runs the model in each of them with
    that market's limits. ``make_models``: instead, ``change -> {market uuid: model (dict or
    FeeModel)}`` (What-if's candidates, whose levels have parameters of their own).
    ``scored_zero``: the zero-fee run of the same days and scoring window, if the caller has it.
    ``should_stop`` returning True cancels (``Cancelled``).
    """
    make = make or base_params(model)
    grid_values = DEFAULT_GRIDS[model] if grid_values is None else grid_values
    grid = build_grid(scenario)
    root = grid.markets[0].uuid
    managed = markets or [m.uuid for m in grid.markets if m.level <= 1]
    spd = scenario.slots_per_day
    if tune_days < 1:
        return TuningResult(model, {}, [], 0, 0, float("nan"), waste_pp, price_pp)
    end = tune_days * spd if end_slot is None else int(end_slot)
    start = max(end - tune_days * spd, 0)  # a history shorter than T days: its first T days
    warm_up = (tune_days // 2) * spd
    days = tune_days

    def run(models: Mapping[str, object]) -> dict:
        return backtest(
            scenario,
            models,
            days=days,
            baseline=scored_zero,
            judge_from_slot=warm_up,
            start_slot=start,
            should_stop=should_stop,
        ).kpis[root]

    if scored_zero is None:
        scored_zero = backtest(
            scenario, ZERO, days=days, judge_from_slot=warm_up, start_slot=start, should_stop=should_stop
        )
    zero_kpis = scored_zero.kpis[root]
    rows, best, best_score = [], {}, float("inf")
    for change in candidate_changes(grid_values):
        if make_models is not None:
            models = {u: parse_model(m) if isinstance(m, dict) else m for u, m in make_models(change).items()}
        else:
            models = {u: parse_model(make(*limits_kwh[u], **change)) for u in managed}
        kpis = run(models)
        score = tuning_score(kpis, zero_kpis, waste_pp, price_pp)
        rows.append(
            TuningRow(
                change=change,
                peak_import_pct=kpis["peak_import_pct_of_baseline"],
                peak_export_pct=kpis["peak_export_pct_of_baseline"],
                unmatched_pct=100 * kpis["unmatched_kwh"] / max(zero_kpis["export_kwh"], 1e-9),
                avg_price_ct_per_kwh=kpis["avg_trade_rate"],
                score=score,
            )
        )
        if score < best_score:
            best, best_score = change, score
    return TuningResult(
        model, best, rows, tune_days, start + warm_up, zero_kpis["avg_trade_rate"], waste_pp, price_pp
    )


__all__ = [
    "CONTROLLER_GRID",
    "DEFAULT_GRIDS",
    "PREDICTIVE_GRID",
    "PRICE_PP",
    "WASTE_PP",
    "Cancelled",
    "TuningResult",
    "TuningRow",
    "START_PARAMS",
    "base_params",
    "candidate_changes",
    "controller_params",
    "predictive_params",
    "start_params",
    "tune_model",
    "tuning_score",
]
