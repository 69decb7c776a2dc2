"""The market-cycle event (DESIGN §3): what ``on_market_cycle`` receives after a slot closed.

Built in one place from per-market stat rows (``SlotStats.rows()`` in the runner, the store's
``slot_stats`` rows in the API), so the runner's subscribers and API clients get the same message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.exchange.stat_table import DSO_MARKET_STATS, MARKET_STATS, SLOT_STATS, put

if TYPE_CHECKING:  # annotations only: the runner's --help does not load the grid's modules
    from app.exchange.clock import SimClock
    from app.exchange.grid import GridModel

_MARKET = tuple(s for s in SLOT_STATS if s.answer == MARKET_STATS)
_DSO = tuple(s for s in SLOT_STATS if s.answer == DSO_MARKET_STATS)
_CYCLE = tuple(s for s in SLOT_STATS if s.in_cycle)


def last_market_stats(row: dict) -> dict:
    """The ``market_stats`` answer of one market's row [ct/kWh, kWh, ct]."""
    return {s.api_name: row[s.key] for s in _MARKET}


def dso_market_stats(row: dict) -> dict:
    """The ``dso_market_stats`` answer of one market's row: ``market_stats`` and the DSO's fields."""
    out = last_market_stats(row)
    for s in _DSO:
        put(out, s.api_name, row[s.key])
        for alias in s.aliases:
            out[alias] = row[s.key]
    return out


def market_info(
    grid: GridModel,
    clock: SimClock,
    closed_slot: int,
    rows: Sequence[dict],
    market_maker_rate: float,
    feed_in_tariff_rate: float,
) -> dict:
    """The event after ``closed_slot`` closed. ``rows``: one per market, in the grid's order, or
    with a ``market_uuid`` each. The fee queued after the slot closed is the one now in force."""
    entries = []
    by_uuid = grid.by_uuid() if rows and "market_uuid" in rows[0] else None
    for position, row in enumerate(rows):
        m = grid.markets[position] if by_uuid is None else by_uuid[row["market_uuid"]]
        # the event's fees are named from the slot now running (GSy's contract): the closed
        # slot's fee is the "last", the fee queued after it closed is "current" (and "next")
        entry = {
            "area_uuid": m.uuid,
            "name": m.name,
            "parent_uuid": None if m.parent_index is None else grid.markets[m.parent_index].uuid,
            "level": m.level,
            "last_market_fee": row["fee_ct_per_kwh"],
            "current_market_fee": row["next_fee_ct_per_kwh"],
            "next_market_fee": row["next_fee_ct_per_kwh"],  # nothing queued yet for the slot after
            "last_market_stats": last_market_stats(row),
        }
        for s in _CYCLE:
            put(entry, s.api_name, row[s.key])
        entries.append(entry)
    return {
        "event": "market",
        "market_slot": clock.label(closed_slot + 1),
        "last_market_slot": clock.label(closed_slot),
        "slot_length_min": clock.slot_length_min,
        "feed_in_tariff_rate": feed_in_tariff_rate,
        "market_maker_rate": market_maker_rate,
        "markets": entries,
    }
