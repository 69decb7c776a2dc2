"""The market-cycle event (DESIGN §3): what ``on_market_cycle`` receives after a slot closed.

Built in one place from per-market stat rows (``SlotStats.rows()`` in the runner, the store's
``slot_stats`` rows in the API), so the runner's subscribers and API clients get the same message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from app.exchange.stat_table import DSO_MARKET_STATS, MARKET_STATS, SLOT_STATS, SlotStat

if TYPE_CHECKING:  # annotations only: the runner's --help does not load the grid's modules
    from app.exchange.clock import SimClock
    from app.exchange.grid import GridModel


def _answer_of(stats: tuple[SlotStat, ...], aliases: bool = True) -> Callable[[dict], dict]:
    """A function from a stat row (by key) to the wire dict of ``stats`` (by ``api_name``, nested
    where dotted, with their aliases or not). Made once as one dict display: the API answers every
    market of a batch and every slot of a history with it, as fast as a hand-written dict (a loop
    over the table takes about four times as long)."""
    top: list[str] = []
    groups: dict[str, list[str]] = {}
    for stat in stats:
        group, _, name = stat.api_name.rpartition(".")
        value = f"row[{stat.key!r}]"
        if group:
            if group not in groups:
                groups[group] = []
                top.append(group)  # the group's place: where its first value stands
            groups[group].append(f"{name!r}: {value}")
        else:
            top.append(f"{name!r}: {value}")
        top.extend(f"{alias!r}: {value}" for alias in (stat.aliases if aliases else ()))
    items = [f"{item!r}: {{{', '.join(groups[item])}}}" if item in groups else item for item in top]
    return eval(f"lambda row: {{{', '.join(items)}}}")  # names and keys from SLOT_STATS only


last_market_stats = _answer_of(tuple(s for s in SLOT_STATS if s.answer == MARKET_STATS))
last_market_stats.__doc__ = "The ``market_stats`` answer of one market's row [ct/kWh, kWh, ct]."
dso_market_stats = _answer_of(tuple(s for s in SLOT_STATS if s.answer in (MARKET_STATS, DSO_MARKET_STATS)))
dso_market_stats.__doc__ = (
    "The ``dso_market_stats`` answer of one market's row: ``market_stats`` and the DSO's fields."
)
_cycle_fields = _answer_of(tuple(s for s in SLOT_STATS if s.in_cycle), aliases=False)


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
        entry.update(_cycle_fields(row))
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
