"""The fee control of one market: mode, manual slider with a number box, model parameters.

Every id is a pattern-matching dict keyed by the market's uuid (``{"type": "fee-slider",
"market": uuid}``), so one set of callbacks serves every market on the page. Model parameters
are fields ``{"type": "fee-param", "market": uuid, "field": "<model>.<name>"}``: the callbacks
collect them with ``ALL`` and ``parse_form`` turns them into a model dict that the tariff
registry validates. Units are in every label.
"""

from __future__ import annotations

import dash_mantine_components as dmc
from dash import dcc, html
from dash.development.base_component import Component

from app.console.components.formatting import plain_number
from app.tariffs.forms import DAYS, FORMS, Field
from app.tariffs.registry import MODELS
from app.tariffs.tou import MAX_UPLOAD_BYTES

MODES = [("manual", "Manual"), *((m.name, m.short) for m in MODELS)]
"""The fee control's modes: manual, or one of the tariff models (:data:`app.tariffs.registry.MODELS`)."""


def param_id(market: str, model: str, name: str) -> dict:
    return {"type": "fee-param", "market": market, "field": f"{model}.{name}"}


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


def _input(market: str, model: str, field: Field, value: object, disabled: bool) -> Component:
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
