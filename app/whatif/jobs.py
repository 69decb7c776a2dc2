"""Where a What-if run's job runs: Dash background callbacks on a manager that is Celery over
Redis when ``REDIS_URL`` is set (:mod:`app.whatif.queue`; the Procfile's ``worker:`` runs the jobs,
on any machine), else a ``DiskcacheManager`` under the instance dir whose jobs start from a fork
server (processes of the web server's machine).

A job gets what it needs of the app (the instance dir, Redis, the live scenario) from its *job
context*, set by the manager in the job's process (:func:`app.whatif.queue.current_job`): jobs are
module-level functions unpickled by name in another process, with no Flask app around them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import diskcache
import multiprocess
from dash import DiskcacheManager

from app.config import Settings
from app.exchange.scenario import Scenario, load_scenario
from app.whatif.form import SCENARIOS, candidates_from_spec, generated_scenario
from app.whatif.queue import run_in_job_context
from app.whatif.results import RUN_ID, ResultStore
from app.whatif.runs import WhatIfError, WhatIfResult, run_whatif, validate_run
from app.whatif.tune import tune_candidates


def background_manager(
    settings: Settings, scenario: Scenario | None, preload: Sequence[str] = ()
) -> DiskcacheManager:
    """The console's background callback manager (see the module).

    ``scenario``: the embedded exchange's (the live scenario of a run; None when the console drives
    a remote exchange: the scenario file then). ``preload``: the modules whose job functions the
    fork server imports once, so a job starts in milliseconds.
    """
    context = {
        "instance_dir": str(settings.instance_dir),
        "redis_url": settings.redis_url,
        "scenario_file": str(settings.scenario),
        "scenario": scenario,
    }
    if settings.redis_url:
        from app.whatif.queue import celery_manager, make_celery  # Celery only where Redis is

        return celery_manager(make_celery(settings.redis_url), context)
    folder = settings.instance_dir / "whatif" / "jobs"
    folder.mkdir(parents=True, exist_ok=True)
    return ForkServerManager(diskcache.Cache(str(folder)), context, preload)


class ForkServerManager(DiskcacheManager):
    """``DiskcacheManager`` whose job processes are forked from a fork server, not from the
    web server.

    Dash's manager forks the web process. That process has threads using SQLite (request
    threads on the jobs' diskcache, and with the embedded exchange on SQLite the runner and
    the agent), and a fork while one of them holds one of SQLite's process-wide locks leaves
    the job waiting for it forever on its first diskcache write (seen in the browser tests).
    The fork server is a fresh single-threaded interpreter (``multiprocess``' "forkserver",
    with the page's module preloaded), so a job starts in a few milliseconds from a clean
    process; the job, its inputs and the job context are pickled to it. Cancel kills the job
    and its workers by pid, as Dash's manager does.
    """

    def __init__(self, cache: diskcache.Cache, job_context: dict, preload: Sequence[str] = ()):
        super().__init__(cache)
        self.job_context = job_context
        self.preload = list(preload)

    def call_job_fn(self, key: str, job_fn: Callable, args: object, context: dict) -> int:
        forkserver = multiprocess.get_context("forkserver")
        forkserver.set_forkserver_preload(self.preload)
        process = forkserver.Process(
            target=run_in_job_context,
            args=(self.job_context, job_fn, key, self._make_progress_key(key), args, context),
        )
        process.start()
        return process.pid


def job_scenario(kind: str, job: Mapping) -> Scenario:
    """The scenario of a run in a job: the generated grid, or the live one of the job context."""
    if kind == "generated":
        return generated_scenario()
    if kind != "live":
        raise WhatIfError(f"scenario: {kind!r} is not one of {', '.join(SCENARIOS)}")
    return job["scenario"] or load_scenario(job["scenario_file"])


def execute(
    spec: Mapping,
    job: Mapping,
    progress: Callable[[dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> WhatIfResult:
    """Run a spec (checked again: it came back from the browser) and store its result.

    ``job``: the manager's job context (``background_manager``), or ``job_context(server)``.
    """
    scenario = job_scenario(spec["scenario"], job)
    try:
        days = int(spec["days"])
        share = float(spec["limit_share"])
        candidates = candidates_from_spec(spec)
        markets = list(spec["markets"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise WhatIfError(f"not a what-if run: {exc}") from None
    if not RUN_ID.fullmatch(str(spec.get("run_id", ""))):
        raise WhatIfError("not a what-if run: no run id")
    infos = None
    if any(c.tune_days for c in candidates):  # "tune on the last T days" first (app.whatif.tune)
        validate_run(scenario, candidates, days, markets, None, share)
        names = [c.name for c in candidates]

        def tuning(name: str, share_done: float) -> None:
            if progress is not None:
                progress({n: (share_done if n == name else 0.0) for n in names})

        live_slot = spec.get("live_slot") if spec["scenario"] == "live" else None
        candidates, infos = tune_candidates(
            scenario, candidates, markets, days, share, live_slot, tuning, should_stop
        )
    result = run_whatif(
        scenario, candidates, days, markets, progress=progress, should_stop=should_stop, limit_share=share
    )
    if infos:
        result = dataclasses.replace(result, tuning=infos)
    ResultStore.of(job).save(spec["run_id"], result, dict(spec))
    return result
