"""Do fees steer peaks? Five tariffs on the default scenario, same days, same seed.

    .venv/bin/python bench/steering.py [--days 3] [--limit-share 0.7] [--json]

Each model sets the fee of the grid and of every community market (the live one-slot lag
included: a fee computed after slot n closed applies from n+2), via ``app.operator.backtest``:

* ``zero``: every fee 0 (the baseline of the energy peak percentage);
* ``constant``: the scenario's fees (grid 2, communities 1 ct/kWh);
* ``tou``: the 2020 challenge's 96-slot table (grid and community columns);
* ``aziiz``: the 2020 challenge's import/export peak tiers (true 4-slot moving average, capped
  at the exchange's maximum fee);
* ``controller``: the congestion controller, each market's limits set to ``--limit-share`` of
  its zero-fee peaks (the "stated limit").

The table shows the KPIs of the grid's root market; ``--json`` prints as last line
``{"models": {"<name>": {"peak_import_kwh", "peak_export_kwh", "fee_revenue_ct",
"avg_trade_rate", "self_sufficiency", ...}}}``. Goal: the controller brings peak import and
export to <= 70 % of the zero-fee baseline, below aziiz and tou.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLUMNS = (
    ("peak_import_kwh", "peak imp kWh", "{:8.1f}"),
    ("peak_import_pct_of_baseline", "imp % base", "{:8.1f}"),
    ("peak_export_kwh", "peak exp kWh", "{:8.1f}"),
    ("peak_export_pct_of_baseline", "exp % base", "{:8.1f}"),
    ("fee_revenue_ct", "revenue ct", "{:10.0f}"),
    ("avg_trade_rate", "avg ct/kWh", "{:8.2f}"),
    ("self_sufficiency", "self-suff %", "{:8.1f}"),
    ("unmatched_kwh", "unmatched kWh", "{:8.1f}"),
    ("slots_over_limit", "slots>limit", "{:8.0f}"),
    ("fee_volatility", "fee sd ct", "{:8.2f}"),
)


def controller_params(import_limit_kwh: float, export_limit_kwh: float) -> dict:
    """The tuning used here (see the closing note of issue 5 for how it was chosen)."""
    return {
        "model": "controller",
        "import_limit_kwh": max(import_limit_kwh, 0.1),
        "export_limit_kwh": max(export_limit_kwh, 0.1),
        "kp_ct_per_kwh": 2.0,
        "ki_ct_per_kwh": 5.0,
        "base_fee_ct_per_kwh": 1.0,
        "min_fee_ct_per_kwh": 0.0,
        "max_fee_ct_per_kwh": 40.0,
        "max_step_ct_per_kwh": 6.0,
        "max_step_down_ct_per_kwh": 0.5,
        "forecast_weight": 0.0,
    }


def run(days: int, limit_share: float) -> tuple[dict, float]:
    from app.exchange.grid import build_grid
    from app.exchange.scenario import load_scenario
    from app.operator.backtest import ZERO, backtest
    from app.tariffs import peak_tiers, tou
    from app.tariffs.registry import parse_model

    scenario = load_scenario(ROOT / "scenarios" / "default.yaml")
    grid = build_grid(scenario)
    root = grid.markets[0].uuid
    managed = [m for m in grid.markets if m.level <= 1]
    t0 = time.perf_counter()
    baseline = backtest(scenario, ZERO, days=days)
    limits = {m.uuid: tuple(limit_share * p for p in baseline.peaks(m.uuid)) for m in managed}
    baseline = backtest(scenario, ZERO, days=days, baseline=baseline, limits_kwh=limits)
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
        "controller": {m.uuid: parse_model(controller_params(*limits[m.uuid])) for m in managed},
    }
    results = {"zero": baseline.kpis[root]}
    for name, models in candidates.items():
        result = backtest(scenario, models, days=days, baseline=baseline, limits_kwh=limits)
        results[name] = result.kpis[root]
    return results, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--limit-share", type=float, default=0.7, help="controller limit / zero-fee peak")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results, seconds = run(args.days, args.limit_share)
    print(f"default scenario, {args.days} days, grid (root) market; {seconds:.1f} s for all runs")
    print(f"{'model':<12}" + "".join(f"{title:>15}" for _, title, _ in COLUMNS))
    for name, kpis in results.items():
        cells = "".join(f"{fmt.format(kpis.get(key, float('nan'))):>15}" for key, _, fmt in COLUMNS)
        print(f"{name:<12}{cells}")
    if args.json:
        keys = (
            "peak_import_kwh",
            "peak_export_kwh",
            "fee_revenue_ct",
            "avg_trade_rate",
            "self_sufficiency",
            "peak_import_pct_of_baseline",
            "peak_export_pct_of_baseline",
            "unmatched_kwh",
        )
        print(
            json.dumps(
                {"models": {n: {k: round(v[k], 3) for k in keys if k in v} for n, v in results.items()}}
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
