"""Evaluation metrics a DSO uses for a tariff (reference §2.10), as pure functions of slot series.

All inputs are per-slot arrays of one market [kWh, ct/kWh, ct]; NaN slots are ignored.
"""

from __future__ import annotations

import numpy as np

from app.exchange.stat_table import STAT

# KPIs named after a slot statistic (a mean or sum of it over the run) take its unit from the table
KPI_UNITS = {
    "peak_import_kwh": "kWh/slot",
    "peak_export_kwh": "kWh/slot",
    "peak_import_pct_of_baseline": "%",
    "peak_export_pct_of_baseline": "%",
    "load_factor": "",
    "slots_over_limit": "slots",
    "energy_over_limit_kwh": "kWh",
    "fee_revenue_ct": "ct",
    "avg_trade_rate": STAT["avg_trade_rate"].unit,
    "self_sufficiency": STAT["self_sufficiency"].unit,
    "unmatched_kwh": STAT["unmatched_kwh"].unit,
    "fee_volatility": "ct/kWh",
    "fee_changes": "changes",
    "import_kwh": STAT["import_kwh"].unit,
    "export_kwh": STAT["export_kwh"].unit,
}


def _nanmax(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    return float(np.nanmax(x)) if np.isfinite(x).any() else 0.0


def market_kpis(
    import_kwh: np.ndarray,
    export_kwh: np.ndarray,
    fee_ct_per_kwh: np.ndarray,
    fee_revenue_ct: np.ndarray,
    traded_kwh: np.ndarray,
    avg_trade_rate: np.ndarray,
    consumption_kwh: np.ndarray,
    unmatched_kwh: np.ndarray,
    baseline_peaks: tuple[float, float] | None = None,
    limits_kwh: tuple[float, float] | None = None,
) -> dict[str, float]:
    """KPIs of one market over a run. ``baseline_peaks``: (import, export) peaks of the zero-fee
    run, for the energy peak percentage; ``limits_kwh``: (import, export) limits per slot."""
    imp = np.nan_to_num(np.asarray(import_kwh, dtype=float))
    exp = np.nan_to_num(np.asarray(export_kwh, dtype=float))
    fee = np.asarray(fee_ct_per_kwh, dtype=float)
    traded = np.nan_to_num(np.asarray(traded_kwh, dtype=float))
    rate = np.asarray(avg_trade_rate, dtype=float)
    peak_imp, peak_exp = _nanmax(imp), _nanmax(exp)
    out = {
        "peak_import_kwh": peak_imp,
        "peak_export_kwh": peak_exp,
        "import_kwh": float(imp.sum()),
        "export_kwh": float(exp.sum()),
        "load_factor": float(imp.mean() / peak_imp) if peak_imp > 0 else 0.0,
        "fee_revenue_ct": float(np.nansum(fee_revenue_ct)),
        "unmatched_kwh": float(np.nansum(unmatched_kwh)),
    }
    has_rate = np.isfinite(rate) & (traded > 0)
    out["avg_trade_rate"] = (
        float((rate[has_rate] * traded[has_rate]).sum() / traded[has_rate].sum())
        if has_rate.any()
        else float("nan")
    )
    consumed = float(np.nansum(consumption_kwh))
    out["self_sufficiency"] = (
        float(np.clip(1 - imp.sum() / consumed, 0, 1) * 100) if consumed > 2e-5 else float("nan")
    )
    known = fee[np.isfinite(fee)]
    out["fee_volatility"] = float(known.std()) if len(known) else 0.0
    out["fee_changes"] = float(np.count_nonzero(np.abs(np.diff(known)) > 1e-9)) if len(known) > 1 else 0.0
    if baseline_peaks is not None:
        base_imp, base_exp = baseline_peaks
        out["peak_import_pct_of_baseline"] = 100 * peak_imp / base_imp if base_imp > 0 else float("nan")
        out["peak_export_pct_of_baseline"] = 100 * peak_exp / base_exp if base_exp > 0 else float("nan")
    if limits_kwh is not None:
        lim_imp, lim_exp = limits_kwh
        over = np.maximum(imp - lim_imp, 0) + np.maximum(exp - lim_exp, 0)
        out["slots_over_limit"] = float(np.count_nonzero(over > 1e-9))
        out["energy_over_limit_kwh"] = float(over.sum())
    return out
