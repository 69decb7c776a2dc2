"""Fee-control form helpers: stored models shown again in the fields, and read back."""

from __future__ import annotations

from app.console.components.fee_control import fee_control, form_values
from app.tariffs.forms import parse_form


def test_fcl001_numbers_in_text_fields_are_plain_and_survive_a_round_trip():
    model = {
        "model": "peak_tiers",
        "thresholds_kwh_per_slot": [1000.0, 1234567.0, 10_000_000.0],
        "fees_ct_per_kwh": [0.00001, 0.1 + 0.2, 30.0],
        "above_all_ct_per_kwh": 30.0,
        "look_back_slots": 4,
        "measure": "max",
        "rule": "lower_bound",
        "cap_ct_per_kwh": None,
    }
    values = form_values(model)
    assert values["peak_tiers.thresholds_kwh_per_slot"] == "1000, 1234567, 10000000"
    assert values["peak_tiers.fees_ct_per_kwh"] == "0.00001, 0.3, 30"
    again = parse_form("peak_tiers", values)
    assert again["thresholds_kwh_per_slot"] == model["thresholds_kwh_per_slot"]  # not 1234570 (":g")
    assert again["fees_ct_per_kwh"][0] == 0.00001


def test_fcl002_slider_marks_are_plain_numbers():
    card = fee_control({"uuid": "m-1", "name": "Grid"}, "manual", 1.0, None, {"max_ct_per_kwh": 45.0}, False)
    marks = _find(card, {"type": "fee-slider", "market": "m-1"}).marks
    assert [m["label"] for m in marks] == ["0", "22.5", "45"]


def _find(component, ident):
    if getattr(component, "id", None) == ident:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found = _find(child, ident)
            if found is not None:
                return found
    return None


def test_fcl003_every_form_proposes_what_its_model_would_choose_itself():
    """A form's default is its model's default (one rule, in the model), and the defaults together
    with a market's limits make a model the registry accepts."""
    from app.console.components.fee_control import MODES
    from app.tariffs.forms import FORMS, parse_form
    from app.tariffs.registry import PARAMS, field_default, parse_model

    assert {name for name, _ in MODES} - {"manual"} == set(PARAMS) == set(FORMS)
    for model, fields in FORMS.items():
        for field in fields:
            own = field_default(model, field.name)
            if field.kind == "number" and own is not None:
                assert field.default == own, (model, field.name)
        if model == "tou":
            continue
        values = {f"{model}.{f.name}": f.default for f in fields}
        parse_model(parse_form(model, values, None))  # raises ValueError naming the bad field
