"""What-if: several fee settings on the same days of a scenario, side by side (no Dash).

A ``Candidate`` is one fee setting to try: a model per managed market level (0 the grid,
1 the communities), ``zero`` (every fee 0) or a copy of the live settings (a model per market
uuid). ``run_whatif`` runs the zero-fee baseline once, then every candidate through
``app.operator.backtest.backtest`` on the same days (same seed, same live timing), and puts
their KPIs into one table: per market and KPI a row with the value of every candidate, its unit,
whether lower or higher is better and which candidate is best. ``whatif_workbook`` writes the
comparison to Excel.

The limits that "slots over limit" counts against are the stated ones (``limits_kwh``), else
``limit_share`` (70 %) of each market's zero-fee peaks, as ``bench/steering.py`` sets them. A
controller candidate with ``auto_limits`` steers to those same limits, market by market.

Several candidates run in parallel worker processes (one per core, forked after the baseline so
that they inherit its warmed profile caches) where that is safe: on a platform with ``fork``, in a
process that is not a daemon and has no other thread (forking a threaded process can deadlock).
A Celery prefork worker's process is a daemon; ``app.whatif.queue`` lifts that for its what-if
jobs, which stop their workers themselves on cancel, and on Linux every worker process is killed
with the process that started it (``PR_SET_PDEATHSIG``), so none runs on alone when that one is
killed. Anywhere else, or with ``workers=1``, they run one after the other in this process;
``WhatIfResult.workers`` says which it was.
"""

from __future__ import annotations

import ctypes
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import numpy as np
from pydantic import BaseModel

from app.exchange.grid import build_grid
from app.exchange.scenario import Scenario
from app.exchange.stat_table import STAT
from app.export import xlsx
from app.operator.backtest import SERIES, ZERO, BacktestResult, Cancelled, backtest
from app.operator.kpis import KPI_UNITS, market_kpis
from app.tariffs.registry import FeeModel, describe, parse_model

__all__ = [
    "BASELINE",
    "KPI_ROWS",
    "LEVELS",
    "MAX_CANDIDATES",
    "MAX_DAYS",
    "MIN_CANDIDATES",
    "Cancelled",
    "Candidate",
    "WhatIfError",
    "WhatIfResult",
    "run_whatif",
    "validate_run",
    "whatif_workbook",
]

LEVELS = {0: "grid", 1: "communities"}
MIN_CANDIDATES, MAX_CANDIDATES, MAX_DAYS = 2, 6, 7
DEFAULT_LIMIT_SHARE = 0.7
BASELINE = "zero-fee baseline"
LIVE = "live"
PROGRESS_INTERVAL_S = 0.2  # the progress callback is called at most this often (and at the ends)

# (KPI key, label, which is better): "min" or "max"; a KPI named after a slot statistic (its mean or
# sum over the run) has the statistic's label (app.exchange.stat_table)
KPI_ROWS: tuple[tuple[str, str, str], ...] = (
    ("peak_import_kwh", "Peak import", "min"),
    ("peak_export_kwh", "Peak export", "min"),
    ("peak_import_pct_of_baseline", "Peak import vs zero-fee baseline", "min"),
    ("peak_export_pct_of_baseline", "Peak export vs zero-fee baseline", "min"),
    ("load_factor", "Load factor (mean / peak import)", "max"),
    ("slots_over_limit", "Slots over limit", "min"),
    ("energy_over_limit_kwh", "Energy over limit", "min"),
    ("fee_revenue_ct", "Fee revenue", "max"),  # the DSO's income from the fee
    ("avg_trade_rate", STAT["avg_trade_rate"].label, "min"),  # what members pay each other
    ("self_sufficiency", STAT["self_sufficiency"].label, "max"),
    ("unmatched_kwh", STAT["unmatched_kwh"].label, "min"),
    ("fee_volatility", "Fee volatility (std dev)", "min"),
)


class WhatIfError(ValueError):
    """Parameters a what-if cannot run with; the message lists every problem."""


@dataclass(frozen=True)
class Candidate:
    """One fee setting to try.

    ``models``: ``{level: model}`` (a ``FeeModel`` or its dict; None keeps the scenario's fee
    for that level) or ``"zero"``. ``live``: a copy of the live settings, ``{market uuid: model
    or None}``; it replaces ``models``. ``auto_limits``: a controller's import and export limits
    become each market's limit of the run. ``tune_days``: a controller or predictive controller
    whose parameters are first tuned on that many days (``app.whatif.tune``); 0: run as given.
    """

    name: str
    models: Mapping[int, Any] | str = field(default_factory=dict)
    live: Mapping[str, Any] | None = None
    auto_limits: bool = False
    tune_days: int = 0

    @classmethod
    def zero(cls, name: str = "zero fee") -> Candidate:
        return cls(name, ZERO)

    @classmethod
    def live_copy(cls, name: str, models_by_market: Mapping[str, Any]) -> Candidate:
        return cls(name, {}, live=dict(models_by_market))

    @property
    def kind(self) -> str:
        """``"zero"``, ``"live"`` or ``"models"``."""
        if self.live is not None:
            return LIVE
        return ZERO if self.models == ZERO else "models"


@dataclass(frozen=True)
class WhatIfResult:
    scenario_name: str
    days: int
    candidates: list[str]
    kinds: list[str]
    market_uuids: list[str]
    market_names: list[str]
    market_levels: list[int]
    slot_labels: list[str]
    limits_kwh: dict[str, tuple[float, float]]
    baseline: BacktestResult  # KPIs with the limits and the baseline's own peaks (100 %)
    runs: dict[str, BacktestResult]  # candidate name -> its backtest
    models: dict[str, dict[str, dict | None]]  # candidate -> market uuid -> model run (JSON), None: none
    rows: list[dict]
    seconds: float
    workers: int
    # what tuning chose for the candidates tuned before the run (``app.whatif.tune``), else None
    tuning: list[dict] | None = None

    def series(self, candidate: str, name: str, market_uuid: str) -> np.ndarray:
        """One per-slot series (``app.operator.backtest.SERIES``) of a candidate's run in one market."""
        run = self.runs[candidate]
        return run.series[name][:, run.market_uuids.index(market_uuid)]


# -- validation ---------------------------------------------------------------------------------


def _parse(model: Any) -> FeeModel:
    if isinstance(model, BaseModel):
        model = model.model_dump(mode="json", by_alias=True)
    return parse_model(model)


def _tunable(candidate: Candidate) -> bool:
    """A candidate whose every level runs one of the models ``app.operator.tuning`` tunes."""
    if candidate.live is not None or not isinstance(candidate.models, Mapping) or not candidate.models:
        return False
    kinds = set()
    for model in candidate.models.values():
        try:
            kinds.add(_parse(model).model if model is not None else None)
        except ValueError:
            return False
    return len(kinds) == 1 and kinds <= {"controller", "predictive"}


def _finite_positive(value: object) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def validate_run(
    scenario: Scenario,
    candidates: Sequence[Candidate],
    days: int,
    markets: Sequence[str] | None = None,
    limits_kwh: Mapping[str, tuple[float, float]] | None = None,
    limit_share: float = DEFAULT_LIMIT_SHARE,
) -> list[str]:
    """The managed markets (uuids) the run evaluates; ``WhatIfError`` listing every problem.

    Checks the days (1-7), the number (2-6) and names (unique, not empty) of the candidates,
    every candidate's models (``parse_model``), the markets (the scenario's grid and communities),
    the limits and the limit share. Nothing runs before this passed.
    """
    problems: list[str] = []
    grid = build_grid(scenario)
    managed = {m.uuid: m for m in grid.markets if m.level in LEVELS}
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        problems.append(f"days: {days!r} is not a whole number of days from 1 to {MAX_DAYS}")
    if markets is None:
        picked = list(managed)
    else:
        picked = list(dict.fromkeys(markets))
        unknown = [u for u in picked if u not in managed]
        if unknown:
            problems.append(
                f"markets: {', '.join(map(str, unknown))} not among the scenario's grid and communities"
            )
        if not picked:
            problems.append("markets: choose at least one market")
    if not MIN_CANDIDATES <= len(candidates) <= MAX_CANDIDATES:
        problems.append(f"candidates: {len(candidates)} given, compare {MIN_CANDIDATES} to {MAX_CANDIDATES}")
    names = [c.name.strip() if isinstance(c.name, str) else "" for c in candidates]
    if any(not n for n in names):
        problems.append("candidates: every candidate needs a name")
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        problems.append(f"candidates: names must differ ({', '.join(repeated)} repeated)")
    if BASELINE in names:
        problems.append(f"candidates: {BASELINE!r} is the reference's name, choose another")
    if not (_finite_positive(limit_share) and limit_share <= 5):
        problems.append(f"limit share: {limit_share!r} is not a share of the zero-fee peak in (0, 5]")
    for uuid, pair in (limits_kwh or {}).items():
        if uuid not in managed:
            problems.append(f"limits: {uuid} is not a managed market")
        elif not (isinstance(pair, tuple | list) and len(pair) == 2 and all(map(_finite_positive, pair))):
            problems.append(f"limits of {managed[uuid].name}: {pair!r} is not (import, export) > 0 kWh/slot")
    for k, candidate in enumerate(candidates):
        label = f"candidate {k + 1} ({names[k] or 'no name'})"
        tune = candidate.tune_days
        if isinstance(tune, bool) or not isinstance(tune, int) or not 0 <= tune <= MAX_DAYS:
            problems.append(f"{label}: tune on {tune!r} days, a whole number from 1 to {MAX_DAYS}")
        elif tune and not _tunable(candidate):
            problems.append(f"{label}: only a controller or predictive controller can be tuned")
        if candidate.live is not None:
            shared = [u for u in picked if u in candidate.live]
            if not shared:
                problems.append(f"{label}: the live settings name none of the chosen markets")
            for uuid in shared:
                if candidate.live[uuid] is not None:
                    try:
                        _parse(candidate.live[uuid])
                    except ValueError as exc:
                        problems.append(f"{label}, {managed[uuid].name}: {exc}")
            continue
        if candidate.models == ZERO:
            continue
        if not isinstance(candidate.models, Mapping):
            problems.append(f"{label}: models are {{level: model}} or 'zero'")
            continue
        for level, model in candidate.models.items():
            if level not in LEVELS:
                problems.append(f"{label}: level {level!r} is not 0 (grid) or 1 (communities)")
            elif model is not None:
                try:
                    _parse(model)
                except ValueError as exc:
                    problems.append(f"{label}, {LEVELS[level]}: {exc}")
    if problems:
        raise WhatIfError("; ".join(problems))
    return picked


# -- the run ------------------------------------------------------------------------------------


def _resolve(
    candidate: Candidate, levels: Mapping[str, int], limits: Mapping[str, tuple[float, float]]
) -> dict[str, Any] | str:
    """{market uuid: FeeModel} for ``backtest`` (only the markets of the run), or ``ZERO``."""
    if candidate.kind == ZERO:
        return ZERO
    out = {}
    for uuid, level in levels.items():
        raw = candidate.live.get(uuid) if candidate.live is not None else candidate.models.get(level)
        if raw is None:
            continue
        model = _parse(raw)
        if candidate.auto_limits and model.model == "controller":
            imp, exp = limits[uuid]
            model = _parse(
                {
                    **model.model_dump(mode="json", by_alias=True),
                    "import_limit_kwh": max(imp, 0.1),
                    "export_limit_kwh": max(exp, 0.1),
                }
            )
        out[uuid] = model
    return out


def _with_kpis(
    result: BacktestResult, baseline: BacktestResult, limits: Mapping[str, tuple[float, float]]
) -> BacktestResult:
    """``result`` with its KPIs evaluated as ``backtest(..., baseline=, limits_kwh=)`` does."""
    s = result.series
    kpis = {
        u: market_kpis(
            s["import_kwh"][:, j],
            s["export_kwh"][:, j],
            s["fee_ct_per_kwh"][:, j],
            s["market_fee_revenue"][:, j],
            s["total_traded_energy_kWh"][:, j],
            s["avg_trade_rate"][:, j],
            s["consumption_kwh"][:, j],
            s["unmatched_kwh"][:, j],
            baseline_peaks=baseline.peaks(u),
            limits_kwh=limits.get(u),
        )
        for j, u in enumerate(result.market_uuids)
    }
    return BacktestResult(result.market_uuids, result.market_names, result.slot_labels, result.series, kpis)


class _Progress:
    """Shares done per run, passed on to the caller's callback at most every 0.2 s."""

    def __init__(self, names: list[str], callback: Callable[[dict[str, float]], None] | None):
        self.done = dict.fromkeys(names, 0.0)
        self.callback = callback
        self.last = 0.0

    def __call__(self, name: str, share: float, force: bool = False) -> None:
        self.done[name] = max(self.done[name], min(float(share), 1.0))
        now = time.monotonic()
        if self.callback is not None and (force or share >= 1.0 or now - self.last >= PROGRESS_INTERVAL_S):
            self.last = now
            self.callback(dict(self.done))


def run_whatif(
    scenario: Scenario,
    candidates: Sequence[Candidate],
    days: int = 1,
    markets: Sequence[str] | None = None,
    progress: Callable[[dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    limits_kwh: Mapping[str, tuple[float, float]] | None = None,
    limit_share: float = DEFAULT_LIMIT_SHARE,
    workers: int | None = None,
) -> WhatIfResult:
    """Run ``days`` days of ``scenario`` once with zero fees and once per candidate.

    ``markets``: uuids of the grid and communities to steer and evaluate (default: all of them).
    ``progress`` gets ``{run name: share done 0..1}`` (the baseline as ``BASELINE``);
    ``should_stop`` returning True stops every run (``Cancelled``). ``limits_kwh``: ``{market
    uuid: (import, export) [kWh/slot]}``, other markets get ``limit_share`` of their zero-fee
    peaks. ``workers``: processes for the candidates (default: one per core, see the module's
    docstring; 1: in this process). ``WhatIfError`` before anything runs when a parameter is bad.
    """
    picked = validate_run(scenario, candidates, days, markets, limits_kwh, limit_share)
    started = time.perf_counter()
    grid = build_grid(scenario)
    levels = {m.uuid: m.level for m in grid.markets if m.uuid in picked}
    names = [c.name.strip() for c in candidates]
    report = _Progress([BASELINE, *names], progress)
    zero_names = [n for n, c in zip(names, candidates, strict=True) if c.kind == ZERO]

    def baseline_progress(share: float) -> None:
        for name in zero_names:  # the zero candidates are the baseline: one report for them all
            report.done[name] = min(float(share), 1.0)
        report(BASELINE, share)

    raw = backtest(scenario, ZERO, days, picked, progress=baseline_progress, should_stop=should_stop)
    limits = {u: tuple(limit_share * p for p in raw.peaks(u)) for u in picked}
    limits.update({u: (float(a), float(b)) for u, (a, b) in (limits_kwh or {}).items() if u in levels})
    baseline = _with_kpis(raw, raw, limits)

    resolved = {name: _resolve(c, levels, limits) for name, c in zip(names, candidates, strict=True)}
    jobs = {name: models for name, models in resolved.items() if models != ZERO}
    # what backtest reads of the baseline: its peaks (the series stay here)
    slim = BacktestResult(baseline.market_uuids, baseline.market_names, [], {}, baseline.kpis)
    shared = _Shared(scenario, days, picked, slim, limits)
    runs, used = _run_candidates(shared, jobs, report, should_stop, workers)
    for name in zero_names:
        runs[name] = baseline
    runs = {name: runs[name] for name in names}
    models = {
        name: {
            u: (
                None
                if models == ZERO or u not in models
                else models[u].model_dump(mode="json", by_alias=True)
            )
            for u in picked
        }
        for name, models in resolved.items()
    }
    if zero_names:
        for name in zero_names:
            models[name] = {u: {"model": "constant", "fee_ct_per_kwh": 0.0} for u in picked}
    report(BASELINE, 1.0, force=True)
    return WhatIfResult(
        scenario_name=scenario.name,
        days=days,
        candidates=names,
        kinds=[c.kind for c in candidates],
        market_uuids=picked,
        market_names=baseline.market_names,
        market_levels=[levels[u] for u in picked],
        slot_labels=baseline.slot_labels,
        limits_kwh=limits,
        baseline=baseline,
        runs=runs,
        models=models,
        rows=kpi_rows(baseline, runs),
        seconds=time.perf_counter() - started,
        workers=used,
    )


def _pool_size(workers: int | None, jobs: int) -> int:
    """Worker processes to use; 1 runs in this process (see the module's docstring why)."""
    if workers is None:
        workers = os.cpu_count() or 1
    workers = max(1, min(int(workers), jobs))
    if workers == 1:
        return 1
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if multiprocessing.current_process().daemon or threading.active_count() > 1:
        return 1
    return workers


@dataclass(frozen=True)
class _Shared:
    """What every candidate's backtest shares: the scenario and its days, the markets steered,
    the zero-fee baseline without its series (``slim``: its peaks) and the markets' limits."""

    scenario: Scenario
    days: int
    picked: list[str]
    slim: BacktestResult
    limits: dict[str, tuple[float, float]]

    def backtest(
        self, models: Any, progress: Callable[[float], None], should_stop: Callable[[], bool] | None
    ) -> BacktestResult:
        """The backtest of one candidate's ``models``."""
        return backtest(
            self.scenario,
            models,
            self.days,
            self.picked,
            self.slim,
            self.limits,
            progress=progress,
            should_stop=should_stop,
        )


def _run_candidates(
    shared: _Shared,
    jobs: dict[str, Any],
    report: _Progress,
    should_stop: Callable[[], bool] | None,
    workers: int | None,
) -> tuple[dict[str, BacktestResult], int]:
    size = _pool_size(workers, len(jobs))
    runs: dict[str, BacktestResult] = {}
    if size > 1:
        try:
            runs = _run_in_pool(shared, jobs, report, should_stop, size)
        except (BrokenProcessPool, OSError):
            size = 1  # a worker died (memory?) or could not start: run the rest here
    for name, models in jobs.items():
        if name in runs:
            continue
        runs[name] = shared.backtest(models, lambda share, name=name: report(name, share), should_stop)
    return runs, size


# Set in each worker process by _init_worker (fork: inherited, never pickled).
_WORKER: dict[str, Any] = {}


def _init_worker(queue: object, stop: object, parent: int) -> None:
    _WORKER["queue"], _WORKER["stop"] = queue, stop
    _die_with(parent)


def _die_with(parent: int) -> None:
    """Linux: SIGKILL for this process when ``parent`` (the process that forked it) ends."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it ended before prctl took effect
        os._exit(1)


def _run_in_worker(shared: _Shared, name: str, models: dict) -> BacktestResult:
    queue, stop = _WORKER["queue"], _WORKER["stop"]
    return shared.backtest(models, lambda share: queue.put((name, share)), stop.is_set)


def _run_in_pool(
    shared: _Shared,
    jobs: dict[str, Any],
    report: _Progress,
    should_stop: Callable[[], bool] | None,
    size: int,
) -> dict[str, BacktestResult]:
    context = multiprocessing.get_context("fork")
    queue, stop = context.SimpleQueue(), context.Event()
    runs: dict[str, BacktestResult] = {}

    def drain() -> None:
        while not queue.empty():
            name, share = queue.get()
            report(name, share)

    with ProcessPoolExecutor(
        size, mp_context=context, initializer=_init_worker, initargs=(queue, stop, os.getpid())
    ) as pool:
        pending: dict[Future, str] = {
            pool.submit(_run_in_worker, shared, name, models): name for name, models in jobs.items()
        }
        try:
            while pending:
                done, _ = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                drain()
                for future in done:
                    name = pending.pop(future)
                    runs[name] = future.result()
                    report(name, 1.0)
                if should_stop is not None and should_stop():
                    raise Cancelled(f"stopped with {len(runs)} of {len(jobs)} candidates done")
        except BaseException:
            stop.set()  # the workers' backtests stop at their next slot
            for future in pending:
                future.cancel()
            raise
    return runs


# -- the KPI table ------------------------------------------------------------------------------


def _clean(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def best_of(values: Mapping[str, float | None], better: str) -> list[str]:
    """The candidates with the best value (ties included); none when all of them tie."""
    known = {name: v for name, v in values.items() if v is not None and math.isfinite(v)}
    if not known:
        return []
    target = min(known.values()) if better == "min" else max(known.values())
    tolerance = 1e-9 * max(1.0, abs(target))
    best = [name for name, v in known.items() if abs(v - target) <= tolerance]
    return [] if len(best) == len(values) > 1 else best


def kpi_rows(baseline: BacktestResult, runs: Mapping[str, BacktestResult]) -> list[dict]:
    """One row per market and KPI: ``values`` per candidate, the baseline's, unit, best."""
    rows = []
    for j, uuid in enumerate(baseline.market_uuids):
        for key, label, better in KPI_ROWS:
            values = {name: _clean(run.kpis[uuid].get(key)) for name, run in runs.items()}
            rows.append(
                {
                    "id": f"{uuid}:{key}",
                    "market_uuid": uuid,
                    "market": baseline.market_names[j],
                    "kpi": key,
                    "label": label,
                    "unit": KPI_UNITS.get(key) or "ratio",
                    "better": "lower" if better == "min" else "higher",
                    "baseline": _clean(baseline.kpis[uuid].get(key)),
                    "values": values,
                    "best": best_of(values, better),
                }
            )
    return rows


# -- Excel --------------------------------------------------------------------------------------

# (series, header, number format) of a candidate's sheet: the series a run keeps, in that order,
# with their headers and formats from the table of slot statistics
SHEET_COLUMNS: tuple[tuple[str, str, str], ...] = tuple(
    (key, STAT[key].header, STAT[key].number_format) for key in SERIES
)
KPI_SHEET = "KPIs"


def whatif_workbook(result: WhatIfResult) -> bytes:
    """The comparison as .xlsx: the KPI table first, then one sheet per candidate.

    ``KPIs``: market, KPI, unit, better, the zero-fee baseline, one column per candidate and the
    best candidate(s), the best value filled green; below it, the model each candidate ran in each
    market. A candidate's sheet: one row per slot and market (slot start, market, then the series
    of ``SHEET_COLUMNS``), the header row and the first two columns frozen; empty cells are values
    the exchange did not give. Written by the project's one Excel writer (:mod:`app.export.xlsx`).
    """

    titles = xlsx.sheet_titles([KPI_SHEET, *result.candidates], blank="Candidate")
    kpi_columns = (
        xlsx.Column("Market", "market", None, 24),
        xlsx.Column("KPI", "label", None, 30),
        xlsx.Column("Unit", "unit", None, 12),
        xlsx.Column("Better", "better", None, 9),
        xlsx.Column(BASELINE, "baseline", "0.00", 14),
        *(xlsx.Column(name, name, "0.00", 14) for name in result.candidates),
        xlsx.Column("Best", "best", None, 20),
    )
    run_columns = (
        xlsx.Column("Slot", "slot", xlsx.SLOT_FORMAT, 17),
        xlsx.Column("Market", "market", None, 24),
        *(xlsx.Column(header, key, fmt, 14) for key, header, fmt in SHEET_COLUMNS),
    )
    out = BytesIO()
    with xlsx.Workbook(out, titles, title="What-if comparison") as wb:
        with wb.sheet(kpi_columns, freeze_cols=2) as ws:
            first = 5  # the candidates' columns start after market, KPI, unit, better, baseline
            for row in result.rows:
                best = {first + i for i, n in enumerate(result.candidates) if n in row["best"]}
                values = [row["values"][n] for n in result.candidates]
                ws.write_values(
                    [
                        row["market"],
                        row["label"],
                        row["unit"],
                        row["better"],
                        row["baseline"],
                        *values,
                        ", ".join(row["best"]) or None,
                    ],
                    highlight=best,
                )
            ws.row += 1  # an empty row
            ws.write_values(
                ["Candidate", "Market", "Model", "Limit import/export [kWh/slot]"], xlsx.BOLD_STYLE
            )
            for name in result.candidates:
                for uuid, market in zip(result.market_uuids, result.market_names, strict=True):
                    model = result.models[name].get(uuid)
                    text = "scenario's fee" if model is None else describe(_parse(model))
                    imp, exp = result.limits_kwh[uuid]
                    ws.write_values([name, market, text, f"{imp:.2f} / {exp:.2f}"])
            ws.row += 1
            ws.write_text_lines(
                [f"{result.scenario_name}, {result.days} day(s) from {result.slot_labels[0]}"]
            )

        for name in result.candidates:
            with wb.sheet(run_columns, freeze_cols=2) as ws:
                run = result.runs[name]
                series = [run.series[key] for key, _, _ in SHEET_COLUMNS]
                serials = [xlsx.label_serial(label) for label in run.slot_labels]
                for n, serial in enumerate(serials):
                    for j, market in enumerate(run.market_names):
                        ws.write_values([serial, market, *(float(s[n, j]) for s in series)])
    return out.getvalue()
