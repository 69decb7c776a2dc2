"""Starting the operator agent: which client (:mod:`app.client.factory`), which store, and the
one-agent lock."""

from __future__ import annotations

import logging
import threading

from flask import Flask
from sqlalchemy import Engine

from app.client.factory import make_client
from app.config import Settings
from app.operator.agent import OperatorAgent
from app.operator.store import OperatorStore
from app.store.lock import RunnerLock

log = logging.getLogger(__name__)


AGENT_LONG_POLL_S = 2.0  # seconds a market-cycles long poll waits; a stop waits at most this


def start_agent(
    settings: Settings, engine: Engine, wsgi_app: Flask | None, stop: threading.Event
) -> threading.Thread | None:
    """Run the operator agent in a thread if no other process runs it; None if one does."""
    # a gsy exchange is reached as GSY_USERNAME (hosted) or without a user (Redis)
    if settings.gsy_dialect is None and not settings.agent_username:
        log.warning("AGENT_USERNAME is not set: no operator agent runs (fees of models are not sent)")
        return None
    lock = RunnerLock(engine, f"operator-agent:{settings.exchange_key}")
    if not lock.try_acquire():
        log.info("another process runs the operator agent")
        return None
    store = OperatorStore(engine, settings.exchange_key)
    agent = make_client(
        settings, wsgi_app, cls=OperatorAgent, engine=engine, store=store, start_after=store.latest_slot()
    )
    agent.long_poll_s = AGENT_LONG_POLL_S  # bounds how long a stop waits for the agent

    def run() -> None:
        try:
            agent.run_forever(stop)
        finally:
            lock.release()

    thread = threading.Thread(target=run, name="operator-agent", daemon=True)
    thread.start()
    return thread
