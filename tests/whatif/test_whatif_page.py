"""The what-if page's plain functions in a logged-in request, without a browser."""

from __future__ import annotations

import base64
import io
import itertools

import openpyxl
import pytest
from whatif_params import param_states

from app.console.auth import NotAllowed
from app.console.pages import whatif as page
from app.operator.store import QUEUED
from app.security import sign_in_client
from app.whatif import form
from app.whatif.jobs import execute
from app.whatif.results import ResultStore
from app.whatif.runs import BASELINE, WhatIfError


def _rows(*candidates: tuple[str, str], params: list[dict] | None = None, auto: bool = True) -> list[dict]:
    names = [n for n, _ in candidates]
    models = [m for _, m in candidates]
    return form.form_rows(len(candidates), names, models, [auto] * len(candidates), params or [])


def _spec(console, *candidates, params=None, days=1, markets=None, user="operator") -> dict:
    with console.as_user(user):
        return page.build_spec("live", days, markets, 70, _rows(*candidates, params=params))


def test_wif020_form_rows_become_candidates_per_level():
    params = param_states(1, "constant", fee_ct_per_kwh=3.5) + param_states(
        2, "controller", import_limit_kwh=None
    )
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
                ("a", "zero"), ("b", "constant"), params=param_states(1, "constant", fee_ct_per_kwh="x")
            ),
            "Fee",
        ),
        (
            lambda: _rows(
                ("a", "zero"),
                ("b", "peak_tiers"),
                params=param_states(1, "peak_tiers", fees_ct_per_kwh="1, y"),
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
    spec = _spec(console, ("zero", "zero"), ("flat", "constant"), params=param_states(1, "constant"))
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
    params = param_states(1, "constant", fee_ct_per_kwh=4.0) + param_states(2, "controller")
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


def _tuned_rows(model: str, tune_days: object, params: list[dict]) -> list[dict]:
    return form.form_rows(
        2, ["zero", "ahead"], ["zero", model], [False, False], params, [False, False], None, [None, tune_days]
    )


def test_wif060_a_candidate_tuned_on_the_last_days_runs_with_the_best_of_the_grid_shown_beside_it(console):
    """ "Tune on the last 1 day" for a predictive controller: the run tunes it on a day that is
    not the compared one (the live market's last day, or the day after the compared ones), runs
    it with the winner, and the results show the winner next to every setting it tried."""
    console.cycles(2)
    params = param_states(1, "predictive", import_limit_kwh=2, export_limit_kwh=2)
    with console.as_user("operator"):
        spec = page.build_spec("live", 1, None, 70, _tuned_rows("predictive", 1, params))
    assert spec["candidates"][1]["tune_days"] == 1 and spec["candidates"][0]["tune_days"] == 0
    assert isinstance(spec["live_slot"], int)
    result = execute(spec, page.job_context(console.server))
    [info] = result.tuning
    from app.operator.tuning import PREDICTIVE_GRID

    assert info["candidate"] == "ahead" and info["tune_days"] == 1
    assert len(info["rows"]) == len(list(itertools.product(*PREDICTIVE_GRID.values())))
    best = min(info["rows"], key=lambda row: row["score"])
    assert info["best"] == best["change"]
    # the compared run is the tuned one, in every market it steers
    for model in result.models["ahead"].values():
        assert model["model"] == "predictive"
        assert {k: model[k] for k in info["best"]} == info["best"]
        assert model["import_limit_kwh"] == 2.0  # the candidate's own fields stay
    assert info["window"][0] > result.slot_labels[-1]  # tuned after the compared day, not on it
    section = str(page.results_section(result, spec))
    assert "tuned on" in section and "chosen" in section and "tuned: " in section


def test_wif061_only_controllers_are_tuned_and_on_1_to_7_days():
    constant = param_states(1, "constant")
    with pytest.raises(WhatIfError, match=r"candidate 2 \(ahead\): only a controller or predictive"):
        form.parse_candidates(_tuned_rows("constant", 2, constant), live=None)
    predictive = param_states(1, "predictive", import_limit_kwh=2, export_limit_kwh=2)
    with pytest.raises(WhatIfError, match=r"candidate 2 \(ahead\): tune on 9 days"):
        form.parse_candidates(_tuned_rows("predictive", 9, predictive), live=None)
    _, ahead = form.parse_candidates(_tuned_rows("predictive", 3, predictive), live=None)
    assert ahead.tune_days == 3


def test_wif062_the_tuning_days_are_the_last_ones_but_never_the_compared_ones():
    from app.whatif.tune import tuning_window_slots

    # the live market is on day 10: the last 3 days before it
    assert tuning_window_slots(days=2, tune_days=3, slots_per_day=96, live_slot=960) == (672, 960)
    # a market on day 1 (or no live market): the days right after the 2 compared ones
    assert tuning_window_slots(days=2, tune_days=3, slots_per_day=96, live_slot=96) == (192, 480)
    assert tuning_window_slots(days=2, tune_days=3, slots_per_day=96) == (192, 480)
