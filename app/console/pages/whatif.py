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

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import dash_mantine_components as dmc
from dash import ALL, MATCH, Dash, DiskcacheManager, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask import Flask, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from app import slots
from app.config import Settings
from app.console import ids
from app.console.auth import NotAllowed, current_console_user, require_operator
from app.console.components.fee_status import queued_text
from app.console.components.page import heading
from app.console.components.whatif_view import (
    colour,
    duration_figure,
    fee_figure,
    flows_figure,
    kpi_grid,
    progress_bars,
)
from app.console.pages.common import console, is_viewer
from app.operator import fee_service
from app.tariffs.forms import FORMS, Field
from app.tariffs.registry import describe, parse_model
from app.tariffs.tou import MAX_UPLOAD_BYTES
from app.whatif import form, jobs
from app.whatif.apply import plan
from app.whatif.form import (
    DEFAULT_COUNT,
    DEFAULT_DAYS,
    DEFAULT_LIMIT_PCT,
    DEFAULT_TUNE_DAYS,
    DEFAULTS,
    LEVEL_MODELS,
    MODELS,
    SCENARIOS,
    TOU_COLUMN,
    by_card,
    form_rows,
    make_spec,
    read_tou_upload,
    tou_columns,
    tou_status,
)
from app.whatif.jobs import execute
from app.whatif.queue import current_job, queue_problem
from app.whatif.quota import RunLedger, RunRefused
from app.whatif.results import RUN_ID, ResultStore
from app.whatif.runs import (
    BASELINE,
    LEVELS,
    LIVE,
    MAX_CANDIDATES,
    MAX_DAYS,
    MIN_CANDIDATES,
    Cancelled,
    WhatIfError,
    WhatIfResult,
    whatif_workbook,
)
from app.whatif.tune import TUNABLE

# -- where runs and results live ----------------------------------------------------------------

if TYPE_CHECKING:
    from app.exchange.scenario import Scenario


def _settings(server: Flask | None = None) -> Settings:
    return (server or current_app).extensions["gridfee_settings"]


def load_run_scenario(kind: str, server: Flask | None = None) -> Scenario:
    """The scenario a run uses: the live one or the generated grid.

    The live one is the embedded exchange's (so the markets are the live ones), else, when the
    console drives a remote exchange, ``settings.scenario`` (:func:`app.whatif.jobs.job_scenario`
    on the jobs' context).
    """
    if kind == "live":
        reason = live_disabled(server)
        if reason:
            raise WhatIfError(reason)
    return jobs.job_scenario(kind, job_context(server))


def background_manager(settings: Settings, live_scenario: Scenario | None) -> DiskcacheManager:
    """The console's manager of What-if jobs (:func:`app.whatif.jobs.background_manager`), whose
    fork server preloads this page (its module-level jobs ``run_job`` and ``export_job``)."""
    return jobs.background_manager(settings, live_scenario, preload=[__name__])


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
    return form.market_options(load_run_scenario(kind, server))


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


def build_spec(
    scenario_kind: str,
    days: object,
    markets: Sequence[str] | None,
    limit_pct: object,
    rows: Sequence[Mapping],
) -> dict:
    """The run to start (:func:`app.whatif.form.make_spec`) with what the request knows: the
    scenario, the live settings (on the live scenario) and whether the user is a viewer."""
    scenario = load_run_scenario(scenario_kind)
    live = live_models() if scenario_kind == "live" else None
    live_slot = None
    if scenario_kind == "live" and any(row.get("tune_days") for row in rows):
        # where "the last T days" end: the running slot, counted from the scenario's first
        running = console().clock_state().get("running_slot")
        try:
            since = slots.parse(running) - scenario.start
            live_slot = max(int(since.total_seconds() // 60 // scenario.slot_length_min), 0)
        except (TypeError, ValueError):  # no clock reading: the days after the compared ones
            live_slot = None
    return make_spec(scenario, scenario_kind, days, markets, limit_pct, rows, live, is_viewer(), live_slot)


def queue_problem_now(server: Flask | None = None) -> str | None:
    """Why a run would not start now (Celery: Redis or the worker missing), or None."""
    server = server or current_app
    if not _settings(server).redis_url:
        return None  # the diskcache manager starts the job itself

    return queue_problem(server.extensions["dash_app"]._background_manager.handle)


def require_operator_to_run():
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


def install_run_guard(app: Dash) -> None:
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
        if not RUN_ID.fullmatch(run_id):
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
    """Store candidate ``index``'s models for the live markets and queue their fees (which markets
    get which model: :func:`app.whatif.apply.plan`); the message. Every fee is computed before
    anything is stored. ``NotAllowed`` for a viewer, nobody, or a market the user may not manage;
    ``ValueError`` for what cannot be applied."""
    user = require_operator()
    result, spec = ResultStore.of(_settings()).load(run_id)
    data = console()
    name, targets = plan(result, spec, index, data.markets())
    for market, _ in targets:
        if not user.may_manage(market["uuid"], market["name"]):
            raise NotAllowed(f"{user.username} may not manage {market['name']}")
    slot, limits = data.model_target()
    planned = [
        (market, model, fee_service.model_fee_ct_per_kwh(data.ops, market["uuid"], model, slot, limits))
        for market, model in targets
    ]
    clock = data.clock_state()
    running = clock.get("running_slot")
    source = f"what-if:{name}"
    for market, model, fee in planned:
        fee_service.queue_model(data.ops, market, model, fee, user.username, running, source=source)
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


def days_input(ident: str | dict, value: int, width_px: int, **kwargs: object) -> dmc.NumberInput:
    """A whole number of days, 1 to ``MAX_DAYS`` (a run's or a tuning's); out of range is kept as
    typed, so that the form's check names it instead of the input changing it silently."""
    return dmc.NumberInput(
        id=ident,
        value=value,
        min=1,
        max=MAX_DAYS,
        step=1,
        allowDecimal=False,
        clampBehavior="none",
        size="xs",
        w=width_px,
        **kwargs,
    )


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


def _option(k: int, kind: str, label: str, checked: bool = False, **style: object) -> dmc.Checkbox:
    """Candidate ``k``'s checkbox of type ``kind`` (its callbacks match ``{"type": kind, "cand": ...}``)."""
    return dmc.Checkbox(id={"type": kind, "cand": k}, label=label, checked=checked, size="xs", **style)


def candidate_card(k: int, shown: bool) -> dmc.Paper:
    name, model = DEFAULTS[k]
    sections = []
    for value, _ in MODELS:
        if value in LEVEL_MODELS:
            blocks = [_level_block(k, value, level) for level in LEVELS]
            if value == "controller":
                auto = "Limits: the run's limit of each market (ignores the two limit fields)"
                blocks.insert(0, _option(k, "whatif-auto", auto, checked=True))
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
                _option(k, "whatif-split", "Other parameters for the communities", mb=4),
                id={"type": "whatif-split-box", "cand": k},
                style=None if model in LEVEL_MODELS else {"display": "none"},
            ),
            html.Div(
                dmc.Group(
                    [
                        _option(k, "whatif-tune", "Tune on the last"),
                        days_input(
                            {"type": "whatif-tune-days", "cand": k},
                            DEFAULT_TUNE_DAYS,
                            64,
                            **{"aria-label": f"Days to tune candidate {k + 1} on"},
                        ),
                        dmc.Text(
                            "days first (the grid's best on them; below: all it tried)", size="xs", c="dimmed"
                        ),
                    ],
                    gap=6,
                    wrap="nowrap",
                ),
                id={"type": "whatif-tune-box", "cand": k},
                style=None if model in TUNABLE else {"display": "none"},
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
            heading(
                "What-if", "the same days under several fee settings, in fast-forward, before using one live"
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
                        days_input(ids.WHATIF_DAYS, DEFAULT_DAYS, 110, label=f"Days [1-{MAX_DAYS}]"),
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

    markets = [
        {"value": u, "label": n} for u, n in zip(result.market_uuids, result.market_names, strict=True)
    ]
    viewer = bool(spec.get("viewer"))
    rows = []
    for k, name in enumerate(result.candidates):
        described = [describe(parse_model(m)) for m in result.models[name].values() if m is not None]
        text = "; ".join(dict.fromkeys(described)) or "the scenario's fees"
        text = "zero fee" if result.kinds[k] == "zero" else text
        if any(info["candidate"] == name for info in getattr(result, "tuning", None) or ()):
            text = f"tuned: {text}"
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
            tuning_section(getattr(result, "tuning", None)),
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


TUNING_LABELS = {
    "target_share": "aim (share of limit)",
    "export_fee_cap_ct_per_kwh": "export fee cap ct/kWh",
    "leak": "leak per day",
    "gain_ct_per_kwh": "gain ct/kWh",
    "smooth_slots": "smoothing slots",
    "ki_ct_per_kwh": "ki ct/kWh",
    "forecast_weight": "forecast weight",
}


def _setting(value: object) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def tuning_section(infos: Sequence[Mapping] | None) -> dmc.Paper | None:
    """What "tune on the last T days" chose for each tuned candidate, next to what it tried: one
    table per candidate, a row per parameter setting of the grid, the chosen one marked."""
    if not infos:
        return None
    blocks = []
    for info in infos:
        keys = list(info["rows"][0]["change"]) if info["rows"] else []
        chosen = ", ".join(f"{TUNING_LABELS.get(k, k)} {_setting(v)}" for k, v in info["best"].items())
        days = int(info["tune_days"])
        blocks.append(
            dmc.Text(
                [
                    dmc.Text(info["candidate"], fw=600, span=True, size="sm"),
                    f": tuned on {info['window'][0]} to {info['window'][1]} ({days} day(s), scored on the "
                    f"last {days - days // 2} after the model's warm-up; none is a compared day). Chosen: ",
                    dmc.Text(chosen or "nothing to choose", fw=600, span=True, size="sm"),
                    f". Score: worse peak % of zero fee + {info['waste_pp']:g} per 100 % of export "
                    f"energy unmatched + {info['price_pp']:g} per 100 % dearer average price.",
                ],
                size="sm",
            )
        )
        head = [TUNING_LABELS.get(k, k) for k in keys] + [
            "score",
            "peak import %",
            "peak export %",
            "unmatched %",
            "avg price ct/kWh",
            "",
        ]
        body = []
        for row in info["rows"]:
            best = row["change"] == info["best"]
            cells = [_setting(row["change"][k]) for k in keys] + [
                f"{row['score']:.1f}",
                f"{row['peak_import_pct']:.1f}",
                f"{row['peak_export_pct']:.1f}",
                f"{row['unmatched_pct']:.1f}",
                f"{row['avg_price_ct_per_kwh']:.2f}",
                "chosen" if best else "",
            ]
            style = {"background": "var(--mantine-color-green-light)", "fontWeight": 600} if best else None
            body.append(dmc.TableTr([dmc.TableTd(c) for c in cells], style=style))
        blocks.append(
            dmc.Table(
                [dmc.TableThead(dmc.TableTr([dmc.TableTh(h) for h in head])), dmc.TableTbody(body)],
                withTableBorder=True,
                fz="xs",
                verticalSpacing=2,
                className="whatif-tuning-table",
            )
        )
    return dmc.Paper(dmc.Stack(blocks, gap=4), p="sm", withBorder=True, id="whatif-tuning")


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


def register_callbacks(app: Dash) -> None:
    """This page's callbacks, on ``app``; the run is a background callback of ``app``'s manager."""

    @app.callback(
        Output({"type": "whatif-section", "cand": MATCH, "model": ALL}, "style"),
        Output({"type": "whatif-split-box", "cand": MATCH}, "style"),
        Output({"type": "whatif-tune-box", "cand": MATCH}, "style"),
        Input({"type": "whatif-model", "cand": MATCH}, "value"),
        prevent_initial_call=True,
    )
    def show_model(model):
        sections = [None if o["id"]["model"] == model else {"display": "none"} for o in ctx.outputs_list[0]]
        hidden = {"display": "none"}
        return sections, None if model in LEVEL_MODELS else hidden, None if model in TUNABLE else hidden

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
        output=[
            Output(ids.WHATIF_SPEC, "data"),
            Output(ids.WHATIF_MESSAGE, "children"),
            Output(ids.WHATIF_MESSAGE, "c"),
        ],
        inputs={"clicks": Input(ids.WHATIF_RUN, "n_clicks")},
        state={
            "scenario": State(ids.WHATIF_SCENARIO, "value"),
            "days": State(ids.WHATIF_DAYS, "value"),
            "markets": State(ids.WHATIF_MARKETS, "value"),
            "limit_pct": State(ids.WHATIF_LIMIT, "value"),
            "count": State(ids.WHATIF_COUNT, "value"),
            "names": State({"type": "whatif-name", "cand": ALL}, "value"),
            "models": State({"type": "whatif-model", "cand": ALL}, "value"),
            "autos": State({"type": "whatif-auto", "cand": ALL}, "checked"),
            "params": State({"type": "whatif-param", "cand": ALL, "field": ALL, "level": ALL}, "value"),
            "splits": State({"type": "whatif-split", "cand": ALL}, "checked"),
            "tables": State({"type": "whatif-tou", "cand": ALL}, "data"),
            "tunes": State({"type": "whatif-tune", "cand": ALL}, "checked"),
            "tune_days": State({"type": "whatif-tune-days", "cand": ALL}, "value"),
        },
        prevent_initial_call=True,
    )
    def submit(
        clicks,
        scenario,
        days,
        markets,
        limit_pct,
        count,
        names,
        models,
        autos,
        params,
        splits,
        tables,
        tunes,
        tune_days,
    ):
        # the per-card states by name with their ids (which card each value belongs to)
        cards_of = ctx.args_grouping
        autos, splits, tables, tunes, tune_days = (
            by_card(cards_of[name]) for name in ("autos", "splits", "tables", "tunes", "tune_days")
        )
        cards = range(len(names))
        try:
            rows = form_rows(
                count,
                names,
                models,
                [autos.get(k, False) for k in cards],
                cards_of["params"],
                [splits.get(k, False) for k in cards],
                [tables.get(k) for k in cards],
                [tune_days.get(k) if tunes.get(k) else None for k in cards],
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


def run_job(set_progress: Callable[[object], None], spec: dict | None) -> tuple:
    if not spec:
        raise PreventUpdate
    names = [BASELINE, *(c.get("name", "") for c in spec.get("candidates", []))]
    set_progress(progress_bars({}, names))
    job = current_job()
    try:
        result = execute(spec, job, progress=lambda shares: set_progress(progress_bars(shares, names)))
    except (WhatIfError, Cancelled, OSError) as exc:
        return None, f"Not run: {exc}", "red"
    finally:  # claimed by the request that started the job (install_run_guard)
        RunLedger.of(job).release(spec.get("run_id") if isinstance(spec, dict) else None)
    return results_section(result, spec), f"Done in {result.seconds:.1f} s.", "green"


def export_job(clicks: int | None, state: dict | None) -> tuple:
    if not clicks:  # the results (with the button) just appeared: Dash may call it then too
        raise PreventUpdate
    try:
        return export_workbook((state or {}).get("run_id"), ResultStore.of(current_job())), ""
    except ValueError as exc:
        return no_update, str(exc)
