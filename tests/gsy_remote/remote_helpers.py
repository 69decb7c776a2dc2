"""The console's side of one exchange in the tests against Grid Singularity's exchanges."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from app.client.factory import make_client
from app.config import Settings
from app.operator.agent import OperatorAgent
from app.operator.store import APPLIED, REFUSED, OperatorStore


@dataclass
class Console:
    """The console's side of one exchange: its store and (once started) its agent on the link."""

    settings: Settings
    engine: object
    store: OperatorStore
    agent: OperatorAgent | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start_agent(self) -> OperatorAgent:
        self.stop = threading.Event()
        self.agent = make_client(
            self.settings,
            None,
            cls=OperatorAgent,
            engine=self.engine,
            store=self.store,
            start_after=self.store.latest_slot(),
        )
        self.agent.long_poll_s = 0.5
        self.agent.reconnect_s = 0.5
        self.thread = threading.Thread(target=self.agent.run_forever, args=(self.stop,), daemon=True)
        self.thread.start()
        return self.agent

    def stop_agent(self) -> None:
        if self.thread is not None:
            self.stop.set()
            self.thread.join(15)
            assert not self.thread.is_alive(), "the agent did not stop"
            self.thread = None

    def reader(self):
        """What a web worker's console gets (``GsyReader``)."""
        return make_client(self.settings, None, engine=self.engine, timeout_s=3.0, retries=0)


def wait_for(check: Callable[[], object], timeout: float, what: str, poll: float = 0.1):
    """Poll ``check`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll)


def settled_commands(console: Console, what: str) -> dict[str, dict]:
    """Wait until every fee command of ``console`` is applied or refused; the commands by market."""
    rows = wait_for(
        lambda: (r := console.store.commands()) and all(c["status"] in (APPLIED, REFUSED) for c in r) and r,
        30,
        what,
    )
    return {r["market_name"]: r for r in rows}


def send_to_a_lost_market(agent: OperatorAgent, held_uuid: str) -> tuple[str, dict]:
    """Send a batch with a fee for ``held_uuid`` and one for a market the agent believes it holds
    but gsy-e does not (gsy-e drops that command); the stray market's uuid and the answer."""
    stray = str(uuid.uuid4())
    agent._gsy_state["held"][stray] = "Lost market"
    answer = agent.batch_command(
        {
            held_uuid: [{"type": "grid_fees", "data": {"fee_const": 1}}],
            stray: [{"type": "grid_fees", "data": {"fee_const": 3}}],
        }
    )
    return stray, answer
