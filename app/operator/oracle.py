"""The physical limit of peak shaving: every flexible asset scheduled with perfect foresight.

What fees can at best achieve is bounded by what the assets can do. This oracle knows every
house's load, PV and flexible-load needs of the whole run in advance (the scenario's own seeded
profiles) and schedules them, as one linear program solved by HiGHS (``scipy.optimize.linprog``),
to minimise ``I / I_0 + E / E_0``: the grid market's (root's) peak import ``I`` and export ``E``
on the judged slots, each relative to its zero-fee peak so both directions count alike, plus a
tiny cost on battery throughput and curtailment so nothing is spent that lowers no peak.

Per house, as the simulation (``app.exchange.assets``, ``matching``) lets the assets act:

* **each flexible load** (EV, heat pump) ``f``: energy ``e_{f,t}``, ``0 <= e_{f,t} <= power *
  slot`` in the slots of each availability window (``available_from`` .. ``due_by``), the day's
  need delivered inside its window (a window cut by the run's end needs its share). *Exact.*
* **each house's battery** ``b``: charge ``c_{b,t}``, discharge ``d_{b,t}`` [kWh at the meter],
  ``s_{b,t} = s_{b,t-1} + eta c_{b,t} - d_{b,t} / eta`` (``eta`` the one-way efficiency, the
  square root of the round trip), ``min_soc * capacity <= s <= capacity``, both at most
  ``power * slot``. *Exact*, except that the simulation fills a battery from the grid to 90 % only
  (from its own PV to 100 %): here to 100 % from either (*relaxed*).
* **a battery discharges only into its own house's deficit**: ``d_{b,t} <= max(load - pv, 0) +
  sum of the house's e_{f,t}``. *Exact* in every slot where the house's PV does not exceed its
  load (the simulation's bound is then ``load + e - pv``). In a slot with PV surplus the
  simulation's bound is ``max(e - surplus, 0)``, which is not convex in ``e``: the program allows
  up to ``e`` (*relaxed*: the excess leaves the house for its neighbours, as pooling would allow,
  only in slots where the house has PV surplus and its EV or heat pump runs).
* **curtailment** ``u_t <= pv_t`` (only with ``curtailment=True``: free curtailment takes the
  export peak to 0, so the default oracle only shifts and wastes no energy).

**Only the judged days are scheduled.** Before the first judged slot no peak counts, so those
days can leave the assets in any state they can reach: each battery's charge at the judged start
is free between its minimum and its capacity (a day of charging from the grid, or of discharging
into the house's evening deficit, reaches any of them; *relaxed* only where it would not), and a
window open at that moment needs its day's energy less what full power could have delivered
before it. This halves the program for 7 judged after 7 tuning days and loses nothing else.

The root's net import is ``sum over houses of load + e + c - d - pv (+ u)``; wires lose nothing.
What the owners *choose* (flexible loads never slower than the even rate, batteries on their
price thresholds) is not a constraint: this is what the assets can do, not what fees make them
do, so every relaxation above keeps the oracle a lower bound on any fee's peaks.

Size: one variable per battery and slot (three) and per flexible load and window slot. Houses
without a battery or flexible load are constants. The 1,000-house generated grid (161 batteries,
259 flexible loads, 7 judged days) is about 0.45 million variables; see the bench for the time.

**From the limit to the fee: the waterfall** (``bench/steering.py``'s ``oracle_steps``), each step
on the judged slots, each either a lower bound or exactly what it says:

1. ``oracle_peaks``: every asset a lever (above). A lower bound on any fee path's peaks.
2. ``oracle_peaks(even_rate=True)``: + the owners' rule no fee changes (EVs and heat pumps never
   slower than the even rate of what is left). Still a lower bound on any fee path's peaks (the
   batteries' price thresholds, not convex, are left out).
3. ``oracle_fixed_batteries(flows)``: + the batteries and curtailment doing exactly what they
   did in a simulated run (``run_flows`` replays a run from its fees in force): each house's load
   carries its battery's charge less discharge plus what it curtailed, and only the EVs and heat
   pumps are scheduled (even rate). That run is one such schedule, so this is a lower bound on
   *that run's* ``I / I_0 + E / E_0``: the rest of its gap is how its fees steered the EVs.
4. ``greedy_fee_path``: the simulation under one grid fee per slot, chosen by an operator who
   knows each slot's outcome before sending the fee and looks no further (the lowest fee of a
   candidate list whose root flows stay within the aim): exactly what it says, a fee path the
   contract allows (one fee per market and slot), not a bound.
5. the controller, judged in the simulation.

Steps 1-3 minimise ``I / I_0 + E / E_0``, so one direction may rise while the sum falls; step 3
carries a run's curtailment, a lever steps 1-2 do not have.

``per_house=False`` gives the older, looser *pooled* bound: the batteries of one efficiency form
one battery that may discharge into any house (no deficit bound), and the flexible loads of one
window one pool. Every per-house schedule is a pooled one, so the pooled objective is never above
the per-house one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from app.exchange.grid import build_grid
from app.exchange.profiles import ProfileSource
from app.exchange.scenario import Scenario
from app.exchange.simulation import Simulation
from app.operator.kpis import market_kpis

_EPS = 1e-4  # cost per kWh of curtailment / battery throughput, relative to the peak terms


@dataclass(frozen=True)
class OracleResult:
    peak_import_kwh: float
    peak_export_kwh: float
    net_kwh: np.ndarray  # [slots] root net import of the schedule (negative: export)
    curtailed_kwh: float
    status: str
    objective: float = float("nan")  # I / I_0 + E / E_0 of the schedule (without the tiny costs)


@dataclass(frozen=True)
class Fleet:
    """Everything the oracle schedules, per house, over ``n`` slots. Energy [kWh]."""

    load_kwh: np.ndarray  # [n, H]
    pv_kwh: np.ndarray  # [n, H]
    bat_house: np.ndarray  # [B] owning house (-1: a pool, no deficit bound)
    bat_capacity_kwh: np.ndarray  # [B]
    bat_min_kwh: np.ndarray  # [B]
    bat_initial_kwh: np.ndarray  # [B] (NaN: free, anything from bat_min_kwh to capacity)
    bat_step_kwh: np.ndarray  # [B] most charge or discharge per slot
    bat_eta: np.ndarray  # [B] one-way efficiency
    flex_house: np.ndarray  # [F] owning house (-1: a pool)
    flex_step_kwh: np.ndarray  # [F] most energy per slot
    # windows: (flexible load, first slot, slots, least and most energy to deliver [kWh]); the
    # slots inside the run (a window cut by the run's start may have had some energy before it)
    windows: tuple[tuple[int, int, int, float, float], ...]

    @property
    def n_slots(self) -> int:
        return self.load_kwh.shape[0]


def scenario_fleet(scenario: Scenario, days: int, from_slot: int = 0) -> Fleet:
    """The fleet of slots ``from_slot`` .. ``days`` days of ``scenario``: its seeded profiles and
    assets, per house. With ``from_slot > 0`` the batteries' charge at ``from_slot`` is free and a
    window open at ``from_slot`` needs what full power before it could not have delivered."""
    grid = build_grid(scenario)
    profiles = ProfileSource(scenario, grid)
    spd, minutes = scenario.slots_per_day, scenario.slot_length_min
    n, n_h = days * spd, grid.n_houses
    slot_h = minutes / 60
    step = grid.flex_power_kw * slot_h
    load = np.zeros((n, n_h))
    pv = np.zeros((n, n_h))
    windows: list[tuple[int, int, int, float, float]] = []
    first_day, _ = scenario.day_and_slot(0)
    window_min = (grid.flex_due_min - grid.flex_from_min) % 1440
    length = np.ceil(window_min / minutes).astype(int)
    for d in range(days + 1):  # the profiles' days the run touches (it may start mid-day)
        lo = d * spd - scenario.start_offset_slots
        if lo >= n:
            break
        day = profiles.day(first_day + d)
        a, b = max(lo, 0), min(lo + spd, n)
        load[a:b] = day.load_kwh[a - lo : b - lo]
        pv[a:b] = day.pv_kwh[a - lo : b - lo]
        for f in range(len(grid.flex_house)):  # one window per profile day, opening at from
            open_t = lo + int(grid.flex_from_min[f]) // minutes
            first, last = max(open_t, 0), min(open_t + length[f], n)
            if last <= first:
                continue
            need = float(day.flex_energy_kwh[f]) * (last - first) / length[f]  # cut by the run's ends
            before = max(from_slot - first, 0)  # slots of the window before from_slot
            if first + before >= last:
                continue
            least = max(need - step[f] * before, 0.0) if before else need
            windows.append((f, first + before, last - first - before, least, need))
    has_bat = grid.bat_capacity_kwh > 0
    cap = grid.bat_capacity_kwh[has_bat]
    initial = grid.bat_initial_soc[has_bat] * cap
    return Fleet(
        load_kwh=load[from_slot:],
        pv_kwh=pv[from_slot:],
        bat_house=np.flatnonzero(has_bat),
        bat_capacity_kwh=cap,
        bat_min_kwh=grid.bat_min_soc[has_bat] * cap,
        bat_initial_kwh=initial if from_slot == 0 else np.full(len(cap), np.nan),
        bat_step_kwh=grid.bat_power_kw[has_bat] * slot_h,
        bat_eta=np.sqrt(grid.bat_efficiency[has_bat]),
        flex_house=grid.flex_house.copy(),
        flex_step_kwh=step,
        windows=tuple((f, first - from_slot, k, lo, hi) for f, first, k, lo, hi in windows),
    )


def pooled(fleet: Fleet) -> Fleet:
    """The looser bound's fleet: batteries of one efficiency pooled into one that may serve any
    house, flexible loads of one window (same first slot and length) pooled into one."""
    etas, which = np.unique(fleet.bat_eta, return_inverse=True)
    k = len(etas)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(which, weights=values, minlength=k)

    # a pool per window *pattern*: loads that share every window of the run
    pattern: dict[int, list[tuple[int, int]]] = {}
    for f, first, slots, _, _ in fleet.windows:
        pattern.setdefault(f, []).append((first, slots))
    groups: dict[tuple, int] = {}
    pool_of = np.zeros(len(fleet.flex_house), dtype=int)
    for f in range(len(fleet.flex_house)):
        pool_of[f] = groups.setdefault(tuple(pattern.get(f, [])), len(groups))
    energy: dict[tuple[int, int, int], tuple[float, float]] = {}
    for f, first, slots, least, most in fleet.windows:
        key = (int(pool_of[f]), first, slots)
        lo, hi = energy.get(key, (0.0, 0.0))
        energy[key] = (lo + least, hi + most)
    return Fleet(
        load_kwh=fleet.load_kwh,
        pv_kwh=fleet.pv_kwh,
        bat_house=np.full(k, -1),
        bat_capacity_kwh=total(fleet.bat_capacity_kwh),
        bat_min_kwh=total(fleet.bat_min_kwh),
        bat_initial_kwh=total(fleet.bat_initial_kwh),
        bat_step_kwh=total(fleet.bat_step_kwh),
        bat_eta=etas,
        flex_house=np.full(len(groups), -1),
        flex_step_kwh=np.bincount(pool_of, weights=fleet.flex_step_kwh, minlength=len(groups)),
        windows=tuple((g, first, slots, lo, hi) for (g, first, slots), (lo, hi) in energy.items()),
    )


def schedule(
    fleet: Fleet,
    judge_from_slot: int = 0,
    zero_peaks_kwh: tuple[float, float] = (1.0, 1.0),
    curtailment: bool = False,
    even_rate: bool = False,
) -> OracleResult:
    """The schedule of ``fleet`` with the least ``I / I_0 + E / E_0`` on the judged slots.

    ``zero_peaks_kwh``: (import, export) peaks without fees, the weights of the two directions.
    A battery or flexible load whose house is -1 has no deficit bound (a pool).
    ``even_rate``: each flexible load takes at least the even rate of what is left (remaining /
    slots left in its window), as the simulation's owners do whatever the price: what fees can
    reach rather than what the assets can do (windows cut by the run's start are left free).
    """
    n = fleet.n_slots
    n_b, n_w = len(fleet.bat_capacity_kwh), len(fleet.windows)
    fixed = fleet.load_kwh.sum(axis=1) - fleet.pv_kwh.sum(axis=1)  # [n] root net without assets

    # variables: [flex (one per window slot) | c (B*n) | d (B*n) | s (B*n) | u (n) | I | E]
    w_load = np.array([w[0] for w in fleet.windows], dtype=int)
    w_first = np.array([w[1] for w in fleet.windows], dtype=int)
    w_len = np.array([w[2] for w in fleet.windows], dtype=int)
    w_least = np.array([w[3] for w in fleet.windows], dtype=float)
    w_most = np.array([w[4] for w in fleet.windows], dtype=float)
    n_e = int(w_len.sum())
    e_window = np.repeat(np.arange(n_w), w_len)
    e_slot = w_first[e_window] + (np.arange(n_e) - np.repeat(np.cumsum(w_len) - w_len, w_len))
    e_load = w_load[e_window]
    off_c = n_e
    off_d, off_s = off_c + n_b * n, off_c + 2 * n_b * n
    off_u = off_c + 3 * n_b * n
    i_peak, e_peak = off_u + n, off_u + n + 1
    free = np.flatnonzero(np.isnan(fleet.bat_initial_kwh))  # batteries whose start charge is free
    off_init = e_peak + 1
    off_cum = off_init + len(free)  # with even_rate: S_k, a window's energy up to its slot k
    n_var = off_cum + (n_e if even_rate else 0)

    lb = np.zeros(n_var)
    ub = np.full(n_var, np.inf)
    if n_e:
        ub[:n_e] = fleet.flex_step_kwh[e_load]
        # a window that cannot take its need at full power delivers what it can (as the simulation)
        w_most = np.minimum(w_most, fleet.flex_step_kwh[w_load] * w_len)
        w_least = np.minimum(w_least, w_most)
    slot_b = np.tile(np.arange(n), n_b)  # slot of each battery variable, battery-major
    bat_b = np.repeat(np.arange(n_b), n)
    ub[off_c:off_d] = fleet.bat_step_kwh[bat_b]
    ub[off_d:off_s] = fleet.bat_step_kwh[bat_b]
    lb[off_s:off_u] = fleet.bat_min_kwh[bat_b]
    ub[off_s:off_u] = fleet.bat_capacity_kwh[bat_b]
    ub[off_u:i_peak] = np.maximum(fleet.pv_kwh.sum(axis=1), 0.0) if curtailment else 0.0
    lb[off_init:off_cum] = fleet.bat_min_kwh[free]
    ub[off_init:off_cum] = fleet.bat_capacity_kwh[free]

    eq_r, eq_c, eq_v, eq_b = [], [], [], []
    row = 0
    exact = w_least >= w_most - 1e-12  # windows with one energy: an equality
    if n_e:  # each window delivers its energy
        pick = exact[e_window]
        number = np.cumsum(exact) - 1
        eq_r.append(number[e_window[pick]])
        eq_c.append(np.flatnonzero(pick))
        eq_v.append(np.ones(int(pick.sum())))
        eq_b.append(w_most[exact])
        row = int(exact.sum())
    if n_b:  # s_t - s_{t-1} - eta c_t + d_t / eta = 0 (s_{-1} = the initial charge)
        k = np.arange(n_b * n)
        eta = fleet.bat_eta[bat_b]
        rows = row + k
        has_prev = slot_b > 0
        eq_r += [rows, rows, rows, rows[has_prev]]
        eq_c += [off_s + k, off_c + k, off_d + k, off_s + k[has_prev] - 1]
        eq_v += [np.ones(len(k)), -eta, 1.0 / eta, -np.ones(int(has_prev.sum()))]
        eq_b.append(np.where(has_prev, 0.0, np.nan_to_num(fleet.bat_initial_kwh[bat_b])))
        if len(free):  # a free start charge: s_0 - s_init - ... = 0
            eq_r.append(row + free * n)
            eq_c.append(off_init + np.arange(len(free)))
            eq_v.append(-np.ones(len(free)))
        row += n_b * n
    e_pos = np.arange(n_e) - np.repeat(np.cumsum(w_len) - w_len, w_len)  # k within its window
    if even_rate and n_e:  # S_k - S_{k-1} - e_k = 0
        k = np.arange(n_e)
        has_prev = e_pos > 0
        eq_r += [row + k, row + k, row + k[has_prev]]
        eq_c += [off_cum + k, k, off_cum + k[has_prev] - 1]
        eq_v += [np.ones(n_e), -np.ones(n_e), -np.ones(int(has_prev.sum()))]
        eq_b.append(np.zeros(n_e))
        row += n_e

    ub_r, ub_c, ub_v, ub_b = [], [], [], []
    urow = 0
    if even_rate and n_e:  # (slots left) e_k + S_{k-1} >= need, in the windows that start in the run
        k = np.flatnonzero(exact[e_window])
        left = (w_len[e_window] - e_pos)[k]
        has_prev = e_pos[k] > 0
        ub_r += [urow + np.arange(len(k)), urow + np.flatnonzero(has_prev)]
        ub_c += [k, off_cum + k[has_prev] - 1]
        ub_v += [-left.astype(float), -np.ones(int(has_prev.sum()))]
        ub_b.append(-w_most[e_window[k]])
        urow += len(k)
    ranged = np.flatnonzero(~exact)
    if len(ranged):  # least <= sum <= most
        pick = ~exact[e_window]
        number = np.full(n_w, -1)
        number[ranged] = np.arange(len(ranged))
        rows_of = number[e_window[pick]]
        cols = np.flatnonzero(pick)
        ub_r += [rows_of, len(ranged) + rows_of]
        ub_c += [cols, cols]
        ub_v += [np.ones(len(cols)), -np.ones(len(cols))]
        ub_b += [w_most[ranged], -w_least[ranged]]
        urow += 2 * len(ranged)
    # a battery discharges only into its own house's deficit: load - pv where positive, plus
    # the house's flexible loads (see the module docstring for where this is relaxed)
    # (a house without flexible loads: a bound on d itself, no row)
    own = fleet.bat_house >= 0
    with_flex = np.zeros(fleet.load_kwh.shape[1], dtype=bool)
    with_flex[fleet.flex_house[fleet.flex_house >= 0]] = True
    plain = own & ~with_flex[np.maximum(fleet.bat_house, 0)]
    for b in np.flatnonzero(plain):
        h = fleet.bat_house[b]
        deficit = np.maximum(fleet.load_kwh[:, h] - fleet.pv_kwh[:, h], 0.0)
        ub[off_d + b * n : off_d + (b + 1) * n] = np.minimum(fleet.bat_step_kwh[b], deficit)
    own &= ~plain
    if own.any():
        h = fleet.bat_house[own]
        deficit = np.maximum(fleet.load_kwh[:, h] - fleet.pv_kwh[:, h], 0.0)  # [n, B']
        which = np.flatnonzero(own)
        battery_of_house = np.full(fleet.load_kwh.shape[1], -1)
        battery_of_house[h] = which
        k = (which[:, None] * n + np.arange(n)[None, :]).ravel()  # battery-major, like the vars
        ub_r.append(urow + np.arange(len(k)))
        ub_c.append(off_d + k)
        ub_v.append(np.ones(len(k)))
        ub_b.append(deficit.T.ravel())
        # the house's flexible-load energy in that slot raises the bound
        row_of = np.full(n_b, -1)
        row_of[which] = np.arange(len(which))
        e_house = np.where(e_load >= 0, fleet.flex_house[e_load], -1) if n_e else np.zeros(0, int)
        e_bat = np.where(e_house >= 0, battery_of_house[np.maximum(e_house, 0)], -1)
        hit = np.flatnonzero(e_bat >= 0)
        ub_r.append(urow + row_of[e_bat[hit]] * n + e_slot[hit])
        ub_c.append(hit)
        ub_v.append(-np.ones(len(hit)))
        urow += len(k)
    # root net import in each judged slot: net_t - I <= 0 and -net_t - E <= 0, where
    # net_t = fixed_t + sum e + sum c - sum d + u
    judged = np.arange(max(0, judge_from_slot), n)
    pos = np.full(n, -1)
    pos[judged] = np.arange(len(judged))
    terms_c = [np.arange(n_e), off_c + np.arange(n_b * n), off_d + np.arange(n_b * n), off_u + np.arange(n)]
    terms_t = [e_slot, slot_b, slot_b, np.arange(n)]
    terms_v = [np.ones(n_e), np.ones(n_b * n), -np.ones(n_b * n), np.ones(n)]
    for sign, peak in ((1.0, i_peak), (-1.0, e_peak)):
        base = urow
        for cols, slots, vals in zip(terms_c, terms_t, terms_v, strict=True):
            keep = pos[slots] >= 0
            ub_r.append(base + pos[slots[keep]])
            ub_c.append(cols[keep])
            ub_v.append(sign * vals[keep])
        ub_r.append(base + np.arange(len(judged)))
        ub_c.append(np.full(len(judged), peak))
        ub_v.append(-np.ones(len(judged)))
        ub_b.append(-sign * fixed[judged])
        urow += len(judged)

    cost = np.zeros(n_var)
    imp0, exp0 = (max(z, 1e-6) for z in zero_peaks_kwh)
    cost[i_peak], cost[e_peak] = 1.0 / imp0, 1.0 / exp0
    scale = _EPS / max(imp0, exp0)
    cost[off_c:off_s] = scale
    cost[off_u:i_peak] = scale

    def matrix(
        r: list[np.ndarray], c: list[np.ndarray], v: list[np.ndarray], n_rows: int
    ) -> sparse.csr_matrix:
        return sparse.csr_matrix(
            (np.concatenate(v), (np.concatenate(r), np.concatenate(c))), shape=(n_rows, n_var)
        )

    a_eq = matrix(eq_r, eq_c, eq_v, row) if row else None
    b_eq = np.concatenate(eq_b) if row else None
    res = linprog(
        cost,
        A_ub=matrix(ub_r, ub_c, ub_v, urow),
        b_ub=np.concatenate(ub_b),
        A_eq=a_eq,
        b_eq=b_eq,
        bounds=np.stack([lb, ub], 1),
        method="highs",
    )
    if res.x is None:
        return OracleResult(float("nan"), float("nan"), np.full(n, np.nan), float("nan"), res.message)
    x = res.x
    net = fixed + np.bincount(e_slot, weights=x[:n_e], minlength=n)
    net += np.bincount(slot_b, weights=x[off_c:off_d] - x[off_d:off_s], minlength=n)
    net += x[off_u:i_peak]
    judged_net = net[max(0, judge_from_slot) :]
    peak_imp = float(max(judged_net.max(), 0.0)) if len(judged_net) else 0.0
    peak_exp = float(max(-judged_net.min(), 0.0)) if len(judged_net) else 0.0
    return OracleResult(
        peak_import_kwh=peak_imp,
        peak_export_kwh=peak_exp,
        net_kwh=net,
        curtailed_kwh=float(x[off_u + max(0, judge_from_slot) : i_peak].sum()),
        status=res.message,
        objective=peak_imp / imp0 + peak_exp / exp0,
    )


def oracle_peaks(
    scenario: Scenario,
    days: int,
    judge_from_slot: int = 0,
    zero_peaks_kwh: tuple[float, float] = (1.0, 1.0),
    curtailment: bool = False,
    per_house: bool = True,
    even_rate: bool = False,
) -> OracleResult:
    """Schedule ``days`` days of ``scenario`` to minimise the root's peaks on the judged slots.

    ``zero_peaks_kwh``: (import, export) peaks without fees, the weights of the two directions.
    ``curtailment``: may PV be curtailed? With it the export peak is trivially 0 (every kWh that
    would leave is thrown away), so the default limit is what shifting alone achieves.
    ``per_house``: each battery serves only its own house (the simulation's rule); ``False``
    gives the pooled, looser bound. ``even_rate``: flexible loads never slower than the even
    rate (``schedule``), the limit of what fees can reach with this simulation's owners.

    Only the judged slots are scheduled (``net_kwh`` is NaN before ``judge_from_slot``): the
    slots before have no peak to keep, so what they leave behind is free (module docstring).
    """
    start = min(max(judge_from_slot, 0), days * scenario.slots_per_day)
    fleet = scenario_fleet(scenario, days, from_slot=start)
    result = schedule(fleet if per_house else pooled(fleet), 0, zero_peaks_kwh, curtailment, even_rate)
    net = np.concatenate([np.full(start, np.nan), result.net_kwh])
    return OracleResult(
        result.peak_import_kwh,
        result.peak_export_kwh,
        net,
        result.curtailed_kwh,
        result.status,
        result.objective,
    )


# --- the waterfall: from the physical limit to what one fee reaches ---------------------------


@dataclass(frozen=True)
class RunFlows:
    """What the simulation's assets did in a run, per slot and house [kWh]."""

    charge_kwh: np.ndarray  # [n, H] battery charging at the meter (from PV or grid)
    discharge_kwh: np.ndarray  # [n, H] battery discharge at the meter
    curtailed_kwh: np.ndarray  # [n, H] supply nobody took (PV or battery), thrown away
    import_kwh: np.ndarray  # [n] the root's import
    export_kwh: np.ndarray  # [n] the root's export


def run_flows(scenario: Scenario, fee_ct_per_kwh: np.ndarray) -> RunFlows:
    """Replay ``scenario`` with the fees in force ``fee_ct_per_kwh`` [slots, markets] (every market
    of the grid, in ``build_grid``'s order) and record what the batteries and curtailment did.

    The simulation is deterministic for a given fee path, so a backtest's fees (``fees_of_run``)
    replay that very run."""

    sim = Simulation(scenario)
    n, n_h = len(fee_ct_per_kwh), sim.grid.n_houses
    charge, discharge, curtailed = np.zeros((n, n_h)), np.zeros((n, n_h)), np.zeros((n, n_h))
    imp, exp = np.zeros(n), np.zeros(n)
    for t in range(n):
        out = sim.run_slot(t, fee_ct_per_kwh[t])
        stats = out.stats(sim.grid, fee_ct_per_kwh[t])
        charge[t] = out.orders.demand_kwh - out.consumption_kwh
        discharge[t] = out.orders.battery_kwh
        curtailed[t] = out.cleared.curtailed_kwh
        imp[t], exp[t] = stats.import_kwh[0], stats.export_kwh[0]
    return RunFlows(charge, discharge, curtailed, imp, exp)


def fees_of_run(scenario: Scenario, series_fee_ct_per_kwh: np.ndarray, markets: list[str]) -> np.ndarray:
    """The fees in force [slots, every market] of a backtest whose ``series["fee_ct_per_kwh"]``
    covers ``markets`` (uuids); the other markets kept the scenario's initial fee."""
    grid = build_grid(scenario)
    position = {m.uuid: i for i, m in enumerate(grid.markets)}
    fees = np.tile(grid.initial_fee_ct_per_kwh.astype(float), (len(series_fee_ct_per_kwh), 1))
    fees[:, [position[u] for u in markets]] = series_fee_ct_per_kwh
    return fees


def fixed_batteries(fleet: Fleet, flows: RunFlows, from_slot: int = 0) -> Fleet:
    """``fleet`` with its batteries and curtailment no longer levers: each house's load carries
    what its battery charged, less what it discharged, plus what was curtailed in the run
    ``flows`` (from ``from_slot`` on). Only the flexible loads are left to schedule."""
    n = fleet.n_slots
    moved = (flows.charge_kwh - flows.discharge_kwh + flows.curtailed_kwh)[from_slot : from_slot + n]
    none = np.zeros(0)
    return Fleet(
        load_kwh=fleet.load_kwh + moved,
        pv_kwh=fleet.pv_kwh,
        bat_house=np.zeros(0, dtype=int),
        bat_capacity_kwh=none,
        bat_min_kwh=none,
        bat_initial_kwh=none,
        bat_step_kwh=none,
        bat_eta=none,
        flex_house=fleet.flex_house,
        flex_step_kwh=fleet.flex_step_kwh,
        windows=fleet.windows,
    )


def oracle_fixed_batteries(
    scenario: Scenario,
    days: int,
    flows: RunFlows,
    judge_from_slot: int = 0,
    zero_peaks_kwh: tuple[float, float] = (1.0, 1.0),
    even_rate: bool = True,
) -> OracleResult:
    """The oracle whose batteries and curtailment do what they did in the run ``flows`` (e.g. under
    the controller's fees): only the EVs and heat pumps are scheduled (by default at no less than
    the owners' even rate). That run is itself such a schedule, so its peaks are never below
    this one's: the gap between them is what the fee's steering of the flexible loads left."""
    start = min(max(judge_from_slot, 0), days * scenario.slots_per_day)
    fleet = fixed_batteries(scenario_fleet(scenario, days, from_slot=start), flows, start)
    result = schedule(fleet, 0, zero_peaks_kwh, curtailment=False, even_rate=even_rate)
    net = np.concatenate([np.full(start, np.nan), result.net_kwh])
    return OracleResult(
        result.peak_import_kwh,
        result.peak_export_kwh,
        net,
        float(flows.curtailed_kwh[start:].sum()),
        result.status,
        result.objective,
    )


@dataclass(frozen=True)
class GreedyResult:
    fee_ct_per_kwh: np.ndarray  # [slots] the grid fee in force (0 before the judged slots)
    import_kwh: np.ndarray  # [slots] the root's
    export_kwh: np.ndarray
    kpis: dict[str, float]  # the root's, on the judged slots (``market_kpis``)


GREEDY_FEES_CT_PER_KWH = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 13.0, 16.0, 20.0, 25.0, 30.0, 40.0)


def greedy_fee_path(
    scenario: Scenario,
    days: int,
    judge_from_slot: int,
    aim_kwh: tuple[float, float],
    candidates_ct_per_kwh: tuple[float, ...] = GREEDY_FEES_CT_PER_KWH,
    baseline_peaks: tuple[float, float] | None = None,
) -> GreedyResult:
    """One grid fee per slot, chosen with the slot's outcome known and no lag: the simulation
    itself (its owners, batteries and curtailment all answering the one price) under the fee path
    a perfectly informed, myopic operator would send.

    Every market's fee is 0 except the grid's. Before ``judge_from_slot`` the fee is 0. In each
    judged slot every candidate fee (ascending) is tried from the same asset state, and the lowest
    whose root import and export stay within the aim (``aim_kwh`` at first, then the highest
    peaks already reached) is kept; if none does, the one with the least
    ``max(import / aim_import, export / aim_export)``. It does not look beyond the slot, so it is
    *exactly what it says*, not a bound: a fee path that plans ahead could do better.
    """

    sim = Simulation(scenario)
    grid = sim.grid
    n = days * scenario.slots_per_day
    fees = np.zeros(grid.n_markets)
    path = np.zeros(n)
    keys = ("import_kwh", "export_kwh", "market_fee_revenue", "total_traded_energy_kWh")
    keys += ("avg_trade_rate", "consumption_kwh", "unmatched_kwh")
    series = {k: np.zeros(n) for k in keys}
    aim_i, aim_e = (max(a, 1e-6) for a in aim_kwh)
    ordered = sorted(candidates_ct_per_kwh)
    for t in range(n):
        if t >= judge_from_slot:
            saved = sim.state.to_arrays()
            saved = {k: v.copy() for k, v in saved.items()}
            best, best_excess = ordered[0], float("inf")
            for fee in ordered:
                sim.state = type(sim.state).from_arrays(saved)
                fees[0] = fee
                stats = sim.run_slot(t, fees).stats(grid, fees)
                excess = max(stats.import_kwh[0] / aim_i, stats.export_kwh[0] / aim_e)
                if excess <= 1 + 1e-9:
                    best = fee
                    break
                if excess < best_excess:
                    best, best_excess = fee, excess
            sim.state = type(sim.state).from_arrays(saved)
            fees[0] = best
        stats = sim.run_slot(t, fees).stats(grid, fees)
        path[t] = fees[0]
        for k in keys:
            series[k][t] = getattr(stats, k)[0]
        if t >= judge_from_slot:
            aim_i, aim_e = max(aim_i, series["import_kwh"][t]), max(aim_e, series["export_kwh"][t])
    w = slice(judge_from_slot, None)
    kpis = market_kpis(
        series["import_kwh"][w],
        series["export_kwh"][w],
        path[w],
        series["market_fee_revenue"][w],
        series["total_traded_energy_kWh"][w],
        series["avg_trade_rate"][w],
        series["consumption_kwh"][w],
        series["unmatched_kwh"][w],
        baseline_peaks=baseline_peaks,
    )
    return GreedyResult(path, series["import_kwh"], series["export_kwh"], kpis)
