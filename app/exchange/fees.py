"""The fee book: which grid fee is in force in which slot, and every accepted change.

The one rule: a fee received while slot N runs applies from slot N+1, never to N. A market's
fee for slot n is the last accepted change with ``applies_from_slot <= n`` (by order of
acceptance), else the scenario's initial fee. So "fee in force" is ``fee_for_slot(running)`` and
"fee queued" is ``fee_for_slot(running + 1)``.

``FeeBook`` keeps that in memory (backtests, what-if runs). ``app.store.fee_book.StoreFeeBook``
keeps it in the store for the live exchange, with the same methods and the same
``validate_fee``; the runner works with either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Protocol


class FeeRefused(ValueError):
    """A fee change that was not accepted. Nothing was changed."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class FeeChange:
    market_uuid: str
    fee_ct_per_kwh: float
    received_slot: int  # the slot running when it arrived
    applies_from_slot: int  # always received_slot + 1
    source: str
    transaction_id: str | None = None


FEE_RESOLUTION_CT = 1e-6  # ct/kWh: a fee above 0 but below it (1e-300, subnormals) is refused


def validate_fee(value: object, min_ct_per_kwh: float, max_ct_per_kwh: float) -> float:
    """Return the fee as a float [ct/kWh] or raise ``FeeRefused`` saying why."""
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
    return fee


class FeeBookLike(Protocol):
    def submit(
        self, market_uuid: str, fee: object, source: str, transaction_id: str | None = None
    ) -> FeeChange: ...
    def open_slot(self, slot: int) -> dict[str, float]: ...
    def fees_for_slot(self, slot: int) -> dict[str, float]: ...


class FeeBook:
    """In-memory fee book over the markets of one grid.

    Keeps the fees in force and the changes pending for the next slot, so that opening the next
    slot and reading its fees cost O(markets) however long the run (backtests run thousands of
    slots); any other slot is recomputed from the full list of changes.
    """

    def __init__(
        self,
        initial_fees: dict[str, float],
        min_ct_per_kwh: float,
        max_ct_per_kwh: float,
        running_slot: int = 0,
    ):
        self._initial = dict(initial_fees)
        self.min_ct_per_kwh = min_ct_per_kwh
        self.max_ct_per_kwh = max_ct_per_kwh
        self.running_slot = running_slot
        self.changes: list[FeeChange] = []
        self._in_force = dict(initial_fees)  # for running_slot
        self._pending: dict[str, float] = {}  # received while running_slot runs

    def submit(
        self, market_uuid: str, fee: object, source: str, transaction_id: str | None = None
    ) -> FeeChange:
        if market_uuid not in self._initial:
            raise FeeRefused("unknown_market", f"no market with uuid {market_uuid!r}")
        value = validate_fee(fee, self.min_ct_per_kwh, self.max_ct_per_kwh)
        change = FeeChange(
            market_uuid, value, self.running_slot, self.running_slot + 1, source, transaction_id
        )
        self.changes.append(change)
        self._pending[market_uuid] = value
        return change

    def fees_for_slot(self, slot: int) -> dict[str, float]:
        if slot == self.running_slot:
            return dict(self._in_force)
        if slot == self.running_slot + 1:
            return {**self._in_force, **self._pending}
        fees = dict(self._initial)
        for change in self.changes:
            if change.applies_from_slot <= slot:
                fees[change.market_uuid] = change.fee_ct_per_kwh
        return fees

    def open_slot(self, slot: int) -> dict[str, float]:
        """Start ``slot``: from now on, new fees apply from ``slot + 1``."""
        if slot == self.running_slot + 1:
            self._in_force.update(self._pending)
        elif slot != self.running_slot:
            self._in_force = self.fees_for_slot(slot)
        self._pending = {}
        self.running_slot = slot
        return dict(self._in_force)

    def in_force(self, market_uuid: str) -> float:
        return self._in_force[market_uuid]

    def queued(self, market_uuid: str) -> float:
        return self._pending.get(market_uuid, self._in_force[market_uuid])
