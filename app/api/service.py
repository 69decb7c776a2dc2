"""What the Grid Operator API answers, read from and written to the store.

No Flask here: routes parse HTTP and call these methods, which any worker can serve because
everything comes from the store ("one writer, many readers"). The runner is the only writer of
slots; accepted fees go into the store's fee book.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from app.api.auth import User
from app.api.errors import HttpError
from app.api.models import Command, GridFeesCommand
from app.exchange.clock import BadSlot, SimClock
from app.exchange.events import dso_market_stats, last_market_stats, market_info
from app.exchange.fees import Fee, FeeChange, FeeRefused, validate_fee
from app.exchange.grid import LEVEL_NAMES
from app.exchange.scenario import Scenario
from app.store.packed import stat_values
from app.store.repo import ExchangeStore

_COMMAND = TypeAdapter(Command)
MAX_CYCLES_PER_PAGE = 96


class ApiError(HttpError):
    """A request the Grid Operator API refuses, answered as ``{"error": code, "message": message}``."""


@dataclass(frozen=True)
class _Pending:
    area_uuid: str
    index: int
    fee: Fee


class ExchangeService:
    def __init__(
        self,
        store: ExchangeStore,
        slot_seconds: float,
        max_batch_commands: int = 2000,
        max_market_slots: int = 96,
        max_batch_slots: int = 20_000,
    ):
        self.max_market_slots = max_market_slots  # market_slots of one stats command
        self.max_batch_slots = max_batch_slots  # commands x market_slots of one batch
        self.store = store
        self.scenario: Scenario = store.scenario
        self.grid = store.grid
        self.clock = SimClock(self.scenario.start, self.scenario.slot_length_min, slot_seconds)
        self.max_batch_commands = max_batch_commands
        self.markets = {m.uuid: m for m in self.grid.markets}

    # -- reads ----------------------------------------------------------------------------
    def clock_info(self) -> dict:
        state = self.store.clock_state()
        now = time.time()
        deadline = state.slot_started_at + state.slot_seconds
        done = (now - state.slot_started_at) / state.slot_seconds if state.slot_seconds > 0 else 0.0
        return {
            "running_slot": self.clock.label(state.running_slot),
            "last_closed_slot": None
            if state.last_closed_slot is None
            else self.clock.label(state.last_closed_slot),
            "slot_length_min": self.scenario.slot_length_min,
            "slot_seconds": state.slot_seconds,
            "slot_completion_pct": 100.0 * min(max(done, 0.0), 1.0),
            "fee_deadline": deadline,
            "seconds_to_deadline": max(deadline - now, 0.0),
            "simulated_time": self.clock.slot_start(state.running_slot).isoformat(timespec="minutes"),
            "time_zone": self.scenario.location.tz,
            "server_time": now,
            "finished": self.scenario.has_ended(state.running_slot),
        }

    def grid_tree(self) -> dict:
        running = self.store.clock_state().running_slot
        now = self.store.fees_for_slot(running).tolist()
        queued = self.store.fees_for_slot(running + 1).tolist()
        assets = self.assets_by_market()
        flow_limits = self.scenario.market_limits()
        markets = []
        for m in self.grid.markets:
            flow = flow_limits.get(m.name) if m.level < 2 else None
            markets.append(
                {
                    "area_uuid": m.uuid,
                    "name": m.name,
                    "parent_uuid": None if m.parent_index is None else self.grid.markets[m.parent_index].uuid,
                    "level": m.level,
                    "level_name": LEVEL_NAMES[m.level],
                    "current_market_fee": now[m.index],
                    "next_market_fee": queued[m.index],
                    "import_limit_kwh": flow.import_kwh_per_slot if flow else None,
                    "export_limit_kwh": flow.export_kwh_per_slot if flow else None,
                    "assets": assets.get(m.index, []),
                }
            )
        limits = self.scenario.fee_limits
        return {
            "scenario": self.scenario.name,
            "fee_limits": {"min_ct_per_kwh": limits.min_ct_per_kwh, "max_ct_per_kwh": limits.max_ct_per_kwh},
            "markets": markets,
        }

    def assets_by_market(self) -> dict[int, list[dict]]:
        return assets_by_market(self.scenario, self.grid.n_communities)

    def market_info(self, closed_slot: int, rows: list[dict] | None = None) -> dict:
        rows = rows if rows is not None else self.store.slot_rows(closed_slot)
        sell, feed_in = self.scenario.supplier_rates(closed_slot + 1)
        return market_info(self.grid, self.clock, closed_slot, rows, sell, feed_in)

    def slot_of(self, label: str) -> int:
        try:
            return self.clock.slot_of(label)
        except BadSlot as exc:
            raise ApiError(400, "bad_slot", str(exc)) from None

    def market_cycles(self, after: str | None, wait_s: float, limit: int = MAX_CYCLES_PER_PAGE) -> dict:
        """Cycles after slot ``after`` (all closed slots after it, oldest first, one page).

        Without ``after``: the latest cycle. When there is none yet, waits up to ``wait_s``
        seconds for one (long-poll): woken by the runner's notification of a closed slot
        (``app.store.notify``; polling the store on SQLite alone), the page read from the store.
        """
        after_slot = None if after is None else self.slot_of(after)
        deadline = time.monotonic() + max(0.0, wait_s)
        found = self._cycles_after(after_slot, limit)
        if found is not None or wait_s <= 0:
            return found or self._no_cycles(after_slot)
        with self.store.events.subscribe(self.store.cycles_channel) as sub:
            while (found := self._cycles_after(after_slot, limit)) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return self._no_cycles(after_slot)
                sub.wait(left)
        return found

    def _cycles_after(self, after_slot: int | None, limit: int) -> dict | None:
        """The page of cycles after ``after_slot`` (the latest without it); None when none."""
        last = self.store.clock_state().last_closed_slot
        if last is None or (after_slot is not None and last <= after_slot):
            return None
        first = last if after_slot is None else after_slot + 1
        final = min(last, first + limit - 1)
        cycles = [self.market_info(k) for k in range(first, final + 1)]
        return {"cycles": cycles, "last_market_slot": self.clock.label(final), "more": final < last}

    def _no_cycles(self, after_slot: int | None) -> dict:
        label = None if after_slot is None else self.clock.label(after_slot)
        return {"cycles": [], "last_market_slot": label, "more": False}

    def history(self, area_uuid: str, start: str | None, end: str | None) -> dict:
        market = self.markets.get(area_uuid)
        if market is None:
            raise ApiError(404, "unknown_market", f"no market with uuid {area_uuid!r}")
        lo = None if start is None else self.slot_of(start)
        hi = None if end is None else self.slot_of(end)
        if lo is not None and hi is not None and lo > hi:
            raise ApiError(400, "bad_range", "'from' must not be after 'to'")
        rows = self.store.history(area_uuid, lo, hi)
        return {
            "area_uuid": area_uuid,
            "name": market.name,
            "rows": [{"slot": r["slot_label"], "stats": dso_market_stats(r)} for r in rows],
        }

    # -- batch commands -------------------------------------------------------------------
    def count_commands(self, batch: dict[str, list]) -> int:
        return sum(len(v) for v in batch.values())

    def check_cost(self, batch: dict[str, list]) -> None:
        """Refuse, before any work, a batch that would cost more than its limits allow: a stats
        command with more than ``max_market_slots`` slots (422), or a batch whose commands read
        more than ``max_batch_slots`` slots in all (413; a command counts as one slot at least)."""
        total = 0
        for area_uuid, commands in batch.items():
            for i, raw in enumerate(commands):
                data = raw.get("data") if isinstance(raw, dict) else None
                slots = data.get("market_slots") if isinstance(data, dict) else None
                n = len(slots) if isinstance(slots, list) else 1
                if n > self.max_market_slots:
                    raise ApiError(
                        422,
                        "too_many_slots",
                        f"batch_commands.{area_uuid}.{i}.data.market_slots: at most "
                        f"{self.max_market_slots} slots per command, got {n}",
                    )
                total += max(n, 1)
        if total > self.max_batch_slots:
            raise ApiError(
                413,
                "batch_too_costly",
                f"a batch may read at most {self.max_batch_slots} market slots in all (commands x "
                f"market_slots), this one reads {total}; split it",
            )

    def run_batch(
        self, user: User, batch: dict[str, list], transaction_id: str | None, source: str
    ) -> tuple[dict, bool]:
        """Answer every command of a batch, in order; returns ``(response, replayed)``.

        Stats commands are answered from the store; every ``grid_fees`` the user may send is
        accepted (or refused) in one store transaction, once per transaction id.
        """
        if self.count_commands(batch) > self.max_batch_commands:
            raise ApiError(
                413, "batch_too_large", f"a batch may hold at most {self.max_batch_commands} commands"
            )
        self.check_cost(batch)
        tid = transaction_id or str(uuidlib.uuid4())
        responses: dict[str, list[dict | None]] = {}
        pending: list[_Pending] = []
        last_closed = self.store.clock_state().last_closed_slot
        rows_by_slot: dict[int, list[list[float]] | None] = {}
        validated: dict = {}  # the commands of a batch are mostly alike: validate each kind once
        for area_uuid, commands in batch.items():
            out: list[dict | None] = []
            responses[area_uuid] = out
            for raw in commands:
                out.append(None)
                answer = self._answer(user, area_uuid, raw, last_closed, rows_by_slot, validated)
                if isinstance(answer, _Pending):
                    pending.append(_Pending(area_uuid, len(out) - 1, answer.fee))
                else:
                    out[-1] = answer

        def finish(results: list[FeeChange | FeeRefused]) -> dict:
            for p, result in zip(pending, results, strict=True):
                base = {"command": "grid_fees", "area_uuid": p.area_uuid}
                if isinstance(result, FeeRefused):
                    responses[p.area_uuid][p.index] = self._error(base, result.code, result.message)
                else:
                    responses[p.area_uuid][p.index] = {
                        **base,
                        "status": "ready",
                        "market_fee_const": result.fee_ct_per_kwh,
                        "applies_from_slot": self.clock.label(result.applies_from_slot),
                    }
            return {"transaction_id": tid, "responses": responses}

        changes = [(p.area_uuid, p.fee) for p in pending]
        book = self.store.fee_book
        if transaction_id is None:
            return finish(book.submit_fees(changes, source) if changes else []), False
        return book.submit_batch((user.username, tid), changes, source, finish)

    @staticmethod
    def _error(base: dict, code: str, message: str) -> dict:
        return {**base, "status": "error", "error": code, "error_message": message}

    def _answer(
        self,
        user: User,
        area_uuid: str,
        raw: object,
        last_closed: int | None,
        rows_by_slot: dict,
        validated: dict,
    ) -> dict | _Pending:
        kind = raw.get("type") if isinstance(raw, dict) else None
        base = {"command": kind if isinstance(kind, str) else None, "area_uuid": area_uuid}
        if kind not in ("market_stats", "dso_market_stats", "grid_fees"):
            return self._error(
                base,
                "unknown_command",
                f"unknown command type {kind!r}; use market_stats, dso_market_stats or grid_fees",
            )
        market = self.markets.get(area_uuid)
        if market is None:
            return self._error(base, "unknown_market", f"no market with uuid {area_uuid!r}")
        command = _validate(kind, raw, validated)
        if isinstance(command, tuple):
            return self._error(base, *command)
        if isinstance(command, GridFeesCommand):
            if not user.may_manage(market.uuid, market.name):
                return self._error(
                    base, "forbidden", f"user {user.username!r} may not set the fee of {market.name!r}"
                )
            limits = self.scenario.fee_limits
            try:  # the one check of a fee entering the exchange; inside, a ``Fee`` is trusted
                fee = validate_fee(command.data.fee_const, limits.min_ct_per_kwh, limits.max_ct_per_kwh)
            except FeeRefused as refused:
                return self._error(base, refused.code, refused.message)
            return _Pending(area_uuid, -1, fee)
        slots_raw = command.data.market_slots
        if slots_raw is None:
            if last_closed is None:
                return {**base, "status": "ready", "name": market.name, "market_stats": {}}
            slots, keyed = [last_closed], False
        else:
            labels = [slots_raw] if isinstance(slots_raw, str) else slots_raw
            try:
                slots, keyed = [self.clock.slot_of(label) for label in labels], True
            except BadSlot as exc:
                return self._error(base, "bad_slot", str(exc))
        pick = dso_market_stats if kind == "dso_market_stats" else last_market_stats
        found = {}
        for slot in slots:
            if slot not in rows_by_slot:  # one read per slot and batch, every market's stats
                stored = self.store.slot_matrix(slot)
                rows_by_slot[slot] = None if stored is None else stored[1].tolist()
            values = rows_by_slot[slot]
            row = None if values is None else stat_values(values[market.index])
            found[self.clock.label(slot)] = None if row is None else pick(row)
        if keyed:
            return {**base, "status": "ready", "name": market.name, "market_stats": found}
        return {
            **base,
            "status": "ready",
            "name": market.name,
            "market_slot": self.clock.label(slots[0]),
            "market_stats": found[self.clock.label(slots[0])],
        }


def _validate(kind: str, raw: object, memo: dict) -> Command | tuple[str, str]:
    """The command ``raw`` (of type ``kind``) as a model, or ``(code, message)`` of the error.

    Validated once per distinct command within ``memo`` (one batch): models are read, never changed.
    """
    try:
        # the repr of JSON values tells apart what validation tells apart (1, 1.0, true)
        key = repr(raw)
        return memo[key]
    except RecursionError:  # too deep to name: validate it alone
        key = None
    except KeyError:
        pass
    try:
        found = _COMMAND.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or "command"
        code = "invalid_fee" if kind == "grid_fees" else "invalid_command"
        if kind == "grid_fees" and first["type"] == "greater_than_equal":
            code = "negative_fee"
        found = (code, f"{where}: {first['msg']}")
    if key is not None:
        memo[key] = found
    return found


def assets_by_market(scenario: Scenario, n_communities: int) -> dict[int, list[dict]]:
    """Each house market's assets (type and parameters), by the market's index in the grid."""
    out: dict[int, list[dict]] = {}
    position = 1 + n_communities
    for community in scenario.grid.communities:
        for house in community.houses:
            listed = [
                {"type": a.type, "params": a.model_dump(exclude={"type"}, mode="json")} for a in house.assets
            ]
            for _ in range(house.count):
                out[position] = listed
                position += 1
    return out


def batch_status(response: dict) -> tuple[int, str, str] | None:
    """When every command of a batch failed: (HTTP status, code, message) of the batch."""
    answers: Iterator[dict] = (r for rs in response["responses"].values() for r in rs if r is not None)
    errors = []
    for r in answers:
        if r.get("status") != "error":
            return None
        errors.append(r)
    if not errors:
        return None
    codes = {r["error"] for r in errors}
    status = 403 if codes == {"forbidden"} else 404 if codes == {"unknown_market"} else 400
    return status, errors[0]["error"], errors[0]["error_message"]
