"""Slots: the one place for their labels, parsing and numbering.

A slot is named by the simulated local time its trading starts, ``"YYYY-MM-DDTHH:mm"``
(``"2026-06-22T13:15"``): that is the label the exchange's API, the operator's history and the
console share. Where a number is handier (the tariff models' look-back, the What-if arrays), a slot
is counted from the epoch 2000-01-01 00:00 in slots of ``slot_length_min`` minutes (:func:`number`);
the exchange counts its own run's slots from the scenario's start (:class:`app.exchange.clock.SimClock`).

The operator's tables (``op_history``, ``fee_commands``, ``alerts``) store a slot as an Integer: the
minutes from the epoch to its start (:func:`minutes`, back with :func:`from_minutes`; for a column
that may be NULL :func:`to_column` / :func:`from_column`). Minutes, not 15-minute slots: Grid
Singularity's exchange allows slot lengths of 2 to 60 minutes, and a label names a minute, so
every label has a number of its own whatever the slot length (two 5-minute slots would share one
15-minute count), none needs the slot length to be read back, and numbers order as labels do.
2000-01-01T00:00 is 0, 2026-06-22T13:15 is 13,924,155; a 32-bit column holds them to the year 6083.

Pure standard library: the exchange core, the operator, the console and the components all use it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache

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


def read(value: object) -> str | None:
    """The slot label in a slot field another exchange sent (gsy-e sends the label, sometimes with
    seconds or a zone after it: ``"2024-06-21T00:30:00"``); None when it names no slot."""
    if not isinstance(value, str):
        return None
    try:
        return label(parse(value[:16]))
    except ValueError:
        return None


def shift(slot_label: str, slots: int, slot_length_min: int) -> str:
    """The label of the slot ``slots`` after ``slot_label`` (before it when negative)."""
    return label(parse(slot_label) + dt.timedelta(minutes=slots * slot_length_min))


def number(slot: dt.datetime | str | int, slot_length_min: int = 15) -> int:
    """Slots of ``slot_length_min`` since :data:`EPOCH` of a slot start or label; a number is
    returned as it is. A count for arrays of one market's slots (its own slot length); the
    operator's tables number slots in minutes instead (:func:`minutes`), unique whatever the length."""
    if isinstance(slot, int):
        return slot
    start = parse(slot) if isinstance(slot, str) else slot
    return int((start - EPOCH).total_seconds() // 60 // slot_length_min)


def labels(start: dt.datetime, count: int, slot_length_min: int) -> list[str]:
    """The labels of ``count`` consecutive slots from ``start``."""
    step = dt.timedelta(minutes=slot_length_min)
    return [label(start + i * step) for i in range(count)]


def minutes(slot: dt.datetime | str) -> int:
    """The number of a slot in the operator's tables: minutes from :data:`EPOCH` to its start
    (a start or a label; ``ValueError`` for a string that is not a label)."""
    start = parse(slot) if isinstance(slot, str) else slot
    return (start.toordinal() - _EPOCH_ORDINAL) * 1440 + start.hour * 60 + start.minute


@lru_cache(maxsize=1 << 16)
def from_minutes(number: int) -> str:
    """The label of the slot ``number`` minutes after :data:`EPOCH` (the inverse of :func:`minutes`).

    Cached: a history read turns the same few thousand numbers into labels market after market.
    """
    return label(EPOCH + dt.timedelta(minutes=number))


def to_column(slot_label: str | None) -> int | None:
    """A slot label as the operator's tables store it (:func:`minutes`); None stays None."""
    return None if slot_label is None else minutes(slot_label)


def from_column(number: int | None) -> str | None:
    """A slot column's value of the operator's tables as a label; None stays None."""
    return None if number is None else from_minutes(number)


def columns_to_labels(row: dict, keys: Iterable[str]) -> dict:
    """``row`` read from an operator table with its slot columns ``keys`` turned into labels."""
    for key in keys:
        row[key] = from_column(row[key])
    return row


_EPOCH_ORDINAL = EPOCH.toordinal()
