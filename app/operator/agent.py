"""The server-side operator agent: every market cycle, stats in, one batch of fees out.

It runs whether or not a browser is open. Per cycle (slot N-1 closed, N running):

1. resend any batch a previous agent claimed but never saw answered (same transaction id, so
   the exchange applies it at most once);
2. fetch ``dso_market_stats`` of every managed market for slot N-1 in one batch and append them
   to the history store;
3. for each market whose setting is a tariff model, compute the fee for slot N+1 (the first slot a
   fee sent now can reach) and queue it, with the model and its parameters as the source;
4. at N's send point (its fee deadline less a lead, :mod:`app.operator.timing`), send everything
   queued by then (the models' fees and the operator's changes, the last change of each market)
   in one ``grid_fees`` batch, so all of it is in force from N+1; record each command's outcome:
   applied from slot X, or refused with the exchange's reason.

Sending at the send point rather than at the cycle is what makes a fee the operator queues while
N runs reach N+1: sent at the next cycle it would arrive while N+1 runs and apply from N+2.

Exactly one agent runs per deployment: the caller holds ``agent_lock`` while it runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from app import slots
from app.client import ApiClientError, ExchangeUnavailable, GridOperatorAgent, GridOperatorClient
from app.operator import alerts, fee_service, timing
from app.operator.store import APPLIED, REFUSED, OperatorStore, history_row
from app.tariffs.base import FeeLimits
from app.tariffs.registry import parse_model

log = logging.getLogger(__name__)


def send_commands(client: GridOperatorClient, store: OperatorStore, tid: str, commands: list[dict]) -> dict:
    """Send claimed commands as one batch under ``tid``; record and return each outcome."""
    batch: dict[str, list[dict]] = {}
    order: list[tuple[str, int, int]] = []  # (market, index in its list, command id)
    for cmd in commands:
        entries = batch.setdefault(cmd["market_uuid"], [])
        order.append((cmd["market_uuid"], len(entries), cmd["id"]))
        entries.append({"type": "grid_fees", "data": {"fee_const": cmd["fee_ct_per_kwh"]}})
    response = client.batch_command(batch, transaction_id=tid)
    results = {}
    for market, index, command_id in order:
        answer = (response.get("responses", {}).get(market) or [None] * (index + 1))[index] or {}
        if answer.get("status") == "ready":
            results[command_id] = {"status": APPLIED, "applies_from_slot": answer.get("applies_from_slot")}
        else:
            reason = answer.get("error_message") or answer.get("message") or "no answer from the exchange"
            results[command_id] = {"status": REFUSED, "reason": reason}
    store.record_results(results)
    return results


def send_queue(client: GridOperatorClient, store: OperatorStore) -> dict:
    """Send everything queued now, as one batch (the agent, at each slot's send point)."""
    tid, commands = store.claim_queued()
    return send_commands(client, store, tid, commands) if commands else {}


def resend_unfinished(client: GridOperatorClient, store: OperatorStore) -> None:
    for tid, commands in store.unfinished().items():
        send_commands(client, store, tid, commands)


class OperatorAgent(GridOperatorAgent):
    managed_levels: tuple[int, ...] = (0, 1)  # the grid and the communities

    def __init__(self, *args: object, store: OperatorStore, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.store = store
        self._limits: FeeLimits | None = None
        self._markets: list[dict] = []  # the exchange's grid tree entries (flow limits)
        self.send_due_at: float | None = None  # wall-clock time of the running slot's send point
        self.alerts = alerts.AlertStore(store.engine, store.exchange)
        self.last_cycle_at: float | None = None  # wall-clock time the last cycle arrived
        self.unreachable_since: float | None = None
        self.unreachable_reason: str | None = None
        self.slot_seconds: float | None = None
        self.finished = False
        self.running_slot: str | None = None

    def limits(self) -> FeeLimits:
        if self._limits is None:
            tree = self.grid()
            got = tree["fee_limits"]
            self._markets = tree["markets"]
            self._limits = FeeLimits(got["min_ct_per_kwh"], got["max_ct_per_kwh"])
        return self._limits

    def on_market_cycle(self, market_info: dict) -> None:
        resend_unfinished(self, self.store)
        closed = market_info["last_market_slot"]
        # a gsy exchange says which markets this console holds ("managed"); ours: by level
        managed = [m for m in market_info["markets"] if m.get("managed", m["level"] in self.managed_levels)]
        stats = self.dso_market_stats([m["area_uuid"] for m in managed], market_slots=[closed])
        rows = []
        for m in managed:
            answer = (stats["responses"].get(m["area_uuid"]) or [{}])[0]
            got = (answer.get("market_stats") or {}).get(closed) if answer.get("status") == "ready" else None
            if got is None:
                log.warning("no stats of %s for %s: %s", m["name"], closed, answer.get("error_message"))
                continue
            rows.append(history_row(m, closed, got))
        self.store.append_history(rows)
        self.last_cycle_at = time.time()
        self.running_slot = market_info["market_slot"]
        self.queue_model_fees(market_info, managed)
        self.schedule_send()
        self.evaluate_market_alerts(closed, managed)

    # -- alerts (server-side: they fire with no browser open) --------------------------------
    def evaluate_market_alerts(
        self, slot: str, managed: list[dict], rules: Sequence[str] = alerts.MARKET_RULES
    ) -> None:
        """The market rules on the slot that just closed (an alert never stops the fees)."""
        try:
            limits = self.limits()
            alerts.evaluate_market_alerts(
                self.store, self.alerts, managed, self._markets, limits.max_ct_per_kwh, slot, rules
            )
        except Exception:
            log.exception("evaluating the market alerts of %s failed", slot)

    def evaluate_liveness(self) -> None:
        """No new slot for two slot lengths, the exchange unreachable."""
        try:
            conditions = alerts.liveness_conditions(
                time.time(),
                self.last_cycle_at,
                self.slot_seconds,
                self.unreachable_since,
                self.unreachable_reason,
                self.finished,
            )
            self.alerts.apply(conditions, self.running_slot)
        except Exception:
            log.exception("evaluating the exchange's alerts failed")

    def on_unreachable(self, exc: Exception) -> None:
        if self.unreachable_since is None:
            self.unreachable_since = time.time()
        self.unreachable_reason = str(exc)[:200]
        self.evaluate_liveness()

    # -- sending at the send point -----------------------------------------------------------
    def schedule_send(self) -> None:
        """Read the exchange's clock and plan the queue's batch for the running slot's send point;
        send at once when it has passed (fast-forward, or a cycle that came late)."""
        try:
            clock = self.clock()
        except (ExchangeUnavailable, ApiClientError) as exc:
            log.warning("no clock from the exchange (%s): sending the queue now", exc)
            self.send_due_at = None
            self.send_queued()
            return
        self.slot_seconds = float(clock["slot_seconds"])
        self.finished = bool(clock.get("finished"))
        due = timing.send_at(time.time() + float(clock["seconds_to_deadline"]), float(clock["slot_seconds"]))
        if due <= time.time() or clock.get("finished"):
            self.send_due_at = None
            self.send_queued()
        else:
            self.send_due_at = due

    def send_queued(self) -> dict:
        """The queue's batch now; an exchange that does not answer leaves it claimed, and the next
        cycle resends it under the same transaction id."""
        try:
            results = send_queue(self, self.store)
        except (ExchangeUnavailable, ApiClientError) as exc:
            log.warning("the queue's batch did not reach the exchange (%s); resent next cycle", exc)
            return {}
        if results:  # a refusal alerts within the slot, not at the next cycle
            managed = [m for m in self._markets if m.get("level") in self.managed_levels]
            self.evaluate_market_alerts(self.running_slot, managed, rules=("command_refused",))
        return results

    def poll_wait_s(self) -> float:
        if self.send_due_at is None:
            return self.long_poll_s
        return min(self.long_poll_s, max(self.send_due_at - time.time(), 0.0))

    def after_poll(self) -> None:
        self.unreachable_since = self.unreachable_reason = None  # the poll was answered
        self.evaluate_liveness()
        if self.send_due_at is not None and time.time() >= self.send_due_at:
            self.send_due_at = None
            self.send_queued()

    def run(self, stop: threading.Event | None = None, max_cycles: int | None = None) -> int:
        """``GridOperatorAgent.run``, with the running slot's send point planned before the first
        cycle (so what was queued before the agent started goes out in this slot)."""
        try:
            self.schedule_send()
        except Exception:  # the cycles still come; the next one plans again
            log.exception("planning the first send failed")
        return super().run(stop=stop, max_cycles=max_cycles)

    def queue_model_fees(self, market_info: dict, managed: list[dict]) -> None:
        settings = self.store.settings()
        if not any(s.mode == "model" for s in settings.values()):
            return

        length = market_info["slot_length_min"]
        slot = fee_service.target_slot(
            slots.parse(slots.shift(market_info["market_slot"], 1, length)), length
        )
        for m in managed:  # N+1: a fee queued while N runs is in force from N+1
            setting = settings.get(m["area_uuid"])
            if setting is None or setting.mode != "model" or not setting.model:
                continue
            try:
                model = parse_model(setting.model)
            except ValueError as exc:
                log.error("fee model of %s is invalid, nothing sent: %s", m["name"], exc)
                continue
            market = {"uuid": m["area_uuid"], "name": m["name"]}
            fee_service.queue_model_fee(
                self.store, market, model, slot, self.limits(), market_info["market_slot"]
            )

    def run_forever(self, stop: threading.Event) -> None:
        """``run()`` that also survives errors of its own cycle (logged, next cycle tried)."""
        while not stop.is_set():
            try:
                self.run(stop=stop)
            except ExchangeUnavailable as exc:
                log.warning("exchange unavailable: %s", exc)
                stop.wait(self.reconnect_s)
