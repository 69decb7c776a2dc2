"""What-if's "tune on the last T days": a candidate's controller parameters chosen by replaying
days of the scenario before it is compared (no Dash).

The rule is the bench's (:func:`app.operator.tuning.tune_model`: its grid of candidates for the
model, the score with waste and price points). A What-if candidate's own fields are the starting
point: every tuning candidate changes only the grid's parameters of both levels' models.

**Which days.** The *last* T days: those that end where the live market's history ends (the
slot running now), so the parameters are the ones that did best on the recent past. Never the
days the run compares the candidates on (the scenario's first ``days`` days): a setting tuned on
the very days it is compared on looks better than it is. So the tuning days end at the live slot
or right after the compared days, whichever is later.

**Limits.** A controller candidate with the run's limits (``auto_limits``) steers to
``limit_share`` of each market's zero-fee peaks *of the tuning days* while it is tuned; a
candidate with limit fields keeps its own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from app import slots
from app.exchange.grid import build_grid
from app.exchange.scenario import Scenario
from app.operator.backtest import ZERO, backtest
from app.operator.tuning import DEFAULT_GRIDS, tune_model
from app.whatif.runs import Candidate

TUNABLE = ("controller", "predictive")


def tuning_window_slots(
    days: int, tune_days: int, slots_per_day: int, live_slot: int | None = None
) -> tuple[int, int]:
    """``(first, end)`` slots of the tuning days: the ``tune_days`` days that end at the live
    slot (the last T days of the market's history), but never before the compared days end."""
    end = max(int(live_slot or 0), (days + tune_days) * slots_per_day)
    return end - tune_days * slots_per_day, end


def _dump(model: Any) -> dict:
    from app.tariffs.registry import parse_model

    return parse_model(
        model if isinstance(model, dict) else model.model_dump(mode="json", by_alias=True)
    ).model_dump(mode="json", by_alias=True)


def tune_candidate(
    scenario: Scenario,
    candidate: Candidate,
    markets: Sequence[str],
    days: int,
    limit_share: float,
    live_slot: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[Candidate, dict]:
    """The candidate with its tuned parameters (and ``tune_days`` 0), and what tuning found:
    ``{"candidate", "model", "tune_days", "window": [first, last slot label], "best": {...},
    "rows": [{"change", "score", "peak_import_pct", "peak_export_pct", "unmatched_pct",
    "avg_price_ct_per_kwh"}], "waste_pp", "price_pp"}``.

    ``markets``: the run's markets (uuids of the grid and communities) the candidate steers.
    """
    grid = build_grid(scenario)
    level_of = {m.uuid: m.level for m in grid.markets}
    levels = {level: _dump(model) for level, model in candidate.models.items() if model is not None}
    model = next(iter(levels.values()))["model"]
    spd = scenario.slots_per_day
    first, end = tuning_window_slots(days, candidate.tune_days, spd, live_slot)
    warm_up = (candidate.tune_days // 2) * spd
    zero = backtest(
        scenario,
        ZERO,
        days=candidate.tune_days,
        markets=list(markets),
        judge_from_slot=warm_up,
        start_slot=first,
        should_stop=should_stop,
    )
    auto = candidate.auto_limits and model == "controller"

    def models_for(change: Mapping[str, Any]) -> dict[str, dict]:
        out = {}
        for uuid in markets:
            params = levels.get(level_of[uuid])
            if params is None:
                continue
            params = {**params, **change}
            if auto:
                imp, exp = zero.peaks(uuid)
                params["import_limit_kwh"] = max(limit_share * imp, 0.1)
                params["export_limit_kwh"] = max(limit_share * exp, 0.1)
            out[uuid] = params
        return out

    result = tune_model(
        scenario,
        model,
        DEFAULT_GRIDS[model],
        candidate.tune_days,
        end_slot=end,
        markets=list(markets),
        make_models=models_for,
        scored_zero=zero,
        should_stop=should_stop,
    )
    tuned_levels = {level: {**params, **result.best} for level, params in levels.items()}
    tuned = dataclasses.replace(candidate, models=tuned_levels, tune_days=0)
    minutes = scenario.slot_length_min

    def label(slot: int) -> str:
        return slots.label(scenario.start + dt.timedelta(minutes=minutes * slot))

    info = {
        "candidate": candidate.name,
        "model": model,
        "tune_days": candidate.tune_days,
        "window": [label(first), label(end - 1)],
        "best": dict(result.best),
        "rows": [
            {
                "change": dict(row.change),
                "score": row.score,
                "peak_import_pct": row.peak_import_pct,
                "peak_export_pct": row.peak_export_pct,
                "unmatched_pct": row.unmatched_pct,
                "avg_price_ct_per_kwh": row.avg_price_ct_per_kwh,
            }
            for row in result.rows
        ],
        "waste_pp": result.waste_pp,
        "price_pp": result.price_pp,
    }
    return tuned, info


def tune_candidates(
    scenario: Scenario,
    candidates: Sequence[Candidate],
    markets: Sequence[str],
    days: int,
    limit_share: float,
    live_slot: int | None = None,
    progress: Callable[[str, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[list[Candidate], list[dict]]:
    """Every candidate with ``tune_days`` tuned (``tune_candidate``), the others as they are."""
    out, infos = [], []
    for candidate in candidates:
        if not candidate.tune_days:
            out.append(candidate)
            continue
        if progress is not None:
            progress(candidate.name, 0.0)
        tuned, info = tune_candidate(scenario, candidate, markets, days, limit_share, live_slot, should_stop)
        out.append(tuned)
        infos.append(info)
    return out, infos
