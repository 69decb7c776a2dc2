"""Simulated time: slot numbers, their labels, and when each slot ends in real time.

Slot ``n`` starts at ``scenario.start + n * slot_length``; its label is ``YYYY-MM-DDTHH:mm``
(the Grid Singularity slot string). In live mode a slot lasts ``slot_seconds`` of real time and
the deadline for next-slot fees is the end of the running slot; with ``slot_seconds == 0`` the
clock runs as fast as the exchange can (fast-forward, for backtests).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from functools import lru_cache

from app import slots


class BadSlot(ValueError):
    pass


# Labels and slot numbers, remembered: an API batch of 500 commands names the same slot 500 times.
@lru_cache(maxsize=4096)
def _label(start: dt.datetime, slot_length_min: int, slot: int) -> str:
    return slots.label(start + dt.timedelta(minutes=slot * slot_length_min))


@lru_cache(maxsize=4096)
def _slot_of(start: dt.datetime, slot_length_min: int, label: str) -> int | str:
    """The slot of ``label``, or why it is none (a string)."""
    try:
        when = slots.parse(label)
    except (TypeError, ValueError):
        return f"{label!r} is not a slot string like 2026-06-21T13:15"
    minutes = (when - start).total_seconds() / 60
    if minutes < 0 or minutes % slot_length_min:
        return f"{label!r} is not the start of a slot of this exchange"
    return int(minutes // slot_length_min)


@dataclass(frozen=True)
class SimClock:
    start: dt.datetime
    slot_length_min: int
    slot_seconds: float = 5.0

    @property
    def fast_forward(self) -> bool:
        return self.slot_seconds <= 0

    def slot_start(self, slot: int) -> dt.datetime:
        return self.start + dt.timedelta(minutes=slot * self.slot_length_min)

    def label(self, slot: int) -> str:
        return _label(self.start, self.slot_length_min, int(slot))

    def slot_of(self, label: str) -> int:
        """Slot number of a ``YYYY-MM-DDTHH:mm`` string; ``BadSlot`` if it is not one."""
        if not isinstance(label, str):
            raise BadSlot(f"{label!r} is not a slot string like 2026-06-21T13:15")
        found = _slot_of(self.start, self.slot_length_min, label)
        if isinstance(found, str):
            raise BadSlot(found)
        return found

    def slot_end_wall(self, slot_started_wall: float) -> float:
        """Wall-clock time (``time.time()``) at which a slot started then closes."""
        return slot_started_wall + max(self.slot_seconds, 0.0)

    def completion(self, slot_started_wall: float, now: float | None = None) -> float:
        """Share of the running slot that has passed, 0..1."""
        if self.fast_forward:
            return 0.0
        now = time.time() if now is None else now
        return min(max((now - slot_started_wall) / self.slot_seconds, 0.0), 1.0)
