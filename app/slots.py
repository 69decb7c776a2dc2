"""Slots: the one place for their labels, parsing and numbering.

A slot is named by the simulated local time its trading starts, ``"YYYY-MM-DDTHH:mm"``
(``"2026-06-22T13:15"``): that is the label the exchange's API, the operator's history and the
console share. Where a number is handier (the tariff models' look-back, the What-if arrays), a slot
is counted from the epoch 2000-01-01 00:00 in slots of ``slot_length_min`` minutes; the exchange
counts its own run's slots from the scenario's start (:class:`app.exchange.clock.SimClock`).

Pure standard library: the exchange core, the operator, the console and the components all use it.
"""

from __future__ import annotations

import datetime as dt

LABEL_FORMAT = "%Y-%m-%dT%H:%M"
"""``strftime`` format of a slot label (simulated local time, no zone)."""

EPOCH = dt.datetime(2000, 1, 1)
"""Slot number 0 starts here (simulated local time)."""


def label(start: dt.datetime) -> str:
    """The label of the slot starting at ``start``."""
    return start.strftime(LABEL_FORMAT)


def parse(slot_label: str) -> dt.datetime:
    """The start of the slot ``slot_label``; ``ValueError`` naming the label when it is not one."""
    try:
        return dt.datetime.strptime(slot_label, LABEL_FORMAT)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a slot label (YYYY-MM-DDTHH:mm): {slot_label!r}") from exc


def shift(slot_label: str, slots: int, slot_length_min: int) -> str:
    """The label of the slot ``slots`` after ``slot_label`` (before it when negative)."""
    return label(parse(slot_label) + dt.timedelta(minutes=slots * slot_length_min))


def number(slot: dt.datetime | str | int, slot_length_min: int = 15) -> int:
    """Slots since :data:`EPOCH` of a slot start or label; a number is returned as it is."""
    if isinstance(slot, int):
        return slot
    start = parse(slot) if isinstance(slot, str) else slot
    return int((start - EPOCH).total_seconds() // 60 // slot_length_min)


def labels(start: dt.datetime, count: int, slot_length_min: int) -> list[str]:
    """The labels of ``count`` consecutive slots from ``start``."""
    step = dt.timedelta(minutes=slot_length_min)
    return [label(start + i * step) for i in range(count)]
