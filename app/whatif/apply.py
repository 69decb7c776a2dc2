"""Which live market gets which model when an operator applies a What-if candidate ("Apply to
live"). The console checks who may, and queues the fees through :mod:`app.operator.fee_service`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from app.tariffs.registry import FeeModel, parse_model
from app.whatif.runs import LEVELS, LIVE, WhatIfResult


def plan(
    result: WhatIfResult, spec: Mapping, index: object, live_markets: Sequence[Mapping]
) -> tuple[str, list[tuple[Mapping, FeeModel]]]:
    """The candidate's name and ``(market, model)`` for each live market it sets.

    When the run was on the live grid each live market of the run gets the model it ran with
    (a controller's own limits included); after a run on another grid (the generated one) each
    live market of a level the run covered gets the candidate's model of that level — not a
    controller whose limits came from the other grid's peaks (``ValueError``, as for a copy of
    the live settings or a candidate that sets nothing here).
    """
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(result.candidates):
        raise ValueError("no such candidate in this run")
    name, kind = result.candidates[index], result.kinds[index]
    if kind == LIVE:
        raise ValueError(f"{name} is a copy of the live settings: they are live already")
    cand = spec["candidates"][index]
    markets = [m for m in live_markets if m["level"] in LEVELS]
    same_grid = any(m["uuid"] in result.market_uuids for m in markets)
    targets = []
    for market in markets:
        if same_grid:
            if market["uuid"] not in result.market_uuids:
                continue
            model = result.models[name].get(market["uuid"])
        else:
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
        if model is not None:
            targets.append((market, parse_model(model)))
    if not targets:
        raise ValueError(f"{name} sets no model for the live markets of this run")
    return name, targets
