"""``GridOperatorAgent``: override ``on_market_cycle(market_info)``, call ``run()``.

``run()`` follows the market cycles by long-poll and calls ``on_market_cycle`` once per cycle,
in order, never twice for one slot. When the exchange goes away it waits and retries; when it
comes back, the cycles it missed are delivered first (the server keeps every closed slot).
"""

from __future__ import annotations

import logging
import threading
import time

from app.client.client import ApiClientError, ExchangeUnavailable, GridOperatorClient

log = logging.getLogger(__name__)


class GridOperatorAgent(GridOperatorClient):
    long_poll_s: float = 10.0
    reconnect_s: float = 2.0

    def __init__(self, *args: object, start_after: str | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.last_market_slot: str | None = start_after

    def on_market_cycle(self, market_info: dict) -> None:
        """Called once per closed slot with its ``market_info``. Override me."""

    def poll_wait_s(self) -> float:
        """How long the next long-poll may wait [s]; an agent with work due earlier says less."""
        return self.long_poll_s

    def after_poll(self) -> None:
        """Called after every long-poll, once its cycles are delivered: work that is due by time."""

    def on_unreachable(self, exc: Exception) -> None:
        """Called when a long-poll found the exchange unavailable (before waiting to retry)."""

    def run(self, stop: threading.Event | None = None, max_cycles: int | None = None) -> int:
        """Deliver cycles until ``stop`` is set or ``max_cycles`` were delivered; returns count."""
        stop = stop or threading.Event()
        delivered = 0
        while not stop.is_set() and (max_cycles is None or delivered < max_cycles):
            try:
                page = self.market_cycles(self.last_market_slot, wait_s=self.poll_wait_s())
            except (ExchangeUnavailable, ApiClientError) as exc:
                if isinstance(exc, ApiClientError) and exc.status < 500 and exc.status != 401:
                    raise
                log.warning("exchange unavailable (%s); retrying in %.1f s", exc, self.reconnect_s)
                self.on_unreachable(exc)
                stop.wait(self.reconnect_s)
                continue
            for info in page["cycles"]:
                if self.last_market_slot is not None and info["last_market_slot"] <= self.last_market_slot:
                    continue  # already delivered
                self.last_market_slot = info["last_market_slot"]
                try:
                    self.on_market_cycle(info)
                except Exception:
                    log.exception("on_market_cycle failed for slot %s", info["last_market_slot"])
                delivered += 1
                if stop.is_set() or (max_cycles is not None and delivered >= max_cycles):
                    break
            self.after_poll()
            if not page["cycles"]:
                time.sleep(0)  # long-poll returned empty: ask again
        return delivered
