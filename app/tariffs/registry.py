"""All tariff models behind one tagged type: what a market's fee setting stores and runs.

``FeeModel`` is the union of the models' params, told apart by their ``model`` field
(``{"model": "peak_tiers", ...}``); it is what ``fee_settings.model`` holds as JSON.
``compute_fee`` runs whichever model it is, ``describe`` says in one line what produced a fee (for
the fee command's ``source`` and the audit log) and ``parse_model`` turns a form's or the store's
dict into a ``FeeModel`` with an error message an operator can act on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from app.tariffs import critical_peak, peak_tiers, tou
from app.tariffs.base import FeeLimits, MarketHistory, SlotInfo
from app.tariffs.constant import ConstantParams
from app.tariffs.controller import ControllerParams
from app.tariffs.critical_peak import CriticalPeakParams, DailyWindow, DatedEvent
from app.tariffs.peak_tiers import PeakTierParams
from app.tariffs.predictive import PredictiveParams
from app.tariffs.tou import TouParams

FeeModel = Annotated[
    ConstantParams | TouParams | PeakTierParams | ControllerParams | PredictiveParams | CriticalPeakParams,
    Field(discriminator="model"),
]


@dataclass(frozen=True)
class ModelEntry:
    """A tariff model as the console offers it: its ``model`` name, the short name of the mode
    selector, the label of lists and messages, and its params class (defaults, bounds, units)."""

    name: str
    short: str
    label: str
    params: type


MODELS: tuple[ModelEntry, ...] = (
    ModelEntry("constant", "Constant", "Constant fee", ConstantParams),
    ModelEntry("tou", "Time of use", "Time-of-use table", TouParams),
    ModelEntry("peak_tiers", "Peak tiers", "Import/export peak tiers", PeakTierParams),
    ModelEntry("controller", "Controller", "Congestion controller (PI)", ControllerParams),
    ModelEntry("predictive", "Predictive controller", "Predictive congestion controller", PredictiveParams),
    ModelEntry("critical_peak", "Critical peak", "Critical-peak overlay", CriticalPeakParams),
)
"""The one list of tariff models: the market page's modes, What-if's candidates, the labels."""

MODEL_LABELS: dict[str, str] = {m.name: m.label for m in MODELS}

_NEXT_FEE: dict[str, Callable[[MarketHistory, SlotInfo, Any, FeeLimits], float]] = {
    **critical_peak.BASE_NEXT_FEE,
    "critical_peak": critical_peak.next_fee,
}
PARAMS: dict[str, type] = {m.name: m.params for m in MODELS}
"""Each model's params class by its ``model`` name: where forms take their defaults and bounds."""


def field_default(model: str, field: str) -> Any:
    """The default the model gives ``field`` (``None`` when it has none: the form must ask)."""
    info = PARAMS[model].model_fields.get(field)
    if info is None or info.is_required():
        return None
    return info.get_default(call_default_factory=True)


def field_minimum(model: str, field: str) -> float | None:
    """The lower bound (``ge`` or ``gt``) pydantic checks on a numeric ``field``, if any."""
    info = PARAMS[model].model_fields.get(field)
    for rule in info.metadata if info is not None else ():
        for name in ("ge", "gt"):
            if getattr(rule, name, None) is not None:
                return float(getattr(rule, name))
    return None


_ADAPTER: TypeAdapter[Any] = TypeAdapter(FeeModel)
# Union tags pydantic puts into error locations; they are not fields the operator could fix.
_TAGS = {*MODEL_LABELS, "dated", "daily"}


def compute_fee(model: FeeModel, history: MarketHistory, slot: SlotInfo, limits: FeeLimits) -> float:
    """The fee [ct/kWh] ``model`` sets for ``slot``: finite and within ``limits``, whatever the history."""
    return limits.clamp(_NEXT_FEE[model.model](history, slot, model, limits))


def parse_model(data: dict) -> FeeModel:
    """A ``FeeModel`` from its dict (JSON) form; ``ValueError`` naming each bad field's path.

    E.g. ``"base.fee_ct_per_kwh: Input should be greater than or equal to 0"``.
    """
    if not isinstance(data, dict):
        raise ValueError(f"a fee model is a JSON object, got {type(data).__name__}")
    if "model" not in data:
        raise ValueError(f"model: missing; one of {', '.join(MODEL_LABELS)}")
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            path = ".".join(_path_part(p) for p in error["loc"] if p not in _TAGS).replace(".[", "[")
            message = error["msg"].removeprefix("Value error, ")
            if not path and error["type"].startswith("union_tag"):
                path = "model"  # an unknown model name
            problems.append(f"{path}: {message}" if path else message)  # else it names its fields
        raise ValueError("; ".join(problems)) from None


def _path_part(part: str | int) -> str:
    return f"[{part}]" if isinstance(part, int) else str(part)


def _num(value: float) -> str:
    """Six significant digits (every digit before the point), never an exponent: 5000000, 1234567,
    0.00001, 1.23457 (``:g`` gives 5e+06 and 1.23457e+06)."""
    if not math.isfinite(value):
        return f"{value:g}"
    digits = max(6, len(str(int(abs(value)))))
    text = format(Decimal(f"{value:.{digits}g}"), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _span(values: list[float]) -> str:
    low, high = min(values), max(values)
    return f"{_num(low)} ct/kWh" if low == high else f"{_num(low)}-{_num(high)} ct/kWh"


def _tou_preset_name(params: TouParams) -> str | None:
    if set(params.table) != {"all"}:
        return None
    for name, values in tou.preset_challenge_2020().items():
        if params.table["all"] == values:
            return f"challenge 2020 {name}"
    return None


def _is_challenge_2020(params: PeakTierParams) -> bool:
    preset = peak_tiers.preset_challenge_2020()
    return (
        params.thresholds_kwh_per_slot == preset.thresholds_kwh_per_slot
        and params.fees_ct_per_kwh == preset.fees_ct_per_kwh
        and params.above_all_ct_per_kwh == preset.above_all_ct_per_kwh
    )


def _event_summary(events: list[DatedEvent | DailyWindow]) -> str:
    dated = sum(isinstance(e, DatedEvent) for e in events)
    daily = [e for e in events if isinstance(e, DailyWindow)]
    parts = []
    if dated:
        parts.append(f"{dated} dated event{'s' if dated > 1 else ''}")
    for window in daily[:3]:
        days = "daily" if len(window.days) == 7 else ",".join(d[:3] for d in window.days)
        parts.append(f"{window.from_}-{window.to} {days}")
    if len(daily) > 3:
        parts.append(f"{len(daily) - 3} more windows")
    return ", ".join(parts) or "no events"


def describe(model: FeeModel) -> str:
    """One line with units saying which model and parameters set a fee, for the audit log.

    E.g. ``"peak tiers (max, 4-slot mean, challenge 2020)"``.
    """
    if isinstance(model, ConstantParams):
        return f"constant {_num(model.fee_ct_per_kwh)} ct/kWh"
    if isinstance(model, TouParams):
        days = "all days" if "all" in model.table else "weekday/saturday/sunday"
        values = [v for column in model.table.values() for v in column]
        name = _tou_preset_name(model)
        return f"time of use ({name or days}, {_span(values)})"
    if isinstance(model, PeakTierParams):
        tiers = (
            "challenge 2020"
            if _is_challenge_2020(model)
            else f"{len(model.thresholds_kwh_per_slot)} tiers "
            f"{_num(model.thresholds_kwh_per_slot[0])}-{_num(model.thresholds_kwh_per_slot[-1])} kWh/slot "
            f"-> {_span(model.fees_ct_per_kwh)}"
        )
        extras = [] if model.rule == "lower_bound" else ["SDK upper-bound rule"]
        if model.cap_ct_per_kwh is not None:
            extras.append(f"cap {_num(model.cap_ct_per_kwh)} ct/kWh")
        parts = [model.measure, f"{model.look_back_slots}-slot mean", tiers, *extras]
        return f"peak tiers ({', '.join(parts)})"
    if isinstance(model, ControllerParams):
        extras = []
        if model.deadband:
            extras.append(f"deadband {_num(model.deadband * 100)} %")
        if model.forecast_weight:
            extras.append(f"yesterday weight {_num(model.forecast_weight)}")
        return (
            f"congestion controller (import <= {_num(model.import_limit_kwh)}, export <= "
            f"{_num(model.export_limit_kwh)} kWh/slot, kp {_num(model.kp_ct_per_kwh)}, ki "
            f"{_num(model.ki_ct_per_kwh)} ct/kWh, fee {_num(model.min_fee_ct_per_kwh)}-"
            f"{_num(model.max_fee_ct_per_kwh)} ct/kWh, step <= {_num(model.max_step_ct_per_kwh)} ct/kWh"
            + "".join(f", {e}" for e in extras)
            + ")"
        )
    if isinstance(model, PredictiveParams):
        return (
            f"predictive controller (import <= {_num(model.import_limit_kwh)}, export <= "
            f"{_num(model.export_limit_kwh)} kWh/slot, target {_num(model.target_share * 100)} %, gain "
            f"{_num(model.gain_ct_per_kwh)} ct/kWh, fee {_num(model.min_fee_ct_per_kwh)}-"
            f"{_num(model.max_fee_ct_per_kwh)} ct/kWh, fall <= {_num(model.max_fall_ct_per_kwh)} ct/kWh)"
        )
    if isinstance(model, CriticalPeakParams):
        events = _event_summary(model.events)
        return f"critical peak x{_num(model.multiplier)} ({events}) on {describe(model.base)}"
    raise TypeError(f"not a fee model: {type(model).__name__}")
