"""The states of the What-if form's parameter fields, as Dash hands them to the page's callbacks."""

from app.tariffs.forms import FORMS


def param_states(k: int, model: str, level: int = 0, **values: object) -> list[dict]:
    """The states of candidate ``k``'s fields of ``model`` at ``level``: defaults, some replaced."""
    out = []
    for field in FORMS[model]:
        ident = {"type": "whatif-param", "cand": k, "field": f"{model}.{field.name}", "level": level}
        out.append({"id": ident, "value": values.get(field.name, field.default)})
    return out
