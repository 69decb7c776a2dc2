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
  ``oracle_with_curtailment``), which is why curtailment is not part of the row. Each battery
  serves only its own house, as in the simulation; the JSON's ``oracle_pooled`` is the looser
  bound whose batteries may serve any house.
* ``oracle_steps`` (JSON; a block under the table): what stands between the oracle and the
  controller, step by step on the judged days (``oracle_waterfall``): every lever -> + the owners'
  even-rate floor -> + the batteries and curtailment as they behave under one grid fee -> the
  simulation under the best one-fee path a perfectly informed operator sends -> the controller.
  ``--no-waterfall`` skips it (it adds the even-rate program, the one-fee search and two replays).

Limits are each market's own (the scenario's ``limits``); a market without any (the generated
grid) gets ``--limit-share`` of its zero-fee peaks *on the tuning days*. Nothing is derived from
the judged days: the two controllers' parameters are chosen on the tuning days by
``app.operator.tuning.tune_model`` (its grids; each candidate scored on the tuning days' second
half by the worse of the root's peak import and export in % of the zero-fee run, plus points for
unmatched energy (``--waste-pp``) and for a dearer average price (``--price-pp``)), then the whole
run is repeated with the chosen ones and judged on the days after.

``--json`` prints as last line ``{"models": {"zero": {...}, "controller": {"peak_import_kwh": ...,
"peak_export_kwh": ..., ...}, ...}, "oracle": {...}, "tuned": {...}, ...}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from app.exchange.scenario import Scenario
    from app.operator.backtest import BacktestResult
    from app.operator.oracle import OracleResult

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


def load(name: str, seed: int | None):
    from app.exchange.generate import generate_scenario
    from app.exchange.scenario import load_scenario

    if name == "grid1000":
        scenario = generate_scenario(10, 100, seed=0 if seed is None else seed, name="grid1000")
    elif name in ("default", "challenge"):
        scenario = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    else:
        scenario = load_scenario(name)
    return scenario if seed is None else scenario.model_copy(update={"seed": seed})


def oracle_waterfall(
    scenario: Scenario,
    total: int,
    judge_from: int,
    zero_peaks: tuple[float, float],
    oracle: OracleResult,
    owners: OracleResult,
    runs: dict[str, BacktestResult],
    results: dict[str, dict],
) -> dict:
    """The steps from the physical limit to the predictive controller (``app.operator.oracle``):

    1. ``all_levers``: the oracle (every EV, heat pump and battery scheduled, no curtailment);
    2. ``owners_even_rate``: + the owners' rule no fee changes (EVs and heat pumps never below the
       even rate): a lower bound on any fee path's peaks up to the batteries' thresholds;
    3. ``batteries_as_one_fee_path``: + the batteries and curtailment doing exactly what they did
       under step 4's fee path, only the EVs and heat pumps scheduled (even rate): a lower bound
       on step 4 (its run is one such schedule);
    4. ``one_fee_foresight``: the simulation under one grid fee per slot chosen by a perfectly
       informed myopic operator (``greedy_fee_path``, aiming at step 2's peaks): a fee path the
       contract allows if one could forecast perfectly (it knows each slot before sending);
    5. ``controller``: the tuned predictive controller, judged.

    Steps 1-3 minimise ``I / I_0 + E / E_0`` (``sum_pct``), so one direction may rise while the sum
    falls. Step 3 carries step 4's curtailment (a lever steps 1-2 do not have): it can fall below
    step 2 on export. Besides the chain: ``batteries_as_controller`` / ``batteries_as_zero_fee``,
    step 3 with the batteries and curtailment of the controller's and of the zero-fee run (lower
    bounds on those runs).
    """
    from app.exchange.grid import build_grid
    from app.operator import oracle as orc

    markets = runs["predictive"].market_uuids
    n_markets = build_grid(scenario).n_markets
    imp0, exp0 = zero_peaks

    def row(imp: float, exp: float, **more: float) -> dict:
        return {
            "peak_import_kwh": round(imp, 3),
            "peak_import_pct_of_baseline": round(100 * imp / imp0, 3),
            "peak_export_kwh": round(exp, 3),
            "peak_export_pct_of_baseline": round(100 * exp / exp0, 3),
            "sum_pct": round(100 * (imp / imp0 + exp / exp0), 3),  # what the programs minimise
            **{k: round(v, 3) for k, v in more.items()},
        }

    def fixed(fee_path: np.ndarray) -> dict:
        result = orc.oracle_fixed_batteries(
            scenario, total, orc.run_flows(scenario, fee_path), judge_from, zero_peaks
        )
        return row(result.peak_import_kwh, result.peak_export_kwh, curtailed_kwh=result.curtailed_kwh)

    greedy = orc.greedy_fee_path(
        scenario,
        total,
        judge_from,
        (owners.peak_import_kwh, owners.peak_export_kwh),
        baseline_peaks=zero_peaks,
    )
    greedy_fees = np.zeros((len(greedy.fee_ct_per_kwh), n_markets))
    greedy_fees[:, 0] = greedy.fee_ct_per_kwh
    k, p = greedy.kpis, results["predictive"]
    steps = {
        "all_levers": row(oracle.peak_import_kwh, oracle.peak_export_kwh),
        "owners_even_rate": row(owners.peak_import_kwh, owners.peak_export_kwh),
        "batteries_as_one_fee_path": fixed(greedy_fees),
        "one_fee_foresight": row(
            k["peak_import_kwh"],
            k["peak_export_kwh"],
            avg_trade_rate=k["avg_trade_rate"],
            unmatched_kwh=k["unmatched_kwh"],
            mean_fee_ct_per_kwh=float(greedy.fee_ct_per_kwh[judge_from:].mean()),
        ),
        "controller": row(
            p["peak_import_kwh"],
            p["peak_export_kwh"],
            avg_trade_rate=p["avg_trade_rate"],
            unmatched_kwh=p["unmatched_kwh"],
        ),
    }
    side = {
        "batteries_as_controller": fixed(
            orc.fees_of_run(scenario, runs["predictive"].series["fee_ct_per_kwh"], markets)
        ),
        "batteries_as_zero_fee": fixed(np.zeros((total * scenario.slots_per_day, n_markets))),
    }
    return {"oracle_steps": steps, "oracle_steps_side": side}


def run(
    scenario_name: str,
    days: int,
    tune_days: int,
    seed: int | None,
    limit_share: float,
    waste_pp: float | None = None,
    price_pp: float | None = None,
    oracle_even_rate: bool = False,
    waterfall: bool = True,
) -> dict:
    from app.exchange.grid import build_grid
    from app.operator import tuning
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

    runs = {}

    def judged(name: str, models: dict) -> dict:
        runs[name] = backtest(
            scenario, models, days=total, baseline=raw, limits_kwh=limits, judge_from_slot=judge_from
        )
        return runs[name].kpis[root]

    waste_pp = tuning.WASTE_PP if waste_pp is None else waste_pp
    price_pp = tuning.PRICE_PP if price_pp is None else price_pp
    tuned_runs = {
        name: tuning.tune_model(
            scenario,
            name,
            tune_days=tune_days,
            limits_kwh=limits,
            markets=[m.uuid for m in managed],
            waste_pp=waste_pp,
            price_pp=price_pp,
            scored_zero=scored_zero,
        )
        for name in ("controller", "predictive")
    }
    tuned_controller = tuned_runs["controller"].best
    tuned_predictive = tuned_runs["predictive"].best
    n_c, n_p = (len(tuned_runs[k].rows) for k in ("controller", "predictive"))

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
            m.uuid: parse_model(tuning.controller_params(*limits[m.uuid], **tuned_controller))
            for m in managed
        },
        "predictive": {
            m.uuid: parse_model(tuning.predictive_params(*limits[m.uuid], **tuned_predictive))
            for m in managed
        },
    }
    results = {"zero": zero.kpis[root]}
    for name, models in candidates.items():
        results[name] = judged(name, models)

    zero_peaks = raw.peaks(root)
    oracle = oracle_peaks(scenario, total, judge_from, zero_peaks)
    with_curtailment = oracle_peaks(scenario, total, judge_from, zero_peaks, curtailment=True)
    loose = oracle_peaks(scenario, total, judge_from, zero_peaks, per_house=False)
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
    oracle_pooled = {
        "peak_import_kwh": round(loose.peak_import_kwh, 3),
        "peak_export_kwh": round(loose.peak_export_kwh, 3),
    }
    extra = {}
    owners = None
    if waterfall or oracle_even_rate:  # what fees can reach with owners who never charge below the even rate
        owners = oracle_peaks(scenario, total, judge_from, zero_peaks, even_rate=True)
        extra["oracle_even_rate"] = {
            "peak_import_kwh": round(owners.peak_import_kwh, 3),
            "peak_export_kwh": round(owners.peak_export_kwh, 3),
            "peak_import_pct_of_baseline": round(100 * owners.peak_import_kwh / zero_peaks[0], 3),
            "peak_export_pct_of_baseline": round(100 * owners.peak_export_kwh / zero_peaks[1], 3),
        }
    if waterfall:
        extra.update(oracle_waterfall(scenario, total, judge_from, zero_peaks, oracle, owners, runs, results))
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
        "price_pp": price_pp,
        "tuning_table": {
            name: [
                {
                    **row.change,
                    "score": round(row.score, 2),
                    "imp_pct": round(row.peak_import_pct, 1),
                    "exp_pct": round(row.peak_export_pct, 1),
                    "unmatched_pct": round(row.unmatched_pct, 1),
                    "avg_ct_per_kwh": round(row.avg_price_ct_per_kwh, 2),
                }
                for row in result.rows
            ]
            for name, result in tuned_runs.items()
        },
        "oracle_with_curtailment": oracle_curtailing,
        "oracle_pooled": oracle_pooled,
        **extra,
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
        default=None,
        help="tuning: points per 100 %% of the zero-fee export energy left unmatched (default 10)",
    )
    parser.add_argument(
        "--price-pp",
        type=float,
        default=None,
        help="tuning: points per 100 %% the average price rises above the zero-fee one (default 10)",
    )
    parser.add_argument(
        "--oracle-even-rate",
        action="store_true",
        help="the oracle whose EVs and heat pumps never charge below the even rate "
        "(part of the waterfall; with --no-waterfall alone)",
    )
    parser.add_argument(
        "--no-waterfall",
        action="store_true",
        help="skip the oracle steps from the physical limit to the controller (oracle_steps)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.days < 1 or args.tune_days < 0:
        parser.error("--days must be >= 1 and --tune-days >= 0")
    out = run(
        args.scenario,
        args.days,
        args.tune_days,
        args.seed,
        args.limit_share,
        args.waste_pp,
        args.price_pp,
        args.oracle_even_rate,
        not args.no_waterfall,
    )
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
    for title, key in (("what stands between", "oracle_steps"), ("besides the chain", "oracle_steps_side")):
        if key not in out:
            continue
        print(f"{title} ({key}): peak import / export, kWh and % of zero fee")
        for name, step in out[key].items():
            more = "".join(
                f"  {k} {step[k]:.2f}"
                for k in ("curtailed_kwh", "unmatched_kwh", "avg_trade_rate")
                if k in step
            )
            print(
                f"  {name:<27}{step['peak_import_kwh']:8.1f} ({step['peak_import_pct_of_baseline']:5.1f} %)"
                f"{step['peak_export_kwh']:8.1f} ({step['peak_export_pct_of_baseline']:5.1f} %){more}"
            )
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
