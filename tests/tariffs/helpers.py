"""Histories and slots written out by hand for the tariff tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from app.tariffs.base import FeeLimits, MarketHistory, SlotInfo

M = TypeVar("M")
LIMITS = FeeLimits(0.0, 100.0)
MONDAY = dt.datetime(2026, 6, 22)  # a Monday; slot 0 starts at its midnight


def with_reference(model: type[M], **reference: float) -> Callable[..., M]:
    """``params(**change)``: ``model``'s parameters that a test file's hand computations use
    (``reference``), some changed."""

    def params(**change: float) -> M:
        return model(**(reference | change))

    return params


def history(
    imports: list[float],
    exports: list[float] | None = None,
    fees: list[float] | None = None,
    first_slot: int = 0,
) -> MarketHistory:
    """Closed slots ``first_slot, first_slot + 1, ...`` with these flows [kWh] and fees [ct/kWh]."""
    n = len(imports)
    return MarketHistory(
        slot=np.arange(first_slot, first_slot + n, dtype=np.int64),
        import_kwh=np.array(imports, dtype=float),
        export_kwh=np.zeros(n) if exports is None else np.array(exports, dtype=float),
        fee_ct_per_kwh=np.full(n, np.nan) if fees is None else np.array(fees, dtype=float),
    )


def slot_after(h: MarketHistory, minutes: int = 15) -> SlotInfo:
    """The slot a fee is computed for once ``h``'s last slot closed: two slots on (one is running)."""
    number = int(h.slot[-1]) + 2 if len(h) else 1
    return SlotInfo(number, MONDAY + dt.timedelta(minutes=minutes * number), minutes)


def slot_at(when: dt.datetime, number: int = 1000, minutes: int = 15) -> SlotInfo:
    return SlotInfo(number, when, minutes)
