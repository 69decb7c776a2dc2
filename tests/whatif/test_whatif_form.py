"""The candidate form's plain functions: per-level parameters, uploaded time-of-use tables, and
which models are offered (no browser, no request)."""

from __future__ import annotations

import base64
import io

import openpyxl
import pytest
from whatif_params import param_states

from app.console.pages import whatif as page
from app.tariffs import tou
from app.whatif import form
from app.whatif.runs import WhatIfError

TIMES = [tou.quarter_hour_label(q) for q in range(96)]


def _upload(data: bytes, kind: str = "text/csv") -> str:
    """What ``dcc.Upload`` gives for a file: a data URL."""
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def _csv(rows: int = 96, cell=lambda q: f"{q / 10:.1f}".replace(".", ",")) -> bytes:
    """A GSy-style table: ``Time;Community;Grid`` with a decimal comma, ``rows`` quarter hours."""
    lines = ["Time;Community;Grid"] + [f"{TIMES[q]}:00;{cell(q)};{cell(q + 100)}" for q in range(rows)]
    return "\n".join(lines).encode()


def _xlsx(header=("Start", "Fee"), value=lambda q: q / 4) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(list(header))
    for q in range(96):
        ws.append([TIMES[q], value(q)])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _column(k: int, level: int, name: str) -> dict:
    return {
        "id": {"type": "whatif-param", "cand": k, "field": form.TOU_COLUMN, "level": level},
        "value": name,
    }


def test_wif050_an_uploaded_csv_gives_its_columns_and_each_level_its_own():
    upload = form.read_tou_upload(_upload(_csv()), "ToU.csv")
    assert upload["filename"] == "ToU.csv" and list(upload["columns"]) == ["Community", "Grid"]
    assert upload["columns"]["Community"][3] == pytest.approx(0.3)
    assert form.tou_columns(upload) == (["Community", "Grid"], {0: "Grid", 1: "Community"})
    text, colour = form.tou_status(upload)
    assert colour == "green" and text.startswith("ToU.csv: 96 rows, Community 0-9.5; Grid 10-19.5")

    rows = form.form_rows(2, ["zero", "mine"], ["zero", "tou"], [False] * 2, [], None, [None, upload])
    _, mine = form.parse_candidates(rows, live=None)
    assert mine.models[0]["table"]["all"] == upload["columns"]["Grid"]
    assert mine.models[1]["table"]["all"] == upload["columns"]["Community"]
    # the operator picks the columns: both levels on the community column
    params = [_column(1, 0, "Community"), _column(1, 1, "Community")]
    rows = form.form_rows(2, ["zero", "mine"], ["zero", "tou"], [False] * 2, params, None, [None, upload])
    _, mine = form.parse_candidates(rows, live=None)
    assert mine.models[0] == mine.models[1] and mine.models[0]["table"]["all"][0] == 0.0


def test_wif051_an_uploaded_xlsx_with_one_column_serves_both_levels():
    upload = form.read_tou_upload(_upload(_xlsx(), "application/vnd.ms-excel"), "fees.XLSX")
    assert form.tou_columns(upload) == (["Fee"], {0: "Fee", 1: "Fee"})
    levels = form.tou_levels(upload)
    assert levels[0] == levels[1] and levels[0]["table"]["all"][95] == 23.75


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (_csv(rows=95), "short.csv", "expected 96 quarter-hour rows, found 95 (23:45 is missing)"),
        (
            _csv(cell=lambda q: "cheap" if q == 7 else "1,5"),
            "text.csv",
            "row 9, column 'Community': 'cheap' is not a number",
        ),
        (
            _csv(cell=lambda q: "-1" if q == 0 else "1"),
            "neg.csv",
            "row 2, column 'Community': '-1' is negative",
        ),
        (b"PK\x03\x04 not really a zip", "broken.xlsx", "not a valid .xlsx workbook"),
        (
            _xlsx(value=lambda q: "n/a" if q == 40 else 2),
            "text.xlsx",
            "row 42, column 'Fee': 'n/a' is not a number",
        ),
        (b"\xff\xfeT\x00i\x00m\x00e", "utf16.csv", "not UTF-8 text"),
        (b"", "empty.csv", "the file is empty"),
        (_xlsx(), "old.xls", "an old Excel .xls workbook"),
    ],
)
def test_wif052_a_bad_upload_says_what_is_wrong_and_the_run_is_refused(data, filename, message):
    upload = form.read_tou_upload(_upload(data), filename)
    assert "columns" not in upload and message in upload["error"]
    text, colour = form.tou_status(upload)
    assert colour == "red" and text.startswith(f"{filename} not used: ")
    assert form.tou_columns(upload) == (list(form.PRESET_COLUMNS), form.PRESET_LEVEL_COLUMNS)
    rows = form.form_rows(2, ["zero", "mine"], ["zero", "tou"], [False] * 2, [], None, [None, upload])
    with pytest.raises(
        WhatIfError, match=rf"candidate 2 \(mine\): the uploaded table '{filename}' is not usable"
    ):
        form.parse_candidates(rows, live=None)


def test_wif053_an_upload_that_is_not_a_data_url_or_too_big_is_refused():
    assert form.read_tou_upload(None, None) == {"filename": "the upload", "error": "nothing was uploaded"}
    cut = form.read_tou_upload("data:text/csv;base64,abc", "x.csv")["error"]
    assert cut.startswith("the upload did not arrive whole (not base64: ")
    big = form.read_tou_upload(_upload(b"x" * (tou.MAX_UPLOAD_BYTES + 1)), "big.csv")
    assert "is not a 96-row table (at most 1000 kB)" in big["error"]


def test_wif054_no_upload_is_the_preset_and_a_missing_column_is_named():
    levels = form.tou_levels(None)
    preset = tou.preset_challenge_2020()
    assert levels[0]["table"]["all"] == preset["grid"] and levels[1]["table"]["all"] == preset["community"]
    with pytest.raises(ValueError, match="communities: the 2020 preset has no column 'Grid'"):
        form.tou_levels(None, {1: "Grid"})


def test_wif055_the_communities_get_their_own_parameters_only_when_split():
    params = param_states(1, "peak_tiers") + param_states(
        1, "peak_tiers", 1, thresholds_kwh_per_slot="1, 2, 3, 4, 5, 6"
    )
    params += param_states(2, "constant", fee_ct_per_kwh=2.0) + param_states(
        2, "constant", 1, fee_ct_per_kwh=0.5
    )
    names, models = ["zero", "tiers", "flat"], ["zero", "peak_tiers", "constant"]
    split = form.form_rows(3, names, models, [False] * 3, params, [False, True, True])
    _, tiers, flat = form.parse_candidates(split, live=None)
    assert tiers.models[0]["thresholds_kwh_per_slot"] == [10, 15, 20, 25, 30, 50]
    assert tiers.models[1]["thresholds_kwh_per_slot"] == [1, 2, 3, 4, 5, 6]
    assert (flat.models[0]["fee_ct_per_kwh"], flat.models[1]["fee_ct_per_kwh"]) == (2.0, 0.5)
    same = form.form_rows(3, names, models, [False] * 3, params, [False, False, False])
    _, tiers, flat = form.parse_candidates(same, live=None)
    assert tiers.models[0] == tiers.models[1] and flat.models[1]["fee_ct_per_kwh"] == 2.0


def test_wif056_a_bad_field_of_one_level_is_named_with_the_level():
    params = param_states(1, "controller") + param_states(1, "controller", 1, kp_ct_per_kwh="fast")
    params += param_states(2, "constant", 1, fee_ct_per_kwh=None) + param_states(2, "constant")
    rows = form.form_rows(
        3, ["zero", "pi", "flat"], ["zero", "controller", "constant"], [True] * 3, params, [0, 1, 1]
    )
    with pytest.raises(WhatIfError) as info:
        form.parse_candidates(rows, live=None)
    message = str(info.value)
    assert "candidate 2 (pi), communities: Kp [ct/kWh per unit error]: 'fast' is not a number" in message
    assert "candidate 3 (flat), communities: Fee [ct/kWh]: a value is needed" in message
    assert "grid" not in message  # the grid's fields were fine


def test_wif057_a_model_the_tariff_refuses_is_named_with_its_level(console):
    params = param_states(1, "peak_tiers") + param_states(
        1, "peak_tiers", 1, thresholds_kwh_per_slot="5, 4, 3, 2, 1, 0"
    )
    rows = form.form_rows(2, ["zero", "tiers"], ["zero", "peak_tiers"], [False] * 2, params, [False, True])
    with (
        console.as_user("operator"),
        pytest.raises(WhatIfError, match=r"candidate 2 \(tiers\), communities: "),
    ):
        page.build_spec("live", 1, None, 70, rows)


def test_wif058_a_copy_of_the_live_settings_is_offered_on_the_live_scenario_only():
    live = [o["value"] for o in page.model_options("live")]
    generated = [o["value"] for o in page.model_options("generated")]
    assert form.LIVE in live and form.LIVE not in generated
    assert set(live) - set(generated) == {form.LIVE}


def test_wif059_the_predictive_controller_is_a_candidate_with_limits_per_level():
    assert "predictive" in [o["value"] for o in page.model_options("generated")]
    params = param_states(1, "predictive", import_limit_kwh=25, export_limit_kwh=60)
    params += param_states(1, "predictive", 1, import_limit_kwh=12, export_limit_kwh=28)
    rows = form.form_rows(2, ["zero", "ahead"], ["zero", "predictive"], [False] * 2, params, [False, True])
    _, ahead = form.parse_candidates(rows, live=None)
    assert ahead.models[0]["model"] == ahead.models[1]["model"] == "predictive"
    limits = [(m["import_limit_kwh"], m["export_limit_kwh"]) for m in (ahead.models[0], ahead.models[1])]
    assert limits == [(25.0, 60.0), (12.0, 28.0)]
    assert not ahead.auto_limits  # its limits are the market's own, as typed
