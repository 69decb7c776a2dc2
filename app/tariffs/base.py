"""What every tariff model gets and must give back.

A model is a pure function ``next_fee(history, slot, params, limits) -> float``: the fee in
ct/kWh for the slot ``slot`` (the one after the running slot), from the market's closed-slot
history. It must return a finite fee within ``limits`` whatever the history (empty, all NaN,
huge values): the operator agent sends it without a second look.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np

from app import slots


def check_fee_range(min_fee_ct_per_kwh: float, base_fee_ct_per_kwh: float, max_fee_ct_per_kwh: float) -> None:
    """A model's own fee range: ``min <= base <= max`` [ct/kWh]; ``ValueError`` naming the fields.

    The one check for every model with a start fee between bounds (controller, predictive)."""
    if min_fee_ct_per_kwh > max_fee_ct_per_kwh:
        raise ValueError(
            f"min_fee_ct_per_kwh ({min_fee_ct_per_kwh}) is above max_fee_ct_per_kwh ({max_fee_ct_per_kwh})"
        )
    if not min_fee_ct_per_kwh <= base_fee_ct_per_kwh <= max_fee_ct_per_kwh:
        raise ValueError(
            f"base_fee_ct_per_kwh ({base_fee_ct_per_kwh}) must lie between min_fee_ct_per_kwh "
            f"({min_fee_ct_per_kwh}) and max_fee_ct_per_kwh ({max_fee_ct_per_kwh})"
        )


@dataclass(frozen=True)
class FeeLimits:
    min_ct_per_kwh: float = 0.0
    max_ct_per_kwh: float = 100.0

    def clamp(self, fee: float) -> float:
        """The fee inside the limits; NaN and +-inf become the nearest sensible limit."""
        if fee is None or math.isnan(fee):
            return self.min_ct_per_kwh
        return float(min(max(fee, self.min_ct_per_kwh), self.max_ct_per_kwh))


HISTORY_FOR_MODELS = 7 * 96 + 8
"""Closed slots a model is given [slots]: a week of 15-minute slots and a few more, enough for the
predictive controller's same-slot-last-week and every other model's look-back."""


@dataclass(frozen=True)
class MarketHistory:
    """Closed slots of one market, oldest first. NaN where a value is unknown.

    ``import_kwh`` / ``export_kwh``: energy entering / leaving the market's subtree per slot;
    ``fee_ct_per_kwh``: the fee in force in that slot; ``slot``: slot numbers.
    """

    slot: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    import_kwh: np.ndarray = field(default_factory=lambda: np.zeros(0))
    export_kwh: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fee_ct_per_kwh: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # fee queued after each slot closed = fee in force in the slot after it; its last value is
    # the fee of the running slot, the one a new fee follows (NaN or empty when unknown)
    next_fee_ct_per_kwh: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.slot)

    @classmethod
    def from_rows(cls, rows: list[dict], slot_length_min: int) -> MarketHistory:
        """From store rows (``slot`` number or label, ``import_kwh``, ``export_kwh``,
        ``fee_ct_per_kwh``, ``next_fee_ct_per_kwh``), labels counted in slots of the market's
        ``slot_length_min`` like the target slot's ``SlotInfo`` (a model finds "the same slot
        yesterday" as ``slot - 1440 / slot_length_min``)."""

        def col(name: str) -> np.ndarray:
            return np.array([np.nan if r.get(name) is None else r[name] for r in rows], dtype=float)

        return cls(
            slot=np.array([slots.number(r["slot"], slot_length_min) for r in rows], dtype=np.int64),
            import_kwh=col("import_kwh"),
            export_kwh=col("export_kwh"),
            fee_ct_per_kwh=col("fee_ct_per_kwh"),
            next_fee_ct_per_kwh=col("next_fee_ct_per_kwh"),
        )

    def tail(self, n: int) -> MarketHistory:
        return MarketHistory(
            self.slot[-n:],
            self.import_kwh[-n:],
            self.export_kwh[-n:],
            self.fee_ct_per_kwh[-n:],
            self.next_fee_ct_per_kwh[-n:],
        )

    def running_fee(self) -> float | None:
        """The fee in force in the running slot, if known (else None)."""
        for values in (self.next_fee_ct_per_kwh, self.fee_ct_per_kwh):
            if len(values) and np.isfinite(values[-1]):
                return float(values[-1])
        return None


@dataclass(frozen=True)
class SlotInfo:
    """The slot a fee is computed for."""

    slot: int
    start: dt.datetime  # local time
    slot_length_min: int = 15

    @property
    def quarter_hour(self) -> int:
        """0..95: the quarter hour of the day the slot starts in."""
        return (self.start.hour * 60 + self.start.minute) // 15

    @property
    def day_type(self) -> str:
        """ "weekday", "saturday" or "sunday"."""
        return {5: "saturday", 6: "sunday"}.get(self.start.weekday(), "weekday")
