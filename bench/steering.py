"""Do fees steer peaks? Every tariff on the same days, tuned on earlier days, against the physical limit.

    .venv/bin/python bench/steering.py [--scenario default|challenge|grid1000|FILE] [--days 7]
        [--tune-days 7] [--seed 11] [--json]

The run covers ``tune_days + days`` days of the scenario (``--seed`` replaces its seed). Every
model sets the fee of the grid and of every community market with the live timing (a fee computed
after slot n closed applies from n+2) via ``app.operator.backtest``; the KPIs are those of the
grid's root market on the last ``days`` days only (the *judged* days):

* ``zero``: every fee 0 (the baseline of the peak percentages);
* ``constant``: the scenario's fees (grid 2, communities 1 ct/kWh);
* ``tou``: the 2020 challenge's 96-slot table (grid and community columns);
* ``aziiz``: the 2020 challenge's import/export peak tiers (true 4-slot moving average, capped
  at the exchange's maximum fee);
* ``controller``: the PI congestion controller (``app.tariffs.controller``);
* ``predictive``: the predictive controller (``app.tariffs.predictive``);
* ``oracle``: no fee at all: every flexible asset (EV, heat pump, battery) scheduled with perfect
  foresight to minimise the judged peaks (``app.operator.oracle``, a linear program), the
  physical limit of shifting. With free PV curtailment too the export peak is 0 (the JSON's
  ``oracle_with_curtailment``), which is why curtailment is not part of the row.

Limits are each market's own (the scenario's ``limits``); a market without any (the generated
grid) gets ``--limit-share`` of its zero-fee peaks *on the tuning days*. Nothing is derived from
the judged days: the two controllers' parameters are chosen on the tuning days (a small grid,
each candidate run on the tuning days and scored on their second half by the worse of the root's
peak import and export, in % of the zero-fee run, plus ``WASTE_PP`` points per 100 % of the
zero-fee export energy left unmatched), then the whole run is repeated with the chosen ones and
judged on the days after.

``--json`` prints as last line ``{"models": {"zero": {...}, "controller": {"peak_import_kwh": ...,
"peak_export_kwh": ..., ...}, ...}, "oracle": {...}, "tuned": {...}, ...}``.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLUMNS = (
    ("peak_import_kwh", "peak imp kWh", "{:8.1f}"),
    ("peak_import_pct_of_baseline", "imp % zero", "{:8.1f}"),
    ("peak_export_kwh", "peak exp kWh", "{:8.1f}"),
    ("peak_export_pct_of_baseline", "exp % zero", "{:8.1f}"),
    ("energy_over_limit_kwh", "over lim kWh", "{:8.1f}"),
    ("fee_revenue_ct", "revenue ct", "{:10.0f}"),
    ("avg_trade_rate", "avg ct/kWh", "{:8.2f}"),
    ("self_sufficiency", "self-suff %", "{:8.1f}"),
    ("unmatched_kwh", "unmatched kWh", "{:8.1f}"),
)
JSON_KEYS = tuple(key for key, _, _ in COLUMNS) + ("slots_over_limit",)

CONTROLLER_GRID = {  # PI controller: the issue-5 tuning, with these alternatives
    "ki_ct_per_kwh": (2.0, 5.0, 10.0),
    "forecast_weight": (0.0, 0.5),
}
PREDICTIVE_GRID = {
    "target_share": (0.5, 0.6, 0.75),
    "gain_ct_per_kwh": (25.0, 50.0),
    "smooth_slots": (0, 2),
}
WASTE_PP = 10.0
"""Tuning score: percentage points added per 100 % of the zero-fee export energy left unmatched
(curtailed): a setting that lowers the export peak by curtailing every kWh is not the best one."""


# where each model's tuning starts from (the controller's: the issue-5 tuning)
STARTING_POINTS = {
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
    "predictive": {"base_fee_ct_per_kwh": 1.0, "max_fee_ct_per_kwh": 40.0, "max_fall_ct_per_kwh": 0.5},
}


def model_params(model: str, import_limit_kwh: float, export_limit_kwh: float, **change: float) -> dict:
    """``model``'s settings (``STARTING_POINTS``, some changed) for a market with these import and
    export limits [kWh per slot], at least 0.1 each (a model refuses 0)."""
    limits = {"import_limit_kwh": max(import_limit_kwh, 0.1), "export_limit_kwh": max(export_limit_kwh, 0.1)}
    return {"model": model, **limits, **STARTING_POINTS[model], **change}


controller_params = functools.partial(model_params, "controller")
predictive_params = functools.partial(model_params, "predictive")


def load(name: str, seed: int | None):  # noqa: ANN201
    from app.exchange.generate import generate_scenario
    from app.exchange.scenario import load_scenario

    if name == "grid1000":
        scenario = generate_scenario(10, 100, seed=0 if seed is None else seed, name="grid1000")
    elif name in ("default", "challenge"):
        scenario = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    else:
        scenario = load_scenario(name)
    return scenario if seed is None else scenario.model_copy(update={"seed": seed})


def _score(kpis: dict, zero_export_kwh: float, waste_pp: float = WASTE_PP) -> float:
    """The worse of peak import and export [% of zero fee], plus the energy wasted doing it."""
    worse = max(kpis["peak_import_pct_of_baseline"], kpis["peak_export_pct_of_baseline"])
    return worse + waste_pp * kpis["unmatched_kwh"] / max(zero_export_kwh, 1e-9)


def run(
    scenario_name: str,
    days: int,
    tune_days: int,
    seed: int | None,
    limit_share: float,
    waste_pp: float = WASTE_PP,
) -> dict:
    from app.exchange.grid import build_grid
    from app.operator.backtest import ZERO, backtest
    from app.operator.oracle import oracle_peaks
    from app.tariffs import peak_tiers, tou
    from app.tariffs.registry import parse_model

    scenario = load(scenario_name, seed)
    grid = build_grid(scenario)
    root = grid.markets[0].uuid
    managed = [m for m in grid.markets if m.level <= 1]
    judge_from = tune_days * scenario.slots_per_day
    total = tune_days + days
    t0 = time.perf_counter()

    raw = backtest(scenario, ZERO, days=total, judge_from_slot=judge_from)
    tuning_zero = backtest(scenario, ZERO, days=max(tune_days, 1))
    # a candidate is scored on the second half of the tuning days: the first half is the models'
    # warm-up (the predictive controller has no same-slot history on day 1)
    warm_up = (tune_days // 2) * scenario.slots_per_day
    scored_zero = backtest(scenario, ZERO, days=max(tune_days, 1), judge_from_slot=warm_up)
    stated = scenario.market_limits()
    limits, limit_source = {}, {}
    for m in managed:
        got = stated.get(m.name)
        tune_peaks = tuning_zero.peaks(m.uuid)
        imp = got.import_kwh_per_slot if got and got.import_kwh_per_slot else None
        exp = got.export_kwh_per_slot if got and got.export_kwh_per_slot else None
        limit_source[m.name] = "scenario" if imp and exp else f"{limit_share:g} x tuning-days zero-fee peak"
        limits[m.uuid] = (imp or limit_share * tune_peaks[0], exp or limit_share * tune_peaks[1])
    zero = backtest(scenario, ZERO, days=total, baseline=raw, limits_kwh=limits, judge_from_slot=judge_from)

    def judged(models: dict) -> dict:
        result = backtest(
            scenario, models, days=total, baseline=raw, limits_kwh=limits, judge_from_slot=judge_from
        )
        return result.kpis[root]

    def tune(make, grid_values: dict) -> tuple[dict, int]:  # noqa: ANN001
        if tune_days < 1:
            return {}, 0
        best, best_score, tried = {}, float("inf"), 0
        for values in itertools.product(*grid_values.values()):
            change = dict(zip(grid_values, values, strict=True))
            models = {m.uuid: parse_model(make(*limits[m.uuid], **change)) for m in managed}
            kpis = backtest(
                scenario, models, days=tune_days, baseline=scored_zero, judge_from_slot=warm_up
            ).kpis[root]
            tried += 1
            score = _score(kpis, scored_zero.kpis[root]["export_kwh"], waste_pp)
            if score < best_score:
                best, best_score = change, score
        return best, tried

    tuned_controller, n_c = tune(controller_params, CONTROLLER_GRID)
    tuned_predictive, n_p = tune(predictive_params, PREDICTIVE_GRID)

    table = tou.preset_challenge_2020()
    tiers = peak_tiers.preset_challenge_2020().model_dump()
    tiers["cap_ct_per_kwh"] = scenario.fee_limits.max_ct_per_kwh
    candidates = {
        "constant": {},
        "tou": {
            m.uuid: parse_model(
                {"model": "tou", "table": {"all": table["grid" if m.level == 0 else "community"]}}
            )
            for m in managed
        },
        "aziiz": {m.uuid: parse_model(tiers) for m in managed},
        "controller": {
            m.uuid: parse_model(controller_params(*limits[m.uuid], **tuned_controller)) for m in managed
        },
        "predictive": {
            m.uuid: parse_model(predictive_params(*limits[m.uuid], **tuned_predictive)) for m in managed
        },
    }
    results = {"zero": zero.kpis[root]}
    for name, models in candidates.items():
        results[name] = judged(models)

    zero_peaks = raw.peaks(root)
    oracle = oracle_peaks(scenario, total, judge_from, zero_peaks)
    with_curtailment = oracle_peaks(scenario, total, judge_from, zero_peaks, curtailment=True)
    lim_imp, lim_exp = limits[root]
    results["oracle"] = {
        "peak_import_kwh": oracle.peak_import_kwh,
        "peak_export_kwh": oracle.peak_export_kwh,
        "peak_import_pct_of_baseline": 100 * oracle.peak_import_kwh / zero_peaks[0],
        "peak_export_pct_of_baseline": 100 * oracle.peak_export_kwh / zero_peaks[1],
        "energy_over_limit_kwh": float(
            sum(max(x - lim_imp, 0) + max(-x - lim_exp, 0) for x in oracle.net_kwh[judge_from:])
        ),
        "unmatched_kwh": oracle.curtailed_kwh,
    }
    oracle_curtailing = {
        "peak_import_kwh": round(with_curtailment.peak_import_kwh, 3),
        "peak_export_kwh": round(with_curtailment.peak_export_kwh, 3),
        "curtailed_kwh": round(with_curtailment.curtailed_kwh, 3),
    }
    return {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "days": days,
        "tune_days": tune_days,
        "houses": grid.n_houses,
        "root_limits_kwh": list(limits[root]),
        "limit_source": limit_source,
        "tuned": {"controller": tuned_controller, "predictive": tuned_predictive},
        "tuning_runs": n_c + n_p,
        "waste_pp": waste_pp,
        "oracle_with_curtailment": oracle_curtailing,
        "results": results,
        "seconds": time.perf_counter() - t0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="default", help="default, challenge, grid1000 or a file")
    parser.add_argument("--days", type=int, default=7, help="judged days")
    parser.add_argument("--tune-days", type=int, default=7, help="days before the judged ones to tune on")
    parser.add_argument("--seed", type=int, default=None, help="replaces the scenario's seed")
    parser.add_argument(
        "--limit-share",
        type=float,
        default=0.7,
        help="limit / tuning-days zero-fee peak for markets without a stated limit",
    )
    parser.add_argument(
        "--waste-pp",
        type=float,
        default=WASTE_PP,
        help="tuning: points per 100 %% of the zero-fee export energy left unmatched",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.days < 1 or args.tune_days < 0:
        parser.error("--days must be >= 1 and --tune-days >= 0")
    out = run(args.scenario, args.days, args.tune_days, args.seed, args.limit_share, args.waste_pp)
    results = out["results"]
    print(
        f"{out['scenario']} ({out['houses']} houses, seed {out['seed']}): {args.days} judged days after "
        f"{args.tune_days} tuning days, grid (root) market, limits {out['root_limits_kwh'][0]:.1f} / "
        f"{out['root_limits_kwh'][1]:.1f} kWh/slot; {out['seconds']:.0f} s for {out['tuning_runs']} "
        "tuning runs and all judged runs"
    )
    print(f"{'model':<12}" + "".join(f"{title:>15}" for _, title, _ in COLUMNS))
    for name, kpis in results.items():
        cells = "".join(f"{fmt.format(kpis.get(key, float('nan'))):>15}" for key, _, fmt in COLUMNS)
        print(f"{name:<12}{cells}")
    print(f"tuned on the tuning days: {json.dumps(out['tuned'])}")
    if args.json:

        def rounded(kpis: dict) -> dict:
            return {k: round(kpis[k], 3) for k in JSON_KEYS if k in kpis}

        models = {n: rounded(v) for n, v in results.items() if n != "oracle"}
        summary = {k: v for k, v in out.items() if k != "results"}
        summary["seconds"] = round(summary["seconds"], 1)
        print(json.dumps({"models": models, "oracle": rounded(results["oracle"]), **summary}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
