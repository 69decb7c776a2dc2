"""What the console's callbacks read: the history store, and the exchange's clock and grid.

Callbacks never wait on the exchange for long: the clock and the grid come through the client
with a short timeout and are cached (1 s and 30 s), and everything per slot is read from the
store and cached per closed slot, so any number of browsers costs the exchange nothing extra.
When the exchange does not answer, the header says "stale since HH:MM" with the reason, and the
pages keep showing the store's history.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask_caching import Cache
from sqlalchemy import func, select

from app.client import ApiClientError, ExchangeUnavailable, GridOperatorClient
from app.operator.store import QUEUED, OperatorStore
from app.store.schema import op_history

MANAGED_LEVELS = (0, 1)


def short_reason(exc: Exception) -> str:
    """A few words for the header badge; the full text goes to its tooltip."""
    if isinstance(exc, ExchangeUnavailable):
        return "exchange not answering"
    if isinstance(exc, ApiClientError):
        return f"exchange error {exc.status} {exc.code}"
    return type(exc).__name__


@dataclass
class ConsoleData:
    ops: OperatorStore
    client: GridOperatorClient
    cache: Cache

    # -- the exchange (cached, short timeouts) ----------------------------------------------
    def clock_state(self) -> dict:
        """Header state: connected or stale since when and why, running slot, deadline."""
        cached = self.cache.get("console:clock")
        if cached is not None:
            return cached
        now = time.time()
        try:
            clock = self.client.clock()
            state = {
                "connected": True,
                "stale_since": None,
                "reason": None,
                "running_slot": clock["running_slot"],
                "last_closed_slot": clock["last_closed_slot"],
                "deadline_s": clock["seconds_to_deadline"],
                "deadline_at": now + clock["seconds_to_deadline"],
                "slot_seconds": clock["slot_seconds"],
                "slot_length_min": clock["slot_length_min"],
            }
            self.cache.set("console:last_clock", state, timeout=0)
        except (ExchangeUnavailable, ApiClientError, KeyError, ValueError) as exc:
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
        else:
            self.cache.delete("console:stale_since")
        self.cache.set("console:clock", state, timeout=1)
        return state

    def markets(self) -> list[dict]:
        """The managed markets (grid and communities): uuid, name, level, parent, fees."""
        cached = self.cache.get("console:markets")
        if cached is not None:
            return cached
        try:
            tree = self.client.grid()
            markets = [
                {
                    "uuid": m["area_uuid"],
                    "name": m["name"],
                    "level": m["level"],
                    "parent_uuid": m["parent_uuid"],
                    "current_fee": m["current_market_fee"],
                    "next_fee": m["next_market_fee"],
                }
                for m in tree["markets"]
                if m["level"] in MANAGED_LEVELS
            ]
            self.cache.set("console:fee_limits", tree["fee_limits"], timeout=0)
        except (ExchangeUnavailable, ApiClientError):
            markets = self._markets_from_history()
        self.cache.set("console:markets", markets, timeout=30)
        return markets

    def fee_limits(self) -> dict:
        limits = self.cache.get("console:fee_limits")
        if limits is None:
            self.markets()
            limits = self.cache.get("console:fee_limits") or {"min_ct_per_kwh": 0.0, "max_ct_per_kwh": 100.0}
        return limits

    def _markets_from_history(self) -> list[dict]:
        h = op_history.c
        with self.ops.engine.connect() as conn:
            rows = conn.execute(
                select(h.market_uuid, h.name, h.level, h.parent_uuid)
                .where(h.exchange == self.ops.exchange)
                .distinct()
            ).all()
        return [
            {"uuid": r.market_uuid, "name": r.name, "level": r.level, "parent_uuid": r.parent_uuid}
            for r in sorted(rows, key=lambda r: (r.level, r.name))
        ]

    def market(self, uuid: str) -> dict | None:
        return next((m for m in self.markets() if m["uuid"] == uuid), None)

    # -- the store (cached per closed slot) ---------------------------------------------------
    def latest_slot(self) -> str | None:
        return self.ops.latest_slot()

    def overview(self) -> dict:
        """Latest row, cumulative revenue, queued fee and mode per market; one read per slot."""
        slot = self.latest_slot()
        key = f"console:overview:{slot}"
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        h = op_history.c
        with self.ops.engine.connect() as conn:
            latest = [
                dict(r._mapping)
                for r in conn.execute(
                    select(op_history).where(h.exchange == self.ops.exchange, h.slot == slot)
                )
            ]
            # the cumulative revenue grows by the new slots only: add them to the last total
            # instead of summing the whole history on every slot
            known = self.cache.get("console:cumulative")
            query = select(h.market_uuid, func.sum(h.market_fee_revenue)).where(
                h.exchange == self.ops.exchange
            )
            if known and known["slot"] <= (slot or ""):
                cumulative = dict(known["totals"])
                added = conn.execute(query.where(h.slot > known["slot"]).group_by(h.market_uuid)).all()
                for uuid, revenue in added:
                    cumulative[uuid] = cumulative.get(uuid, 0.0) + (revenue or 0.0)
            else:
                cumulative = dict(conn.execute(query.group_by(h.market_uuid)).all())
        if slot is not None:
            self.cache.set("console:cumulative", {"slot": slot, "totals": cumulative}, timeout=0)
        data = {"slot": slot, "latest": latest, "cumulative": cumulative}
        self.cache.set(key, data, timeout=600)
        return data

    def queued(self) -> dict[str, float]:
        """Fee queued per market (not yet sent)."""
        return {c["market_uuid"]: c["fee_ct_per_kwh"] for c in self.ops.commands((QUEUED,))}

    def modes(self) -> dict[str, str]:
        from app.tariffs.registry import MODEL_LABELS

        out = {}
        for uuid, setting in self.ops.settings().items():
            if setting.mode == "model" and setting.model:
                out[uuid] = MODEL_LABELS.get(setting.model.get("model"), "model")
            else:
                out[uuid] = "manual"
        return out

    def history(self, uuid: str, start: str | None = None, last: int | None = None) -> list[dict]:
        return self.ops.history(uuid, start=start, last=last)
