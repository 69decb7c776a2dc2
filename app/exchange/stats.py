"""Per-market statistics of one slot, computed from its trades.

A trade that crosses several markets appears in each market on its path (as an inter-area
trade does in Grid Singularity's exchange), at the rate it has in that market:

* in the market where bid and offer met: the clearing rate ``c``;
* on the buyer's side, below the meeting market: ``c`` plus the fees of the markets the bid left
  on its way up, from that market upwards (in the buyer's community ``c + f_community``, in the
  buyer's house ``c + f_community + f_house`` when they met in the grid);
* on the seller's side: ``c`` minus the fees the offer got on entering the markets above (in the
  seller's community ``c - f_grid`` when they met in the grid).

Each market books ``fee * energy`` for every trade on its path. Import of a market is the
energy of trades that enter its subtree (it is on the buyer's side, or for the grid: bought from
the external supplier); export is the energy that leaves it.

``self_sufficiency = 1 - import / consumption`` and ``self_consumption = 1 - (export +
curtailed) / production`` per slot, in percent, clipped to [0, 100] and ``None`` when the
denominator is below 2e-5 kWh (Grid Singularity's threshold). Consumption counts loads and
flexible loads, not battery charging.
"""

from __future__ import annotations

from dataclasses import make_dataclass

import numpy as np

from app.exchange.grid import GridModel
from app.exchange.matching import EXTERNAL, Trades, stable_int_order
from app.exchange.stat_table import SLOT_STATS, STAT_FIELDS

ROLE_MEETING, ROLE_EXPORT, ROLE_IMPORT = 0, 1, 2


def _rows(self: SlotStats) -> list[dict[str, float | None]]:
    """Every market's stats as JSON-ready numbers (NaN -> None), in market order."""
    columns = [[None if v != v else v for v in getattr(self, name).tolist()] for name in STAT_FIELDS]
    return [dict(zip(STAT_FIELDS, values, strict=True)) for values in zip(*columns, strict=True)]


def _row(self: SlotStats, market: int) -> dict[str, float | None]:
    """One market's stats as JSON-ready numbers (NaN -> None)."""
    out: dict[str, float | None] = {}
    for name in STAT_FIELDS:
        value = float(getattr(self, name)[market])
        out[name] = None if np.isnan(value) else value
    return out


SlotStats = make_dataclass(
    "SlotStats",
    [(s.key, np.ndarray) for s in SLOT_STATS],
    namespace={"rows": _rows, "row": _row, "__module__": __name__},
    frozen=True,
)
SlotStats.__doc__ = """Arrays over markets (index as in ``GridModel.markets``), one attribute per
``SLOT_STATS`` key in its unit; NaN where the statistic is None (rates when nothing traded, shares
when nothing was consumed or produced)."""


def market_triples(
    grid: GridModel, trades: Trades, fee: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Expand trades into (market, rate, energy, role) rows, one per market on each path."""
    n_c = grid.n_communities
    comm_of = grid.house_community
    f_grid, f_comm, f_house = fee[0], fee[1 : 1 + n_c], fee[1 + n_c :]
    c, e, lvl = trades.rate, trades.energy_kwh, trades.level
    sh, bh = trades.seller_house, trades.buyer_house
    local_s, local_b = sh != EXTERNAL, bh != EXTERNAL
    sc = np.where(local_s, comm_of[np.where(local_s, sh, 0)], 0)
    bc = np.where(local_b, comm_of[np.where(local_b, bh, 0)], 0)

    meet_role = np.full(len(e), ROLE_MEETING)
    meet_role[~local_s] = ROLE_IMPORT  # bought from the supplier: enters the grid's subtree
    meet_role[~local_b] = ROLE_EXPORT
    markets, rates, energies, roles = [trades.market], [c], [e], [meet_role]

    def add(mask: np.ndarray, market: np.ndarray, rate: np.ndarray, role: int) -> None:
        markets.append(market[mask])
        rates.append(rate[mask])
        energies.append(e[mask])
        roles.append(np.full(int(mask.sum()), role))

    house_m = 1 + n_c + np.where(local_s, sh, 0)
    # seller side
    add(local_s & (lvl == 1), house_m, c - f_comm[sc], ROLE_EXPORT)
    add(local_s & (lvl == 0), 1 + sc, c - f_grid, ROLE_EXPORT)
    add(local_s & (lvl == 0), house_m, c - f_grid - f_comm[sc], ROLE_EXPORT)
    # buyer side
    house_b = 1 + n_c + np.where(local_b, bh, 0)
    bfh = f_house[np.where(local_b, bh, 0)]
    add(local_b & (lvl == 1), house_b, c + bfh, ROLE_IMPORT)
    add(local_b & (lvl == 0), 1 + bc, c + f_comm[bc], ROLE_IMPORT)
    add(local_b & (lvl == 0), house_b, c + f_comm[bc] + bfh, ROLE_IMPORT)
    return (
        np.concatenate(markets).astype(np.int64),
        np.concatenate(rates),
        np.concatenate(energies),
        np.concatenate(roles),
    )


def subtree_sum(grid: GridModel, per_house: np.ndarray) -> np.ndarray:
    """Sum a per-house quantity into every market of the tree: house, community, grid."""
    n_c = grid.n_communities
    out = np.empty(grid.n_markets)
    out[1 + n_c :] = per_house
    out[1 : 1 + n_c] = np.bincount(grid.house_community, weights=per_house, minlength=n_c)
    out[0] = per_house.sum()
    return out


def _pct(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        value = np.clip(1.0 - numerator / denominator, 0.0, 1.0) * 100.0
    return np.where(denominator > 2e-5, value, np.nan)


def slot_stats(
    grid: GridModel,
    trades: Trades,
    fee: np.ndarray,
    next_fee: np.ndarray,
    consumption_kwh: np.ndarray,
    production_kwh: np.ndarray,
    unmatched_kwh: np.ndarray,
) -> SlotStats:
    """Statistics of every market for one slot; per-house inputs are [kWh] arrays over houses."""
    n_m = grid.n_markets
    market, rate, energy, role = market_triples(grid, trades, fee)
    traded = np.bincount(market, weights=energy, minlength=n_m)
    count = np.bincount(market, minlength=n_m)
    has = count > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        avg = np.where(has, np.bincount(market, weights=energy * rate, minlength=n_m) / traded, np.nan)
    lo = np.full(n_m, np.nan)
    hi = np.full(n_m, np.nan)
    med = np.full(n_m, np.nan)
    if len(rate):
        # markets in order, each market's rates ascending (ties in any order: only values count)
        by_rate = np.argsort(rate)
        order = by_rate[stable_int_order(market[by_rate])]
        sm, sr = market[order], rate[order]
        first = np.searchsorted(sm, np.arange(n_m))
        idx = np.flatnonzero(has)
        f, n = first[idx], count[idx]
        lo[idx] = sr[f]
        hi[idx] = sr[f + n - 1]
        med[idx] = (sr[f + (n - 1) // 2] + sr[f + n // 2]) / 2
        # energy-weighted mean can stray from [min, max] by rounding only; keep it inside
        avg[idx] = np.clip(avg[idx], lo[idx], hi[idx])
    imp = np.bincount(market[role == ROLE_IMPORT], weights=energy[role == ROLE_IMPORT], minlength=n_m)
    exp = np.bincount(market[role == ROLE_EXPORT], weights=energy[role == ROLE_EXPORT], minlength=n_m)
    cons = subtree_sum(grid, consumption_kwh)
    prod = subtree_sum(grid, production_kwh)
    unmatched = subtree_sum(grid, unmatched_kwh)
    return SlotStats(
        min_trade_rate=lo,
        median_trade_rate=med,
        avg_trade_rate=avg,
        max_trade_rate=hi,
        total_traded_energy_kWh=traded,
        import_kwh=imp,
        export_kwh=exp,
        self_sufficiency=_pct(imp, cons),
        self_consumption=_pct(exp + unmatched, prod),
        fee_ct_per_kwh=fee.astype(float),
        next_fee_ct_per_kwh=next_fee.astype(float),
        market_fee_revenue=np.bincount(market, weights=energy * fee[market], minlength=n_m),
        unmatched_kwh=unmatched,
        consumption_kwh=cons,
        production_kwh=prod,
    )
