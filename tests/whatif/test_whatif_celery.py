"""What-if runs through Celery over Redis (``REDIS_URL``): a real ``redis-server`` and a real
``celery -A app.entry.worker worker`` process (``conftest.celery_worker``).

The tests drive the background callback as Dash's dispatcher does (``dash._callback``): the job
function that the console's manager registered for ``run_job``, ``call_job_fn`` to queue it,
``get_progress``/``result_ready``/``get_result`` to poll and ``terminate_job`` to cancel, so the
job runs in the worker's process with the worker's own app, exactly as a click on "Run" does.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import numpy as np
import psutil
import pytest
from dash import CeleryManager
from dash.background_callback.managers import BaseBackgroundCallbackManager
from whatif_params import param_states
from whatif_scenario import SCENARIO
from whatif_worker import worker_command, worker_env

from app.console.pages import whatif as page
from app.operator.backtest import SERIES
from app.whatif import form
from app.whatif.queue import queue_problem, redis_problem, safe_url
from app.whatif.results import ResultStore
from app.whatif.runs import run_whatif


def _spec(console, days: int = 2, scenario: str = "live") -> dict:
    names = ["zero", "tou", "tiers", "controller"]
    models = ["zero", "tou", "peak_tiers", "controller"]
    params = param_states(2, "peak_tiers") + param_states(3, "controller")
    params += param_states(2, "peak_tiers", 1, thresholds_kwh_per_slot="1, 2, 3, 4, 5, 6")
    rows = form.form_rows(4, names, models, [True] * 4, params, [False, False, True, False])
    with console.as_user("operator"):
        return page.build_spec(scenario, days, None, 70, rows)


def _run_job_key() -> str:
    """The key under which the console's managers registered ``run_job`` (Dash's task name)."""
    return next(key for key, fn, _ in BaseBackgroundCallbackManager.functions if fn is page.run_job)


def _queue(manager, spec: dict) -> tuple[str, str]:
    """Queue ``run_job(spec)`` as Dash's dispatcher does: (cache key, job id)."""
    cache_key = manager.build_cache_key(page.run_job, [spec], [], None)
    job = manager.call_job_fn(cache_key, manager.func_registry[_run_job_key()], [spec], {})
    return cache_key, job


def _wait_result(manager, cache_key: str, job: str, timeout: float, log) -> tuple[list, list]:
    progress = []
    deadline = time.monotonic() + timeout
    while True:
        shown = manager.get_progress(cache_key)  # read before the result, as Dash does
        if shown:
            progress.append(shown)
        if manager.result_ready(cache_key):
            return manager.get_result(cache_key, job), progress
        if time.monotonic() > deadline:
            pytest.fail(f"no result from the worker in {timeout} s:\n{log()}")
        time.sleep(0.05)


def test_wif040_a_run_through_celery_equals_the_in_process_run(celery_console, celery_worker):
    server = celery_console.server
    manager = server.extensions["dash_app"]._background_manager
    assert isinstance(manager, CeleryManager)
    with server.app_context():
        assert page.queue_problem_now() is None  # Redis answers, and the worker
    spec = _spec(celery_console)
    cache_key, job = _queue(manager, spec)
    output, progress = _wait_result(manager, cache_key, job, 60, celery_worker.log_tail)

    section, message, colour = output
    assert colour == "green" and message.startswith("Done in "), message
    assert progress and "whatif-bar" in json.dumps(progress)  # bars came through Redis
    assert page.ids.WHATIF_GRID in json.dumps(section)
    # the worker stored the result in Redis, where the web process reads it (not on its disk)
    result, stored = ResultStore.of(celery_console.settings).load(spec["run_id"])
    assert stored == spec
    assert not (celery_console.settings.instance_dir / "whatif" / "results").exists()
    # the candidates ran in processes of the worker's job, as without Celery
    assert result.workers == min(os.cpu_count() or 1, 3)

    # the same inputs in this process, one candidate after the other
    expected = run_whatif(
        SCENARIO,
        form.candidates_from_spec(spec),
        spec["days"],
        spec["markets"],
        limit_share=spec["limit_share"],
        workers=1,
    )
    assert result.rows == expected.rows
    assert result.limits_kwh == expected.limits_kwh and result.models == expected.models
    for name in expected.candidates:
        for series in SERIES:
            assert np.array_equal(result.runs[name].series[series], expected.runs[name].series[series], True)
    # the per-level parameters reached the worker: the communities' tiers differ from the grid's
    grid, community = result.market_uuids[0], result.market_uuids[1]
    assert result.models["tiers"][grid]["thresholds_kwh_per_slot"] == [10, 15, 20, 25, 30, 50]
    assert result.models["tiers"][community]["thresholds_kwh_per_slot"] == [1, 2, 3, 4, 5, 6]


def _busy_pool(worker_pid: int) -> list[psutil.Process]:
    """The processes below the worker's pool processes: a what-if's candidate workers."""
    pool = psutil.Process(worker_pid).children()
    return [p for c in pool for p in c.children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]


def test_wif041_cancel_stops_the_task_and_its_processes(celery_console, celery_worker):
    manager = celery_console.server.extensions["dash_app"]._background_manager
    spec = _spec(celery_console, days=7, scenario="generated")  # the 1,000-house grid: minutes
    cache_key, job = _queue(manager, spec)
    deadline = time.monotonic() + 60
    while not _busy_pool(celery_worker.proc.pid):  # the candidates run in processes of their own
        assert manager.job_running(job), celery_worker.log_tail()
        assert time.monotonic() < deadline, f"no candidate processes:\n{celery_worker.log_tail()}"
        time.sleep(0.1)
    manager.terminate_job(job)  # Dash's cancel
    deadline = time.monotonic() + 20
    while manager.job_running(job) or _busy_pool(celery_worker.proc.pid):
        assert time.monotonic() < deadline, f"the run goes on:\n{celery_worker.log_tail()}"
        time.sleep(0.1)
    # the job stopped in the middle (SIGTERM raised Cancelled in it) and stored no result
    (section, message, colour), _ = _wait_result(manager, cache_key, job, 10, celery_worker.log_tail)
    assert (section, colour) == (None, "red") and message.startswith("Not run: cancelled"), message
    with pytest.raises(ValueError, match="no longer stored"):
        ResultStore.of(celery_console.settings).load(spec["run_id"])
    # the worker goes on taking runs
    quick = _spec(celery_console, days=1)
    cache_key, job = _queue(manager, quick)
    (_, message, colour), _ = _wait_result(manager, cache_key, job, 60, celery_worker.log_tail)
    assert colour == "green", message


def test_wif042_no_worker_or_no_redis_is_said_before_a_run_is_queued(celery_console, redis_server):
    celery = celery_console.server.extensions["dash_app"]._background_manager.handle
    assert "no what-if worker is running" in queue_problem(celery, timeout=0.3)
    # the queue's connections do not outlive their use: a process forked now (the candidates'
    # workers of a what-if in this process) does not inherit one to close (it used to hang)
    spec = _spec(celery_console, days=1)
    forked = run_whatif(SCENARIO, form.candidates_from_spec(spec), 1, workers=2)
    assert forked.workers == (2 if (os.cpu_count() or 1) > 1 else 1)
    down = "redis://:secret@127.0.0.1:9/0"  # the discard port: nothing listens
    problem = redis_problem(down, timeout=1.0)
    assert problem.startswith("Redis at redis://:***@127.0.0.1:9/0 (REDIS_URL) does not answer")
    assert "secret" not in problem and safe_url(down) in problem


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "REDIS_URL is not set"),
        ("http://127.0.0.1:9/0", "REDIS_URL 'http://127.0.0.1:9/0' is not a redis:// or rediss:// URL"),
    ],
)
def test_wif043_a_worker_refuses_to_start_without_a_usable_redis(celery_console, url, message):
    env = {**worker_env(celery_console.settings), "REDIS_URL": url}
    done = subprocess.run(worker_command(), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert f"gridfee worker: refusing to start: {message}" in done.stderr
