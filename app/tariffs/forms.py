"""The tariff models' parameter forms, without a web framework: which fields a model's form has
(name, label with its unit, kind, default), and ``parse_form`` turning what the inputs hold into the
model dict that :func:`app.tariffs.registry.parse_model` validates.

One place for both forms that set a model — the market page's fee control and What-if's candidates
— so they cannot disagree. Numbers default to the model's own defaults
(:func:`app.tariffs.registry.field_default`): a form never proposes what the model would not choose
itself; the forms' own defaults stay only where the model has none (limits, which are the market's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from app.tariffs.registry import field_default

DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str  # "number" | "select" | "numbers" | "text" | "days"
    default: object = None
    options: tuple[str, ...] = ()
    required: bool = True


FORMS: dict[str, list[Field]] = {
    "constant": [Field("fee_ct_per_kwh", "Fee [ct/kWh]", "number", 2.0)],
    "tou": [],  # a table: uploaded (CSV/xlsx) or the preset, see tou_section
    "peak_tiers": [
        Field(
            "thresholds_kwh_per_slot", "Thresholds [kWh/slot], ascending", "numbers", "10, 15, 20, 25, 30, 50"
        ),
        Field("fees_ct_per_kwh", "Fees per tier [ct/kWh]", "numbers", "0.9, 2.1, 3, 3.9, 6, 30"),
        Field("above_all_ct_per_kwh", "Above all thresholds (SDK rule) [ct/kWh]", "number", 30.0),
        Field("look_back_slots", "Moving average over [slots]", "number", 4),
        Field("measure", "Measure", "select", "max", ("max", "net")),
        Field("rule", "Tier rule", "select", "lower_bound", ("lower_bound", "upper_bound")),
        Field("cap_ct_per_kwh", "Cap [ct/kWh] (empty: none)", "number", 30.0, required=False),
    ],
    "controller": [
        Field("import_limit_kwh", "Import limit [kWh/slot]", "number", 20.0),
        Field("export_limit_kwh", "Export limit [kWh/slot]", "number", 30.0),
        Field("kp_ct_per_kwh", "Kp [ct/kWh per unit error]", "number", 2.0),
        Field("ki_ct_per_kwh", "Ki [ct/kWh per unit error and slot]", "number", 5.0),
        Field("base_fee_ct_per_kwh", "Start fee [ct/kWh]", "number", 1.0),
        Field("min_fee_ct_per_kwh", "Minimum fee [ct/kWh]", "number", 0.0),
        Field("max_fee_ct_per_kwh", "Maximum fee [ct/kWh]", "number", 40.0),
        Field("max_step_ct_per_kwh", "Largest rise per slot [ct/kWh]", "number", 6.0),
        Field("max_step_down_ct_per_kwh", "Largest fall per slot [ct/kWh]", "number", 0.5, required=False),
    ],
    "predictive": [  # gain, smoothing and fall as bench/steering.py tuned them; aim just under the limit
        Field("import_limit_kwh", "Import limit [kWh/slot]", "number", 25.0),
        Field("export_limit_kwh", "Export limit [kWh/slot]", "number", 60.0),
        Field("target_share", "Aim at [share of the limit, 0-1.5]", "number", 0.9),
        Field("gain_ct_per_kwh", "Gain [ct/kWh per unit forecast error]", "number", 25.0),
        Field("weight_yesterday", "Weight of yesterday [0-1]", "number", 0.7),
        Field("weight_last_week", "Weight of last week [0-1]", "number", 0.3),
        Field("min_fee_ct_per_kwh", "Minimum fee [ct/kWh]", "number", 0.0),
        Field("max_fee_ct_per_kwh", "Maximum fee [ct/kWh]", "number", 40.0),
        Field("max_fall_ct_per_kwh", "Largest fall per slot [ct/kWh]", "number", 0.5),
        Field("smooth_slots", "Learned fee smoothed over [± slots]", "number", 2),
        Field("base_fee_ct_per_kwh", "Start fee [ct/kWh]", "number", 1.0),
    ],
    "critical_peak": [
        Field("base_fee_ct_per_kwh", "Base fee (constant) [ct/kWh]", "number", 2.0),
        Field("multiplier", "Multiplier in events [x]", "number", 4.0),
        Field("from", "Event window from [HH:MM]", "text", "17:00"),
        Field("to", "Event window to [HH:MM]", "text", "20:00"),
        Field("days", "Event days", "days", DAYS[:5]),
    ],
}


def _with_model_defaults(forms: dict[str, list[Field]]) -> dict[str, list[Field]]:
    """The forms with each number's default taken from its model (``app.tariffs.registry``), so a
    form never proposes what the model would not choose itself; the forms' own defaults stay only
    where the model has none (limits, which are the market's)."""
    out = {}
    for model, fields in forms.items():
        out[model] = [
            replace(f, default=field_default(model, f.name))
            if f.kind == "number" and field_default(model, f.name) is not None
            else f
            for f in fields
        ]
    return out


FORMS = _with_model_defaults(FORMS)


def _numbers(text: object) -> list[float]:
    if isinstance(text, list):
        return [float(v) for v in text]
    parts = [p.strip() for p in str(text or "").replace(";", ",").split(",") if p.strip()]
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"'{text}' is not a list of numbers separated by commas") from None


def parse_form(model: str, values: Mapping[str, object], tou_table: dict | None = None) -> dict:
    """The model dict (for ``app.tariffs.registry.parse_model``) from the form's field values.

    ``values`` maps ``"<model>.<field>"`` to what the inputs hold. Raises ``ValueError`` naming
    the field when a value is missing or not a number.
    """
    if model == "tou":
        if not tou_table:
            raise ValueError("upload a 96-row table (CSV or xlsx) or pick the preset first")
        return {"model": "tou", "table": tou_table}
    out: dict[str, object] = {}
    for field in FORMS[model]:
        raw = values.get(f"{model}.{field.name}")
        if raw is None or raw == "":
            if field.required:
                raise ValueError(f"{field.label}: a value is needed")
            out[field.name] = None
            continue
        if field.kind == "numbers":
            try:
                out[field.name] = _numbers(raw)
            except ValueError as exc:
                raise ValueError(f"{field.label}: {exc}") from None
        elif field.kind == "number":
            try:
                out[field.name] = float(raw)
            except (TypeError, ValueError):
                raise ValueError(f"{field.label}: '{raw}' is not a number") from None
        else:
            out[field.name] = raw
    if model == "critical_peak":
        return {
            "model": "critical_peak",
            "base": {"model": "constant", "fee_ct_per_kwh": out["base_fee_ct_per_kwh"]},
            "multiplier": out["multiplier"],
            "events": [{"from": out["from"], "to": out["to"], "days": out["days"]}],
        }
    if model == "peak_tiers":
        out["look_back_slots"] = int(out["look_back_slots"])
    if model == "predictive" and float(out["smooth_slots"]).is_integer():
        out["smooth_slots"] = int(out["smooth_slots"])  # else the model says it wants a whole number
    if model == "controller" and out.get("max_step_down_ct_per_kwh") is None:
        out.pop("max_step_down_ct_per_kwh", None)
    return {"model": model, **{k: v for k, v in out.items() if not (v is None and k == "cap_ct_per_kwh")}}
