"""The console operates a real gsy-e over Redis (``GRID_API_URL=gsy+redis://HOST:PORT``).

Needs gsy-e (``scripts/install_gsy_e.sh``, then ``GSY_E_PYTHON``) and Debian's ``redis-server``;
skipped with the reason otherwise. gsy-e runs the setup of ``gsye_setup/gso_community.py`` (Grid
fee 1 ct/kWh, Community fee 4 ct/kWh, both open for an external connection), started paused,
4 s of wall time per 15-minute slot, 8 slots; the console's operator agent runs on the gsy link
in this process, with its own SQLite store.

With ``GSY_E_RECORD=<file>`` the test also writes every Redis message of the run to that file
(JSON): how ``fixtures/gsy_e_wire.json`` was made, for the recorded-message test.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from pathlib import Path

import openpyxl
import pytest
from gsye import SKIP_REASON, GsyE, WireRecorder, gsy_e_available
from remote_helpers import send_to_a_lost_market, wait_for

from app.client import ExchangeUnavailable
from app.client.gsy import GsyLinkStore
from app.export.excel import history_workbook_bytes
from app.operator import timing
from app.operator.store import APPLIED, REFUSED
from app.slots import shift

pytestmark = pytest.mark.skipif(not gsy_e_available(), reason=SKIP_REASON)


@pytest.fixture
def gsye(redis_url: str, tmp_path: Path):
    proc = GsyE(redis_url, tmp_path)
    recorder = WireRecorder(redis_url) if os.environ.get("GSY_E_RECORD") else None
    proc.start()
    yield proc
    proc.stop()
    if recorder is not None:
        Path(os.environ["GSY_E_RECORD"]).write_text(json.dumps(recorder.stop(), indent=0) + "\n")


def held_names(console) -> set[str]:
    _, state, _ = GsyLinkStore(console.engine, console.settings.exchange_key).load()
    return set((state.get("held") or {}).values())


def commands(console) -> list[dict]:
    return console.store.commands()


def test_gre001_console_operates_gsy_e_over_redis(gsye: GsyE, redis_url: str, console_for):
    url = "gsy+redis://" + redis_url.split("://", 1)[1].rsplit("/", 1)[0]
    console = console_for(url)
    agent = console.start_agent()
    # discovery: the markets gsy-e opens for an external connection, selected by our aggregator
    wait_for(lambda: held_names(console) == {"Grid", "Community"}, 30, "the link to hold Grid and Community")
    first_aggregator = agent.aggregator_uuid
    with pytest.raises(ExchangeUnavailable, match="market event"):
        console.reader().clock()  # no slot before gsy-e's first event: none is invented

    # another console (its own store, so its own aggregator) is told who holds the markets
    other = console_for(url, name="other")
    other.start_agent()

    def other_refused() -> str | None:
        _, state, _ = GsyLinkStore(other.engine, other.settings.exchange_key).load()
        return state.get("down_reason")

    reason = wait_for(other_refused, 30, "the second console to be refused")
    assert "another client holds" in reason and first_aggregator in reason and "Grid" in reason
    other.stop_agent()

    # a restarted console takes its markets back: the same aggregator, still selected
    console.stop_agent()
    agent = console.start_agent()
    wait_for(lambda: agent._ready, 30, "the restarted link")
    assert agent.aggregator_uuid == first_aggregator
    assert held_names(console) == {"Grid", "Community"}

    gsye.resume()
    uuids = {m["name"]: m["area_uuid"] for m in wait_for(lambda: _grid(console), 30, "the first market")}
    first = wait_for(console.store.latest_slot, 30, "the first stored slot")
    # the link learns gsy-e's wall time per slot from its events (the first slot after the resume
    # runs long): two more slots, then right after a cycle is stored, slot N runs: queue a fee as
    # the console's button does
    second = wait_for(lambda: (s := console.store.latest_slot()) != first and s, 30, "the 2nd stored slot")
    newer = wait_for(lambda: (s := console.store.latest_slot()) != second and s, 30, "the 3rd stored slot")
    clock = console.reader().clock()
    running = clock["running_slot"]
    assert clock["last_closed_slot"] == newer and clock["slot_length_min"] == 15
    send_s = clock["seconds_to_deadline"] - timing.send_lead_s(clock["slot_seconds"])
    assert send_s > 0, clock
    target = timing.target_slot(running, 15, send_s)
    assert target == shift(running, 1, 15)  # what the console says before the click: N+1
    console.store.queue(
        uuids["Community"], "Community", 7.0, source="manual", user="operator", running_slot=running
    )
    console.store.queue(uuids["Grid"], "Grid", -2.0, source="manual", user="operator", running_slot=running)

    def resolved() -> list[dict] | None:
        rows = commands(console)
        return rows if rows and all(r["status"] in (APPLIED, REFUSED) for r in rows) else None

    rows = {r["market_name"]: r for r in wait_for(resolved, 30, "the exchange's answers")}
    assert rows["Community"]["status"] == APPLIED
    assert rows["Community"]["applies_from_slot"] == target
    # gsy-e answers a negative fee 'ready' with the old value: the console shows it refused
    assert rows["Grid"]["status"] == REFUSED
    assert "kept 1" in rows["Grid"]["reason"] and "-2" in rows["Grid"]["reason"]

    # in force from N+1 in gsy-e's own figures: its trades, its next events and its stats
    wait_for(lambda: (console.store.latest_slot() or "") >= target, 30, "slot N+1 in the history")
    history = {r["slot"]: r for r in console.store.history(uuids["Community"])}
    assert history[running]["fee_ct_per_kwh"] == 4.0
    assert history[target]["fee_ct_per_kwh"] == 7.0
    row = history[target]
    assert row["market_fee_revenue"] == pytest.approx(7.0 * row["total_traded_energy_kWh"])
    charged = gsye.fees_charged("Community")
    assert charged[running] == {4.0} and charged[target] == {7.0}, charged
    assert gsye.fees_charged("Grid")[target] == {1.0}  # the refused fee changed nothing

    # a market the console does not hold: not sent (gsy-e would answer nothing at all) ...
    stray = str(uuid.uuid4())
    answer = agent.batch_command({stray: [{"type": "grid_fees", "data": {"fee_const": 3}}]})
    assert answer["responses"][stray][0]["status"] == "error"
    assert "does not hold" in answer["responses"][stray][0]["error_message"]
    # ... and one it believes it holds but gsy-e does not: gsy-e drops it, the missing answer is
    # a refusal (the batch's other command, for a held market, is answered)
    stray, answer = send_to_a_lost_market(agent, uuids["Grid"])
    assert answer["responses"][uuids["Grid"]][0]["status"] == "ready"
    assert "no answer from the exchange" in answer["responses"][stray][0]["error_message"]
    # a transaction id is sent once: the same id again gets the same answer, nothing published
    again = agent.batch_command(
        {stray: [{"type": "grid_fees", "data": {"fee_const": 5}}]}, answer["transaction_id"]
    )
    assert again == answer

    # gsy-e finishes: the header says so; the history has each slot once, none invented
    assert gsye.wait(90) == 0, gsye.log()[-2000:]
    wait_for(lambda: _finished(console), 30, "the finish event")
    slots = console.store.slots(uuids["Grid"])
    assert slots == sorted(set(slots))
    expected = [shift(slots[0], k, 15) for k in range(len(slots))]
    assert slots == expected  # consecutive: one row per closed slot
    assert slots[-1] < _clock_running(console)  # the running slot at the end never closed: not stored
    assert len(slots) >= 5

    # the Excel export holds gsy-e's slots
    markets = [{"uuid": u, "name": n, "level": 0 if n == "Grid" else 1} for n, u in uuids.items()]
    workbook = history_workbook_bytes(console.store, markets)
    book = openpyxl.load_workbook(io.BytesIO(workbook))
    assert {"Grid", "Community"} <= set(book.sheetnames)
    assert book["Community"].max_row == len(console.store.slots(uuids["Community"])) + 1


def _grid(console) -> list[dict] | None:
    try:
        return console.reader().grid()["markets"]
    except ExchangeUnavailable:
        return None


def _finished(console) -> bool:
    try:
        return console.reader().clock()["finished"]
    except ExchangeUnavailable:
        return False


def _clock_running(console) -> str:
    return console.reader().clock()["running_slot"]
