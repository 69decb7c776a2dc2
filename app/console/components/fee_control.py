"""The fee control of one market: mode, manual slider with a number box, model parameters.

Every id is a pattern-matching dict keyed by the market's uuid (``{"type": "fee-slider",
"market": uuid}``), so one set of callbacks serves every market on the page. Model parameters
are fields ``{"type": "fee-param", "market": uuid, "field": "<model>.<name>"}``: the callbacks
collect them with ``ALL`` and ``parse_form`` turns them into a model dict that the tariff
registry validates. Units are in every label.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import dash_mantine_components as dmc
from dash import dcc, html

from app.console.components.formatting import plain_number
from app.tariffs.tou import MAX_UPLOAD_BYTES

MODES = [
    ("manual", "Manual"),
    ("constant", "Constant"),
    ("tou", "Time of use"),
    ("peak_tiers", "Peak tiers"),
    ("controller", "Controller"),
    ("predictive", "Predictive controller"),
    ("critical_peak", "Critical peak"),
]
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
    from dataclasses import replace

    from app.tariffs.registry import field_default

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


def param_id(market: str, model: str, name: str) -> dict:
    return {"type": "fee-param", "market": market, "field": f"{model}.{name}"}


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


def form_values(model: dict | None) -> dict[str, object]:
    """Field values that show a stored model again (the inverse of ``parse_form``)."""
    if not model:
        return {}
    name = model.get("model")
    if name == "critical_peak":
        event = (model.get("events") or [{}])[0]
        return {
            "critical_peak.base_fee_ct_per_kwh": (model.get("base") or {}).get("fee_ct_per_kwh"),
            "critical_peak.multiplier": model.get("multiplier"),
            "critical_peak.from": event.get("from"),
            "critical_peak.to": event.get("to"),
            "critical_peak.days": event.get("days"),
        }
    out = {}
    for field in FORMS.get(name, []):
        value = model.get(field.name)
        if field.kind == "numbers" and isinstance(value, list):
            value = ", ".join(plain_number(v) for v in value)
        out[f"{name}.{field.name}"] = value
    return out


def _input(market: str, model: str, field: Field, value: object, disabled: bool):
    ident = param_id(market, model, field.name)
    value = field.default if value is None else value
    if field.kind == "number":
        return dmc.NumberInput(
            id=ident,
            label=field.label,
            value=value,
            disabled=disabled,
            size="xs",
            decimalScale=3,
            allowNegative=False,
        )
    if field.kind == "select":
        return dmc.Select(
            id=ident,
            label=field.label,
            value=value,
            data=list(field.options),
            disabled=disabled,
            size="xs",
            allowDeselect=False,
        )
    if field.kind == "days":
        return dmc.MultiSelect(
            id=ident, label=field.label, value=value, data=DAYS, disabled=disabled, size="xs"
        )
    return dmc.TextInput(id=ident, label=field.label, value=value, disabled=disabled, size="xs")


def fee_control(
    market: dict,
    setting_mode: str,
    manual_fee: float,
    model: dict | None,
    fee_limits: dict,
    disabled: bool,
    queue_label: str = "Queue",
) -> dmc.Paper:
    """The control card of one market; ``disabled`` for viewers (the server refuses them too).

    ``queue_label`` names the slot a click reaches ("Queue for 12:15 CEST",
    :func:`app.console.components.fee_status.queue_button_text`); the page keeps it current.
    """
    uid = market["uuid"]
    mode = (model or {}).get("model") if setting_mode == "model" else "manual"
    values = form_values(model)
    top = min(float(fee_limits.get("max_ct_per_kwh", 100.0)), 50.0)
    sections = [
        html.Div(
            id={"type": "fee-section", "market": uid, "mode": "manual"},
            children=dmc.Stack(
                [
                    dmc.Slider(
                        id={"type": "fee-slider", "market": uid},
                        min=0,
                        max=top,
                        step=0.1,
                        value=manual_fee,
                        disabled=disabled,
                        marks=[{"value": v, "label": plain_number(v)} for v in (0, top / 2, top)],
                        updatemode="mouseup",
                        thumbLabel=f"Fee of {market['name']} [ct/kWh]",
                        mb="lg",
                    ),
                    dmc.NumberInput(
                        id={"type": "fee-input", "market": uid},
                        label="Fee [ct/kWh]",
                        value=manual_fee,
                        min=0,
                        max=float(fee_limits.get("max_ct_per_kwh", 100.0)),
                        # keep what was typed: clamping on blur would turn a refused -3 into a
                        # 0 that the next click queues; the server checks the limits and says why
                        clampBehavior="none",
                        step=0.1,
                        decimalScale=2,
                        disabled=disabled,
                        size="xs",
                    ),
                ],
                gap="xs",
            ),
        )
    ]
    for name, _ in MODES[1:]:
        fields = [_input(uid, name, f, values.get(f"{name}.{f.name}"), disabled) for f in FORMS[name]]
        if name == "tou":
            fields = [
                dcc.Upload(
                    id={"type": "tou-upload", "market": uid},
                    children=dmc.Button(
                        "Upload CSV / xlsx (96 rows)", variant="light", size="xs", disabled=disabled
                    ),
                    disabled=disabled,
                    max_size=MAX_UPLOAD_BYTES,  # refused in the browser; the server checks again
                ),
                dmc.Select(
                    id={"type": "tou-preset", "market": uid},
                    label="or a preset",
                    data=["challenge 2020: grid", "challenge 2020: community"],
                    size="xs",
                    disabled=disabled,
                    clearable=True,
                ),
                dmc.Text(
                    id={"type": "tou-status", "market": uid},
                    size="xs",
                    c="dimmed",
                    children="table in use" if (model or {}).get("model") == "tou" else "no table yet",
                ),
            ]
        sections.append(
            html.Div(
                id={"type": "fee-section", "market": uid, "mode": name},
                # the time-of-use fields one under the other: side by side at 1366 px the upload
                # button covered "or a preset" and the preset box cut its names
                children=dmc.SimpleGrid(
                    fields, cols=1 if name == "tou" else 2, spacing="xs", verticalSpacing="xs"
                ),
                style=None if mode == name else {"display": "none"},
            )
        )
    sections[0].style = None if mode == "manual" else {"display": "none"}
    return dmc.Paper(
        [
            dmc.Group(
                [
                    dmc.Text(f"Fee of {market['name']}", fw=600),
                    dmc.Badge(id={"type": "fee-mode-badge", "market": uid}, children=mode, variant="light"),
                ],
                justify="space-between",
            ),
            dmc.Select(
                id={"type": "fee-mode", "market": uid},
                value=mode,
                label="Set the fee by",
                data=[{"value": v, "label": label} for v, label in MODES],
                size="xs",
                disabled=disabled,
                allowDeselect=False,
                my="xs",
            ),
            *sections,
            dcc.Store(id={"type": "tou-table", "market": uid}, data=(model or {}).get("table")),
            dmc.Group(
                [
                    dmc.Button(
                        queue_label,
                        id={"type": "fee-queue", "market": uid},
                        size="xs",
                        disabled=disabled,
                    ),
                    dmc.Text(id={"type": "fee-preview", "market": uid}, size="sm"),
                ],
                mt="sm",
            ),
            # why the button is disabled while the console is cut off (set in the browser)
            html.Div(
                id={"type": "fee-offline", "market": uid},
                role="status",
                style={"color": "#C92A2A", "fontSize": "var(--mantine-font-size-sm)"},
            ),
            dmc.Text(id={"type": "fee-message", "market": uid}, size="sm", mt="xs"),
            dcc.Store(id={"type": "fee-command", "market": uid}),
        ],
        p="sm",
        withBorder=True,
        radius="md",
    )
