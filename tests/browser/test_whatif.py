"""The what-if page in a browser (feature code ``wif``): a background run with progress, its table
and charts, apply to live, the Excel export, and cancel; the candidate form's uploads, levels and
the models offered per scenario.

Runs use the generated 1,000-house grid for 4 and 7 days, long enough (seconds) to see the
progress bars and to cancel in the middle; the live exchange of ``conftest.py`` keeps running.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import openpyxl
import psutil
from console_ui import choose, login, type_into
from dash.testing.wait import until
from selenium.webdriver.common.keys import Keys

from app import slots
from app.console import ids

GENERATED = "a generated grid, 10 communities x 100 houses"
SHOTS = Path(__file__).resolve().parents[2] / "shots"


def cid(kind: str, cand: int) -> str:
    """CSS selector of the component with id ``{"type": kind, "cand": cand}``."""
    return f"[id='{json.dumps({'cand': cand, 'type': kind}, separators=(',', ':'))}']"


def start_run(dash_duo, candidates: int, days: int) -> None:
    login(dash_duo, "operator", "/what-if")
    choose(dash_duo, f"#{ids.WHATIF_SCENARIO}", GENERATED)
    type_into(dash_duo, f"#{ids.WHATIF_DAYS}", str(days))
    type_into(dash_duo, f"#{ids.WHATIF_COUNT}", str(candidates))
    until(
        lambda: not dash_duo.find_element(cid("whatif-card", candidates)).is_displayed(),
        10,
        msg="the cards beyond the count are still shown",
    )
    click(dash_duo, f"#{ids.WHATIF_RUN}")
    dash_duo.wait_for_contains_text(f"#{ids.WHATIF_MESSAGE}", "Running", timeout=10)


def click(dash_duo, selector: str) -> None:
    """Click what ``selector`` finds once it is enabled, with a DOM click event: the results
    grow (the charts load) while the page scrolls, so a click at coordinates can miss."""
    element = dash_duo.wait_for_element(selector)
    until(element.is_enabled, 10, msg=f"{selector} stays disabled")
    dash_duo.driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", element
    )


def progress_shown(dash_duo) -> int:
    """How many progress bars are shown (0 while the box is hidden); one script, no stale elements."""
    return dash_duo.driver.execute_script(
        """
        const box = document.getElementById(arguments[0]);
        const shown = box && getComputedStyle(box).display !== 'none';
        return shown ? box.querySelectorAll('.whatif-bar').length : 0;
        """,
        ids.WHATIF_PROGRESS,
    )


def job_processes() -> list[psutil.Process]:
    """The background jobs and their workers: what the fork server of this process started."""
    servers = [p for p in psutil.Process().children() if "forkserver" in " ".join(p.cmdline())]
    return [p for s in servers for p in s.children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]


def test_wif101_two_candidates_progress_then_table_charts_apply_and_export(live, dash_duo):
    start_run(dash_duo, 2, days=4)  # "zero fee" and "time of use"
    until(lambda: progress_shown(dash_duo) == 3, 20, msg="no progress bar per run")
    dash_duo.wait_for_element(f"#{ids.WHATIF_GRID} .ag-row", timeout=60)
    until(lambda: not progress_shown(dash_duo), 10, msg="the progress bars stay")
    dash_duo.wait_for_contains_text(f"#{ids.WHATIF_MESSAGE}", "Done in ", timeout=10)
    # every row the grid holds (it scrolls inside a fixed height: not all of them are drawn)
    rows = dash_duo.driver.execute_script(
        "const out = []; dash_ag_grid.getApi(arguments[0]).forEachNode((n) => out.push(n.data)); return out;",
        ids.WHATIF_GRID,
    )
    assert len(rows) == 11 * 12  # grid and 10 communities, 12 KPIs each
    assert "zero fee" not in rows[0]["best"]  # the zero-fee candidate is the reference column only
    peak = next(r for r in rows if r["label"] == "Peak import" and r["market"] == "Grid")
    assert peak["unit"] == "kWh/slot" and peak["better"] == "lower"
    assert dash_duo.driver.find_elements("css selector", f"#{ids.WHATIF_GRID} .whatif-best")
    for graph in (ids.WHATIF_FLOWS, ids.WHATIF_DURATION, ids.WHATIF_FEE):
        dash_duo.wait_for_element(f"#{graph} .main-svg", timeout=20)
    legend = dash_duo.find_element(f"#{ids.WHATIF_DURATION}").text
    assert "zero fee (reference)" in legend and "time of use" in legend

    click(dash_duo, cid("whatif-apply", 1))
    dash_duo.wait_for_contains_text(f"#{ids.WHATIF_APPLY_MESSAGE}", "what-if:time of use: queued", timeout=30)
    commands = [c for c in live.ops.commands() if c["source"] == "what-if:time of use"]
    assert {c["market_uuid"] for c in commands} == {m.uuid for m in live.managed}
    assert all(c["created_by"] == "operator" for c in commands)
    assert {s.model["model"] for s in live.ops.settings().values()} == {"tou"}

    click(dash_duo, f"#{ids.WHATIF_EXPORT}")
    download = Path(dash_duo.download_path)
    assert not list(download.glob("what-if-*")), "a download before the click"
    path = until(
        lambda: (
            (f := next(download.glob("what-if-*.xlsx"), None))
            and not list(download.glob("*.crdownload"))
            and f
        ),
        30,
        msg=f"no download in {download}",
    )
    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        assert workbook.sheetnames == ["KPIs", "zero fee", "time of use"]
    finally:
        workbook.close()
    assert dash_duo.get_logs() == []


def test_wif102_cancel_stops_the_run(live, dash_duo):
    start_run(dash_duo, 4, days=7)
    until(lambda: progress_shown(dash_duo), 20, msg="no progress")
    assert job_processes(), "no background job runs"
    cancel = dash_duo.find_element(f"#{ids.WHATIF_CANCEL}")
    assert cancel.is_enabled()
    click(dash_duo, f"#{ids.WHATIF_CANCEL}")
    dash_duo.wait_for_text_to_equal(f"#{ids.WHATIF_MESSAGE}", "Run cancelled.", timeout=10)
    until(lambda: dash_duo.find_element(f"#{ids.WHATIF_RUN}").is_enabled(), 10, msg="Run stays disabled")
    until(lambda: not job_processes(), 10, msg="the job or its workers still run")
    time.sleep(1.5)  # three polls: no result comes any more
    assert dash_duo.find_element(f"#{ids.WHATIF_RESULTS}").text == ""
    assert not dash_duo.driver.find_elements("css selector", f"#{ids.WHATIF_GRID}")
    assert dash_duo.get_logs() == []


def pmid(**ident: object) -> str:
    """CSS selector of the component with the pattern-matching id ``ident``."""
    return f"[id='{json.dumps(dict(sorted(ident.items())), separators=(',', ':'))}']"


def _tou_csv(rows: int) -> str:
    """A GSy-style table (``Time;Community;Grid``, decimal comma) of ``rows`` quarter hours."""
    times = [f"{q // 4:02d}:{q % 4 * 15:02d}:00" for q in range(rows)]
    return "\n".join(["Time;Community;Grid", *(f"{t};0,{q % 10};1,{q % 10}" for q, t in enumerate(times))])


def test_wif103_uploads_checked_before_a_run_levels_apart_and_live_copy_on_live_only(
    live, dash_duo, tmp_path
):
    login(dash_duo, "operator", "/what-if")
    short, good = tmp_path / "short.csv", tmp_path / "ToU.csv"
    short.write_text(_tou_csv(95), encoding="utf-8")
    good.write_text(_tou_csv(96), encoding="utf-8")
    upload = f"{cid('whatif-upload', 1)} input[type=file]"  # card 2: "time of use"
    status = cid("whatif-upload-status", 1)

    dash_duo.find_element(upload).send_keys(str(short))
    dash_duo.wait_for_contains_text(status, "short.csv not used: expected 96 quarter-hour rows, found 95")
    click(dash_duo, f"#{ids.WHATIF_RUN}")
    dash_duo.wait_for_contains_text(
        f"#{ids.WHATIF_MESSAGE}",
        "Not run: candidate 2 (time of use): the uploaded table 'short.csv' is not usable",
        timeout=10,
    )
    assert not progress_shown(dash_duo) and not job_processes()

    dash_duo.find_element(upload).send_keys(str(good))
    dash_duo.wait_for_contains_text(status, "ToU.csv: 96 rows, Community 0-0.9; Grid 1-1.9 ct/kWh")
    column = {"type": "whatif-param", "cand": 1, "field": "tou:column"}
    until(lambda: dash_duo.find_element(pmid(**column, level=0)).get_attribute("value") == "Grid", 10)
    assert dash_duo.find_element(pmid(**column, level=1)).get_attribute("value") == "Community"

    # peak tiers (card 3): the communities' own fields show once split
    communities = pmid(type="whatif-level", cand=2, model="peak_tiers", level=1)
    assert not dash_duo.find_element(communities).is_displayed()
    click(dash_duo, cid("whatif-split", 2))
    until(lambda: dash_duo.find_element(communities).is_displayed(), 10, msg="no communities' fields")
    title = pmid(type="whatif-level-title", cand=2, model="peak_tiers", level=0)
    dash_duo.wait_for_text_to_equal(title, "Grid")

    # a copy of the live settings: offered on the live scenario, not on the generated grid
    def offered(card: int) -> list[str]:
        dash_duo.find_element(cid("whatif-model", card)).click()
        options = [
            o.text for o in dash_duo.driver.find_elements("css selector", "[role=option]") if o.is_displayed()
        ]
        dash_duo.find_element(cid("whatif-model", card)).send_keys(Keys.ESCAPE)
        return options

    assert "Copy of the live settings" in offered(0)
    choose(dash_duo, f"#{ids.WHATIF_SCENARIO}", GENERATED)
    until(lambda: "Copy of the live settings" not in offered(0), 10, msg="the live copy is still offered")
    assert dash_duo.get_logs() == []


def test_wif104_tune_a_predictive_candidate_on_the_last_day_and_see_what_was_chosen(live, dash_duo):
    """The operator picks the predictive controller for a candidate, ticks "Tune on the last 1
    days" and runs: the results name the candidate as tuned, the day it was tuned on, the chosen
    parameters and every setting it tried with its score (the chosen row marked)."""
    dash_duo.driver.set_window_size(1366, 768)
    login(dash_duo, "operator", "/what-if")
    type_into(dash_duo, f"#{ids.WHATIF_DAYS}", "1")
    type_into(dash_duo, f"#{ids.WHATIF_COUNT}", "2")
    tune_box = cid("whatif-tune-box", 1)
    assert not dash_duo.find_element(tune_box).is_displayed()  # time of use cannot be tuned
    type_into(dash_duo, cid("whatif-name", 1), "ahead")
    choose(dash_duo, cid("whatif-model", 1), "Predictive congestion controller")
    until(lambda: dash_duo.find_element(tune_box).is_displayed(), 10, msg="no tune option")
    for field, value in (("import_limit_kwh", "2"), ("export_limit_kwh", "3")):
        type_into(dash_duo, pmid(type="whatif-param", cand=1, field=f"predictive.{field}", level=0), value)
    click(dash_duo, cid("whatif-tune", 1))
    type_into(dash_duo, cid("whatif-tune-days", 1), "1")
    click(dash_duo, f"#{ids.WHATIF_RUN}")
    dash_duo.wait_for_contains_text("#whatif-tuning", "tuned on", timeout=120)
    dash_duo.wait_for_contains_text(f"#{ids.WHATIF_MESSAGE}", "Done in ", timeout=10)
    text = dash_duo.find_element("#whatif-tuning").text
    assert (
        text.startswith("ahead: tuned on")
        and "(1 day(s), scored on the last 1" in text
        and "Chosen: aim (share of limit)" in text
    )
    compared_from = re.search(r"day\(s\) from (\S+),", dash_duo.find_element("#whatif-summary").text).group(1)
    tuned_from = re.search(r"tuned on (\S+) to", text).group(1)
    assert tuned_from >= slots.shift(compared_from, 96, 15)  # after the compared day, not on it
    rows = dash_duo.driver.find_elements("css selector", ".whatif-tuning-table tbody tr")
    assert len(rows) == 12
    chosen = [r.text for r in rows if r.text.endswith("chosen")]
    assert len(chosen) == 1
    assert "tuned: predictive controller" in dash_duo.find_element(f"#{ids.WHATIF_RESULTS}").text
    dash_duo.driver.execute_script(  # below the sticky header: its first line shows too
        "document.getElementById('whatif-tuning').scrollIntoView({block: 'start'}); window.scrollBy(0, -90);"
    )
    SHOTS.mkdir(exist_ok=True)
    dash_duo.driver.save_screenshot(str(SHOTS / "browser_whatif_tuned.png"))
    assert dash_duo.get_logs() == []
