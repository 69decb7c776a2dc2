"""The console's side of one exchange in the tests against Grid Singularity's exchanges."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.client.factory import make_client
from app.config import Settings
from app.operator.agent import OperatorAgent
from app.operator.store import OperatorStore


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

    def reader(self):  # noqa: ANN201
        """What a web worker's console gets (``GsyReader``)."""
        return make_client(self.settings, None, engine=self.engine, timeout_s=3.0, retries=0)


def wait_for(check: Callable[[], object], timeout: float, what: str, poll: float = 0.1):  # noqa: ANN201
    """Poll ``check`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll)
