"""The physical limit of peak shaving: every flexible asset scheduled with perfect foresight.

What fees can at best achieve is bounded by what the assets can do. This oracle knows every
house's load, PV and flexible-load needs of the whole run in advance (the scenario's own seeded
profiles) and schedules, as one linear program solved by HiGHS (``scipy.optimize.linprog``):

* each flexible load (EV, heat pump): energy ``e_{g,t}`` per slot, ``0 <= e_{g,t} <= power * slot``,
  and the energy of every window it is available in (``available_from`` .. ``due_by``, the
  day's need) delivered inside that window;
* batteries: charge ``c_t``, discharge ``d_t`` [kWh at the meter], state of charge
  ``s_t = s_{t-1} + eta * c_t - d_t / eta`` within ``[min_soc, 1] * capacity``;
* PV curtailment ``u_t``, ``0 <= u_t <= pv_t`` (only with ``curtailment=True``: free curtailment
  takes the export peak to 0, so the default oracle only shifts, and wastes no energy).

The grid market's (root's) net import per slot is

    net_t = load_t + sum_g e_{g,t} + c_t - d_t - pv_t + u_t

and the program minimises ``I / I_0 + E / E_0`` with ``net_t <= I`` and ``-net_t <= E`` on the
judged slots (``I_0``, ``E_0``: the zero-fee peaks, so both directions count alike), plus a tiny
cost on curtailment and battery throughput so that nothing is spent that does not lower a peak.

Assets of the same kind, window and power are pooled (one variable per pool), and all
batteries form one pool: energy may move between houses through the grid, so for the root's
flows pooling loses nothing but the per-house split of a pool (the oracle is a *lower* bound on
the peaks, which is what a physical limit should be). Losses in the wires are not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from app.exchange.grid import GridModel, build_grid
from app.exchange.profiles import ProfileSource
from app.exchange.scenario import Scenario

_EPS = 1e-4  # cost per kWh of curtailment / battery throughput, relative to the peak terms


@dataclass(frozen=True)
class OracleResult:
    peak_import_kwh: float
    peak_export_kwh: float
    net_kwh: np.ndarray  # [slots] root net import of the schedule (negative: export)
    curtailed_kwh: float
    status: str


def _flex_pools(grid: GridModel) -> dict[tuple[int, int], np.ndarray]:
    """Flexible loads grouped by (available_from, due_by) minutes: their indices."""
    pools: dict[tuple[int, int], list[int]] = {}
    for i in range(len(grid.flex_house)):
        pools.setdefault((int(grid.flex_from_min[i]), int(grid.flex_due_min[i])), []).append(i)
    return {k: np.asarray(v) for k, v in pools.items()}


def oracle_peaks(
    scenario: Scenario,
    days: int,
    judge_from_slot: int = 0,
    zero_peaks_kwh: tuple[float, float] = (1.0, 1.0),
    curtailment: bool = False,
) -> OracleResult:
    """Schedule ``days`` days of ``scenario`` to minimise the root's peaks on the judged slots.

    ``zero_peaks_kwh``: (import, export) peaks without fees, the weights of the two directions.
    ``curtailment``: may PV be curtailed? With it the export peak is trivially 0 (every kWh that
    would leave is thrown away), so the default limit is what shifting alone achieves.
    """
    grid = build_grid(scenario)
    profiles = ProfileSource(scenario, grid)
    spd, minutes = scenario.slots_per_day, scenario.slot_length_min
    n = days * spd
    slot_h = minutes / 60
    load = np.zeros(n)
    pv = np.zeros(n)
    needs = []
    first_day, _ = scenario.day_and_slot(0)
    for d in range(days + 1):  # the profiles' days the run touches (it may start mid-day)
        day = profiles.day(first_day + d)
        lo = d * spd - scenario.start_offset_slots
        for s in range(spd):
            t = lo + s
            if 0 <= t < n:
                load[t] = day.load_kwh[s].sum()
                pv[t] = day.pv_kwh[s].sum()
        needs.append((lo, day.flex_energy_kwh))

    pools = _flex_pools(grid)
    n_pool = len(pools)
    # variable layout: [e_g (n_pool * n), c (n), d (n), s (n), u (n), I, E]
    off_e = 0
    off_c = n_pool * n
    off_d, off_s, off_u = off_c + n, off_c + 2 * n, off_c + 3 * n
    i_peak, e_peak = off_c + 4 * n, off_c + 4 * n + 1
    n_var = e_peak + 1

    lb = np.zeros(n_var)
    ub = np.full(n_var, np.inf)
    rows_eq: list[tuple[list[int], list[float], float]] = []
    rows_ub: list[tuple[list[int], list[float], float]] = []

    for g, (key, members) in enumerate(pools.items()):
        start_min, due_min = key
        window_min = (due_min - start_min) % 1440
        full_kwh = float(grid.flex_power_kw[members].sum() * slot_h)
        ub[off_e + g * n : off_e + (g + 1) * n] = 0.0
        for lo, need in needs:  # one window per profile day, opening at start_min
            open_t = lo + start_min // minutes
            length = int(np.ceil(window_min / minutes))
            ts = [t for t in range(open_t, open_t + length) if 0 <= t < n]
            if not ts:
                continue
            energy = float(need[members].sum()) * len(ts) / length  # truncated at the run's ends
            for t in ts:
                ub[off_e + g * n + t] = full_kwh
            rows_eq.append(
                ([off_e + g * n + t for t in ts], [1.0] * len(ts), min(energy, full_kwh * len(ts)))
            )

    cap = float(grid.bat_capacity_kwh.sum())
    has_bat = grid.bat_capacity_kwh > 0
    power = float(grid.bat_power_kw.sum() * slot_h)
    eta = (
        float(np.sqrt(np.average(grid.bat_efficiency[has_bat], weights=grid.bat_capacity_kwh[has_bat])))
        if cap
        else 1.0
    )
    soc_min = float((grid.bat_min_soc * grid.bat_capacity_kwh).sum())
    soc0 = float((grid.bat_initial_soc * grid.bat_capacity_kwh).sum())
    ub[off_c : off_c + n] = power
    ub[off_d : off_d + n] = power
    lb[off_s : off_s + n] = soc_min if cap else 0.0
    ub[off_s : off_s + n] = cap
    ub[off_u : off_u + n] = pv if curtailment else 0.0
    for t in range(n):  # s_t - s_{t-1} - eta c_t + d_t / eta = 0
        cols = [off_s + t, off_c + t, off_d + t]
        vals = [1.0, -eta, 1.0 / eta]
        rhs = 0.0
        if t > 0:
            cols.append(off_s + t - 1)
            vals.append(-1.0)
        else:
            rhs = soc0
        rows_eq.append((cols, vals, rhs))

    # net_t = load_t - pv_t + sum e + c - d + u;  net_t - I <= 0;  -net_t - E <= 0
    for t in range(max(0, judge_from_slot), n):
        cols = [off_e + g * n + t for g in range(n_pool)] + [off_c + t, off_d + t, off_u + t]
        vals = [1.0] * n_pool + [1.0, -1.0, 1.0]
        rows_ub.append((cols + [i_peak], vals + [-1.0], -(load[t] - pv[t])))
        rows_ub.append((cols + [e_peak], [-v for v in vals] + [-1.0], load[t] - pv[t]))

    cost = np.zeros(n_var)
    imp0, exp0 = (max(z, 1e-6) for z in zero_peaks_kwh)
    cost[i_peak], cost[e_peak] = 1.0 / imp0, 1.0 / exp0
    scale = _EPS / max(imp0, exp0)
    cost[off_c : off_c + n] = scale
    cost[off_d : off_d + n] = scale
    cost[off_u : off_u + n] = scale

    def matrix(rows: list[tuple[list[int], list[float], float]]) -> tuple[sparse.csr_matrix, np.ndarray]:
        r = np.concatenate([[i] * len(c) for i, (c, _, _) in enumerate(rows)]).astype(int)
        c = np.concatenate([cols for cols, _, _ in rows]).astype(int)
        v = np.concatenate([vals for _, vals, _ in rows])
        return sparse.csr_matrix((v, (r, c)), shape=(len(rows), n_var)), np.array([b for _, _, b in rows])

    a_ub, b_ub = matrix(rows_ub)
    a_eq, b_eq = matrix(rows_eq)
    res = linprog(
        cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=np.stack([lb, ub], 1), method="highs"
    )
    if res.x is None:
        return OracleResult(float("nan"), float("nan"), np.full(n, np.nan), float("nan"), res.message)
    x = res.x
    net = load - pv + x[off_c : off_c + n] - x[off_d : off_d + n] + x[off_u : off_u + n]
    for g in range(n_pool):
        net = net + x[off_e + g * n : off_e + (g + 1) * n]
    judged = net[max(0, judge_from_slot) :]
    return OracleResult(
        peak_import_kwh=float(max(judged.max(), 0.0)),
        peak_export_kwh=float(max(-judged.min(), 0.0)),
        net_kwh=net,
        curtailed_kwh=float(x[off_u + max(0, judge_from_slot) : off_u + n].sum()),
        status=res.message,
    )
