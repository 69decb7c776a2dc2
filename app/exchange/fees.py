"""The fee book: which grid fee is in force in which slot, and every accepted change.

The rule, written once here for every storage of it:

* **which slot**: a fee received while slot N runs applies from slot N+1, never to N;
* **fee in force**: a market's fee for slot n is the last accepted change with
  ``applies_from_slot <= n`` (by order of acceptance: the last change of a market wins), else the
  scenario's initial fee. So "fee in force" is ``fees_for_slot(running)`` and "next fee" (queued)
  is ``fees_for_slot(running + 1)``;
* **batches**: a batch is accepted once per ``(username, transaction_id)``; a resent one gets the
  stored answer back and changes nothing;
* **history**: every accepted change (``FeeChange``) is kept, in order.

``FeeBook`` is that rule over a small storage protocol (``FeeStorage``/``FeeLedger``): the
in-memory ``MemoryFeeStorage`` here (backtests, what-if runs) and the store's SQL tables
(``app.store.fee_book.StoreFeeBook``, the live exchange and its runner).

A fee is checked once, where it enters (the API's service, the console's form):
``validate_fee`` turns a raw value into a ``Fee``; inside, a ``Fee`` is passed on unchecked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from numbers import Real
from typing import NewType, Protocol

import numpy as np

Fee = NewType("Fee", float)
"""A grid fee [ct/kWh] that passed ``validate_fee``: finite, >= 0, within the exchange's limits."""

BatchKey = tuple[str, str]
"""``(username, transaction_id)`` of a batch: it is accepted once."""


class FeeRefused(ValueError):
    """A fee change that was not accepted. Nothing was changed."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class FeeChange:
    market_uuid: str
    fee_ct_per_kwh: Fee
    received_slot: int  # the slot running when it arrived
    applies_from_slot: int  # always received_slot + 1
    source: str
    transaction_id: str | None = None


FEE_RESOLUTION_CT = 1e-6  # ct/kWh: a fee above 0 but below it (1e-300, subnormals) is refused


def validate_fee(value: object, min_ct_per_kwh: float, max_ct_per_kwh: float) -> Fee:
    """The one check of a fee where it enters: the fee as a ``Fee`` [ct/kWh], or ``FeeRefused``
    saying why."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise FeeRefused("invalid_fee", f"fee must be a number in ct/kWh, got {value!r}")
    fee = float(value)
    if not math.isfinite(fee):
        raise FeeRefused("invalid_fee", f"fee must be a finite number, got {fee}")
    if fee < 0:
        raise FeeRefused("negative_fee", f"fee must not be negative, got {fee} ct/kWh")
    fee += 0.0  # -0.0 is stored and echoed as 0.0
    if 0.0 < fee < FEE_RESOLUTION_CT:
        raise FeeRefused(
            "invalid_fee",
            f"fee {fee!r} ct/kWh is below the fee's resolution of {FEE_RESOLUTION_CT:g} ct/kWh",
        )
    if fee < min_ct_per_kwh:
        raise FeeRefused(
            "fee_below_minimum", f"fee {fee} ct/kWh is below the minimum {min_ct_per_kwh} ct/kWh"
        )
    if fee > max_ct_per_kwh:
        raise FeeRefused(
            "fee_above_maximum", f"fee {fee} ct/kWh is above the maximum {max_ct_per_kwh} ct/kWh"
        )
    return Fee(fee)


# -- the storage protocol ---------------------------------------------------------------------
class BatchAnswered(Exception):
    """Another writer stored the answer of the same batch first; nothing of this one was kept."""


class FeeLedger(Protocol):
    """One unit of work on a fee book's storage (in a database: one transaction). What a unit
    wrote is kept when it ends without an exception, else none of it."""

    def running_slot(self) -> int:
        """The running slot. In a unit that writes, no other slot opens until the unit ends."""
        ...

    def open_slot(self, slot: int) -> None:
        """Make ``slot`` the running slot."""
        ...

    def append(self, changes: Sequence[FeeChange]) -> None:
        """Keep accepted changes, after every change kept before them."""
        ...

    def changes(self, after_slot: int | None, until_slot: int) -> Iterable[tuple[str, float]]:
        """``(market_uuid, fee)`` of the kept changes with ``after_slot < applies_from_slot <=
        until_slot`` (``after_slot`` None: no lower bound), in the order they were kept."""
        ...

    def history(self, market_uuid: str | None) -> list[FeeChange]:
        """Every kept change (of one market), in the order they were kept."""
        ...

    def snapshot(self) -> tuple[int, np.ndarray] | None:
        """The newest ``keep_snapshot``, None if there is none."""
        ...

    def keep_snapshot(self, slot: int, fees: np.ndarray) -> None:
        """Keep every market's fees of ``slot``, a slot that starts in this unit."""
        ...

    def answer(self, batch: BatchKey) -> dict | None:
        """The stored answer of a batch, None if it was never answered."""
        ...

    def keep_answer(self, batch: BatchKey, answer: dict) -> None:
        """Store a batch's answer; ``BatchAnswered`` (here or when the unit ends) if one is
        stored already."""
        ...


class FeeStorage(Protocol):
    def writing(self) -> AbstractContextManager[FeeLedger]:
        """A unit that may write; it holds the running slot until it ends."""
        ...

    def reading(self) -> AbstractContextManager[FeeLedger]:
        """A unit that only reads, from one consistent state of the storage."""
        ...


# -- the rule ---------------------------------------------------------------------------------
Answer = Callable[[list[FeeChange | FeeRefused]], dict]
SNAPSHOT_EVERY = 96  # slots: a storage keeps the fees of one started slot in so many (a day of 15 min)


class FeeBook:
    """The fee book's rule over a storage, for the markets of one grid (fees in market order).

    Keeps in memory the fees of the newest slot that has started (``settle``): no change can
    reach a running or past slot any more, so the fees of the next slot are those plus the
    changes received in the running slot, however long the run (the runner and backtests read
    them every slot). The storage keeps such fees too, now and then (``opened``), so that a new
    process starts from them; any other slot is recomputed from the kept changes.
    """

    def __init__(
        self, storage: FeeStorage, markets: Sequence[str], initial_fees: Sequence[float] | np.ndarray
    ):
        self.storage = storage
        self.markets = list(markets)
        self.position = {u: i for i, u in enumerate(self.markets)}
        self.initial = np.array(initial_fees, dtype=float)
        self._settled: tuple[int, np.ndarray] | None = None

    @classmethod
    def in_memory(cls, initial_fees: Mapping[str, float], running_slot: int = 0) -> FeeBook:
        """A book kept in memory (backtests, what-if runs), ``running_slot`` running."""
        return cls(MemoryFeeStorage(running_slot), list(initial_fees), list(initial_fees.values()))

    # -- accepting ----------------------------------------------------------------------------
    def accept(
        self, ledger: FeeLedger, commands: Iterable[tuple[str, Fee]], source: str, transaction_id: str | None
    ) -> list[FeeChange | FeeRefused]:
        """Accept checked fees in ``ledger``'s unit; one result per command, in order. A fee for
        a market outside the grid is refused (``FeeRefused``) and does not stop the others;
        the accepted ones apply from the slot after the running one."""
        running = ledger.running_slot()
        results: list[FeeChange | FeeRefused] = []
        accepted: list[FeeChange] = []
        for market_uuid, fee in commands:
            if market_uuid not in self.position:
                results.append(FeeRefused("unknown_market", f"no market with uuid {market_uuid!r}"))
                continue
            change = FeeChange(market_uuid, fee, running, running + 1, source, transaction_id)
            results.append(change)
            accepted.append(change)
        if accepted:
            ledger.append(accepted)
        return results

    def submit_fees(
        self, commands: Iterable[tuple[str, Fee]], source: str, transaction_id: str | None = None
    ) -> list[FeeChange | FeeRefused]:
        """``accept`` in a unit of its own."""
        with self.storage.writing() as ledger:
            return self.accept(ledger, commands, source, transaction_id)

    def submit_fee(
        self, market_uuid: str, fee: Fee, source: str, transaction_id: str | None = None
    ) -> FeeChange:
        """One fee change; raises ``FeeRefused`` if it is not accepted."""
        (result,) = self.submit_fees([(market_uuid, fee)], source, transaction_id)
        if isinstance(result, FeeRefused):
            raise result
        return result

    def submit_batch(
        self, batch: BatchKey, commands: Sequence[tuple[str, Fee]], source: str, answer: Answer
    ) -> tuple[dict, bool]:
        """Accept a batch's fees once per ``batch`` (username, transaction id).

        ``answer`` turns the results into the batch's response, kept in the same unit as the
        fees. Returns ``(response, replayed)``: a resent batch gets the kept response back and
        changes nothing.
        """
        stored = self._answer_of(batch)
        if stored is not None:
            return stored, True
        try:
            with self.storage.writing() as ledger:
                response = answer(self.accept(ledger, commands, source, batch[1]))
                ledger.keep_answer(batch, response)
            return response, False
        except BatchAnswered:  # the same batch, sent twice at once: the other one won
            stored = self._answer_of(batch)
            if stored is None:
                raise
            return stored, True

    def _answer_of(self, batch: BatchKey) -> dict | None:
        with self.storage.reading() as ledger:
            return ledger.answer(batch)

    # -- reading ------------------------------------------------------------------------------
    def fees_in(self, ledger: FeeLedger, slot: int) -> np.ndarray:
        """Every market's fee in ``slot`` [ct/kWh], read in ``ledger``'s unit: the last kept
        change with ``applies_from_slot <= slot``, else the initial fee."""
        base = self._settled
        if base is None or base[0] > slot:
            base = ledger.snapshot()
            if base is not None and (base[0] > slot or len(base[1]) != len(self.markets)):
                base = None
        if base is not None:
            after, fees = base[0], base[1].copy()
            if after == slot:
                return fees
        else:
            after, fees = None, self.initial.copy()
        position = self.position
        for market_uuid, fee in ledger.changes(after, slot):
            fees[position[market_uuid]] = fee
        return fees

    def fees_for_slot(self, slot: int) -> np.ndarray:
        with self.storage.reading() as ledger:
            running = ledger.running_slot()
            if self._settled is not None and self._settled[0] > running:
                self.forget()  # the running slot went back: the storage was emptied (a reset)
            fees = self.fees_in(ledger, slot)
        settled = self._settled
        if slot <= running and (settled is None or settled[0] < slot):  # started: no change can reach it
            self.settle(slot, fees)
        return fees

    def fee_map(self, slot: int) -> dict[str, float]:
        """``fees_for_slot`` by market uuid."""
        return dict(zip(self.markets, self.fees_for_slot(slot).tolist(), strict=True))

    def history(self, market_uuid: str | None = None) -> list[FeeChange]:
        with self.storage.reading() as ledger:
            return ledger.history(market_uuid)

    # -- opening slots ------------------------------------------------------------------------
    def open_slot(self, slot: int) -> np.ndarray:
        """Start ``slot``: from now on, new fees apply from ``slot + 1``. Returns its fees."""
        with self.storage.writing() as ledger:
            ledger.open_slot(slot)
            fees = self.opened(ledger, slot)
        self.settle(slot, fees)
        return fees

    def opened(self, ledger: FeeLedger, slot: int) -> np.ndarray:
        """``slot`` starts in ``ledger``'s unit (its caller made it the running slot there): its
        fees, kept as the storage's snapshot on the first start in this process and every
        ``SNAPSHOT_EVERY`` slots. Call ``settle`` once the unit is kept."""
        fees = self.fees_in(ledger, slot)
        if self._settled is None or slot % SNAPSHOT_EVERY == 0:
            ledger.keep_snapshot(slot, fees)
        return fees

    def settle(self, slot: int, fees: np.ndarray) -> None:
        """``slot`` has started (its unit has ended) with ``fees``: later reads start from them.
        Call it only once the slot's opening is kept: until then a fee may still reach it. (A
        slot opened again after a later one, in memory, replaces that one: what followed it
        may change again.)"""
        self._settled = (slot, fees.copy())

    def forget(self) -> None:
        """The storage was emptied (a reset): read everything from it again."""
        self._settled = None


# -- the in-memory storage --------------------------------------------------------------------
class MemoryFeeStorage:
    """A fee book's storage in one process's memory; it is its own ledger. A unit that ends
    with an exception leaves nothing of what it wrote."""

    def __init__(self, running_slot: int = 0):
        self.running = running_slot
        self.kept: list[FeeChange] = []
        self._by_slot: dict[int, list[int]] = {}  # applies_from_slot -> indexes into kept
        self._answers: dict[BatchKey, dict] = {}
        self._snapshot: tuple[int, np.ndarray] | None = None

    @contextmanager
    def writing(self) -> Iterator[MemoryFeeStorage]:
        mark, running, answered, snapshot = len(self.kept), self.running, set(self._answers), self._snapshot
        try:
            yield self
        except BaseException:
            for change in reversed(self.kept[mark:]):
                self._by_slot[change.applies_from_slot].pop()
            del self.kept[mark:]
            for key in set(self._answers) - answered:
                del self._answers[key]
            self.running, self._snapshot = running, snapshot
            raise

    reading = writing

    def running_slot(self) -> int:
        return self.running

    def open_slot(self, slot: int) -> None:
        self.running = slot

    def append(self, changes: Sequence[FeeChange]) -> None:
        for change in changes:
            self._by_slot.setdefault(change.applies_from_slot, []).append(len(self.kept))
            self.kept.append(change)

    def changes(self, after_slot: int | None, until_slot: int) -> Iterator[tuple[str, float]]:
        if after_slot is None or until_slot - after_slot > len(self._by_slot):
            found = (
                c
                for c in self.kept
                if c.applies_from_slot <= until_slot
                and (after_slot is None or c.applies_from_slot > after_slot)
            )
        else:
            indexes = sorted(
                i for s in range(after_slot + 1, until_slot + 1) for i in self._by_slot.get(s, ())
            )
            found = (self.kept[i] for i in indexes)
        return ((c.market_uuid, c.fee_ct_per_kwh) for c in found)

    def history(self, market_uuid: str | None) -> list[FeeChange]:
        return [c for c in self.kept if market_uuid is None or c.market_uuid == market_uuid]

    def snapshot(self) -> tuple[int, np.ndarray] | None:
        return self._snapshot

    def keep_snapshot(self, slot: int, fees: np.ndarray) -> None:
        self._snapshot = (slot, fees.copy())

    def answer(self, batch: BatchKey) -> dict | None:
        return self._answers.get(batch)

    def keep_answer(self, batch: BatchKey, answer: dict) -> None:
        if batch in self._answers:
            raise BatchAnswered(batch)
        self._answers[batch] = answer
