"""The market-cycle event (DESIGN §3): what ``on_market_cycle`` receives after a slot closed.

Built in one place from per-market stat rows (``SlotStats.rows()`` in the runner, the store's
``slot_stats`` rows in the API), so the runner's subscribers and API clients get the same message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the runner's --help does not load the grid's modules
    from app.exchange.clock import SimClock
    from app.exchange.grid import GridModel


def last_market_stats(row: dict) -> dict:
    """The ``market_stats`` fields of one market's row [ct/kWh, kWh, ct]."""
    return {
        "min_trade_rate": row["min_trade_rate"],
        "median_trade_rate": row["median_trade_rate"],
        "avg_trade_rate": row["avg_trade_rate"],
        "max_trade_rate": row["max_trade_rate"],
        "total_traded_energy_kWh": row["total_traded_energy_kWh"],
        "market_fee_revenue": row["market_fee_revenue"],
        "current_market_fee": row["market_fee"],
        "next_market_fee": row["next_market_fee"],
    }


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
        entries.append(
            {
                "area_uuid": m.uuid,
                "name": m.name,
                "parent_uuid": None if m.parent_index is None else grid.markets[m.parent_index].uuid,
                "level": m.level,
                "last_market_fee": row["market_fee"],
                "current_market_fee": row["next_market_fee"],
                "next_market_fee": row["next_market_fee"],  # nothing queued yet for the slot after
                "last_market_stats": last_market_stats(row),
                "area_throughput": {"import": row["import_kwh"], "export": row["export_kwh"]},
                "self_sufficiency": row["self_sufficiency"],
                "self_consumption": row["self_consumption"],
                "market_fee_revenue": row["market_fee_revenue"],
                "unmatched_kwh": row["unmatched_kwh"],
            }
        )
    return {
        "event": "market",
        "market_slot": clock.label(closed_slot + 1),
        "last_market_slot": clock.label(closed_slot),
        "slot_length_min": clock.slot_length_min,
        "feed_in_tariff_rate": feed_in_tariff_rate,
        "market_maker_rate": market_maker_rate,
        "markets": entries,
    }
