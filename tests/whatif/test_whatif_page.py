"""The what-if page's plain functions in a logged-in request, without a browser."""

from __future__ import annotations

import base64
import io

import openpyxl
import pytest

from app.console.auth import NotAllowed
from app.console.pages import whatif as page
from app.operator.store import QUEUED
from app.security import sign_in_client
from app.tariffs.forms import FORMS
from app.whatif import form
from app.whatif.jobs import execute
from app.whatif.results import ResultStore
from app.whatif.runs import BASELINE, WhatIfError


def _params(k: int, model: str, level: int = 0, **values) -> list[dict]:
    """The states of candidate ``k``'s fields of ``model`` at ``level``: defaults, some replaced."""
    out = []
    for field in FORMS[model]:
        value = values.get(field.name, field.default)
        ident = {"type": "whatif-param", "cand": k, "field": f"{model}.{field.name}", "level": level}
        out.append({"id": ident, "value": value})
    return out


def _rows(*candidates: tuple[str, str], params: list[dict] | None = None, auto: bool = True) -> list[dict]:
    names = [n for n, _ in candidates]
    models = [m for _, m in candidates]
    return form.form_rows(len(candidates), names, models, [auto] * len(candidates), params or [])


def _spec(console, *candidates, params=None, days=1, markets=None, user="operator") -> dict:
    with console.as_user(user):
        return page.build_spec("live", days, markets, 70, _rows(*candidates, params=params))


def test_wif020_form_rows_become_candidates_per_level():
    params = _params(1, "constant", fee_ct_per_kwh=3.5) + _params(2, "controller", import_limit_kwh=None)
    rows = _rows(("zero", "zero"), ("flat", "constant"), ("pi", "controller"), ("tou", "tou"), params=params)
    zero, flat, pi, tou = form.parse_candidates(rows, live=None)
    assert zero.kind == "zero"
    assert flat.models == {0: {"model": "constant", "fee_ct_per_kwh": 3.5}} | {1: flat.models[0]}
    assert pi.auto_limits and pi.models[0]["import_limit_kwh"] == 1.0  # a placeholder: the run sets it
    assert len(tou.models[0]["table"]["all"]) == 96 and tou.models[0] != tou.models[1]  # grid vs community


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            lambda: _rows(
                ("a", "zero"), ("b", "constant"), params=_params(1, "constant", fee_ct_per_kwh="x")
            ),
            "Fee",
        ),
        (
            lambda: _rows(
                ("a", "zero"), ("b", "peak_tiers"), params=_params(1, "peak_tiers", fees_ct_per_kwh="1, y")
            ),
            r"candidate 2 \(b\): Fees per tier",
        ),
        (lambda: _rows(("a", "zero"), ("b", "controller"), params=[], auto=False), "Import limit"),
        (lambda: _rows(("a", "zero"), ("b", "live")), "live scenario only"),
        (lambda: _rows(("a", "zero"), ("b", None)), "choose a model"),
        (lambda: _rows(("a", "zero"), ("b" * 50, "zero")), "at most 40"),
    ],
)
def test_wif021_bad_candidates_are_refused_with_the_field(rows, message):
    with pytest.raises(WhatIfError, match=message):
        form.parse_candidates(rows(), live=None)


@pytest.mark.parametrize("count", [1, 7, None, 2.5])
def test_wif022_two_to_six_candidates(count):
    with pytest.raises(WhatIfError, match="compare 2 to 6"):
        form.form_rows(count, ["a"] * 6, ["zero"] * 6, [False] * 6, [])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"days": 0}, "days"),
        ({"days": 1.5}, "whole number"),
        ({"days": None}, "days"),
        ({"markets": ["nope"]}, "not among"),
    ],
)
def test_wif023_bad_run_parameters_are_refused_before_running(console, monkeypatch, kwargs, message):
    monkeypatch.setattr("app.whatif.jobs.run_whatif", lambda *a, **k: pytest.fail("ran"))
    with pytest.raises(WhatIfError, match=message):
        _spec(console, ("a", "zero"), ("b", "tou"), **kwargs)


def test_wif024_a_run_is_stored_and_gives_table_charts_workbook(console):
    spec = _spec(console, ("zero", "zero"), ("flat", "constant"), params=_params(1, "constant"))
    assert spec["markets"] == [m.uuid for m in console.managed] and spec["viewer"] is False
    seen = []
    result = execute(spec, page.job_context(console.server), progress=seen.append)
    assert seen[-1] == {BASELINE: 1.0, "zero": 1.0, "flat": 1.0}
    with console.as_user("viewer"):
        stored, again = ResultStore.of(console.settings).load(spec["run_id"])
        assert stored.rows == result.rows and again == spec
        flows, duration, fee = page.chart_figures(spec["run_id"], console.managed[1].uuid)
        section = page.results_section(result, spec)
        download = page.export_workbook(spec["run_id"], ResultStore.of(console.settings))
    assert len(flows.data) == 4 and len(fee.data) == 2 and len(duration.data) == 3
    assert duration.data[0].y[0] >= duration.data[0].y[-1]  # sorted from the highest slot down
    assert "Apply to live" in str(section) and page.ids.WHATIF_GRID in str(section)
    wb = openpyxl.load_workbook(io.BytesIO(base64.b64decode(download["content"])))
    assert wb.sheetnames == ["KPIs", "zero", "flat"]
    with console.as_user("viewer"), pytest.raises(ValueError, match="run one first"):
        ResultStore.of(console.settings).load("../../etc")


def test_wif025_apply_to_live_queues_the_models_audited_and_refuses_viewers(console):
    console.cycles(2)
    params = _params(1, "constant", fee_ct_per_kwh=4.0) + _params(2, "controller")
    spec = _spec(console, ("zero", "zero"), ("flat 4", "constant"), ("pi", "controller"), params=params)
    execute(spec, page.job_context(console.server))
    for user in ("viewer", None):
        with console.as_user(user), pytest.raises(NotAllowed):
            page.apply_candidate(spec["run_id"], 1)
    assert console.data.ops.commands() == [] and console.data.ops.settings() == {}

    with console.as_user("operator"):
        message = page.apply_candidate(spec["run_id"], 1)
    assert message.startswith("what-if:flat 4: queued")
    commands = console.data.ops.commands()
    assert {c["market_uuid"] for c in commands} == {m.uuid for m in console.managed}
    assert all(c["status"] == QUEUED and c["source"] == "what-if:flat 4" for c in commands)
    assert all(c["fee_ct_per_kwh"] == 4.0 and c["created_by"] == "operator" for c in commands)
    settings = console.data.ops.settings()
    assert {s.model["fee_ct_per_kwh"] for s in settings.values()} == {4.0}

    with console.as_user("operator"):  # the controller with each market's own limit of the run
        page.apply_candidate(spec["run_id"], 2)
    settings = console.data.ops.settings()
    limits = {u: s.model["import_limit_kwh"] for u, s in settings.items()}
    assert len(set(limits.values())) == len(console.managed)
    console.cycles(1)  # the agent sends them
    assert not console.data.ops.commands((QUEUED,))


def test_wif026_a_live_copy_runs_the_live_settings_and_is_not_applied_again(console):
    grid = console.managed[0]
    with console.as_user("operator"):
        from app.console.pages import market

        market.apply_setting(grid.uuid, "manual", 7.0, {}, None)
    spec = _spec(console, ("zero", "zero"), ("live", "live"))
    assert spec["candidates"][1]["live"][grid.uuid] == {"model": "constant", "fee_ct_per_kwh": 7.0}
    result = execute(spec, page.job_context(console.server))
    assert (result.series("live", "fee_ct_per_kwh", grid.uuid)[2:] == 7.0).all()
    with console.as_user("operator"), pytest.raises(ValueError, match="live already"):
        page.apply_candidate(spec["run_id"], 1)


def test_wif027_the_page_lays_out_six_candidates_and_the_live_markets(console):
    with console.as_user("viewer"):
        tree = str(page.layout())
        generated = page.market_options("generated")
    for m in console.managed:
        assert m.uuid in tree
    assert tree.count("'type': 'whatif-card'") == 6
    assert len(generated) == 11


def test_wif028_the_page_is_in_the_navigation_and_registered(console):
    import dash

    from app.console.dashboard import NAV

    assert ("/what-if", "What-if") in NAV
    assert any(p["path"] == "/what-if" for p in dash.page_registry.values())
    client = console.server.test_client()
    sign_in_client(client, "viewer")
    assert client.get("/what-if").status_code == 200
