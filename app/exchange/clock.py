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

from app import slots


class BadSlot(ValueError):
    pass


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
        return slots.label(self.slot_start(slot))

    def slot_of(self, label: str) -> int:
        """Slot number of a ``YYYY-MM-DDTHH:mm`` string; ``BadSlot`` if it is not one."""
        try:
            when = slots.parse(label)
        except (TypeError, ValueError):
            raise BadSlot(f"{label!r} is not a slot string like 2026-06-21T13:15") from None
        minutes = (when - self.start).total_seconds() / 60
        if minutes < 0 or minutes % self.slot_length_min:
            raise BadSlot(f"{label!r} is not the start of a slot of this exchange")
        return int(minutes // self.slot_length_min)

    def slot_end_wall(self, slot_started_wall: float) -> float:
        """Wall-clock time (``time.time()``) at which a slot started then closes."""
        return slot_started_wall + max(self.slot_seconds, 0.0)

    def completion(self, slot_started_wall: float, now: float | None = None) -> float:
        """Share of the running slot that has passed, 0..1."""
        if self.fast_forward:
            return 0.0
        now = time.time() if now is None else now
        return min(max((now - slot_started_wall) / self.slot_seconds, 0.0), 1.0)
