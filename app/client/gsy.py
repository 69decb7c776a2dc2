"""A Grid Singularity exchange behind the console's one client seam (``GridOperatorClient``).

The console, the operator agent, the models, the history and the audit speak to "the exchange"
through ``clock()``, ``grid()``, ``market_cycles()`` and ``batch_command()``. Here those four are
answered from Grid Singularity's protocol, whichever transport carries it
(:mod:`app.client.gsy_redis`: a local gsy-e over Redis; :mod:`app.client.gsy_hosted`: the hosted
service's REST + websocket):

* **markets** are the ones this console's aggregator holds: the markets the exchange opens for an
  external connection (and the user may manage), registered by name and selected by one
  aggregator, whose uuid is kept in the store (``gsy_link``) so that a restarted console takes its
  markets back; a market another client holds is named, with that client, in the link's state;
* **the clock** is the exchange's: one ``market`` event when slot N opens (``market_slot`` = N,
  the tree with each market's fees and N-1's stats). Until the first event there is no clock
  (``ExchangeUnavailable``; no slot is invented); the fee deadline is the end of N, estimated from
  the wall time between two events; no event for a few slots, a lost connection or a silent
  exchange (no heartbeat) make it unavailable with the reason; ``finish`` ends it;
* **cycles** are the events, turned into our ``market_info`` (``last_market_slot`` = N-1);
* **batches** are translated: ``grid_fees`` as it is; ``market_stats``/``dso_market_stats`` as
  gsy-e's ``dso_market_stats`` of the last closed slot (it answers no other). The answers are
  checked, not trusted: gsy-e answers a fee it rejected (a negative one) ``ready`` with the **old**
  value, and drops a command for a market the aggregator does not hold without a word, so a fee
  whose echo differs from what was sent, or which gets no answer, is answered here as refused with
  that reason. A transaction id is sent at most once: a batch resent under the same id after a
  lost answer is answered from what the exchange's next event shows, never published again.

Only the operator agent (one per deployment, under its lock) holds the link; the web workers read
what it saw from the store (:class:`GsyReader`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
import time
import unicodedata
import uuid as uuidlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping

from sqlalchemy import Engine, insert, select, update

from app import slots
from app.client.client import ApiClientError, ExchangeUnavailable, GridOperatorClient
from app.store.schema import gsy_link

log = logging.getLogger(__name__)

DEFAULT_SLOT_LENGTH_MIN = 15  # gsy-e's default slot length, until two events tell the real one
FEE_LIMITS = {"min_ct_per_kwh": 0.0, "max_ct_per_kwh": 100.0}
"""The console's bounds for a gsy fee [ct/kWh]: gsy-e takes 0 up to ``sys.maxsize``; the console's
slider and models stay within 100."""
ANSWER_TIMEOUT_S = 10.0  # a batch's answer comes at gsy-e's next tick (0.01-0.12 s measured)
STALE_AFTER_SLOTS = 2.5  # no market event for this many slots' wall time: the exchange is stale ...
STALE_MIN_S = 20.0  # ... but never sooner than this [s]
STATE_REFRESH_S = 5.0  # the link rewrites its state row at least this often [s]
READER_STALE_S = 30.0  # a state row older than this: the agent's link is not running [s]
KEEP_CYCLES = 400
WALL_SLOTS_KEPT = 8  # the wall time of this many recent slots estimates the running one's
KEEP_SENT = 200


def hhmm(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%H:%M:%S UTC")


def number(value: object) -> float | None:
    """gsy-e's numbers come as numbers, strings ("2") or "None"."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def slugify(name: str) -> str:
    """gsy-e's area slug (python-slugify, lower case): the name of a market's Redis channels.

    Accents are dropped as python-slugify's transliteration does for Latin letters ("Süd" ->
    "sud", "ß" -> "ss"); other scripts are not transliterated here.
    """
    text = unicodedata.normalize("NFKD", name.replace("ß", "ss").replace("ẞ", "SS"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    out, dash = [], False
    for ch in text.strip().lower():
        if ch.isascii() and ch.isalnum():
            out.append(ch)
            dash = False
        elif not dash and out:
            out.append("-")
            dash = True
    return "".join(out).strip("-")


def flatten(grid_tree: Mapping) -> list[dict]:
    """The uuid-keyed ``grid_tree`` of a ``market`` event as rows: uuid, name, parent, level, node."""
    rows: list[dict] = []

    def walk(children: Mapping, parent: str | None, level: int) -> None:
        for area_uuid, node in (children or {}).items():
            if not isinstance(node, dict):
                continue
            rows.append(
                {
                    "area_uuid": area_uuid,
                    "name": node.get("area_name") or area_uuid,
                    "parent_uuid": parent,
                    "level": level,
                    "node": node,
                }
            )
            walk(node.get("children") or {}, area_uuid, level + 1)

    walk(grid_tree, None, 0)
    return rows


def market_entry(row: dict) -> dict:
    """One ``market_info`` market (DESIGN §3) from a held market's event node."""
    node = row["node"]
    stats = node.get("last_market_stats") or {}
    last_fee, current = number(node.get("last_market_fee")), number(node.get("current_market_fee"))
    energy = number(stats.get("total_traded_energy_kWh")) or 0.0
    revenue = number(node.get("market_fee_revenue"))
    if revenue is None:  # gsy-e's event carries none: the fee in force times the energy traded
        revenue = (last_fee or 0.0) * energy
    # gsy-e's event into ours, field by field with gsy-e's gaps filled: a translation between two
    # contracts, not derived from the table of slot statistics (app.exchange.stat_table)
    return {
        "area_uuid": row["area_uuid"],
        "name": row["name"],
        "parent_uuid": row["parent_uuid"],
        "level": row["level"],
        "managed": True,
        "last_market_fee": last_fee,
        "current_market_fee": current,
        "next_market_fee": current,
        "last_market_stats": {
            "min_trade_rate": number(stats.get("min_trade_rate")),
            "median_trade_rate": number(stats.get("median_trade_rate")),
            "avg_trade_rate": number(stats.get("avg_trade_rate")),
            "max_trade_rate": number(stats.get("max_trade_rate")),
            "total_traded_energy_kWh": energy,
            "market_fee_revenue": revenue,
            "current_market_fee": last_fee,
            "next_market_fee": current,
        },
        "area_throughput": node.get("area_throughput") or {"import": 0.0, "export": 0.0},
        "self_sufficiency": number(node.get("self_sufficiency")),
        "market_fee_revenue": revenue,
    }


class BatchRefused(Exception):
    """The exchange refused a whole batch (a 4xx): every command in it is answered refused."""


# -- the state the agent's link shares with the web workers -----------------------------------------
class GsyLinkStore:
    """The ``gsy_link`` row of one exchange: our aggregator's uuid and the link's last state."""

    def __init__(self, engine: Engine, exchange: str):
        self.engine, self.exchange = engine, exchange

    def load(self) -> tuple[str | None, dict, float | None]:
        c = gsy_link.c
        with self.engine.connect() as conn:
            row = conn.execute(select(gsy_link).where(c.exchange == self.exchange)).first()
        if row is None:
            return None, {}, None
        return row.aggregator_uuid, json.loads(row.state), row.updated_at

    def save(self, aggregator_uuid: str | None, state: dict) -> None:
        c = gsy_link.c
        values = {"aggregator_uuid": aggregator_uuid, "state": json.dumps(state), "updated_at": time.time()}
        with self.engine.begin() as conn:
            done = conn.execute(update(gsy_link).where(c.exchange == self.exchange).values(**values))
            if done.rowcount == 0:
                conn.execute(insert(gsy_link).values(exchange=self.exchange, **values))


SHORT_REASONS = (  # the header's few words for the link's reasons (the full text goes to its tooltip)
    ("another client holds", "markets held by another client"),
    ("no market of this gsy-e is open", "no market open to the console"),
    ("gsy-e is silent", "gsy-e silent"),
    ("gsy-e does not answer", "gsy-e not answering"),
    ("Redis at", "Redis unreachable"),
    ("no market event from the exchange since", "no market event"),
    ("no market event from the exchange yet", "waiting for the first slot"),
    ("connected; waiting", "waiting for the first slot"),
    ("connecting", "connecting"),
    ("login as", "login refused"),
    ("the console's agent", "agent not running"),
)


def unavailable(reason: str) -> ExchangeUnavailable:
    """``ExchangeUnavailable(reason)`` with ``short``: a few words for the header's badge."""
    exc = ExchangeUnavailable(reason)
    exc.short = next((short for start, short in SHORT_REASONS if reason.startswith(start)), None)
    return exc


def clock_from_state(state: Mapping, now: float) -> dict:
    """Our ``/api/v1/clock`` answer from the link's state; ``ExchangeUnavailable`` with the reason
    when there is no slot (no event yet), the link is down, or the events stopped."""
    finished = bool(state.get("finished"))
    if state.get("down_reason") and not finished:
        raise unavailable(state["down_reason"])
    running = state.get("running_slot")
    if not running:
        raise unavailable(state.get("waiting") or "no market event from the exchange yet")
    slot_seconds = float(state.get("slot_seconds") or 0.0)
    event_at = float(state["event_at"])
    quiet_s = max(STALE_AFTER_SLOTS * slot_seconds, STALE_MIN_S)
    if not finished and now > event_at + quiet_s:
        raise unavailable(f"no market event from the exchange since {hhmm(event_at)}")
    deadline = event_at + slot_seconds
    return {
        "running_slot": running,
        "last_closed_slot": state.get("last_closed_slot"),
        "slot_length_min": int(state.get("slot_length_min") or DEFAULT_SLOT_LENGTH_MIN),
        "slot_seconds": slot_seconds,
        "slot_completion_pct": 0.0
        if slot_seconds <= 0
        else 100.0 * min(max((now - event_at) / slot_seconds, 0), 1),
        "fee_deadline": deadline,
        "seconds_to_deadline": 0.0 if finished else max(deadline - now, 0.0),
        "simulated_time": running,
        "time_zone": "UTC",
        "server_time": now,
        "finished": finished,
        "exchange": state.get("exchange_name"),
        "conflicts": state.get("conflicts") or [],
    }


def grid_from_state(state: Mapping) -> dict:
    markets = state.get("markets")
    if not markets:
        raise unavailable(state.get("down_reason") or state.get("waiting") or "no market held yet")
    return {
        "markets": [dict(m) for m in markets],
        "fee_limits": dict(FEE_LIMITS),
        "conflicts": state.get("conflicts") or [],
    }


class GsyReader(GridOperatorClient):
    """The web workers' view of a gsy exchange: what the agent's link last wrote to the store."""

    def __init__(
        self, base_url: str, username: str, password: str, *, link_store: GsyLinkStore, **kwargs: object
    ) -> None:
        super().__init__(base_url, username, password, **kwargs)
        self.link_store = link_store

    def _state(self) -> dict:
        _, state, updated_at = self.link_store.load()
        if updated_at is None:
            raise unavailable("the console's agent has not reached the exchange yet")
        if time.time() - updated_at > READER_STALE_S:
            raise unavailable(
                f"the console's agent is not running (its link last wrote at {hhmm(updated_at)})"
            )
        return state

    def login(self) -> str:
        return ""

    def clock(self) -> dict:
        return clock_from_state(self._state(), time.time())

    def grid(self) -> dict:
        return grid_from_state(self._state())

    def market_cycles(self, after: str | None = None, wait_s: float = 0.0) -> dict:
        raise ApiClientError(501, "not_here", "the market cycles of a gsy exchange reach the agent only")

    def history(self, area_uuid: str, start: str | None = None, end: str | None = None) -> dict:
        raise ApiClientError(501, "not_here", "a gsy exchange keeps no history; the console's store has it")

    def batch_command(
        self, batch_commands: Mapping[str, Iterable[dict]], transaction_id: str | None = None
    ) -> dict:
        raise unavailable("only the console's agent sends commands to a gsy exchange")


# -- the link ---------------------------------------------------------------------------------------
class GsyLink(GridOperatorClient):
    """The shared logic of both dialects; a transport subclass supplies ``_connect``, ``_listen``
    and ``_publish_batch`` and calls ``_on_event`` / ``_on_batch_answer`` with what arrives.

    It is a ``GridOperatorClient`` (so ``OperatorAgent`` runs on it unchanged, see
    :func:`app.client.factory.make_client`).
    """

    dialect = "gsy"
    reconnect_s = 2.0
    held_elsewhere_retry_s = 15.0  # markets another client holds: ask again this much later [s]

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *args: object,
        link_store: GsyLinkStore,
        configuration_id: str = "",
        aggregator_name: str = "grid-fee-console",
        **kwargs: object,
    ) -> None:
        super().__init__(base_url, username, password, *args, **kwargs)
        self.link_store = link_store
        self.configuration_id = configuration_id
        self.aggregator_name = aggregator_name
        saved_uuid, saved, _ = link_store.load()
        self.aggregator_uuid: str | None = saved_uuid
        self._cond = threading.Condition()
        self._cycles: list[dict] = []
        self._gsy_state: dict = {
            "slot_length_min": saved.get("slot_length_min"),
            "slot_seconds": saved.get("slot_seconds"),
            "length_seen": saved.get("length_seen", False),
            "wall_slots": saved.get("wall_slots") or [],
            "markets": [],
            "held": {},
            "conflicts": [],
            "waiting": "connecting to the exchange",
        }
        self._sent: OrderedDict[str, dict] = OrderedDict((k, v) for k, v in (saved.get("sent") or {}).items())
        for record in self._sent.values():  # sent before a restart, answer lost: the first event
            record["seq"] = 0  # after the restart (seq 1) tells whether its fees were taken
        self._waiters: dict[str, dict] = {}  # transaction id -> {"event", "answer"}
        self._event_seq = 0
        self._next_fee: dict[str, float] = {}
        self._ready = False
        self._thread: threading.Thread | None = None
        self._link_stop = threading.Event()
        self._saved_at = 0.0

    # -- transport hooks ----------------------------------------------------------------------------
    def _connect(self) -> None:
        """Open the transport, create or reuse the aggregator, select the markets (set
        ``self._gsy_state["held"]`` = {uuid: name} and ``["conflicts"]``)."""
        raise NotImplementedError

    def _listen(self) -> None:
        """Deliver what arrives until the connection breaks (raise) or ``_link_stop`` is set."""
        raise NotImplementedError

    def _publish_batch(self, tid: str, batch: dict) -> None:
        """Publish one batch (raise ``ExchangeUnavailable`` if it could not be sent)."""
        raise NotImplementedError

    def _disconnect(self) -> None:
        """Close the transport (best effort)."""

    # -- the link's life ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"gsy-link-{self.dialect}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._link_stop.set()
        self._disconnect()
        with self._cond:
            self._cond.notify_all()

    def _run(self) -> None:
        while not self._link_stop.is_set():
            try:
                self._connect()
                self._set_up()
                self._listen()
                if not self._link_stop.is_set():
                    raise ExchangeUnavailable("the connection to the exchange closed")
            except Exception as exc:  # any failure: down with its reason, then retry
                if self._link_stop.is_set():
                    break
                log.warning("gsy link down: %s", exc)
                reason = str(exc) if isinstance(exc, ExchangeUnavailable) else f"{type(exc).__name__}: {exc}"
                self._set_down(reason[:300])
            finally:
                self._disconnect()
            elsewhere = str(self._gsy_state.get("down_reason") or "").startswith("another client holds")
            self._link_stop.wait(self.held_elsewhere_retry_s if elsewhere else self.reconnect_s)

    def _new_exchange_run(self) -> None:
        """The exchange forgot our aggregator: it was restarted (a new gsy-e run). Its slots
        start afresh, so the link's clock does too (a run that replays dates the console already
        stored is best given a store of its own: the history keeps each slot label once)."""
        log.warning("the exchange does not know aggregator %s any more: a new run; its clock starts afresh",
                    self.aggregator_uuid)  # fmt: skip
        with self._cond:
            for key in ("running_slot", "last_closed_slot", "event_at", "finished"):
                self._gsy_state.pop(key, None)
            self._gsy_state.update(wall_slots=[], length_seen=False, slot_seconds=None)
            self._cycles.clear()

    def _set_up(self) -> None:
        with self._cond:
            self._ready = True
            self._gsy_state["down_reason"] = None
            self._gsy_state["down_since"] = None
            if not self._gsy_state.get("running_slot"):
                self._gsy_state["waiting"] = "connected; waiting for the exchange's first market event"
            self._cond.notify_all()
        self._save(force=True)

    def _set_down(self, reason: str) -> None:
        with self._cond:
            self._ready = False
            if not self._gsy_state.get("down_reason"):
                self._gsy_state["down_since"] = time.time()
            self._gsy_state["down_reason"] = reason
            self._cond.notify_all()
        self._save(force=True)

    def _save(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._saved_at < STATE_REFRESH_S:
            return
        self._saved_at = now
        with self._cond:
            state = {k: v for k, v in self._gsy_state.items() if k != "held"}
            state["held"] = dict(self._gsy_state.get("held") or {})
            state["sent"] = dict(list(self._sent.items())[-KEEP_SENT:])
            state["markets"] = self._markets_now()
        try:
            self.link_store.save(self.aggregator_uuid, state)
        except Exception:  # the store may be briefly unreachable; next time
            log.exception("could not write the gsy link's state")

    def _markets_now(self) -> list[dict]:
        out = []
        for m in self._gsy_state.get("markets") or []:
            nxt = self._next_fee.get(m["area_uuid"], m.get("current_market_fee"))
            out.append({**m, "next_market_fee": nxt})
        return out

    def heartbeat(self) -> None:
        """The transport calls this when the exchange shows it is alive (keeps the row fresh)."""
        self._save()

    def _ensure_started(self) -> None:
        self.start()

    # -- what arrives -------------------------------------------------------------------------------
    def _on_event(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "market":
            self._on_market(event)
        elif kind == "finish":
            with self._cond:
                self._gsy_state["finished"] = True
                self._cond.notify_all()
            self._save(force=True)

    def _on_market(self, event: dict) -> None:
        now = time.time()
        slot = slots.read(event.get("market_slot"))
        if slot is None:
            log.warning("a market event without a slot label: %r", event.get("market_slot"))
            return
        with self._cond:
            st = self._gsy_state
            prev, prev_at = st.get("running_slot"), st.get("event_at")
            if prev is not None and slot <= prev:
                return  # the same slot again (or an older one): nothing new
            length = int(st.get("slot_length_min") or 0)
            if prev is not None:
                gap = slots.minutes(slot) - slots.minutes(prev)
                if gap > 0 and (not st.get("length_seen") or gap < length):
                    length = gap  # the shortest gap between two events seen is the slot length
                    st["length_seen"] = True
                if gap == length and prev_at:
                    # gsy-e paces a slot to at least --slot-length-realtime and runs late now and
                    # then (the first slot after a resume: +40 % here), never early: the shortest
                    # recent slot is the safe estimate of when the running one ends
                    seen = [*(st.get("wall_slots") or []), round(now - prev_at, 3)][-WALL_SLOTS_KEPT:]
                    st["wall_slots"] = seen
                    st["slot_seconds"] = min(seen)
            length = length or DEFAULT_SLOT_LENGTH_MIN
            held = st.get("held") or {}
            rows = [r for r in flatten(event.get("grid_tree") or {}) if r["area_uuid"] in held]
            markets = [market_entry(r) for r in rows]
            info = {
                "event": "market",
                "market_slot": slot,
                "last_market_slot": slots.shift(slot, -1, length),
                "slot_length_min": length,
                "feed_in_tariff_rate": event.get("feed_in_tariff_rate"),
                "market_maker_rate": event.get("market_maker_rate"),
                "markets": markets,
            }
            self._cycles.append(info)
            del self._cycles[:-KEEP_CYCLES]
            st.update(
                running_slot=slot,
                last_closed_slot=info["last_market_slot"],
                slot_length_min=length,
                event_at=now,
                markets=[{k: v for k, v in m.items() if k != "last_market_stats"} for m in markets],
                finished=False,
                waiting=None,
            )
            self._next_fee = {}
            self._event_seq += 1
            self._cond.notify_all()
        self._save(force=True)

    def _on_batch_answer(self, answer: dict) -> None:
        tid = answer.get("transaction_id")
        with self._cond:
            waiter = self._waiters.get(tid)
            if waiter is not None:
                waiter["answer"] = answer
                waiter["event"].set()

    # -- the seam: clock, grid, cycles, batches -----------------------------------------------------
    def login(self) -> str:
        return ""

    def clock(self) -> dict:
        self._ensure_started()
        with self._cond:
            state = dict(self._gsy_state)
        return clock_from_state(state, time.time())

    def grid(self) -> dict:
        self._ensure_started()
        with self._cond:
            state = {**self._gsy_state, "markets": self._markets_now()}
        return grid_from_state(state)

    def market_cycles(self, after: str | None = None, wait_s: float = 0.0) -> dict:
        self._ensure_started()
        deadline = time.monotonic() + max(wait_s, 0.0)
        with self._cond:
            while True:
                cycles = [c for c in self._cycles if after is None or c["last_market_slot"] > after]
                if after is None and cycles:
                    cycles = cycles[-1:]  # a fresh agent starts from the newest cycle
                if cycles:
                    return {"cycles": cycles}
                if not self._ready and self._gsy_state.get("down_reason"):
                    raise unavailable(self._gsy_state["down_reason"])
                left = deadline - time.monotonic()
                if left <= 0 or self._link_stop.is_set():
                    return {"cycles": []}
                self._cond.wait(min(left, 0.5))

    def history(self, area_uuid: str, start: str | None = None, end: str | None = None) -> dict:
        raise ApiClientError(
            501, "not_supported", "a gsy exchange keeps no history; the console's store has it"
        )

    def batch_command(
        self, batch_commands: Mapping[str, Iterable[dict]], transaction_id: str | None = None
    ) -> dict:
        self._ensure_started()
        tid = transaction_id or str(uuidlib.uuid4())
        batch = {area: list(cmds) for area, cmds in batch_commands.items()}
        with self._cond:
            record = self._sent.get(tid)
            seq = self._event_seq
            ready = self._ready
            reason = self._gsy_state.get("down_reason") or self._gsy_state.get("waiting")
        if record is not None and record.get("answer") is not None:
            return record["answer"]  # answered before: the same answer, nothing sent again
        if record is not None and record.get("published"):
            if seq > record["seq"]:
                return self._remember(tid, self._settle_from_event(tid, batch, record))
            raise ExchangeUnavailable("the exchange has not answered this batch yet; it is not sent again")
        if not ready:
            raise unavailable(reason or "not connected to the exchange")
        answers, outgoing = self._plan(batch)
        raw: dict = {}
        if outgoing:
            waiter = {"event": threading.Event(), "answer": None}
            with self._cond:
                self._waiters[tid] = waiter
            try:
                try:
                    self._publish_batch(tid, outgoing)  # raises before anything left: safe to resend
                except BatchRefused as exc:
                    refused = {
                        area: [
                            a
                            if a is not None
                            else self._error(area, (cmd or {}).get("type"), f"batch refused: {exc}")
                            for a, cmd in zip(answers[area], cmds, strict=True)
                        ]
                        for area, cmds in batch.items()
                    }
                    return self._remember(tid, {"transaction_id": tid, "responses": refused})
                with self._cond:
                    self._sent[tid] = {
                        "published": True,
                        "seq": seq,
                        "answer": None,
                        "fees": self._fees_of(outgoing),
                    }
                    self._trim_sent()
                if not waiter["event"].wait(ANSWER_TIMEOUT_S):
                    self._save(force=True)
                    raise ExchangeUnavailable(
                        f"no answer from the exchange within {ANSWER_TIMEOUT_S:g} s (batch {tid}); "
                        "its next market event will tell whether the fees were taken"
                    )
            finally:
                with self._cond:
                    self._waiters.pop(tid, None)
            raw = waiter["answer"].get("responses") or {}
        with self._cond:
            moved = self._event_seq != seq
            running = self._gsy_state.get("running_slot")
            closed = self._gsy_state.get("last_closed_slot")
            length = int(self._gsy_state.get("slot_length_min") or DEFAULT_SLOT_LENGTH_MIN)
            nodes = {m["area_uuid"]: m for m in self._gsy_state.get("markets") or []}
        for area, cmds in batch.items():
            got = list(raw.get(area) or [])
            sent_index = 0
            for i, cmd in enumerate(cmds):
                if answers[area][i] is not None:
                    continue  # answered here (not sent)
                answer = got[sent_index] if sent_index < len(got) else None
                sent_index += 1
                answers[area][i] = self._check(area, cmd, answer, moved, running, closed, length, nodes)
        response = {"transaction_id": tid, "responses": answers}
        return self._remember(tid, response)

    # -- batches: translation and checks ------------------------------------------------------------
    def _plan(self, batch: dict) -> tuple[dict, dict]:
        """What goes to the exchange, and the answers given here for what does not."""
        answers: dict[str, list] = {}
        outgoing: dict[str, list] = {}
        with self._cond:
            closed = self._gsy_state.get("last_closed_slot")
            held = dict(self._gsy_state.get("held") or {})
        for area, cmds in batch.items():
            answers[area] = []
            if area not in held:  # gsy-e would drop it without a word (and answer nothing at all)
                answers[area] = [
                    self._error(
                        area,
                        cmd.get("type") if isinstance(cmd, dict) else None,
                        "not sent: this console's aggregator does not hold this market",
                    )
                    for cmd in cmds
                ]
                continue
            for cmd in cmds:
                kind = cmd.get("type") if isinstance(cmd, dict) else None
                data = cmd.get("data") if isinstance(cmd, dict) and isinstance(cmd.get("data"), dict) else {}
                if kind == "grid_fees":
                    fee = data.get("fee_const")
                    if "fee_const" in data and (
                        isinstance(fee, bool) or not isinstance(fee, int | float) or not math.isfinite(fee)
                    ):
                        answers[area].append(
                            self._error(area, kind, "fee_const must be a finite number [ct/kWh]")
                        )
                        continue
                    outgoing.setdefault(area, []).append({"type": "grid_fees", "data": dict(data)})
                elif kind in ("market_stats", "dso_market_stats"):
                    slots = data.get("market_slots")
                    if slots and list(slots) != [closed]:
                        answers[area].append(
                            self._error(
                                area,
                                kind,
                                f"a gsy exchange answers the last closed slot only ({closed}), not {slots}",
                            )
                        )
                        continue
                    outgoing.setdefault(area, []).append({"type": "dso_market_stats", "data": {}})
                else:
                    answers[area].append(
                        self._error(area, kind, f"command {kind!r} is not one a gsy exchange takes")
                    )
                    continue
                answers[area].append(None)
        return answers, outgoing

    @staticmethod
    def _error(area: str, kind: object, message: str) -> dict:
        return {
            "status": "error",
            "area_uuid": area,
            "command": kind,
            "error": "refused",
            "error_message": message,
        }

    @staticmethod
    def _fees_of(outgoing: dict) -> dict[str, float]:
        return {
            area: float(c["data"]["fee_const"])
            for area, cmds in outgoing.items()
            for c in cmds
            if c["type"] == "grid_fees" and number(c["data"].get("fee_const")) is not None
        }

    def _check(
        self,
        area: str,
        cmd: dict,
        answer: dict | None,
        moved: bool,
        running: str | None,
        closed: str | None,
        length: int,
        nodes: Mapping[str, dict],
    ) -> dict:
        kind = cmd.get("type")
        if answer is None:
            return self._error(
                area,
                kind,
                "no answer from the exchange: it drops a command for a market this console's "
                "aggregator does not hold",
            )
        if answer.get("status") != "ready":
            reason = answer.get("error_message") or answer.get("message") or answer.get("msg") or "refused"
            return self._error(area, kind, str(reason))
        if kind == "grid_fees":
            sent = number((cmd.get("data") or {}).get("fee_const"))
            echoed = number(answer.get("market_fee_const"))
            if sent is None or echoed is None or abs(echoed - sent) > 1e-9:
                return self._error(
                    area,
                    kind,
                    f"the exchange answered 'ready' but kept {answer.get('market_fee_const')} ct/kWh, "
                    f"not {(cmd.get('data') or {}).get('fee_const')}: it rejected the fee",
                )
            with self._cond:
                self._next_fee[area] = sent
            # the hosted face says from which slot; gsy-e does not: the slot after the running one
            applies = slots.read(answer.get("applies_from_slot")) or (
                slots.shift(running, 1, length) if running else None
            )
            return {
                "status": "ready",
                "area_uuid": area,
                "command": "grid_fees",
                "market_fee_const": sent,
                "applies_from_slot": applies,
            }
        if moved:
            return self._error(
                area,
                kind,
                f"the exchange opened another slot before it answered; these stats would not be of {closed}",
            )
        stats = answer.get("market_stats") or {}
        node = nodes.get(area) or {}
        # gsy-e's answer into our dso_market_stats, field by field (see market_entry)
        out = {
            "min_trade_rate": number(stats.get("min_trade_rate")),
            "median_trade_rate": number(stats.get("median_trade_rate")),
            "avg_trade_rate": number(stats.get("avg_trade_rate")),
            "max_trade_rate": number(stats.get("max_trade_rate")),
            "total_traded_energy_kWh": number(stats.get("total_traded_energy_kWh")) or 0.0,
            "market_fee_revenue": number(stats.get("market_fee_revenue")) or 0.0,
            "area_throughput": {
                "import": number((stats.get("area_throughput") or {}).get("import")) or 0.0,
                "export": number((stats.get("area_throughput") or {}).get("export")) or 0.0,
            },
            "self_sufficiency": number(stats.get("self_sufficiency")),
            "self_consumption": number(stats.get("self_consumption")),
            "current_market_fee": node.get("last_market_fee"),
            "next_market_fee": node.get("current_market_fee"),
        }
        if out["current_market_fee"] is None or out["next_market_fee"] is None:
            return self._error(area, kind, "the exchange's event gave no fee for this market")
        return {"status": "ready", "area_uuid": area, "command": kind, "market_stats": {closed: out}}

    def _settle_from_event(self, tid: str, batch: dict, record: dict) -> dict:
        """A published batch whose answer was lost: the fees the next event shows decide."""
        with self._cond:
            fees = {m["area_uuid"]: m.get("current_market_fee") for m in self._gsy_state.get("markets") or []}
            running = self._gsy_state.get("running_slot")
        answers: dict[str, list] = {}
        for area, cmds in batch.items():
            answers[area] = []
            for cmd in cmds:
                kind = cmd.get("type") if isinstance(cmd, dict) else None
                sent = (
                    number(((cmd or {}).get("data") or {}).get("fee_const")) if kind == "grid_fees" else None
                )
                if kind != "grid_fees":
                    answers[area].append(self._error(area, kind, "the answer was lost; not asked again"))
                elif sent is not None and number(fees.get(area)) == sent:
                    answers[area].append(
                        {
                            "status": "ready",
                            "area_uuid": area,
                            "command": "grid_fees",
                            "market_fee_const": sent,
                            "applies_from_slot": running,
                            "note": "answer lost; the exchange's next event shows the fee",
                        }
                    )
                else:
                    answers[area].append(
                        self._error(
                            area,
                            kind,
                            f"the answer was lost and the exchange's next event shows "
                            f"{fees.get(area)} ct/kWh, not {sent}: not taken (not sent again)",
                        )
                    )
        return {"transaction_id": tid, "responses": answers}

    def _remember(self, tid: str, response: dict) -> dict:
        with self._cond:
            record = self._sent.get(tid) or {"published": False, "seq": self._event_seq}
            record["answer"] = response
            self._sent[tid] = record
            self._trim_sent()
        self._save(force=True)
        return response

    def _trim_sent(self) -> None:
        while len(self._sent) > KEEP_SENT:
            self._sent.popitem(last=False)
