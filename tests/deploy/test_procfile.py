"""The Procfile's real commands: ``release:``, gunicorn with 3 workers, and two ``clock:`` processes.

On one store (SQLite file, or a PostgreSQL database of the suite's server), with a slot every
0.3 s: one clock runs the exchange and the agent while the other waits; fee commands sent through
the API (to any worker, each twice with its transaction id) are each in the fee book once and
apply from the slot after the one they were received in; kill -9 of the clock that holds the
lock lets the other take over within about a slot; the history the API serves is complete, with
no slot missing and none twice; SIGTERM stops the survivor cleanly (exit 0, locks released).
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid

import psutil
import pytest
from deploy_procs import Deployment, Proc, Procs, procfile, wait_until
from sqlalchemy import create_engine, select

from app.client import GridOperatorClient
from app.exchange.scenario import Scenario
from app.operator.store import OperatorStore
from app.store.lock import RunnerLock
from app.store.schema import fee_changes

SLOT_SECONDS = 0.3
SLOTS_BEFORE_KILL = 30
SLOTS_AFTER_KILL = 10
FEE_EVERY = 3  # slots between two fee commands
# kill -9 to the next slot closed by the other clock: lock poll + one slot (0.35-0.45 s measured),
# with slack for a loaded CI machine
TAKEOVER_S = 4 * SLOT_SECONDS
RUNNING = re.compile(r"clock\[(\d+)\] app\.entry\.clock: running exchange")


def runner_holder(clocks: list[Proc]) -> list[Proc]:
    """The clocks that say they run the exchange (took the runner lock), in the order they did."""
    found = []
    for clock in clocks:
        for match in RUNNING.finditer(clock.output()):
            assert int(match.group(1)) == clock.pid
            found.append(clock)
    return found


@pytest.mark.parametrize(
    "backend",
    ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    ids=["sqlite", "postgresql"],
)
def test_dep010_gunicorn_three_workers_two_clocks_kill9_takeover(
    backend: str, procs: Procs, server_env, small_scenario: Scenario, fresh_store_url
):
    url = fresh_store_url(backend, "deploy")
    port, env = server_env(url, workers=3, slot_seconds=SLOT_SECONDS, secret="deploy-test-secret")
    commands = procfile()
    procs.release(env)

    web = procs.start("web", commands["web"], env)
    clocks = [procs.start(f"clock{i}", commands["clock"], env) for i in (1, 2)]
    d = Deployment(procs, port, url, small_scenario)
    wait_until("gunicorn to answer", d.up, 60, procs, every=0.1)
    workers = wait_until(
        "3 gunicorn workers", lambda: len(psutil.Process(web.pid).children()) == 3, 20, procs
    )
    assert workers and web.alive()

    d.client = GridOperatorClient(d.base, "operator", "operator", timeout_s=10, retries=5, backoff_s=0.2)
    markets = d.client.grid()["markets"]
    grid = next(m["area_uuid"] for m in markets if m["level"] == 0)
    community = next(m["area_uuid"] for m in markets if m["level"] == 1)

    # exactly one clock runs the exchange; the other waits
    wait_until("a clock to run the exchange", lambda: runner_holder(clocks), 30, procs)
    holders = runner_holder(clocks)
    assert len(holders) == 1, procs.logs()
    holder = holders[0]
    other = next(c for c in clocks if c is not holder)
    # under load the second clock may still be importing when the first already runs: wait for it
    wait_until("the other clock to wait", lambda: "waiting to take over" in other.output(), 30, procs)
    assert other.alive(), procs.logs()
    if backend == "sqlite":  # the lock file beside the database names its holder
        lock = RunnerLock(create_engine(url), small_scenario.name)
        assert lock.holder() == f"pid {holder.pid}"

    sent: list[dict] = []  # {tid, fee, applies_from, closed: the last closed slot when sent}

    def send_fee(closed: int) -> None:
        fee = round(1.0 + 0.25 * len(sent), 2)
        tid = str(uuid.uuid4())
        batch = {community: [{"type": "grid_fees", "data": {"fee_const": fee}}]}
        first = d.client.batch_command(batch, transaction_id=tid)
        again = d.client.batch_command(batch, transaction_id=tid)  # a retry, maybe to another worker
        answer = first["responses"][community][0]
        assert answer["status"] == "ready", first
        assert again == first
        sent.append({"tid": tid, "fee": fee, "applies_from": answer["applies_from_slot"], "closed": closed})

    def run_until(last: int) -> None:
        while (closed := d.last_closed()) < last:
            if not sent or closed >= sent[-1]["closed"] + FEE_EVERY:
                send_fee(closed)
            time.sleep(SLOT_SECONDS / 3)

    run_until(SLOTS_BEFORE_KILL)

    # kill -9 the clock that holds the lock: the other one takes over within about a slot
    at_kill = d.last_closed()
    os.kill(holder.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    holder.popen.wait(timeout=10)
    wait_until("the waiting clock to take over", lambda: other in runner_holder(clocks), 10, procs)
    assert sorted(c.name for c in runner_holder(clocks)) == ["clock1", "clock2"]  # each took it once
    d.wait_for_slot(at_kill + 1, 10)
    takeover_s = time.monotonic() - killed_at
    assert takeover_s < TAKEOVER_S, f"took {takeover_s:.2f} s\n{procs.logs()}"
    if backend == "sqlite":
        assert lock.holder() == f"pid {other.pid}"

    run_until(at_kill + SLOTS_AFTER_KILL)

    # SIGTERM: the survivor finishes its slot, releases its locks and exits 0
    other.popen.send_signal(signal.SIGTERM)
    assert other.popen.wait(timeout=20) == 0, other.tail()
    assert "runner lock released" in other.output()
    last = d.last_closed()
    assert last >= SLOTS_BEFORE_KILL + SLOTS_AFTER_KILL - 1

    # the history the API serves (any worker) is complete: every slot once, none missing
    expected = [d.label(k) for k in range(last + 1)]
    for market in (grid, community):
        assert d.history_labels(market) == expected, market

    # each fee command is in the fee book once and applies from the slot after its receipt
    assert len(sent) >= SLOTS_AFTER_KILL // FEE_EVERY
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(fee_changes.c.transaction_id, fee_changes.c.fee_ct_per_kwh)).all()
        assert sorted(r.transaction_id for r in rows) == sorted(s["tid"] for s in sent)
        fees = {
            row["slot"]: row["stats"]["current_market_fee"] for row in d.client.history(community)["rows"]
        }
        for s in sent:
            if d.index(s["applies_from"]) <= last:
                assert fees[s["applies_from"]] == s["fee"], s
        # the agent followed the cycles in one process at a time: its history has no gap
        agent_slots = OperatorStore(engine, "embedded").slots(grid)
        assert agent_slots, procs.logs()
        first = d.index(agent_slots[0])
        assert agent_slots == [d.label(k) for k in range(first, first + len(agent_slots))]
        assert d.index(agent_slots[-1]) >= last - 2
    finally:
        engine.dispose()
    assert web.alive(), web.tail()
