"""The What-if form without Dash: the candidates' rows as the page's inputs hold them, checked
into ``Candidate``s and a run ``spec`` (JSON, what the background job gets), with an error that
names the candidate and the field of every problem; the time-of-use tables of a candidate.

The models' fields are the live fee control's (:mod:`app.tariffs.forms`), so a candidate is set
exactly like a market.
"""

from __future__ import annotations

import math
import uuid as uuidlib
from collections.abc import Mapping, Sequence

from app.exchange.generate import generate_scenario
from app.exchange.grid import build_grid
from app.exchange.scenario import Scenario
from app.tariffs import registry, tou
from app.tariffs.forms import parse_form
from app.whatif.runs import (
    LEVELS,
    LIVE,
    MAX_CANDIDATES,
    MAX_DAYS,
    MIN_CANDIDATES,
    Candidate,
    WhatIfError,
    validate_run,
)
from app.whatif.tune import TUNABLE  # models a candidate may tune before the run

SCENARIOS = {"live": "the live scenario", "generated": "a generated grid, 10 communities x 100 houses"}
GENERATED = (10, 100)  # communities, houses per community
LEVEL_MODELS = ("constant", "peak_tiers", "controller", "predictive")  # models with fields, per level
CANDIDATES = {"tou", *LEVEL_MODELS}
_PRESET_NOTE = {"tou": " (2020 preset or a table)", "peak_tiers": " (2020 preset)"}
MODELS = [
    ("zero", "Zero fee (baseline)"),
    (LIVE, "Copy of the live settings"),
    *((m.name, m.label + _PRESET_NOTE.get(m.name, "")) for m in registry.MODELS if m.name in CANDIDATES),
]
"""What a candidate may be: the baseline, the live settings, or a tariff model of the registry."""
MODEL_NAMES = dict(MODELS)
DEFAULT_TUNE_DAYS = 2
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
MAX_NAME = 40


def market_options(scenario: Scenario) -> list[dict]:
    """The grid and communities of a run's scenario, for the markets select."""
    return [
        {"value": m.uuid, "label": f"{m.name} ({LEVELS[m.level]})" if m.level == 0 else m.name}
        for m in build_grid(scenario).markets
        if m.level in LEVELS
    ]


def generated_scenario() -> Scenario:
    """The generated grid a run may use instead of the live one (``GENERATED``)."""
    return generate_scenario(*GENERATED)


def by_card(states: Sequence[Mapping] | None) -> dict[int, object]:
    """``{card: value}`` of per-card states
    (``ctx.args_grouping[name]``: ``{"id": {"cand": k}, "value"}``)."""
    return {s["id"]["cand"]: s.get("value") for s in states or ()}


def form_rows(
    count: object,
    names: Sequence[object],
    models: Sequence[object],
    autos: Sequence[object],
    params: Sequence[Mapping],
    splits: Sequence[object] | None = None,
    tables: Sequence[object] | None = None,
    tunes: Sequence[object] | None = None,
) -> list[dict]:
    """The first ``count`` candidates of the form: name, model, auto limits, field values per level.

    ``params`` are the states of the ``whatif-param`` fields (``{"id": {..., "cand": k, "field":
    "<model>.<name>", "level": 0 or 1}, "value": ...}``), as ``ctx.args_grouping`` gives them;
    ``splits``: per card, whether the communities have parameters of their own; ``tables``: per
    card, its uploaded time-of-use table (``read_tou_upload``) or None (the preset); ``tunes``: per
    card, the days to tune it on before the run ("tune on the last T days"), None or 0 for none.
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
    tunes = list(tunes or [])
    return [
        {
            "name": names[k],
            "model": models[k],
            "auto_limits": bool(autos[k]),
            "split": bool(splits[k]) if k < len(splits) else False,
            "values": values[k],
            "table": tables[k] if k < len(tables) else None,
            "tune_days": tunes[k] if k < len(tunes) else None,
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
                tune = _tune_days(row.get("tune_days"), model)
                if not failed:
                    out.append(
                        Candidate(
                            name, {0: forms[0], 1: forms.get(1, forms[0])}, auto_limits=auto, tune_days=tune
                        )
                    )
            else:
                raise ValueError(f"choose a model ({', '.join(MODEL_NAMES.values())})")
        except ValueError as exc:
            problems.append(f"{label}: {exc}")
    if problems:
        raise WhatIfError("; ".join(problems))
    return out


def _tune_days(value: object, model: object) -> int:
    """The days a row is tuned on: 0 for none; ``ValueError`` for a model that cannot be tuned or
    a number of days that is not whole from 1 to ``MAX_DAYS``."""
    if value in (None, "", 0, False):
        return 0
    if model not in TUNABLE:
        raise ValueError("only a controller or predictive controller can be tuned")
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
        raise ValueError(f"tune on {value!r} days: a whole number of days from 1 to {MAX_DAYS}")
    if not 1 <= int(value) <= MAX_DAYS:
        raise ValueError(f"tune on {int(value)} days: from 1 to {MAX_DAYS}")
    return int(value)


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise WhatIfError(f"{what}: {value!r} is not a number")
    return float(value)


def make_spec(
    scenario: Scenario,
    scenario_kind: str,
    days: object,
    markets: Sequence[str] | None,
    limit_pct: object,
    rows: Sequence[Mapping],
    live: Mapping[str, dict | None] | None,
    viewer: bool,
    live_slot: int | None = None,
) -> dict:
    """The run to start, checked through (``WhatIfError`` with every problem, nothing runs then).

    ``live``: the live settings per market (a copy of them is a candidate; None off the live
    scenario). The spec is JSON: the candidates' models per level ("0", "1") or "zero", the live
    copy's per market uuid. ``live_slot``: the live market's running slot, where "the last T days"
    of a tuned candidate end (None off the live scenario).
    """
    day_count = _number(days, "days")
    if not day_count.is_integer():
        raise WhatIfError(f"days: {days!r} is not a whole number of days")
    share = _number(limit_pct, "limit") / 100
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
        "viewer": viewer,
        "live_slot": None if live_slot is None else int(live_slot),
        "candidates": [
            {
                "name": c.name.strip(),
                "models": c.models if c.models == "zero" else {str(k): v for k, v in c.models.items()},
                "live": None if c.live is None else dict(c.live),
                "auto_limits": c.auto_limits,
                "tune_days": c.tune_days,
            }
            for c in candidates
        ],
    }


def candidates_from_spec(spec: Mapping) -> list[Candidate]:
    out = []
    for c in spec["candidates"]:
        models = c["models"] if c["models"] == "zero" else {int(k): v for k, v in c["models"].items()}
        out.append(
            Candidate(
                c["name"],
                models,
                live=c.get("live"),
                auto_limits=bool(c.get("auto_limits")),
                tune_days=int(c.get("tune_days") or 0),
            )
        )
    return out
