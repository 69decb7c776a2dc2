"""``app.whatif.run_whatif``: the same KPIs as the backtest, bad parameters refused first, cancel."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import psutil
import pytest
from whatif_scenario import SCENARIO

import app.whatif.runs as whatif
from app.config import ROOT
from app.exchange.grid import build_grid
from app.operator.backtest import ZERO, backtest
from app.tariffs import peak_tiers
from app.whatif.runs import BASELINE, KPI_ROWS, Cancelled, Candidate, WhatIfError, best_of, run_whatif

GRID = build_grid(SCENARIO)
MANAGED = [m for m in GRID.markets if m.level in (0, 1)]
TIERS = peak_tiers.preset_challenge_2020().model_dump()
CONTROLLER = {
    "model": "controller",
    "import_limit_kwh": 1.0,
    "export_limit_kwh": 1.0,
    "kp_ct_per_kwh": 2.0,
    "ki_ct_per_kwh": 5.0,
    "base_fee_ct_per_kwh": 1.0,
    "max_fee_ct_per_kwh": 40.0,
    "max_step_ct_per_kwh": 6.0,
}
CANDIDATES = [
    Candidate.zero("zero"),
    Candidate("constant 4", {0: {"model": "constant", "fee_ct_per_kwh": 4.0}, 1: None}),
    Candidate("tiers", {0: TIERS, 1: TIERS}),
    Candidate("controller", {0: CONTROLLER, 1: CONTROLLER}, auto_limits=True),
]


@pytest.fixture(scope="module")
def result():
    return run_whatif(SCENARIO, CANDIDATES, days=1)


def _same(row_value: float | None, kpi: float) -> bool:
    if row_value is None:
        return not math.isfinite(kpi)
    return row_value == pytest.approx(kpi, rel=1e-12, abs=1e-12)


def test_wif001_kpi_table_equals_the_backtest_for_the_same_inputs(result):
    base = backtest(SCENARIO, ZERO, days=1)
    limits = {m.uuid: (0.7 * base.peaks(m.uuid)[0], 0.7 * base.peaks(m.uuid)[1]) for m in MANAGED}
    assert result.limits_kwh == limits
    controller = {}
    for m in MANAGED:
        controller[m.uuid] = whatif._parse(
            {**CONTROLLER, "import_limit_kwh": limits[m.uuid][0], "export_limit_kwh": limits[m.uuid][1]}
        )
    expected = {
        "zero": backtest(SCENARIO, ZERO, days=1, baseline=base, limits_kwh=limits),
        "constant 4": backtest(
            SCENARIO,
            {MANAGED[0].uuid: whatif._parse({"model": "constant", "fee_ct_per_kwh": 4.0})},
            days=1,
            baseline=base,
            limits_kwh=limits,
        ),
        "tiers": backtest(
            SCENARIO,
            {m.uuid: whatif._parse(TIERS) for m in MANAGED},
            days=1,
            baseline=base,
            limits_kwh=limits,
        ),
        "controller": backtest(SCENARIO, controller, days=1, baseline=base, limits_kwh=limits),
    }
    assert len(result.rows) == len(MANAGED) * len(KPI_ROWS)
    for row in result.rows:
        assert row["unit"]
        assert _same(row["baseline"], expected["zero"].kpis[row["market_uuid"]][row["kpi"]]), row
        for name, run in expected.items():
            assert _same(row["values"][name], run.kpis[row["market_uuid"]][row["kpi"]]), (name, row)
    # and the per-slot series are the backtest's
    for name, run in expected.items():
        for key in ("import_kwh", "fee_ct_per_kwh"):
            assert (result.runs[name].series[key] == run.series[key]).all(), (name, key)


def test_wif002_parallel_and_sequential_runs_agree(result):
    alone = run_whatif(SCENARIO, CANDIDATES, days=1, workers=1)
    assert alone.workers == 1
    assert [r["values"] for r in alone.rows] == [r["values"] for r in result.rows]


def test_wif003_best_per_row_is_min_or_max_by_kpi(result):
    for row in result.rows:
        known = {n: v for n, v in row["values"].items() if v is not None}
        if not row["best"]:
            continue
        pick = min(known.values()) if row["better"] == "lower" else max(known.values())
        assert all(known[n] == pytest.approx(pick) for n in row["best"]), row
    assert best_of({"a": 1.0, "b": 2.0, "c": None}, "min") == ["a"]
    assert best_of({"a": 1.0, "b": 2.0}, "max") == ["b"]
    assert best_of({"a": 1.0, "b": 1.0}, "min") == []  # all tie: nothing to choose
    assert best_of({"a": None, "b": None}, "min") == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"days": 0}, "days"),
        ({"days": 8}, "days"),
        ({"candidates": CANDIDATES[:1]}, "compare 2 to 6"),
        ({"candidates": CANDIDATES * 2}, "compare 2 to 6"),
        ({"candidates": [Candidate.zero("a"), Candidate.zero("a")]}, "names must differ"),
        ({"candidates": [Candidate.zero(""), Candidate.zero("b")]}, "needs a name"),
        (
            {
                "candidates": [
                    Candidate.zero("a"),
                    Candidate("b", {1: {"model": "constant", "fee_ct_per_kwh": -1}}),
                ]
            },
            "candidate 2 (b), communities: fee_ct_per_kwh",
        ),
        ({"candidates": [Candidate.zero("a"), Candidate("b", {1: {"model": "nope"}})]}, "model"),
        ({"candidates": [Candidate.zero("a"), Candidate("b", {5: TIERS})]}, "level 5"),
        ({"markets": ["not-a-market"]}, "not among"),
        ({"markets": []}, "at least one market"),
        ({"limit_share": 0}, "limit share"),
        ({"limits_kwh": {MANAGED[0].uuid: (-1.0, 2.0)}}, "limits of Grid"),
        (
            {"candidates": [Candidate.zero("a"), Candidate.live_copy("b", {"elsewhere": None})]},
            "live settings",
        ),
    ],
)
def test_wif004_bad_parameters_are_refused_before_anything_runs(monkeypatch, kwargs, message):
    def must_not_run(*_a, **_k):
        raise AssertionError("a backtest ran")

    monkeypatch.setattr(whatif, "backtest", must_not_run)
    args = {"candidates": CANDIDATES[:2], "days": 1} | kwargs
    with pytest.raises(WhatIfError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_whatif(SCENARIO, **args)


@pytest.mark.parametrize("workers", [1, 2])
def test_wif005_progress_per_run_and_cancel(workers):
    seen: list[dict] = []
    result = run_whatif(SCENARIO, CANDIDATES[1:3], days=1, progress=seen.append, workers=workers)
    assert seen[-1] == {BASELINE: 1.0, "constant 4": 1.0, "tiers": 1.0}
    # processes only where forking is safe: not with other threads (the browser tests leave some)
    assert result.workers == (workers if threading.active_count() == 1 else 1)
    calls = []

    def stop_after_the_baseline() -> bool:  # asked once per slot of the baseline, then per poll
        calls.append(1)
        return len(calls) > SCENARIO.slots_per_day

    with pytest.raises(Cancelled):
        run_whatif(SCENARIO, CANDIDATES[1:3], days=1, should_stop=stop_after_the_baseline, workers=workers)


def test_wif006_stated_limits_count_and_a_live_copy_runs_per_market():
    grid, community = MANAGED[0].uuid, MANAGED[1].uuid
    live = Candidate.live_copy("live", {grid: {"model": "constant", "fee_ct_per_kwh": 3.0}, community: None})
    result = run_whatif(
        SCENARIO, [Candidate.zero("zero"), live], days=1, limits_kwh={grid: (0.5, 0.5)}, workers=1
    )
    assert result.limits_kwh[grid] == (0.5, 0.5)
    assert result.kinds == ["zero", "live"]
    fees = result.series("live", "fee_ct_per_kwh", grid)
    assert (fees[2:] == 3.0).all()
    assert result.models["live"][grid] == {"model": "constant", "fee_ct_per_kwh": 3.0}
    assert result.models["live"][community] is None
    over = next(r for r in result.rows if r["market_uuid"] == grid and r["kpi"] == "slots_over_limit")
    assert over["baseline"] > 0


def test_wif007_processes_only_where_forking_is_safe(monkeypatch):
    monkeypatch.setattr(whatif.threading, "active_count", lambda: 1)
    assert whatif._pool_size(None, 3) == min(3, whatif.os.cpu_count() or 1)
    assert whatif._pool_size(4, 2) == 2  # never more than runs
    assert whatif._pool_size(1, 3) == 1
    assert whatif._pool_size(None, 0) == 1
    monkeypatch.setattr(whatif.threading, "active_count", lambda: 3)
    assert whatif._pool_size(4, 3) == 1  # a threaded process (a web server): in this process
    monkeypatch.setattr(whatif.threading, "active_count", lambda: 1)
    monkeypatch.setattr(whatif.multiprocessing, "current_process", lambda: SimpleNamespace(daemon=True))
    assert whatif._pool_size(4, 3) == 1  # a daemon may not have children (app.whatif.queue lifts it)


FORKED = """
import os, signal, sys, time
from app.whatif.runs import _die_with

child = os.fork()
if child == 0:
    _die_with(os.getppid())
    time.sleep(60)
    os._exit(0)
print(child, flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_wif008_a_candidate_worker_dies_with_the_process_that_forked_it():
    """A candidate's worker process does not run on alone when its parent is killed (kill -9 of a
    Celery worker's process at its time limit, the OOM killer): ``_die_with`` in ``_init_worker``."""
    parent = subprocess.Popen([sys.executable, "-c", FORKED], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    with parent:
        child = psutil.Process(int(parent.stdout.readline()))
        try:
            assert child.is_running() and child.status() != psutil.STATUS_ZOMBIE
            parent.kill()
            parent.wait(timeout=10)
            deadline = time.monotonic() + 10
            while child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                assert time.monotonic() < deadline, "the worker runs on without its parent"
                time.sleep(0.05)
        finally:
            parent.kill()
            if child.is_running():
                child.kill()
