"""What-if (``/what-if``): the same days under 2-6 fee settings, side by side, before going live.

The operator picks the days (1-7), the scenario (the live one, or a generated 1,000-house grid),
the markets and the candidates: zero fee, a copy of the live settings (offered on the live
scenario only), a constant fee, a time-of-use table (the 2020 preset or an uploaded CSV/xlsx,
read and checked by the live fee control's loaders, with a column per level), peak tiers or the
congestion controller. A model's fields serve the grid and the communities alike unless "Other
parameters for the communities" is ticked; then each level has its own (e.g. the communities'
peak-tier thresholds).

"Run" is two callbacks. The first, an ordinary one, reads the form in the request (the live
settings come from the store), checks every parameter (an upload that was refused included) and
refuses a bad one with a message; with Celery it also checks that Redis and a worker answer.
Only a run that passed is written to the ``whatif-spec`` store. That starts the second, a Dash
background callback (``run_job``; the manager is ``background_manager``: Celery over Redis when
``REDIS_URL`` is set, see ``app.whatif.queue``, else a ``DiskcacheManager`` under
``settings.instance_dir`` whose jobs start from a fork server): it runs in a process of its own
(``app.whatif.run_whatif``, which uses the cores for the candidates), reports a progress bar
per run and stops on "Cancel" (Dash kills the process and its workers, or revokes the Celery
task). The browser and the live console stay responsive meanwhile.

The result is kept for a day (``ResultStore``: in Redis with Celery, else a diskcache next to
the jobs', keyed by a random run id that the page holds): the charts of another market, the
Excel export (a background callback too) and "Apply to live" read it from there, so nothing
large travels back and forth. "Apply to live" stores the candidate's model for the live markets
and queues its first fee for the next slot, audited with the source ``what-if:<candidate>``; a
viewer is refused on the server (``require_operator``).
"""

from __future__ import annotations

import math
import re
import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import dash_mantine_components as dmc
from dash import ALL, MATCH, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask import Flask, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from app import slots
from app.config import Settings
from app.console import ids
from app.console.auth import NotAllowed, current_console_user, require_operator
from app.console.components.fee_status import queued_text
from app.console.components.whatif_view import (
    colour,
    duration_figure,
    fee_figure,
    flows_figure,
    kpi_grid,
    progress_bars,
)
from app.console.pages.common import console, is_viewer
from app.exchange.scenario import Scenario
from app.tariffs.forms import FORMS, Field, parse_form
from app.tariffs.tou import MAX_UPLOAD_BYTES
from app.whatif.queue import JOB_CONTEXT
from app.whatif.quota import RunLedger, RunRefused
from app.whatif.runs import (
    BASELINE,
    LEVELS,
    LIVE,
    MAX_CANDIDATES,
    MAX_DAYS,
    MIN_CANDIDATES,
    Cancelled,
    Candidate,
    WhatIfError,
    WhatIfResult,
    run_whatif,
    validate_run,
    whatif_workbook,
)

SCENARIOS = {"live": "the live scenario", "generated": "a generated grid, 10 communities x 100 houses"}
GENERATED = (10, 100)  # communities, houses per community
MODELS = [
    ("zero", "Zero fee (baseline)"),
    (LIVE, "Copy of the live settings"),
    ("constant", "Constant fee"),
    ("tou", "Time of use (2020 preset or a table)"),
    ("peak_tiers", "Peak tiers (2020 preset)"),
    ("controller", "Congestion controller"),
    ("predictive", "Predictive congestion controller"),
]
MODEL_NAMES = dict(MODELS)
LEVEL_MODELS = ("constant", "peak_tiers", "controller", "predictive")  # models with fields, per level
TOU_COLUMN = "tou:column"  # the field naming a level's column of the table (no "." in a callback id)
PRESET_COLUMNS = ("grid", "community")  # of tou.preset_challenge_2020()
PRESET_LEVEL_COLUMNS = {0: "grid", 1: "community"}
DEFAULTS = [
    ("zero fee", "zero"),
    ("time of use", "tou"),
    ("peak tiers", "peak_tiers"),
    ("controller", "controller"),
    ("constant 3 ct", "constant"),
    ("live settings", LIVE),
]
DEFAULT_COUNT, DEFAULT_DAYS, DEFAULT_LIMIT_PCT = 4, 2, 70
RESULT_TTL_S = 24 * 3600
MAX_NAME = 40
_RUN_ID = re.compile(r"[0-9a-f]{32}")


# -- where runs and results live ----------------------------------------------------------------


def background_manager(settings: Settings, server: Flask | None = None):  # noqa: ANN201
    """The console's background callback manager.

    With ``REDIS_URL``: Dash's ``CeleryManager`` over Redis (``app.whatif.queue``), whose jobs
    the Procfile's ``worker:`` runs, on any machine. Without: a ``DiskcacheManager`` under the
    instance dir whose jobs start from a fork server (see ``ForkServerManager``): processes of
    the web server's machine.
    """
    service = getattr((server.extensions if server is not None else {}).get("gridfee"), "service", None)
    context = {
        "instance_dir": str(settings.instance_dir),
        "redis_url": settings.redis_url,
        "scenario_file": str(settings.scenario),
        # the embedded exchange's scenario: "the live scenario" of a run
        "scenario": None if service is None else service.store.scenario,
    }
    if settings.redis_url:
        from app.whatif.queue import celery_manager, make_celery

        return celery_manager(make_celery(settings.redis_url), context)
    import diskcache

    folder = settings.instance_dir / "whatif" / "jobs"
    folder.mkdir(parents=True, exist_ok=True)
    return _fork_server_manager()(diskcache.Cache(str(folder)), context)


def _fork_server_manager():  # noqa: ANN202
    from dash import DiskcacheManager

    class ForkServerManager(DiskcacheManager):
        """``DiskcacheManager`` whose job processes are forked from a fork server, not from the
        web server.

        Dash's manager forks the web process. That process has threads using SQLite (request
        threads on the jobs' diskcache, and with the embedded exchange on SQLite the runner and
        the agent), and a fork while one of them holds one of SQLite's process-wide locks leaves
        the job waiting for it forever on its first diskcache write (seen in the browser tests).
        The fork server is a fresh single-threaded interpreter (``multiprocess``' "forkserver",
        with this module preloaded), so a job starts in a few milliseconds from a clean process;
        the job, its inputs and ``job_context`` (what the job needs of the app: the instance
        dir, the live scenario) are pickled to it. Cancel kills the job and its workers by pid,
        as Dash's manager does.
        """

        def __init__(self, cache, job_context: dict):  # noqa: ANN001
            super().__init__(cache)
            self.job_context = job_context

        def call_job_fn(self, key, job_fn, args, context):  # noqa: ANN001, ANN201
            import multiprocess

            forkserver = multiprocess.get_context("forkserver")
            forkserver.set_forkserver_preload([__name__])
            process = forkserver.Process(
                target=job_fn,
                args=(key, self._make_progress_key(key), args, {**context, JOB_CONTEXT: self.job_context}),
            )
            process.start()
            return process.pid

    return ForkServerManager


def _job_context() -> dict:
    """What the manager gave the running job (``background_manager``'s ``context``)."""
    from dash._callback_context import context_value

    return context_value.get()[JOB_CONTEXT]


class ResultStore:
    """Where the runs' results are kept for a day (``RESULT_TTL_S``), keyed by run id.

    With ``redis_url`` in Redis (pickled, under ``gridfee:whatif:<run id>``), which the web
    processes and the Celery worker share; else a diskcache under ``instance_dir``, which the
    web server and its job processes share (one machine).
    """

    def __init__(self, instance_dir: Path | str, redis_url: str | None = None):
        self.instance_dir = Path(instance_dir)
        self.redis_url = redis_url

    @classmethod
    def of(cls, where: Settings | Mapping) -> ResultStore:
        """The store of the app's ``Settings`` or of a job context."""
        if isinstance(where, Settings):
            return cls(where.instance_dir, where.redis_url)
        return cls(where["instance_dir"], where.get("redis_url"))

    def _redis(self):  # noqa: ANN202
        import redis

        return redis.Redis.from_url(self.redis_url, socket_connect_timeout=3.0, socket_timeout=30.0)

    def _diskcache(self):  # noqa: ANN202
        import diskcache

        return diskcache.Cache(str(self.instance_dir / "whatif" / "results"))

    def save(self, run_id: str, result: WhatIfResult, spec: dict) -> None:
        stored = {"result": result, "spec": spec}
        if self.redis_url:
            import pickle

            client = self._redis()
            try:
                client.set(f"gridfee:whatif:{run_id}", pickle.dumps(stored, protocol=5), ex=RESULT_TTL_S)
            finally:
                client.close()
            return
        with self._diskcache() as cache:
            cache.set(run_id, stored, expire=RESULT_TTL_S)

    def load(self, run_id: object) -> tuple[WhatIfResult, dict]:
        """The stored run; ``ValueError`` when the id is not one or the run is gone (a day later)."""
        if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
            raise ValueError("no what-if run to use: run one first")
        if self.redis_url:
            import pickle

            import redis

            client = self._redis()
            try:
                raw = client.get(f"gridfee:whatif:{run_id}")
            except redis.RedisError as exc:
                raise ValueError(f"the what-if results in Redis cannot be read: {exc}") from None
            finally:
                client.close()
            # written by this app's own processes into its own Redis, as Celery's results are
            stored = None if raw is None else pickle.loads(raw)  # noqa: S301
        else:
            with self._diskcache() as cache:
                stored = cache.get(run_id)
        if stored is None:
            raise ValueError("this what-if run is no longer stored: run it again")
        return stored["result"], stored["spec"]


def _settings(server: Flask | None = None) -> Settings:
    return (server or current_app).extensions["gridfee_settings"]


def load_run_scenario(kind: str, server: Flask | None = None, job: Mapping | None = None) -> Scenario:
    """The scenario a run uses: the live one or the generated grid.

    The live one is the embedded exchange's (so the markets are the live ones), else, when the
    console drives a remote exchange, ``settings.scenario``. In a job, ``job`` (the manager's
    job context) says which.
    """
    if kind == "generated":
        from app.exchange.generate import generate_scenario

        return generate_scenario(*GENERATED)
    if kind != "live":
        raise WhatIfError(f"scenario: {kind!r} is not one of {', '.join(SCENARIOS)}")
    from app.exchange.scenario import load_scenario

    if job is not None:
        return job["scenario"] or load_scenario(job["scenario_file"])
    server = server or current_app
    reason = live_disabled(server)
    if reason:
        raise WhatIfError(reason)
    service = getattr(server.extensions.get("gridfee"), "service", None)
    if service is not None:
        return service.store.scenario
    return load_scenario(_settings(server).scenario)


def live_disabled(server: Flask | None = None) -> str | None:
    """Why the live scenario cannot run here, or None: on a Grid Singularity exchange the live
    grid is gsy-e's, whose assets and profiles our simulator cannot rebuild from its tree, so a
    What-if of it would silently run something else."""
    settings = _settings(server)
    if settings.gsy_dialect is None:
        return None
    return (
        f"The live grid is a Grid Singularity exchange's ({settings.grid_api_url}): its assets and "
        "profiles are not known here, so What-if cannot replay it. It runs on our simulator only, "
        "with the generated grid below."
    )


def market_options(kind: str, server: Flask | None = None) -> list[dict]:
    """The grid and communities of a run's scenario, for the markets select."""
    from app.exchange.grid import build_grid

    grid = build_grid(load_run_scenario(kind, server))
    return [
        {"value": m.uuid, "label": f"{m.name} ({LEVELS[m.level]})" if m.level == 0 else m.name}
        for m in grid.markets
        if m.level in LEVELS
    ]


# -- the form -----------------------------------------------------------------------------------


def live_models() -> dict[str, dict | None]:
    """The live settings as models per managed market: a manual fee is a constant, none is None."""
    data = console()
    settings = data.ops.settings()
    out: dict[str, dict | None] = {}
    for market in data.markets():
        setting = settings.get(market["uuid"])
        if setting is None:
            out[market["uuid"]] = None
        elif setting.mode == "model" and setting.model:
            out[market["uuid"]] = setting.model
        elif setting.manual_fee_ct_per_kwh is not None:
            out[market["uuid"]] = {"model": "constant", "fee_ct_per_kwh": setting.manual_fee_ct_per_kwh}
        else:
            out[market["uuid"]] = None
    return out


def _by_card(states: Sequence[Mapping] | None) -> dict[int, object]:
    """``{card: value}`` of per-card states (``ctx.states_list``: ``{"id": {"cand": k}, "value"}``)."""
    return {s["id"]["cand"]: s.get("value") for s in states or ()}


def form_rows(
    count: object,
    names: Sequence[object],
    models: Sequence[object],
    autos: Sequence[object],
    params: Sequence[Mapping],
    splits: Sequence[object] | None = None,
    tables: Sequence[object] | None = None,
) -> list[dict]:
    """The first ``count`` candidates of the form: name, model, auto limits, field values per level.

    ``params`` are the states of the ``whatif-param`` fields (``{"id": {..., "cand": k, "field":
    "<model>.<name>", "level": 0 or 1}, "value": ...}``), as ``ctx.states_list`` gives them;
    ``splits``: per card, whether the communities have parameters of their own; ``tables``: per
    card, its uploaded time-of-use table (``read_tou_upload``) or None (the preset).
    """
    try:
        n = int(count)
    except (TypeError, ValueError):
        n = -1
    if not MIN_CANDIDATES <= n <= MAX_CANDIDATES or (isinstance(count, float) and not count.is_integer()):
        raise WhatIfError(f"candidates: {count!r}, compare {MIN_CANDIDATES} to {MAX_CANDIDATES}")
    values: list[dict[int, dict]] = [{level: {} for level in LEVELS} for _ in names]
    for state in params:
        k, level = state["id"]["cand"], state["id"].get("level", 0)
        if 0 <= k < len(values) and level in LEVELS:
            values[k][level][state["id"]["field"]] = state.get("value")
    splits = list(splits or [])
    tables = list(tables or [])
    return [
        {
            "name": names[k],
            "model": models[k],
            "auto_limits": bool(autos[k]),
            "split": bool(splits[k]) if k < len(splits) else False,
            "values": values[k],
            "table": tables[k] if k < len(tables) else None,
        }
        for k in range(min(n, len(names)))
    ]


# -- time-of-use tables -------------------------------------------------------------------------


def read_tou_upload(contents: object, filename: object) -> dict:
    """An uploaded time-of-use table: ``{"filename", "columns": {fee column: 96 fees}}``, or
    ``{"filename", "error"}`` saying what is wrong with it (no exception: the page shows it).

    ``contents`` is what ``dcc.Upload`` gives (``data:<type>;base64,<bytes>``). The file is read
    by the loaders of the live fee control (``app.tariffs.tou``): ``.xlsx``/``.xlsm`` as Excel,
    anything else as CSV; 96 quarter-hour rows, every fee a number >= 0.
    """
    from app.tariffs import tou

    name = str(filename or "the upload")
    try:
        columns = tou.decode_upload(contents, name)
    except ValueError as exc:  # TouTableError is one
        return {"filename": name, "error": str(exc)}
    return {"filename": name, "columns": columns}


def tou_columns(upload: Mapping | None) -> tuple[list[str], dict[int, str]]:
    """The fee columns a candidate's table offers and the one each level starts with.

    No upload: the 2020 preset (``grid`` for the grid, ``community`` for the communities). An
    upload: its columns; the grid takes one whose name says grid, the communities one that says
    community, else the first column.
    """
    if not upload or upload.get("error") or not upload.get("columns"):
        return list(PRESET_COLUMNS), dict(PRESET_LEVEL_COLUMNS)
    names = list(upload["columns"])

    def pick(word: str) -> str:
        return next((n for n in names if word in n.lower()), names[0])

    return names, {0: pick("grid"), 1: pick("commun")}


def tou_status(upload: Mapping | None) -> tuple[str, str]:
    """(text, colour) saying which table a candidate uses."""
    if not upload:
        return "table: the 2020 challenge preset (grid and community columns)", "dimmed"
    if upload.get("error"):
        return f"{upload['filename']} not used: {upload['error']}", "red"
    parts = [f"{n} {min(v):g}-{max(v):g}" for n, v in upload["columns"].items()]
    return f"{upload['filename']}: 96 rows, {'; '.join(parts)} ct/kWh", "green"


def tou_levels(upload: Mapping | None, columns: Mapping[int, object] | None = None) -> dict[int, dict]:
    """The time-of-use model of each level: the preset, or a column of the uploaded table.

    ``columns``: ``{level: fee column}`` (missing or empty: ``tou_columns``' choice).
    ``ValueError`` for an upload that was refused or a column the table has not.
    """
    from app.tariffs import tou

    if upload and upload.get("error"):
        raise ValueError(
            f"the uploaded table {upload.get('filename')!r} is not usable ({upload['error']}); "
            "upload a corrected one or use the preset"
        )
    if upload:
        table, source = upload["columns"], repr(upload.get("filename"))
    else:
        table, source = tou.preset_challenge_2020(), "the 2020 preset"
    names, defaults = tou_columns(upload)
    out = {}
    for level, title in LEVELS.items():
        column = (columns or {}).get(level) or defaults[level]
        if column not in table:
            raise ValueError(f"{title}: {source} has no column {column!r} (it has {', '.join(names)})")
        out[level] = {"model": "tou", "table": {"all": [float(v) for v in table[column]]}}
    return out


def parse_candidates(rows: Sequence[Mapping], live: Mapping[str, dict | None] | None) -> list[Candidate]:
    """``Candidate`` per form row; ``WhatIfError`` naming the candidate and field of each problem.

    ``live``: the live settings (``live_models()``), for a copy of them (None: not offered, the
    run is not on the live scenario). A row's ``values`` are per level; the communities get their
    own only when the row is ``split``. The models themselves are checked by
    ``app.whatif.validate_run``.
    """
    problems, out = [], []
    for k, row in enumerate(rows):
        name = str(row.get("name") or "").strip()
        label = f"candidate {k + 1} ({name or 'no name'})"
        model = row.get("model")
        values = row.get("values") or {}
        if len(name) > MAX_NAME:
            problems.append(f"{label}: a name of at most {MAX_NAME} characters")
        try:
            if model == "zero":
                out.append(Candidate.zero(name))
            elif model == LIVE:
                if live is None:
                    raise ValueError("a copy of the live settings runs on the live scenario only")
                out.append(Candidate.live_copy(name, live))
            elif model == "tou":
                columns = {level: (values.get(level) or {}).get(TOU_COLUMN) for level in LEVELS}
                out.append(Candidate(name, tou_levels(row.get("table"), columns)))
            elif model in LEVEL_MODELS:
                auto = model == "controller" and bool(row.get("auto_limits"))
                split = bool(row.get("split"))
                forms, failed = {}, False
                for level in LEVELS if split else (0,):
                    level_values = dict(values.get(level) or {})
                    if auto:  # the limits come from the run; the fields need not hold any
                        for key in ("controller.import_limit_kwh", "controller.export_limit_kwh"):
                            if level_values.get(key) in (None, ""):
                                level_values[key] = 1.0
                    try:
                        forms[level] = parse_form(model, level_values)
                    except ValueError as exc:
                        failed = True
                        problems.append(f"{label}, {LEVELS[level]}: {exc}" if split else f"{label}: {exc}")
                if not failed:
                    out.append(Candidate(name, {0: forms[0], 1: forms.get(1, forms[0])}, auto_limits=auto))
            else:
                raise ValueError(f"choose a model ({', '.join(MODEL_NAMES.values())})")
        except ValueError as exc:
            problems.append(f"{label}: {exc}")
    if problems:
        raise WhatIfError("; ".join(problems))
    return out


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise WhatIfError(f"{what}: {value!r} is not a number")
    return float(value)


def build_spec(
    scenario_kind: str,
    days: object,
    markets: Sequence[str] | None,
    limit_pct: object,
    rows: Sequence[Mapping],
) -> dict:
    """The run to start, checked through (``WhatIfError`` with every problem, nothing runs then).

    Needs the request (the live settings, the viewer flag). The spec is JSON: the candidates'
    models per level ("0", "1") or "zero", the live copy's per market uuid.
    """
    scenario = load_run_scenario(scenario_kind)
    day_count = _number(days, "days")
    if not day_count.is_integer():
        raise WhatIfError(f"days: {days!r} is not a whole number of days")
    share = _number(limit_pct, "limit") / 100
    live = live_models() if scenario_kind == "live" else None
    candidates = parse_candidates(rows, live)
    picked = validate_run(
        scenario, candidates, int(day_count), None if markets is None else list(markets), None, share
    )
    return {
        "run_id": uuidlib.uuid4().hex,
        "scenario": scenario_kind,
        "days": int(day_count),
        "markets": picked,
        "limit_share": share,
        "viewer": is_viewer(),
        "candidates": [
            {
                "name": c.name.strip(),
                "models": c.models if c.models == "zero" else {str(k): v for k, v in c.models.items()},
                "live": None if c.live is None else dict(c.live),
                "auto_limits": c.auto_limits,
            }
            for c in candidates
        ],
    }


def candidates_from_spec(spec: Mapping) -> list[Candidate]:
    out = []
    for c in spec["candidates"]:
        models = c["models"] if c["models"] == "zero" else {int(k): v for k, v in c["models"].items()}
        out.append(Candidate(c["name"], models, live=c.get("live"), auto_limits=bool(c.get("auto_limits"))))
    return out


def execute(
    spec: Mapping,
    job: Mapping,
    progress: Callable[[dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> WhatIfResult:
    """Run a spec (checked again: it came back from the browser) and store its result.

    ``job``: the manager's job context (``background_manager``), or ``job_context(server)``.
    """
    scenario = load_run_scenario(spec["scenario"], job=job)
    try:
        days = int(spec["days"])
        share = float(spec["limit_share"])
        candidates = candidates_from_spec(spec)
        markets = list(spec["markets"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise WhatIfError(f"not a what-if run: {exc}") from None
    if not _RUN_ID.fullmatch(str(spec.get("run_id", ""))):
        raise WhatIfError("not a what-if run: no run id")
    result = run_whatif(
        scenario, candidates, days, markets, progress=progress, should_stop=should_stop, limit_share=share
    )
    ResultStore.of(job).save(spec["run_id"], result, dict(spec))
    return result


def queue_problem_now(server: Flask | None = None) -> str | None:
    """Why a run would not start now (Celery: Redis or the worker missing), or None."""
    server = server or current_app
    if not _settings(server).redis_url:
        return None  # the diskcache manager starts the job itself
    from app.whatif.queue import queue_problem

    return queue_problem(server.extensions["dash_app"]._background_manager.handle)


def require_operator_to_run():  # noqa: ANN201
    """The signed-in grid operator; ``NotAllowed`` for a viewer (What-if runs take every core)."""
    try:
        return require_operator()
    except NotAllowed:
        raise NotAllowed("only a grid operator may start What-if runs") from None


def quota_problem_now(username: str) -> str | None:
    """Why ``username`` may not start a run now (their runs, or everybody's, at the limit)."""
    settings = _settings()
    running = list(RunLedger.of(settings).running().values())
    mine = sum(1 for who, _ in running if who == username)
    if mine >= settings.whatif_runs_per_user:
        return (
            f"you have {mine} What-if run(s) going, the most one user may (WHATIF_RUNS_PER_USER = "
            f"{settings.whatif_runs_per_user}); wait for it to finish or cancel it"
        )
    if len(running) >= settings.whatif_runs_at_once:
        return (
            f"{len(running)} What-if runs are going, the most at once (WHATIF_RUNS_AT_ONCE = "
            f"{settings.whatif_runs_at_once}); try again when one has finished"
        )
    return None


def starts_run(body: object) -> str | None:
    """The run id when a Dash request ``body`` starts the run's background job (its first
    request: no ``cacheKey`` yet, the spec store among its inputs), else None."""
    if request.args.get("cacheKey") or not isinstance(body, dict):
        return None
    inputs = body.get("inputs")
    for item in inputs if isinstance(inputs, list) else []:
        if isinstance(item, dict) and item.get("id") == ids.WHATIF_SPEC and item.get("property") == "data":
            spec = item.get("value")
            if not spec:
                return None  # the job does nothing (PreventUpdate)
            run_id = spec.get("run_id") if isinstance(spec, dict) else None
            return run_id if isinstance(run_id, str) else ""
    return None


def install_run_guard(app) -> None:  # noqa: ANN001
    """The server's check in front of a run's job, whatever the browser sent: a viewer's start is
    403, a user or everybody at their limit 429 with the reason (``RunLedger``); a run that may
    start is claimed here and released when its job ends or is cancelled."""
    server = app.server

    @server.before_request
    def _whatif_run_allowed():
        if request.method != "POST" or request.path != "/_dash-update-component":
            return None
        run_id = starts_run(request.get_json(silent=True))
        if run_id is None:
            return None
        try:
            user = require_operator_to_run()
        except NotAllowed as exc:
            return jsonify(error="forbidden", message=str(exc)), 403
        if not _RUN_ID.fullmatch(run_id):
            return jsonify(error="bad_request", message="not a what-if run: no run id"), 400
        settings = _settings()
        try:
            RunLedger.of(settings).claim(
                run_id, user.username, settings.whatif_runs_per_user, settings.whatif_runs_at_once
            )
        except RunRefused as exc:
            response = jsonify(error="too_many_runs", message=str(exc))
            response.headers["Retry-After"] = "30"
            return response, 429
        return None


def job_context(server: Flask | None = None) -> dict:
    """The job context the console's manager gives its jobs (for calling a job's code directly)."""
    manager = (server or current_app).extensions["dash_app"]._background_manager
    return manager.job_context


# -- apply and export ---------------------------------------------------------------------------


def apply_candidate(run_id: object, index: object) -> str:
    """Store candidate ``index``'s models for the live markets and queue its fees; the message.

    When the run was on the live grid each live market of the run gets the model it ran with;
    after a run on another grid (the generated one) each live market of a level the run covered
    gets the candidate's model of that level (not a controller whose limits came from the other
    grid's peaks). Every fee is computed before
    anything is stored. ``NotAllowed`` for a viewer or nobody, ``ValueError`` for what cannot be
    applied.
    """
    from app.console.pages.market import model_fee_for_next_slot
    from app.tariffs.registry import parse_model

    user = require_operator()
    result, spec = ResultStore.of(_settings()).load(run_id)
    if not isinstance(index, int) or not 0 <= index < len(result.candidates):
        raise ValueError("no such candidate in this run")
    name, kind = result.candidates[index], result.kinds[index]
    if kind == LIVE:
        raise ValueError(f"{name} is a copy of the live settings: they are live already")
    cand = spec["candidates"][index]
    data = console()
    targets = []
    live_markets = [m for m in data.markets() if m["level"] in LEVELS]
    same_grid = any(m["uuid"] in result.market_uuids for m in live_markets)
    for market in live_markets:
        if same_grid:  # the model each market ran with (a controller's own limits included)
            if market["uuid"] not in result.market_uuids:
                continue
            model = result.models[name].get(market["uuid"])
        else:  # another grid (the generated one): the candidate's model of the market's level
            if market["level"] not in result.market_levels:
                continue
            if kind == "zero":
                model = {"model": "constant", "fee_ct_per_kwh": 0.0}
            else:
                model = cand["models"].get(str(market["level"]))
                if model is not None and cand.get("auto_limits") and model.get("model") == "controller":
                    raise ValueError(
                        f"{name}'s controller limits come from the peaks of another grid: "
                        "run it on the live scenario to apply it"
                    )
        if model is None:
            continue
        if not user.may_manage(market["uuid"], market["name"]):
            raise NotAllowed(f"{user.username} may not manage {market['name']}")
        targets.append((market, parse_model(model)))
    if not targets:
        raise ValueError(f"{name} sets no model for the live markets of this run")
    planned = []
    for market, model in targets:
        stored = model.model_dump(mode="json", by_alias=True)
        planned.append((market, stored, model_fee_for_next_slot(market["uuid"], stored)))
    clock = data.clock_state()
    running = clock.get("running_slot")
    source = f"what-if:{name}"
    for market, stored, fee in planned:
        data.ops.set_model(market["uuid"], stored, user.username)
        data.ops.queue(market["uuid"], market["name"], fee, source, user.username, running)
    fees = ", ".join(f"{m['name']} {fee:.2f} ct/kWh" for m, _, fee in planned)
    return (
        f"{source}: queued, {queued_text(clock)} ({fees}); the models then set a fee every slot "
        "(their status: Fee commands)"
    )


def export_workbook(run_id: object, store: ResultStore) -> dict:
    """``dcc.Download`` data of the comparison workbook."""
    result, _ = store.load(run_id)
    content = whatif_workbook(result)
    return dcc.send_bytes(content, f"what-if-{result.slot_labels[0][:10]}-{result.days}d.xlsx")


# -- layout -------------------------------------------------------------------------------------


def _param_input(cand: int, model: str, field: Field, level: int = 0) -> object:
    ident = {"type": "whatif-param", "cand": cand, "field": f"{model}.{field.name}", "level": level}
    if field.kind == "number":
        return dmc.NumberInput(
            id=ident, label=field.label, value=field.default, size="xs", decimalScale=3, allowNegative=False
        )
    if field.kind == "select":
        return dmc.Select(
            id=ident,
            label=field.label,
            value=field.default,
            data=list(field.options),
            size="xs",
            allowDeselect=False,
        )
    return dmc.TextInput(id=ident, label=field.label, value=field.default, size="xs")


def level_title(level: int, split: bool) -> str:
    """The heading of a level's fields: the grid's fields serve both levels unless split."""
    if level == 1:
        return "Communities"
    return "Grid" if split else "Grid and communities"


def _level_block(k: int, model: str, level: int) -> html.Div:
    """Candidate ``k``'s fields of ``model`` for one level (the communities' hidden until split)."""
    return html.Div(
        [
            dmc.Text(
                level_title(level, False),
                id={"type": "whatif-level-title", "cand": k, "model": model, "level": level},
                size="xs",
                fw=600,
                mt=4,
            ),
            dmc.SimpleGrid(
                [_param_input(k, model, f, level) for f in FORMS[model]],
                cols=2,
                spacing="xs",
                verticalSpacing="xs",
            ),
        ],
        id={"type": "whatif-level", "cand": k, "model": model, "level": level},
        style=None if level == 0 else {"display": "none"},
    )


def _tou_section(k: int) -> dmc.Stack:
    """The table of a time-of-use candidate: the preset or an upload, and a column per level."""
    names, columns = tou_columns(None)
    text, colour = tou_status(None)
    return dmc.Stack(
        [
            dmc.Group(
                [
                    dcc.Upload(
                        dmc.Button("Upload CSV / xlsx (96 rows)", variant="light", size="xs"),
                        id={"type": "whatif-upload", "cand": k},
                        accept=".csv,.txt,.xlsx,.xlsm",
                        max_size=MAX_UPLOAD_BYTES,
                    ),
                    dmc.Button(
                        "Use the 2020 preset",
                        id={"type": "whatif-preset", "cand": k},
                        variant="subtle",
                        size="xs",
                    ),
                ],
                gap="xs",
            ),
            dmc.Text(text, id={"type": "whatif-upload-status", "cand": k}, c=colour, size="xs"),
            dmc.SimpleGrid(
                [
                    dmc.Select(
                        id={"type": "whatif-param", "cand": k, "field": TOU_COLUMN, "level": level},
                        label=f"Column for the {title}",
                        data=names,
                        value=columns[level],
                        allowDeselect=False,
                        size="xs",
                    )
                    for level, title in LEVELS.items()
                ],
                cols=2,
                spacing="xs",
            ),
            dcc.Store(id={"type": "whatif-tou", "cand": k}),
        ],
        gap=4,
    )


def model_options(scenario_kind: object) -> list[dict]:
    """The models a candidate may take: a copy of the live settings on the live scenario only."""
    return [{"value": v, "label": label} for v, label in MODELS if v != LIVE or scenario_kind == "live"]


def candidate_card(k: int, shown: bool) -> dmc.Paper:
    name, model = DEFAULTS[k]
    sections = []
    for value, _ in MODELS:
        if value in LEVEL_MODELS:
            blocks = [_level_block(k, value, level) for level in LEVELS]
            if value == "controller":
                blocks.insert(
                    0,
                    dmc.Checkbox(
                        id={"type": "whatif-auto", "cand": k},
                        label="Limits: the run's limit of each market (ignores the two limit fields)",
                        checked=True,
                        size="xs",
                    ),
                )
            body = dmc.Stack(blocks, gap=4)
        elif value == "tou":
            body = _tou_section(k)
        else:
            body = dmc.Text(
                {
                    "zero": "Every fee 0 ct/kWh: the run every percentage refers to.",
                    LIVE: "Each market's live setting (a manual fee as a constant); live scenario only.",
                }[value],
                size="xs",
                c="dimmed",
            )
        sections.append(
            html.Div(
                body,
                id={"type": "whatif-section", "cand": k, "model": value},
                style=None if value == model else {"display": "none"},
            )
        )
    return dmc.Paper(
        [
            dmc.Group(
                [
                    html.Span(style={"width": 12, "height": 12, "borderRadius": 6, "background": colour(k)}),
                    dmc.TextInput(
                        id={"type": "whatif-name", "cand": k},
                        value=name,
                        size="xs",
                        style={"flex": 1},
                        **{"aria-label": f"Name of candidate {k + 1}"},
                    ),
                ],
                gap="xs",
                wrap="nowrap",
            ),
            dmc.Select(
                id={"type": "whatif-model", "cand": k},
                value=model,
                data=model_options("live"),
                placeholder="choose a model",
                size="xs",
                allowDeselect=False,
                my="xs",
            ),
            html.Div(
                dmc.Checkbox(
                    id={"type": "whatif-split", "cand": k},
                    label="Other parameters for the communities",
                    checked=False,
                    size="xs",
                    mb=4,
                ),
                id={"type": "whatif-split-box", "cand": k},
                style=None if model in LEVEL_MODELS else {"display": "none"},
            ),
            *sections,
        ],
        id={"type": "whatif-card", "cand": k},
        p="sm",
        withBorder=True,
        radius="md",
        style=None if shown else {"display": "none"},
    )


def layout(**_query) -> dmc.Stack:
    disabled = live_disabled()
    kind = "generated" if disabled else "live"
    try:
        options = market_options(kind)
        scenario_note = disabled or ""
    except (OSError, ValueError) as exc:
        options, scenario_note = [], f"the live scenario cannot be loaded: {exc}"
    return dmc.Stack(
        [
            dmc.Group(
                [
                    dmc.Title("What-if", order=3),
                    dmc.Text(
                        "the same days under several fee settings, in fast-forward, before using one live",
                        c="dimmed",
                        size="sm",
                    ),
                ],
                align="baseline",
            ),
            dmc.Paper(
                dmc.Group(
                    [
                        dmc.Select(
                            id=ids.WHATIF_SCENARIO,
                            label="Scenario",
                            data=[
                                {"value": v, "label": label, "disabled": bool(disabled) and v == "live"}
                                for v, label in SCENARIOS.items()
                            ],
                            value=kind,
                            allowDeselect=False,
                            size="xs",
                            w=220,
                        ),
                        dmc.NumberInput(
                            id=ids.WHATIF_DAYS,
                            label=f"Days [1-{MAX_DAYS}]",
                            value=DEFAULT_DAYS,
                            min=1,
                            max=MAX_DAYS,
                            step=1,
                            allowDecimal=False,
                            clampBehavior="none",
                            size="xs",
                            w=110,
                        ),
                        dmc.MultiSelect(
                            id=ids.WHATIF_MARKETS,
                            label="Markets",
                            data=options,
                            value=[o["value"] for o in options],
                            size="xs",
                            w=360,
                            clearable=True,
                        ),
                        dmc.NumberInput(
                            id=ids.WHATIF_LIMIT,
                            label="Limit [% of zero-fee peak]",
                            value=DEFAULT_LIMIT_PCT,
                            min=1,
                            max=500,
                            clampBehavior="none",
                            size="xs",
                            w=170,
                        ),
                        dmc.NumberInput(
                            id=ids.WHATIF_COUNT,
                            label=f"Candidates [{MIN_CANDIDATES}-{MAX_CANDIDATES}]",
                            value=DEFAULT_COUNT,
                            min=MIN_CANDIDATES,
                            max=MAX_CANDIDATES,
                            step=1,
                            allowDecimal=False,
                            size="xs",
                            w=130,
                        ),
                        # Run with its form: at 1366x768 it was below the candidates, out of sight
                        dmc.Button("Run", id=ids.WHATIF_RUN, size="sm"),
                        dmc.Button(
                            "Cancel",
                            id=ids.WHATIF_CANCEL,
                            size="sm",
                            variant="light",
                            color="red",
                            disabled=True,
                        ),
                        dmc.Text(id=ids.WHATIF_MESSAGE, size="sm"),
                    ],
                    align="flex-end",
                    gap="md",
                ),
                p="sm",
                withBorder=True,
            ),
            dmc.Text(
                scenario_note, c="orange" if disabled else "red", size="sm", id=ids.WHATIF_SCENARIO + "-note"
            )
            if scenario_note
            else None,
            dmc.SimpleGrid(
                [candidate_card(k, k < DEFAULT_COUNT) for k in range(MAX_CANDIDATES)],
                cols={"base": 1, "md": 2, "xl": 3},
                spacing="sm",
            ),
            html.Div(id=ids.WHATIF_PROGRESS, style={"display": "none"}),
            dcc.Store(id=ids.WHATIF_SPEC),
            dcc.Download(id=ids.WHATIF_DOWNLOAD),
            html.Div(id=ids.WHATIF_RESULTS),
        ],
        gap="sm",
    )


def results_section(result: WhatIfResult, spec: Mapping) -> dmc.Stack:
    """The KPI table, the charts of the first market (the select picks another), apply, export."""
    from app.tariffs.registry import describe, parse_model

    markets = [
        {"value": u, "label": n} for u, n in zip(result.market_uuids, result.market_names, strict=True)
    ]
    viewer = bool(spec.get("viewer"))
    rows = []
    for k, name in enumerate(result.candidates):
        described = [describe(parse_model(m)) for m in result.models[name].values() if m is not None]
        text = "; ".join(dict.fromkeys(described)) or "the scenario's fees"
        text = "zero fee" if result.kinds[k] == "zero" else text
        live = result.kinds[k] == LIVE
        rows.append(
            dmc.Group(
                [
                    html.Span(style={"width": 12, "height": 12, "borderRadius": 6, "background": colour(k)}),
                    dmc.Text(name, fw=600, size="sm", w=160, truncate="end"),
                    dmc.Text(text, size="xs", c="dimmed", style={"flex": 1}),
                    dmc.Button(
                        "Apply to live",
                        id={"type": "whatif-apply", "cand": k},
                        size="xs",
                        variant="light",
                        disabled=viewer or live,
                    ),
                ],
                gap="xs",
                wrap="nowrap",
            )
        )
    where = f"{result.workers} processes" if result.workers > 1 else "one process"
    return dmc.Stack(
        [
            dcc.Store(id=ids.WHATIF_STATE, data={"run_id": spec["run_id"], "candidates": result.candidates}),
            dmc.Group(
                [
                    dmc.Title("Results", order=4),
                    dmc.Text(
                        f"{result.scenario_name}, {result.days} day(s) from {result.slot_labels[0]}, "
                        f"{len(result.candidates)} candidates and the zero-fee reference in "
                        f"{result.seconds:.1f} s ({where}); best value per row in green",
                        size="sm",
                        c="dimmed",
                        id="whatif-summary",
                    ),
                    dmc.Button("Export to Excel", id=ids.WHATIF_EXPORT, size="xs", variant="light"),
                ],
                align="baseline",
            ),
            kpi_grid(result.rows, result.candidates, ids.WHATIF_GRID, result.kinds),
            dmc.Paper(
                dmc.Stack([*rows, dmc.Text(id=ids.WHATIF_APPLY_MESSAGE, size="sm")], gap=4),
                p="sm",
                withBorder=True,
            ),
            dmc.Select(
                id=ids.WHATIF_CHART_MARKET,
                label="Charts of",
                data=markets,
                value=markets[0]["value"],
                allowDeselect=False,
                size="xs",
                w=300,
            ),
            dmc.SimpleGrid(
                [
                    dcc.Graph(id=ids.WHATIF_FLOWS, config={"displaylogo": False, "displayModeBar": False}),
                    dcc.Graph(id=ids.WHATIF_DURATION, config={"displaylogo": False, "displayModeBar": False}),
                ],
                cols={"base": 1, "lg": 2},
                spacing="sm",
            ),
            dcc.Graph(id=ids.WHATIF_FEE, config={"displaylogo": False, "displayModeBar": False}),
        ],
        gap="sm",
    )


def chart_figures(run_id: object, market_uuid: object) -> tuple:
    result, _ = ResultStore.of(_settings()).load(run_id)
    if market_uuid not in result.market_uuids:
        raise ValueError("not a market of this run")
    minutes = 15
    if len(result.slot_labels) > 1:
        a, b = (slots.parse(x) for x in result.slot_labels[:2])
        minutes = (b - a).total_seconds() / 60
    return (
        flows_figure(result, market_uuid),
        duration_figure(result, market_uuid, minutes),
        fee_figure(result, market_uuid),
    )


# -- callbacks ----------------------------------------------------------------------------------


def register_callbacks(app) -> None:  # noqa: ANN001
    """This page's callbacks, on ``app``; the run is a background callback of ``app``'s manager."""

    @app.callback(
        Output({"type": "whatif-section", "cand": MATCH, "model": ALL}, "style"),
        Output({"type": "whatif-split-box", "cand": MATCH}, "style"),
        Input({"type": "whatif-model", "cand": MATCH}, "value"),
        prevent_initial_call=True,
    )
    def show_model(model):
        sections = [None if o["id"]["model"] == model else {"display": "none"} for o in ctx.outputs_list[0]]
        return sections, None if model in LEVEL_MODELS else {"display": "none"}

    @app.callback(
        Output({"type": "whatif-level", "cand": MATCH, "model": ALL, "level": 1}, "style"),
        Output({"type": "whatif-level-title", "cand": MATCH, "model": ALL, "level": 0}, "children"),
        Input({"type": "whatif-split", "cand": MATCH}, "checked"),
        prevent_initial_call=True,
    )
    def show_levels(split):
        n = len(ctx.outputs_list[0])
        return [None if split else {"display": "none"}] * n, [level_title(0, bool(split))] * n

    @app.callback(
        Output({"type": "whatif-tou", "cand": MATCH}, "data"),
        Output({"type": "whatif-upload-status", "cand": MATCH}, "children"),
        Output({"type": "whatif-upload-status", "cand": MATCH}, "c"),
        Output({"type": "whatif-param", "cand": MATCH, "field": TOU_COLUMN, "level": ALL}, "data"),
        Output({"type": "whatif-param", "cand": MATCH, "field": TOU_COLUMN, "level": ALL}, "value"),
        Input({"type": "whatif-upload", "cand": MATCH}, "contents"),
        Input({"type": "whatif-preset", "cand": MATCH}, "n_clicks"),
        State({"type": "whatif-upload", "cand": MATCH}, "filename"),
        prevent_initial_call=True,
    )
    def upload_table(contents, _preset, filename):
        upload = None
        if ctx.triggered_id and ctx.triggered_id["type"] == "whatif-upload":
            upload = read_tou_upload(contents, filename)
        names, columns = tou_columns(upload)
        text, colour = tou_status(upload)
        levels = [o["id"]["level"] for o in ctx.outputs_list[3]]
        return upload, text, colour, [names] * len(levels), [columns[level] for level in levels]

    @app.callback(
        Output({"type": "whatif-model", "cand": ALL}, "data"),
        Output({"type": "whatif-model", "cand": ALL}, "value"),
        Input(ids.WHATIF_SCENARIO, "value"),
        State({"type": "whatif-model", "cand": ALL}, "value"),
        prevent_initial_call=True,
    )
    def scenario_models(kind, models):
        options = model_options(kind)
        offered = {o["value"] for o in options}
        return [options] * len(models), [m if m in offered else None for m in models]

    @app.callback(
        Output({"type": "whatif-card", "cand": ALL}, "style"),
        Input(ids.WHATIF_COUNT, "value"),
        prevent_initial_call=True,
    )
    def show_cards(count):
        n = count if isinstance(count, int) else DEFAULT_COUNT
        return [None if o["id"]["cand"] < n else {"display": "none"} for o in ctx.outputs_list]

    @app.callback(
        Output(ids.WHATIF_MARKETS, "data"),
        Output(ids.WHATIF_MARKETS, "value"),
        Input(ids.WHATIF_SCENARIO, "value"),
        prevent_initial_call=True,
    )
    def scenario_markets(kind):
        try:
            options = market_options(kind)
        except (OSError, ValueError):
            return [], []
        return options, [o["value"] for o in options]

    @app.callback(
        Output(ids.WHATIF_SPEC, "data"),
        Output(ids.WHATIF_MESSAGE, "children"),
        Output(ids.WHATIF_MESSAGE, "c"),
        Input(ids.WHATIF_RUN, "n_clicks"),
        State(ids.WHATIF_SCENARIO, "value"),
        State(ids.WHATIF_DAYS, "value"),
        State(ids.WHATIF_MARKETS, "value"),
        State(ids.WHATIF_LIMIT, "value"),
        State(ids.WHATIF_COUNT, "value"),
        State({"type": "whatif-name", "cand": ALL}, "value"),
        State({"type": "whatif-model", "cand": ALL}, "value"),
        State({"type": "whatif-auto", "cand": ALL}, "checked"),
        State({"type": "whatif-param", "cand": ALL, "field": ALL, "level": ALL}, "value"),
        State({"type": "whatif-split", "cand": ALL}, "checked"),
        State({"type": "whatif-tou", "cand": ALL}, "data"),
        prevent_initial_call=True,
    )
    def submit(_clicks, scenario, days, markets, limit_pct, count, names, models, *_cards):
        autos, splits, tables = (_by_card(ctx.states_list[i]) for i in (7, 9, 10))
        cards = range(len(names))
        try:
            rows = form_rows(
                count,
                names,
                models,
                [autos.get(k, False) for k in cards],
                ctx.states_list[8],
                [splits.get(k, False) for k in cards],
                [tables.get(k) for k in cards],
            )
            user = require_operator_to_run()
            spec = build_spec(scenario, days, markets, limit_pct, rows)
            problem = queue_problem_now() or quota_problem_now(user.username)
            if problem:
                raise WhatIfError(problem)
        except (WhatIfError, OSError, NotAllowed) as exc:
            return no_update, f"Not run: {exc}", "red"
        return spec, f"Running {len(spec['candidates'])} candidates over {spec['days']} day(s) ...", "dimmed"

    app.callback(
        Output(ids.WHATIF_RESULTS, "children"),
        Output(ids.WHATIF_MESSAGE, "children", allow_duplicate=True),
        Output(ids.WHATIF_MESSAGE, "c", allow_duplicate=True),
        Input(ids.WHATIF_SPEC, "data"),
        background=True,
        progress=[Output(ids.WHATIF_PROGRESS, "children")],
        cancel=[Input(ids.WHATIF_CANCEL, "n_clicks")],
        running=[
            (Output(ids.WHATIF_RUN, "disabled"), True, False),
            (Output(ids.WHATIF_CANCEL, "disabled"), False, True),
            (Output(ids.WHATIF_PROGRESS, "style"), {"display": "block"}, {"display": "none"}),
        ],
        interval=500,
        prevent_initial_call=True,
    )(run_job)

    @app.callback(
        Output(ids.WHATIF_MESSAGE, "children", allow_duplicate=True),
        Output(ids.WHATIF_MESSAGE, "c", allow_duplicate=True),
        Input(ids.WHATIF_CANCEL, "n_clicks"),
        State(ids.WHATIF_SPEC, "data"),
        prevent_initial_call=True,
    )
    def cancelled(_clicks, spec):
        user = current_console_user()
        if user is not None and isinstance(spec, dict):  # the job was killed: its claim ends here
            RunLedger.of(_settings()).release(spec.get("run_id"), user.username)
        return "Run cancelled.", "orange"

    install_run_guard(app)

    @app.callback(
        Output(ids.WHATIF_FLOWS, "figure"),
        Output(ids.WHATIF_DURATION, "figure"),
        Output(ids.WHATIF_FEE, "figure"),
        Input(ids.WHATIF_CHART_MARKET, "value"),
        State(ids.WHATIF_STATE, "data"),
    )
    def charts(market_uuid, state):
        try:
            return chart_figures((state or {}).get("run_id"), market_uuid)
        except ValueError:
            return no_update, no_update, no_update

    @app.callback(
        Output(ids.WHATIF_APPLY_MESSAGE, "children"),
        Output(ids.WHATIF_APPLY_MESSAGE, "c"),
        Input({"type": "whatif-apply", "cand": ALL}, "n_clicks"),
        State(ids.WHATIF_STATE, "data"),
        prevent_initial_call=True,
    )
    def apply(clicks, state):
        trigger = ctx.triggered_id
        if not trigger or not any(clicks):
            raise PreventUpdate
        try:
            return apply_candidate((state or {}).get("run_id"), trigger["cand"]), "green"
        except (NotAllowed, ValueError) as exc:
            return str(exc), "red"
        except SQLAlchemyError as exc:  # e.g. a busy SQLite store: say so, nothing half-done shows
            return f"not applied, the store did not answer: {type(exc).__name__}", "red"

    app.callback(
        Output(ids.WHATIF_DOWNLOAD, "data"),
        Output(ids.WHATIF_APPLY_MESSAGE, "children", allow_duplicate=True),
        Input(ids.WHATIF_EXPORT, "n_clicks"),
        State(ids.WHATIF_STATE, "data"),
        prevent_initial_call=True,
        background=True,  # ~10 us a cell: seconds for a week of a 1,000-house grid
        running=[(Output(ids.WHATIF_EXPORT, "loading"), True, False)],
        interval=500,
    )(export_job)


# The background jobs: module-level functions (the fork server unpickles them by name), which
# get what they need of the app from the manager's job context.


def run_job(set_progress, spec):  # noqa: ANN001, ANN201
    if not spec:
        raise PreventUpdate
    names = [BASELINE, *(c.get("name", "") for c in spec.get("candidates", []))]
    set_progress(progress_bars({}, names))
    job = _job_context()
    try:
        result = execute(spec, job, progress=lambda shares: set_progress(progress_bars(shares, names)))
    except (WhatIfError, Cancelled, OSError) as exc:
        return None, f"Not run: {exc}", "red"
    finally:  # claimed by the request that started the job (install_run_guard)
        RunLedger.of(job).release(spec.get("run_id") if isinstance(spec, dict) else None)
    return results_section(result, spec), f"Done in {result.seconds:.1f} s.", "green"


def export_job(clicks, state):  # noqa: ANN001, ANN201
    if not clicks:  # the results (with the button) just appeared: Dash may call it then too
        raise PreventUpdate
    try:
        return export_workbook((state or {}).get("run_id"), ResultStore.of(_job_context())), ""
    except ValueError as exc:
        return no_update, str(exc)
