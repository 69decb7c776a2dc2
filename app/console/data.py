"""What the console's callbacks read: the history store, and the exchange's clock and grid.

Callbacks never wait on the exchange for long: the clock and the grid come through the client
with a short timeout and are cached (the clock until the running slot ends, the grid 30 s), and
everything per slot is read from the store and cached per closed slot, so any number of browsers
costs the exchange nothing extra (``bench/load.py`` counts it).
When the exchange does not answer, the header says "stale since HH:MM" with the reason, and the
pages keep showing the store's history.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass, field

from flask_caching import Cache

from app import slots
from app.client import ApiClientError, ExchangeUnavailable, GridOperatorClient
from app.exchange.scenario import Scenario, dump_scenario
from app.operator import fee_service, timing
from app.operator.alerts import ALERTING, EXCHANGE, PENDING, AlertStore, Limits, effective_limits
from app.operator.store import QUEUED, OperatorStore
from app.store.notify import Notifier
from app.tariffs.base import FeeLimits, SlotInfo
from app.tariffs.registry import MODEL_LABELS

MANAGED_LEVELS = (0, 1)
CLOCK_MAX_AGE_S = 10.0  # the longest one clock reading is used [s]
CLOCK_GRACE_S = 0.5  # after a slot's deadline, the moment the exchange takes to close it [s]
CLOCK_MIN_AGE_S = 0.05  # a reading is used at least this long [s] (SLOT_SECONDS=0: fast-forward)
CLOCK_RETRY_S = 1.0  # after the exchange did not answer, ask again this much later [s]
CLOCK_ASKING_S = 5  # one request asks the exchange at a time; a dead asker frees it after [s]
MARKETS_MAX_AGE_S = 30  # the managed markets (names, levels) are asked again after [s]


def short_reason(exc: Exception) -> str:
    """A few words for the header badge; the full text goes to its tooltip."""
    if isinstance(exc, ExchangeUnavailable):
        return getattr(exc, "short", None) or "exchange not answering"
    if isinstance(exc, ApiClientError):
        return f"exchange error {exc.status} {exc.code}"
    return type(exc).__name__


def with_send_point(state: dict) -> dict:
    """The clock state with what the operator needs to queue a fee (:mod:`app.operator.timing`):

    ``next_slot`` (N+1's label), ``send_s`` (seconds until the agent sends the queue, None when
    unknown) and ``target_slot``: the slot a fee queued now is in force from (N+1 before the send
    point, N+2 after it).
    """
    running = state.get("running_slot")
    if not running:
        return {**state, "next_slot": None, "send_s": None, "target_slot": None}
    length = int(state.get("slot_length_min") or 15)
    deadline_s = state.get("deadline_s")
    send_s = None
    if state.get("connected") and deadline_s is not None:
        send_s = float(deadline_s) - timing.send_lead_s(float(state.get("slot_seconds") or 0.0))
    return {
        **state,
        "next_slot": slots.shift(running, 1, length),
        "send_s": send_s,
        # unknown (stale): whatever is queued now goes with the next send the agent makes
        "target_slot": None if send_s is None else timing.target_slot(running, length, send_s),
    }


@dataclass
class ConsoleData:
    ops: OperatorStore
    client: GridOperatorClient
    cache: Cache
    live_scenario: Scenario | None = None
    """The embedded exchange's scenario (None when the console drives a remote exchange)."""
    events: Notifier = field(default_factory=lambda: Notifier.for_cache(None))
    """Says "a reading is in the cache": wakes the requests waiting for another one's reading
    (Redis pub/sub with the Redis cache, in-process with the per-process one)."""

    def scenario_text(self) -> str | None:
        """The scenario the embedded exchange runs, as its YAML file (for the Excel export)."""
        return None if self.live_scenario is None else dump_scenario(self.live_scenario)

    # -- the exchange (cached, short timeouts) ----------------------------------------------
    def clock_state(self) -> dict:
        """Header state: connected or stale since when and why, running slot, deadline.

        One reading of the exchange's clock serves every browser and worker (the shared cache)
        until the running slot's deadline, plus a moment for the exchange to close the slot
        (``CLOCK_GRACE_S``), and never longer than ``CLOCK_MAX_AGE_S``: the exchange is asked
        about once a slot however many browsers poll, and one that stops answering shows as stale
        within a slot (at most ``CLOCK_MAX_AGE_S``). The countdown is counted from the reading's
        deadline on every call. While one request asks the exchange, the others answer from the
        reading before it rather than asking too.
        """
        now = time.time()
        reading = self.cache.get("console:clock")
        if reading is None or reading["valid_until"] <= now:
            asking = self.cache.add("console:clock:asking", 1, timeout=CLOCK_ASKING_S)
            if asking:  # another request may have asked between our read and now
                fresh = self.cache.get("console:clock")
                if fresh is not None and fresh["valid_until"] > time.time():
                    self.cache.delete("console:clock:asking")
                    reading, asking = fresh, False
            elif reading is None:  # nothing to answer from yet: wait for the asker's reading
                reading = self._wait_for("console:clock")
            if asking or reading is None:
                try:
                    reading = self._read_clock(now)
                finally:
                    if asking:
                        self._release("console:clock")
        state = {k: v for k, v in reading.items() if k != "valid_until"}
        if state.get("connected"):
            state["deadline_s"] = max(state["deadline_at"] - time.time(), 0.0)
        return with_send_point(state)

    def _wait_for(self, key: str) -> dict | None:
        """The reading another request is asking the exchange for, once it is there (None if it
        does not come within the client's timeout, or the asker finished without one).

        Woken by the asker's notification (``_release``); the reading itself is in the cache.
        """
        until = time.monotonic() + self.client.timeout_s + 0.5
        with self.events.subscribe(key) as sub:
            while (reading := self.cache.get(key)) is None:
                left = until - time.monotonic()
                if left <= 0 or not self.cache.has(f"{key}:asking"):
                    return None
                sub.wait(left)
        return reading

    def _release(self, key: str) -> None:
        """The asker of ``key`` is done (its reading is cached, or it failed): wake the waiters."""
        self.cache.delete(f"{key}:asking")
        self.events.publish(key)

    def _read_clock(self, now: float) -> dict:
        """Ask the exchange's clock; the reading, cached with how long it may be used."""
        try:
            clock = self.client.clock()
            left = float(clock["seconds_to_deadline"])
            state = {
                "connected": True,
                "stale_since": None,
                "reason": None,
                "running_slot": clock["running_slot"],
                "last_closed_slot": clock["last_closed_slot"],
                "deadline_s": left,
                "deadline_at": now + left,
                "slot_seconds": clock["slot_seconds"],
                "slot_length_min": clock["slot_length_min"],
                "time_zone": clock.get("time_zone"),
                "finished": bool(clock.get("finished")),
            }
            self.cache.set("console:last_clock", state, timeout=0)
            grace = min(CLOCK_GRACE_S, 0.2 * float(clock["slot_seconds"] or 0.0))
            valid_s = min(left + max(grace, CLOCK_MIN_AGE_S), CLOCK_MAX_AGE_S)
        except (ExchangeUnavailable, ApiClientError, KeyError, TypeError, ValueError) as exc:
            last = self.cache.get("console:last_clock") or {}
            since = self.cache.get("console:stale_since") or now
            self.cache.set("console:stale_since", since, timeout=0)
            state = {
                **last,
                "connected": False,
                "stale_since": since,
                "reason": short_reason(exc),
                "reason_detail": str(exc)[:300],
                "deadline_s": None,
            }
            valid_s = CLOCK_RETRY_S
        else:
            self.cache.delete("console:stale_since")
        reading = {**state, "valid_until": now + valid_s}
        # the cache's own expiry (whole seconds) only clears readings nobody asks for any more
        self.cache.set("console:clock", reading, timeout=math.ceil(valid_s) + 60)
        return reading

    def markets(self) -> list[dict]:
        """The managed markets (grid and communities): uuid, name, level, parent, fees.

        Asked of the exchange every ``MARKETS_MAX_AGE_S`` by one request at a time; the others
        answer from the list before meanwhile (as ``clock_state``).
        """
        now = time.time()
        cached = self.cache.get("console:markets")
        if cached is not None and cached["valid_until"] > now:
            return cached["markets"]
        asking = self.cache.add("console:markets:asking", 1, timeout=CLOCK_ASKING_S)
        if asking:  # another request may have asked between our read and now
            fresh = self.cache.get("console:markets")
            if fresh is not None and fresh["valid_until"] > time.time():
                self.cache.delete("console:markets:asking")
                return fresh["markets"]
        else:
            cached = cached or self._wait_for("console:markets")
            if cached is not None:
                return cached["markets"]
        try:
            return self._read_markets(now)
        finally:
            if asking:
                self._release("console:markets")

    def _read_markets(self, now: float) -> list[dict]:
        try:
            tree = self.client.grid()
            every = [
                {
                    "uuid": m["area_uuid"],
                    "name": m["name"],
                    "level": m["level"],
                    "parent_uuid": m["parent_uuid"],
                    "fee_ct_per_kwh": m["current_market_fee"],
                    "next_fee_ct_per_kwh": m["next_market_fee"],
                    "import_limit_kwh": m.get("import_limit_kwh"),
                    "export_limit_kwh": m.get("export_limit_kwh"),
                    # a gsy exchange says which markets this console holds; ours: by level
                    "managed": m.get("managed", m["level"] in MANAGED_LEVELS),
                }
                for m in tree["markets"]
            ]
            markets = [m for m in every if m["managed"]]
            self.cache.set("console:fee_limits", tree["fee_limits"], timeout=0)
            self.cache.set("console:tree", every, timeout=0)
        except (ExchangeUnavailable, ApiClientError):
            markets = self._markets_from_history()
        reading = {"markets": markets, "valid_until": now + MARKETS_MAX_AGE_S}
        self.cache.set("console:markets", reading, timeout=MARKETS_MAX_AGE_S + 60)
        return markets

    def fee_limits(self) -> dict:
        limits = self.cache.get("console:fee_limits")
        if limits is None:
            self.markets()
            limits = self.cache.get("console:fee_limits") or {"min_ct_per_kwh": 0.0, "max_ct_per_kwh": 100.0}
        return limits

    def _markets_from_history(self) -> list[dict]:
        return self.ops.history_markets()

    def market(self, uuid: str) -> dict | None:
        return next((m for m in self.markets() if m["uuid"] == uuid), None)

    def tree(self) -> list[dict]:
        """Every market of the grid (houses too), as ``markets()`` reads them; the managed ones
        only while the exchange was never reached."""
        managed = self.markets()
        return self.cache.get("console:tree") or managed

    # -- limits and alerts (the agent evaluates them; the console shows and acknowledges) ------
    @property
    def alerts(self) -> AlertStore:
        return AlertStore(self.ops.engine, self.ops.exchange)

    def limits(self) -> dict[str, Limits]:
        """market uuid → flow limits [kWh per slot]: the console's where set, else the exchange's."""
        return effective_limits(self.tree(), self.alerts.limit_overrides())

    def alert_counts(self) -> dict:
        """Open alerts: ``firing``, ``unacked`` (firing, nobody acknowledged) and ``pending``;
        ``exchange``: the firing alert about the exchange itself (unreachable, no new slot), the
        agent's view, which the header shows as stale even while the cached clock looks live."""
        open_alerts = self.alerts.open_alerts()
        firing = [a for a in open_alerts if a["state"] == ALERTING]
        return {
            "firing": len(firing),
            "unacked": sum(1 for a in firing if not a["acked_by"]),
            "pending": sum(1 for a in open_alerts if a["state"] == PENDING),
            "exchange": next((a for a in firing if a["market_uuid"] == EXCHANGE), None),
        }

    def alerts_by_market(self) -> dict[str, list[dict]]:
        """market uuid → its open alerts (firing first)."""
        out: dict[str, list[dict]] = {}
        for a in self.alerts.open_alerts():
            out.setdefault(a["market_uuid"], []).append(a)
        return out

    # -- the store (cached per closed slot) ---------------------------------------------------
    def model_target(self) -> tuple[SlotInfo, FeeLimits]:
        """The slot a fee queued now is in force from and the exchange's fee limits: what a tariff
        model computes the fee to queue for (:func:`app.operator.fee_service.model_fee_ct_per_kwh`)."""
        state = self.clock_state()
        length = int(state.get("slot_length_min") or 15)
        target = state.get("target_slot")
        if target:
            start = slots.parse(target)
        else:
            running = state.get("running_slot") or self.latest_slot()
            start = slots.parse(slots.shift(running, 1, length)) if running else dt.datetime.now()
        limits = self.fee_limits()
        fee_limits = FeeLimits(limits["min_ct_per_kwh"], limits["max_ct_per_kwh"])
        return fee_service.target_slot(start, length), fee_limits

    def latest_slot(self) -> str | None:
        return self.ops.latest_slot()

    def overview(self) -> dict:
        """Latest row, cumulative revenue, queued fee and mode per market; one read per slot."""
        slot = self.latest_slot()
        key = f"console:overview:{slot}"
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        latest = self.ops.slot_rows(slot)
        # the cumulative revenue grows by the new slots only: add them to the last total instead
        # of summing the whole history on every slot
        known = self.cache.get("console:cumulative")
        if known and known["slot"] <= (slot or ""):
            cumulative = dict(known["totals"])
            for uuid, revenue in self.ops.fee_revenue_by_market(after=known["slot"]).items():
                cumulative[uuid] = cumulative.get(uuid, 0.0) + revenue
        else:
            cumulative = self.ops.fee_revenue_by_market()
        if slot is not None:
            self.cache.set("console:cumulative", {"slot": slot, "totals": cumulative}, timeout=0)
        data = {"slot": slot, "latest": latest, "cumulative": cumulative}
        self.cache.set(key, data, timeout=600)
        return data

    def queued(self) -> dict[str, float]:
        """Fee queued per market (not yet sent)."""
        return {c["market_uuid"]: c["fee_ct_per_kwh"] for c in self.ops.commands((QUEUED,))}

    def modes(self) -> dict[str, str]:
        out = {}
        for uuid, setting in self.ops.settings().items():
            if setting.mode == "model" and setting.model:
                out[uuid] = MODEL_LABELS.get(setting.model.get("model"), "model")
            else:
                out[uuid] = "manual"
        return out

    def history(self, uuid: str, start: str | None = None, last: int | None = None) -> list[dict]:
        return self.ops.history(uuid, start=start, last=last)
