"""The console operates a Grid Singularity exchange in the hosted dialect (REST + JWT + websocket,
``GRID_API_URL=gsy+http://HOST:PORT`` here, ``gsy+https://`` for the real service), against our own
gsy-e-sdk face, started as a real server in a process of its own (``python -m app.entry.exchange`` on
``scenarios/challenge.yaml``, a slot every 3 s). The console's agent runs on the link in this
process with its own SQLite store: two processes, a real websocket.

The whole loop: the markets discovered from the registry, stats in every slot, a fee out that is
in force from the next slot in the exchange's own history, a refusal with the exchange's reason,
an outage in the middle (the server stopped and started again on its store) during which a fee
stays queued and is sent once when the exchange is back, and a history without a duplicate or an
invented slot.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from ending import end_process
from remote_helpers import wait_for

from app.client import ExchangeUnavailable
from app.client.gsy import GsyLinkStore
from app.config import ROOT, without_settings
from app.operator import timing
from app.operator.store import APPLIED, QUEUED, REFUSED
from app.slots import shift

SIM = "5d1c2a4e-0000-4000-8000-0000000016ee"
SLOT_SECONDS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Exchange:
    """Our exchange with its SDK face, in a process of its own (stopped and started again)."""

    def __init__(self, instance: Path):
        self.instance, self.port = instance, free_port()
        self.proc: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = without_settings(os.environ)
        env.update(
            SCENARIO=str(ROOT / "scenarios" / "challenge.yaml"),
            GSY_SIMULATION_ID=SIM,
            SLOT_SECONDS=str(SLOT_SECONDS),
            INSTANCE_DIR=str(self.instance),
            SECRET_KEY="gsy-hosted-test",
            TOKEN_RATE_LIMIT="0",
            PYTHONUNBUFFERED="1",
        )
        log = open(self.instance / "exchange.log", "ab")  # the process keeps it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.entry.exchange", "--port", str(self.port), "--quiet"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_for(self._answers, 60, "the exchange to serve")

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError((self.instance / "exchange.log").read_text()[-3000:])
        try:
            return requests.get(f"{self.base}/api/v1/clock", timeout=1).status_code in (200, 401)
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            end_process(self.proc, timeout=30)

    def history(self, market_uuid: str) -> dict[str, dict]:
        """The exchange's own per-slot figures of a market (its ``/api/v1`` history)."""
        token = requests.post(
            f"{self.base}/api/v1/auth/token",
            json={"username": "operator", "password": "operator"},
            timeout=10,
        ).json()["access_token"]
        body = requests.get(
            f"{self.base}/api/v1/markets/{market_uuid}/history",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()
        return {row["slot"]: row["stats"] for row in body["rows"]}


@pytest.fixture
def exchange(tmp_path: Path):
    instance = tmp_path / "exchange"
    instance.mkdir()
    ex = Exchange(instance)
    ex.start()
    yield ex
    ex.stop()


def held(console) -> set[str]:
    _, state, _ = GsyLinkStore(console.engine, console.settings.exchange_key).load()
    return set((state.get("held") or {}).values())


def down_reason(console) -> str | None:
    try:
        console.reader().clock()
    except ExchangeUnavailable as exc:
        return str(exc)
    return None


def next_stored(console, after: str | None) -> str:
    return wait_for(
        lambda: (s := console.store.latest_slot()) and s != after and s, 30, "a newly stored slot"
    )


def test_gho001_console_operates_the_hosted_dialect(exchange: Exchange, console_for):
    console = console_for(f"gsy+http://127.0.0.1:{exchange.port}", GSY_SIMULATION_ID=SIM)
    agent = console.start_agent()
    wait_for(lambda: held(console) == {"Grid", "Community"}, 30, "the link to hold Grid and Community")
    aggregator = agent.aggregator_uuid
    uuids = {m["name"]: m["area_uuid"] for m in wait_for(lambda: _markets(console), 30, "the markets")}

    # stats in: every slot the exchange closes is stored with the exchange's own figures
    slot = next_stored(console, None)
    slot = next_stored(console, slot)
    theirs = exchange.history(uuids["Community"])
    ours = {r["slot"]: r for r in console.store.history(uuids["Community"])}
    assert ours[slot]["total_traded_energy_kWh"] == pytest.approx(theirs[slot]["total_traded_energy_kWh"])
    assert ours[slot]["fee_ct_per_kwh"] == pytest.approx(theirs[slot]["current_market_fee"])

    # fee out, right after a cycle: in force from the next slot; a refusal with the exchange's reason
    clock = console.reader().clock()
    running = clock["running_slot"]
    send_s = clock["seconds_to_deadline"] - timing.send_lead_s(clock["slot_seconds"])
    assert send_s > 0, clock
    target = timing.target_slot(running, 15, send_s)
    assert target == shift(running, 1, 15)
    console.store.queue(
        uuids["Community"], "Community", 7.0, source="manual", user="operator", running_slot=running
    )
    console.store.queue(uuids["Grid"], "Grid", -1.0, source="manual", user="operator", running_slot=running)

    def resolved() -> dict[str, dict] | None:
        rows = console.store.commands()
        done = rows and all(r["status"] in (APPLIED, REFUSED) for r in rows)
        return {r["market_name"]: r for r in rows} if done else None

    rows = wait_for(resolved, 30, "the exchange's answers")
    assert rows["Community"]["status"] == APPLIED and rows["Community"]["applies_from_slot"] == target
    assert rows["Grid"]["status"] == REFUSED and rows["Grid"]["reason"]
    wait_for(lambda: (console.store.latest_slot() or "") >= target, 30, "slot N+1 in the history")
    theirs = exchange.history(uuids["Community"])
    assert theirs[running]["current_market_fee"] != 7.0 and theirs[target]["current_market_fee"] == 7.0
    ours = {r["slot"]: r for r in console.store.history(uuids["Community"])}
    assert ours[target]["fee_ct_per_kwh"] == 7.0

    # an outage: the exchange stops; the header says why; a fee queued meanwhile stays queued
    exchange.stop()
    reason = wait_for(lambda: down_reason(console), 30, "the console to see the exchange gone")
    assert reason
    down_running = console.store.latest_slot()
    console.store.queue(
        uuids["Community"], "Community", 5.0, source="manual", user="operator", running_slot=running
    )
    assert [r["status"] for r in console.store.commands() if r["fee_ct_per_kwh"] == 5.0] == [QUEUED]

    # ... and is sent once when the exchange is back (on its store: it resumes where it stopped)
    exchange.start()
    wait_for(lambda: down_reason(console) is None, 60, "the console to reconnect")
    assert agent.aggregator_uuid == aggregator  # it took its markets back with the same aggregator
    after = wait_for(
        lambda: next(
            (
                r
                for r in console.store.commands()
                if r["fee_ct_per_kwh"] == 5.0 and r["status"] in (APPLIED, REFUSED)
            ),
            None,
        ),
        60,
        "the queued fee to be sent",
    )
    assert after["status"] == APPLIED and after["applies_from_slot"] > down_running
    wait_for(
        lambda: (console.store.latest_slot() or "") >= after["applies_from_slot"],
        30,
        "its slot in the history",
    )
    theirs = exchange.history(uuids["Community"])
    assert theirs[after["applies_from_slot"]]["current_market_fee"] == 5.0
    assert len({r["transaction_id"] for r in console.store.commands()}) == 2  # one batch each time

    # the history: each slot once, in order, and every stored slot is one the exchange closed
    for name in ("Grid", "Community"):
        slots = console.store.slots(uuids[name])
        assert slots == sorted(set(slots))
        exchange_slots = exchange.history(uuids[name])
        for row in console.store.history(uuids[name]):
            assert row["slot"] in exchange_slots
            assert row["fee_ct_per_kwh"] == pytest.approx(exchange_slots[row["slot"]]["current_market_fee"])


def _markets(console) -> list[dict] | None:
    try:
        return console.reader().grid()["markets"]
    except ExchangeUnavailable:
        return None
