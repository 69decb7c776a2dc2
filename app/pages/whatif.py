"""What-if (``/what-if``): the same days under 2-6 fee settings, side by side, before going live.

The operator picks the days (1-7), the scenario (the live one, or a generated 1,000-house grid),
the markets and the candidates (zero fee, a copy of the live settings, a constant fee, the 2020
time-of-use or peak-tier preset, the congestion controller, each with its main parameters).

"Run" is two callbacks. The first, an ordinary one, reads the form in the request (the live
settings come from the store), checks every parameter and refuses a bad one with a message;
only a run that passed is written to the ``whatif-spec`` store. That starts the second, a Dash
background callback (``run_job``; the manager is ``background_manager``: a ``DiskcacheManager``
under ``settings.instance_dir`` whose jobs start from a fork server): it runs in a process of its
own (``app.whatif.run_whatif``, which uses the cores for the candidates), reports a progress bar
per run and stops on "Cancel" (Dash kills the process and its workers). The browser and the
live console stay responsive meanwhile.

The result is kept on the server for a day (a diskcache next to the jobs', keyed by a random run
id that the page holds): the charts of another market, the Excel export (a background callback
too) and "Apply to live" read it from there, so nothing large travels back and forth. "Apply to
live" stores the candidate's model for the live markets and queues its first fee for the next
slot, audited with the source ``what-if:<candidate>``; a viewer is refused on the server
(``require_operator``).
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
from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError

from app import ids
from app.config import Settings
from app.dashboard.auth import NotAllowed, require_operator
from app.exchange.scenario import Scenario
from app.pages.common import console, is_viewer
from app.whatif import (
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
from components.fee_control import FORMS, Field, parse_form
from components.whatif_view import colour, duration_figure, fee_figure, flows_figure, kpi_grid, progress_bars

SCENARIOS = {"live": "the live scenario", "generated": "a generated grid, 10 communities x 100 houses"}
GENERATED = (10, 100)  # communities, houses per community
MODELS = [
    ("zero", "Zero fee (baseline)"),
    (LIVE, "Copy of the live settings"),
    ("constant", "Constant fee"),
    ("tou", "Time of use (2020 preset)"),
    ("peak_tiers", "Peak tiers (2020 preset)"),
    ("controller", "Congestion controller"),
]
MODEL_NAMES = dict(MODELS)
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
    """The console's background callback manager: a ``DiskcacheManager`` under the instance dir
    whose jobs start from a fork server (see ``ForkServerManager``).

    One machine only (the jobs are processes of the web server's machine); a ``CeleryManager``
    over ``REDIS_URL`` would be the multi-machine one.
    """
    import diskcache

    folder = settings.instance_dir / "whatif" / "jobs"
    folder.mkdir(parents=True, exist_ok=True)
    service = getattr((server.extensions if server is not None else {}).get("gridfee"), "service", None)
    context = {
        "instance_dir": str(settings.instance_dir),
        "scenario_file": str(settings.scenario),
        # the embedded exchange's scenario: "the live scenario" of a run
        "scenario": None if service is None else service.store.scenario,
    }
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


JOB_CONTEXT = "whatif_job"


def _job_context() -> dict:
    """What the manager gave the running job (``background_manager``'s ``context``)."""
    from dash._callback_context import context_value

    return context_value.get()[JOB_CONTEXT]


def _results(instance_dir: Path):  # noqa: ANN202
    import diskcache

    return diskcache.Cache(str(instance_dir / "whatif" / "results"))


def save_result(instance_dir: Path, run_id: str, result: WhatIfResult, spec: dict) -> None:
    with _results(instance_dir) as cache:
        cache.set(run_id, {"result": result, "spec": spec}, expire=RESULT_TTL_S)


def load_result(instance_dir: Path, run_id: object) -> tuple[WhatIfResult, dict]:
    """The stored run; ``ValueError`` when the id is not one or the run is gone (a day later)."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise ValueError("no what-if run to use: run one first")
    with _results(instance_dir) as cache:
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
    service = getattr(server.extensions.get("gridfee"), "service", None)
    if service is not None:
        return service.store.scenario
    return load_scenario(_settings(server).scenario)


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


def form_rows(
    count: object,
    names: Sequence[object],
    models: Sequence[object],
    autos: Sequence[object],
    params: Sequence[Mapping],
) -> list[dict]:
    """The first ``count`` candidates of the form: name, model, auto limits, field values.

    ``params`` are the states of the ``whatif-param`` fields (``{"id": {..., "cand": k, "field":
    "<model>.<name>"}, "value": ...}``), as ``ctx.states_list`` gives them.
    """
    try:
        n = int(count)
    except (TypeError, ValueError):
        n = -1
    if not MIN_CANDIDATES <= n <= MAX_CANDIDATES or (isinstance(count, float) and not count.is_integer()):
        raise WhatIfError(f"candidates: {count!r}, compare {MIN_CANDIDATES} to {MAX_CANDIDATES}")
    values: list[dict] = [{} for _ in names]
    for state in params:
        k = state["id"]["cand"]
        if 0 <= k < len(values):
            values[k][state["id"]["field"]] = state.get("value")
    return [
        {"name": names[k], "model": models[k], "auto_limits": bool(autos[k]), "values": values[k]}
        for k in range(min(n, len(names)))
    ]


def _tou_levels() -> dict[int, dict]:
    from app.tariffs import tou

    table = tou.preset_challenge_2020()
    return {
        0: {"model": "tou", "table": {"all": table["grid"]}},
        1: {"model": "tou", "table": {"all": table["community"]}},
    }


def parse_candidates(rows: Sequence[Mapping], live: Mapping[str, dict | None] | None) -> list[Candidate]:
    """``Candidate`` per form row; ``WhatIfError`` naming the candidate and field of each problem.

    ``live``: the live settings (``live_models()``), for a copy of them. The models themselves are
    checked by ``app.whatif.validate_run``.
    """
    problems, out = [], []
    for k, row in enumerate(rows):
        name = str(row.get("name") or "").strip()
        label = f"candidate {k + 1} ({name or 'no name'})"
        model = row.get("model")
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
                out.append(Candidate(name, _tou_levels()))
            elif model in ("constant", "peak_tiers", "controller"):
                values = dict(row.get("values") or {})
                auto = model == "controller" and bool(row.get("auto_limits"))
                if auto:  # the limits come from the run; the fields need not hold any
                    for key in ("controller.import_limit_kwh", "controller.export_limit_kwh"):
                        if values.get(key) in (None, ""):
                            values[key] = 1.0
                form = parse_form(model, values)
                out.append(Candidate(name, {0: form, 1: form}, auto_limits=auto))
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
    save_result(Path(job["instance_dir"]), spec["run_id"], result, dict(spec))
    return result


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
    from app.pages.market import model_fee_for_next_slot
    from app.tariffs.registry import parse_model

    user = require_operator()
    result, spec = load_result(_settings().instance_dir, run_id)
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
    running = data.clock_state().get("running_slot")
    source = f"what-if:{name}"
    for market, stored, fee in planned:
        data.ops.set_model(market["uuid"], stored, user.username)
        data.ops.queue(market["uuid"], market["name"], fee, source, user.username, running)
    fees = ", ".join(f"{m['name']} {fee:.2f} ct/kWh" for m, _, fee in planned)
    return f"{source}: queued for the next slot ({fees}); the models then set a fee every slot"


def export_workbook(run_id: object, instance_dir: Path) -> dict:
    """``dcc.Download`` data of the comparison workbook."""
    result, _ = load_result(instance_dir, run_id)
    content = whatif_workbook(result)
    return dcc.send_bytes(content, f"what-if-{result.slot_labels[0][:10]}-{result.days}d.xlsx")


# -- layout -------------------------------------------------------------------------------------


def _param_input(cand: int, model: str, field: Field) -> object:
    ident = {"type": "whatif-param", "cand": cand, "field": f"{model}.{field.name}"}
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


def candidate_card(k: int, shown: bool) -> dmc.Paper:
    name, model = DEFAULTS[k]
    sections = []
    for value, _ in MODELS:
        if value in ("constant", "peak_tiers", "controller"):
            fields = [_param_input(k, value, f) for f in FORMS[value]]
            if value == "controller":
                fields.insert(
                    0,
                    dmc.Checkbox(
                        id={"type": "whatif-auto", "cand": k},
                        label="Limits: the run's limit of each market (ignores the two limit fields)",
                        checked=True,
                        size="xs",
                    ),
                )
            body = dmc.SimpleGrid(fields, cols=2, spacing="xs", verticalSpacing="xs")
        else:
            body = dmc.Text(
                {
                    "zero": "Every fee 0 ct/kWh: the run every percentage refers to.",
                    LIVE: "Each market's live setting (a manual fee as a constant); live scenario only.",
                    "tou": "The 2020 challenge's 96-slot table: grid column for the grid, community column "
                    "for the communities.",
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
                        id={"type": "whatif-name", "cand": k}, value=name, size="xs", style={"flex": 1}
                    ),
                ],
                gap="xs",
                wrap="nowrap",
            ),
            dmc.Select(
                id={"type": "whatif-model", "cand": k},
                value=model,
                data=[{"value": v, "label": label} for v, label in MODELS],
                size="xs",
                allowDeselect=False,
                my="xs",
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
    try:
        options = market_options("live")
        scenario_note = ""
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
                            data=[{"value": v, "label": label} for v, label in SCENARIOS.items()],
                            value="live",
                            allowDeselect=False,
                            size="xs",
                            w=280,
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
                            w=420,
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
                    ],
                    align="flex-end",
                    gap="md",
                ),
                p="sm",
                withBorder=True,
            ),
            dmc.Text(scenario_note, c="red", size="sm") if scenario_note else None,
            dmc.SimpleGrid(
                [candidate_card(k, k < DEFAULT_COUNT) for k in range(MAX_CANDIDATES)],
                cols={"base": 1, "md": 2, "xl": 3},
                spacing="sm",
            ),
            dmc.Group(
                [
                    dmc.Button("Run", id=ids.WHATIF_RUN, size="sm"),
                    dmc.Button(
                        "Cancel", id=ids.WHATIF_CANCEL, size="sm", variant="light", color="red", disabled=True
                    ),
                    dmc.Text(id=ids.WHATIF_MESSAGE, size="sm"),
                ]
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
            kpi_grid(result.rows, result.candidates, ids.WHATIF_GRID),
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
    result, _ = load_result(_settings().instance_dir, run_id)
    if market_uuid not in result.market_uuids:
        raise ValueError("not a market of this run")
    minutes = 15
    if len(result.slot_labels) > 1:
        import datetime as dt

        a, b = (dt.datetime.strptime(x, "%Y-%m-%dT%H:%M") for x in result.slot_labels[:2])
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
        Input({"type": "whatif-model", "cand": MATCH}, "value"),
        prevent_initial_call=True,
    )
    def show_model(model):
        return [None if o["id"]["model"] == model else {"display": "none"} for o in ctx.outputs_list]

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
        State({"type": "whatif-param", "cand": ALL, "field": ALL}, "value"),
        prevent_initial_call=True,
    )
    def submit(_clicks, scenario, days, markets, limit_pct, count, names, models, autos, _params):
        autos_by_card = {s["id"]["cand"]: s.get("value") for s in ctx.states_list[7]}
        try:
            rows = form_rows(
                count,
                names,
                models,
                [autos_by_card.get(k, False) for k in range(len(names))],
                ctx.states_list[8],
            )
            spec = build_spec(scenario, days, markets, limit_pct, rows)
        except (WhatIfError, OSError) as exc:
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
        prevent_initial_call=True,
    )
    def cancelled(_clicks):
        return "Run cancelled.", "orange"

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
    try:
        result = execute(
            spec, _job_context(), progress=lambda shares: set_progress(progress_bars(shares, names))
        )
    except (WhatIfError, Cancelled, OSError) as exc:
        return None, f"Not run: {exc}", "red"
    return results_section(result, spec), f"Done in {result.seconds:.1f} s.", "green"


def export_job(clicks, state):  # noqa: ANN001, ANN201
    if not clicks:  # the results (with the button) just appeared: Dash may call it then too
        raise PreventUpdate
    try:
        return export_workbook((state or {}).get("run_id"), Path(_job_context()["instance_dir"])), ""
    except ValueError as exc:
        return no_update, str(exc)
