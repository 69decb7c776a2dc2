"""The SDK face under the Procfile's real gunicorn (3 workers) and clock: websockets included.

An SDK-like client (``tests/gsy_wire.py``: ``requests`` + a ``websockets`` 12 client) connects as
a grid-operator script does, answers each ``market`` event with one batch (stats and a fee per
market) and waits for the batch's reply on its socket. Its requests land on any of the three
workers and its socket on one of them; every reply must still arrive, and each fee must be in
force from the slot after the event it answered.
"""

from __future__ import annotations

from pathlib import Path

import requests
from deploy_procs import Procs, answers, process_env, procfile, wait_until
from gsy_wire import SdkWire
from pg_server import free_port

from app.config import ROOT

SIM = "7a6f0c1e-1111-4222-8333-94440000abcd"
SLOT_SECONDS = 1.0
EVENTS = 4


def test_sdk_client_on_gunicorn_three_workers_gets_events_replies_and_its_fees_apply(
    procs: Procs, tmp_path: Path
):
    port = free_port()
    env = process_env(
        PORT=str(port),
        WEB_CONCURRENCY="3",
        INSTANCE_DIR=str(tmp_path),
        SCENARIO=str(ROOT / "scenarios" / "challenge.yaml"),
        SLOT_SECONDS=str(SLOT_SECONDS),
        SECRET_KEY="gsy-gunicorn-test",
        GSY_SIMULATION_ID=SIM,
    )
    commands = procfile()
    procs.release(env)
    procs.start("web", commands["web"], env)
    procs.start("clock", commands["clock"], env)
    base = f"http://127.0.0.1:{port}"

    wait_until("gunicorn to answer", lambda: answers(base), 60, procs, every=0.1)
    wire = SdkWire(base, SIM)
    try:
        token = wire.token()
        agg = wire.post(f"{wire.aggregator_prefix}create-aggregator/", token, {"name": "dso"}).json()["uuid"]
        sock = wire.socket(f"aggregator/{agg}/", wire.token())
        uuids = wire.graphql_uuids(token)
        markets = [uuids["Grid"], uuids["Community"]]
        for market in markets:
            selected = wire.post(
                f"{wire.aggregator_prefix}select-aggregator/",
                wire.token(),
                {"aggregator_uuid": agg, "device_uuid": market},
            )
            assert selected.status_code == 200, selected.text
        told: set[str] = set()
        while told != set(markets):  # a market event may come between the two selections
            told.add(sock.next(timeout=20, skip_events=("market",)).message["device_uuid"])

        sent: list[tuple[str, float]] = []  # (market_slot of the event answered, fee)
        while len(sent) < EVENTS:
            event = sock.next(timeout=30).message
            assert event["event"] == "market", event
            fee = 10.0 + len(sent)
            batch = {
                m: [
                    {"type": "dso_market_stats", "data": {}},
                    {"type": "grid_fees", "data": {"fee_const": fee}},
                ]
                for m in markets
            }
            posted = wire.post(
                f"{wire.aggregator_prefix}batch-commands/",
                token,
                {"aggregator_uuid": agg, "batch_commands": batch},
            )
            assert posted.status_code == 200, posted.text
            reply = sock.next(timeout=30, skip_events=("market",)).message
            assert reply["command"] == "batch_commands"
            assert reply["transaction_id"] == posted.json()["transaction_id"]
            fees = [reply["responses"][m][1] for m in markets]
            assert all(f["status"] == "ready" for f in fees), fees
            if fees[0]["applies_from_slot"] != next_slot(event["market_slot"]):
                continue  # the slot closed while we answered: the fee lands a slot later, fine
            sent.append((event["market_slot"], fee))
    finally:
        for s in wire.sockets:
            s.close()

    api = requests.post(
        f"{base}/api/v1/auth/token", json={"username": "operator", "password": "operator"}, timeout=10
    )
    auth = {"Authorization": f"Bearer {api.json()['access_token']}"}

    def fee_in_force(market: str, label: str) -> float | None:
        rows = requests.get(f"{base}/api/v1/markets/{market}/history", headers=auth, timeout=10).json()[
            "rows"
        ]
        found = [r["stats"]["current_market_fee"] for r in rows if r["slot"] == label]
        return found[0] if found else None

    last_slot = next_slot(sent[-1][0])
    wait_until(
        "the last fee's slot to close", lambda: fee_in_force(markets[0], last_slot) is not None, 30, procs
    )
    for market_slot, fee in sent:
        for market in markets:
            assert fee_in_force(market, next_slot(market_slot)) == fee, (market_slot, fee)


def next_slot(label: str) -> str:
    import datetime as dt

    when = dt.datetime.strptime(label, "%Y-%m-%dT%H:%M") + dt.timedelta(minutes=15)
    return when.strftime("%Y-%m-%dT%H:%M")
