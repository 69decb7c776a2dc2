"""Backtest: the embedded exchange in fast-forward under given fee models, with KPIs per market.

It runs what the live console would do, with the same timing: after slot n closes the agent
computes each model's fee for slot n+2 (a fee sent while n+1 runs applies from n+2) from the
history up to n, through the same fee book rules. Markets without a model keep the scenario's
initial fee; ``models={}`` is the scenario as it is, and ``ZERO`` every fee at 0 (the baseline
of the energy peak percentage).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from app import slots
from app.exchange.fees import Fee, FeeBook
from app.exchange.scenario import Scenario
from app.exchange.simulation import Simulation
from app.operator.kpis import market_kpis
from app.tariffs.base import HISTORY_FOR_MODELS, FeeLimits, MarketHistory, SlotInfo
from app.tariffs.registry import compute_fee

# The slot statistics a run keeps per slot and market (keys of app.exchange.stat_table), in the order
# of a What-if candidate's sheet: what the models, the KPIs and What-if's charts and workbook read
SERIES = (
    "import_kwh",
    "export_kwh",
    "fee_ct_per_kwh",
    "next_fee_ct_per_kwh",
    "market_fee_revenue",
    "total_traded_energy_kWh",
    "avg_trade_rate",
    "consumption_kwh",
    "unmatched_kwh",
    "self_sufficiency",
)
ZERO = "zero"


class Cancelled(Exception):
    pass


@dataclass(frozen=True)
class BacktestResult:
    market_uuids: list[str]
    market_names: list[str]
    slot_labels: list[str]
    series: dict[str, np.ndarray]  # name -> [slot, market]
    kpis: dict[str, dict[str, float]]  # market uuid -> KPI name -> value

    def peaks(self, market_uuid: str) -> tuple[float, float]:
        k = self.kpis[market_uuid]
        return k["peak_import_kwh"], k["peak_export_kwh"]


def backtest(
    scenario: Scenario,
    models: Mapping[str, object] | str,
    days: int = 1,
    markets: list[str] | None = None,
    baseline: BacktestResult | None = None,
    limits_kwh: Mapping[str, tuple[float, float]] | None = None,
    progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    judge_from_slot: int = 0,
    start_slot: int = 0,
) -> BacktestResult:
    """Run ``days`` days of ``scenario`` with ``models`` ({market uuid: FeeModel}) or ``ZERO``.

    ``markets`` (uuids) limits what is recorded and evaluated (default: the grid and communities).
    ``progress`` gets the share done (0..1); ``should_stop`` returning True cancels the run.
    ``judge_from_slot``: the KPIs cover the slots from this one on (the earlier ones are the
    models' warm-up or tuning days, run but not judged); the series cover every slot.
    ``start_slot``: the run begins at this slot of the scenario (its days' profiles and supplier
    rates) with the assets as the scenario starts them and no fee history; ``judge_from_slot``
    and the series count from it.
    """

    sim = Simulation(scenario)
    grid = sim.grid
    uuids = [m.uuid for m in grid.markets]
    position = {u: i for i, u in enumerate(uuids)}
    picked = markets or [m.uuid for m in grid.markets if m.level <= 1]
    idx = np.array([position[u] for u in picked])
    initial = dict(zip(uuids, grid.initial_fee_ct_per_kwh.tolist(), strict=True))
    if models == ZERO:
        initial = dict.fromkeys(uuids, 0.0)
        models = {}
    limits = FeeLimits(scenario.fee_limits.min_ct_per_kwh, scenario.fee_limits.max_ct_per_kwh)
    s0 = max(int(start_slot), 0)
    book = FeeBook.in_memory(initial, running_slot=s0)
    n_slots = days * scenario.slots_per_day
    series = {name: np.full((n_slots, len(idx)), np.nan) for name in SERIES}
    labels = []

    fees = book.open_slot(s0)
    column = {u: j for j, u in enumerate(picked)}
    for n in range(n_slots):
        slot = s0 + n
        outcome = sim.run_slot(slot, fees)
        next_fees = book.fees_for_slot(slot + 1)
        stats = outcome.stats(grid, next_fees)
        for name in SERIES:
            series[name][n] = getattr(stats, name)[idx]
        start = scenario.start + dt.timedelta(minutes=slot * scenario.slot_length_min)
        labels.append(slots.label(start))
        fees = book.open_slot(slot + 1)
        # the agent, told that n closed while n+1 runs: fees for n+2
        target = SlotInfo(
            slot + 2, start + dt.timedelta(minutes=2 * scenario.slot_length_min), scenario.slot_length_min
        )
        for market_uuid, model in models.items():
            if model is None or market_uuid not in column:
                continue
            j = column[market_uuid]
            history = MarketHistory(
                slot=np.arange(s0, slot + 1),
                import_kwh=series["import_kwh"][: n + 1, j],
                export_kwh=series["export_kwh"][: n + 1, j],
                fee_ct_per_kwh=series["fee_ct_per_kwh"][: n + 1, j],
                next_fee_ct_per_kwh=series["next_fee_ct_per_kwh"][: n + 1, j],
            ).tail(HISTORY_FOR_MODELS)
            # a model's fee is finite and within the limits (``app.tariffs.base``): a ``Fee``
            book.submit_fee(market_uuid, Fee(compute_fee(model, history, target, limits)), "backtest")
        if progress is not None and (n % 8 == 7 or n == n_slots - 1):
            progress((n + 1) / n_slots)
        if should_stop is not None and should_stop():
            raise Cancelled(f"stopped after {n + 1} of {n_slots} slots")

    kpis = {}
    w = slice(max(0, min(judge_from_slot, n_slots - 1)), None)
    for j, u in enumerate(picked):
        kpis[u] = market_kpis(
            series["import_kwh"][w, j],
            series["export_kwh"][w, j],
            series["fee_ct_per_kwh"][w, j],
            series["market_fee_revenue"][w, j],
            series["total_traded_energy_kWh"][w, j],
            series["avg_trade_rate"][w, j],
            series["consumption_kwh"][w, j],
            series["unmatched_kwh"][w, j],
            baseline_peaks=None if baseline is None or u not in baseline.kpis else baseline.peaks(u),
            limits_kwh=None if limits_kwh is None else limits_kwh.get(u),
        )
    names = [grid.markets[position[u]].name for u in picked]
    return BacktestResult(picked, names, labels, series, kpis)
