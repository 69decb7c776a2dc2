"""Two-sided matching of one slot, bottom-up through grid -> community -> house markets.

Fee rules (Grid Singularity's constant grid fee, see the reference's "How fees enter prices"):

* an offer that enters a market gets that market's fee added (its first market included);
* a bid that leaves a market has that market's fee deducted;
* in the market where they meet, a bid and an offer match when ``offer_rate <= bid_rate``.
  Pay-as-bid clears each pair at the (propagated) bid rate; pay-as-clear clears every pair of a
  market at one rate, the midpoint of its last matched bid and offer;
* the buyer pays the clearing rate plus every fee deducted from its bid, the seller receives the
  clearing rate minus every fee added to its offer, and every market on the path books
  ``fee * energy`` as its revenue. So buyers pay = sellers receive + fee revenue, exactly.

Levels are matched house markets first, then the residual orders move up (communities, then
the grid). What is left at the grid trades with the external supplier: unmatched demand buys at
the supplier's sell rate plus the fees on the way down; unmatched supply sells at the feed-in
rate minus the fees on the way up, and is curtailed where that is negative (or below what the
house accepts: owners curtail at different prices, so a rising export fee curtails gradually).

Everything is vectorised over orders with sorts and cumulative sums: there is no Python loop per
house, per order or per market in this module. Units: energy [kWh], rates and fees [ct/kWh].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.exchange.grid import GridModel

EXTERNAL = -1  # house index of the external supplier in a trade
_EPS_KWH = 1e-9


def stable_int_order(values: np.ndarray) -> np.ndarray:
    """``np.argsort(values, kind="stable")`` of non-negative integers below 2**32, in linear time:
    NumPy radix-sorts 16-bit integers, so one pass per 16 bits, low bits first."""
    values = np.asarray(values)
    low = (values & 0xFFFF).astype(np.uint16)
    order = np.argsort(low, kind="stable")
    if len(values) and int(values.max()) > 0xFFFF:
        high = (values[order] >> 16).astype(np.uint16)
        order = order[np.argsort(high, kind="stable")]
    return order


def group_order(group: np.ndarray, key: np.ndarray) -> np.ndarray:
    """``np.lexsort((key, group))``, exactly (ties in the original order), in less time.

    Already grouped one to a group in ascending order (the house level's bids): the identity.
    Else a sort by ``key`` (quicksort; a stable sort when two keys are equal or one is NaN, where
    the order of equals matters), then a stable (radix) sort by group.
    """
    n = len(group)
    if n < 2 or bool((group[1:] > group[:-1]).all()):
        return np.arange(n)
    by_key = np.argsort(key)
    ranked = key[by_key]
    if np.isnan(ranked[-1]) or bool((ranked[1:] == ranked[:-1]).any()):
        by_key = np.argsort(key, kind="stable")
    return by_key[stable_int_order(group[by_key])]


@dataclass(frozen=True)
class Matches:
    """Pairs matched in one level, as indices into that level's bid and offer arrays."""

    bid: np.ndarray
    offer: np.ndarray
    energy_kwh: np.ndarray
    rate: np.ndarray  # clearing rate in the market where they met [ct/kWh]
    group: np.ndarray


def match_grouped(
    bid_group: np.ndarray,
    bid_rate: np.ndarray,
    bid_kwh: np.ndarray,
    offer_group: np.ndarray,
    offer_rate: np.ndarray,
    offer_kwh: np.ndarray,
    n_groups: int,
    pay_as_clear: bool = False,
) -> Matches:
    """Match bids and offers in ``n_groups`` independent markets at once.

    In each group bids are sorted by rate descending and offers ascending (merit order) and laid
    end to end on a volume axis; each group owns a stretch of the axis as long as the smaller of
    its bid and offer volumes, and the groups' stretches are placed one after another. The union
    of the bids' and offers' breakpoints then cuts the axis into segments, each covered by
    exactly one bid and one offer, found with ``searchsorted``. A segment trades if its offer
    rate is at or below its bid rate; in merit order those segments are a prefix of each group.
    """
    empty = np.zeros(0)
    none = Matches(empty.astype(np.int64), empty.astype(np.int64), empty, empty, empty.astype(np.int64))
    if len(bid_kwh) == 0 or len(offer_kwh) == 0:
        return none
    ob = group_order(bid_group, -bid_rate)
    oo = group_order(offer_group, offer_rate)
    bg, bq, br = bid_group[ob], bid_kwh[ob], bid_rate[ob]
    og, oq, orr = offer_group[oo], offer_kwh[oo], offer_rate[oo]

    tot_b = np.bincount(bg, weights=bq, minlength=n_groups)
    tot_o = np.bincount(og, weights=oq, minlength=n_groups)
    stretch = np.minimum(tot_b, tot_o)
    start = np.cumsum(stretch) - stretch

    def axis(groups: np.ndarray, qty: np.ndarray, totals: np.ndarray) -> np.ndarray:
        within = np.cumsum(qty) - (np.cumsum(totals) - totals)[groups]
        return start[groups] + np.clip(within, 0.0, stretch[groups])

    bx, ox = axis(bg, bq, tot_b), axis(og, oq, tot_o)
    # bx and ox are each ascending (groups in order, volumes growing within one): a stable sort
    # merges the two runs in linear time, then equal neighbours go (what np.unique would give)
    cuts = np.concatenate(([0.0], bx, ox))
    cuts.sort(kind="stable")
    cuts = cuts[np.r_[True, cuts[1:] != cuts[:-1]]]
    length = np.diff(cuts)
    keep = length > _EPS_KWH
    mid = (cuts[:-1] + length / 2)[keep]
    length = length[keep]
    k = np.searchsorted(bx, mid)
    j = np.searchsorted(ox, mid)
    inside = (k < len(bx)) & (j < len(ox))
    k, j, mid, length = k[inside], j[inside], mid[inside], length[inside]
    same = (bg[k] == og[j]) & (orr[j] <= br[k] + 1e-12)
    k, j, length = k[same], j[same], length[same]
    if len(k) == 0:
        return none
    group = bg[k]
    if pay_as_clear:
        # segments come in axis order, so the last one of each group is its marginal pair
        last = np.flatnonzero(np.r_[group[1:] != group[:-1], True])
        clear = np.full(n_groups, np.nan)
        clear[group[last]] = (br[k[last]] + orr[j[last]]) / 2
        rate = clear[group]
    else:
        rate = br[k]
    return Matches(ob[k], oo[j], length, rate, group)


@dataclass(frozen=True)
class Trades:
    """Every trade of a slot. A trade is one bid-offer pair at the market where they met."""

    energy_kwh: np.ndarray
    level: np.ndarray  # level of the market where they met (0 grid, 1 community, 2 house)
    market: np.ndarray  # index of that market
    rate: np.ndarray  # clearing rate there [ct/kWh]
    buyer_house: np.ndarray  # house index, or EXTERNAL
    seller_house: np.ndarray
    buyer_rate: np.ndarray  # what the buyer pays [ct/kWh]
    seller_rate: np.ndarray  # what the seller receives [ct/kWh]
    seller_kind: np.ndarray  # 0 PV, 1 battery, -1 external

    def __len__(self) -> int:
        return len(self.energy_kwh)


@dataclass(frozen=True)
class HouseOrders:
    """What each house posts in its own market this slot (energy [kWh], rates [ct/kWh])."""

    demand_kwh: np.ndarray  # [H] load + flexible loads + battery charging
    bid_rate: np.ndarray  # [H]
    pv_kwh: np.ndarray  # [H]
    pv_rate: np.ndarray  # [H] before fees
    battery_kwh: np.ndarray  # [H] battery discharge offered
    battery_rate: np.ndarray  # [H] before fees
    # least each house accepts per kWh sold to the supplier (feed-in less fees) before it
    # curtails instead [ct/kWh]; None = anything non-negative
    min_export_revenue: np.ndarray | None = None


@dataclass(frozen=True)
class ClearedSlot:
    trades: Trades
    curtailed_kwh: np.ndarray  # [H] supply nobody took at a non-negative price
    unserved_kwh: np.ndarray  # [H] demand not served (0 while the supplier is unlimited)


def clear_slot(
    grid: GridModel,
    orders: HouseOrders,
    fee_ct_per_kwh: np.ndarray,
    supplier_sell_ct_per_kwh: float,
    feed_in_ct_per_kwh: float,
    pay_as_clear: bool = False,
) -> ClearedSlot:
    n_h, n_c = grid.n_houses, grid.n_communities
    houses = np.arange(n_h)
    f_grid = fee_ct_per_kwh[0]
    f_comm = fee_ct_per_kwh[1 : 1 + n_c]
    f_house = fee_ct_per_kwh[1 + n_c :]
    comm = grid.house_community

    # --- orders in the house markets --------------------------------------------------------
    has_bid = orders.demand_kwh > _EPS_KWH
    b_house = houses[has_bid]
    b_kwh = orders.demand_kwh[has_bid]
    b_rate = orders.bid_rate[has_bid].astype(float)
    b_fees = np.zeros(len(b_house))  # fees deducted so far

    has_pv = orders.pv_kwh > _EPS_KWH
    has_bat = orders.battery_kwh > _EPS_KWH
    o_house = np.concatenate((houses[has_pv], houses[has_bat]))
    o_kwh = np.concatenate((orders.pv_kwh[has_pv], orders.battery_kwh[has_bat]))
    o_kind = np.concatenate((np.zeros(has_pv.sum(), np.int64), np.ones(has_bat.sum(), np.int64)))
    o_fees = f_house[o_house]
    o_rate = np.concatenate((orders.pv_rate[has_pv], orders.battery_rate[has_bat])) + o_fees

    parts: list[dict[str, np.ndarray]] = []
    # group index per level: house index, community index, 0 for the grid
    levels = (
        (2, lambda h: h, n_h, lambda g: 1 + n_c + g),
        (1, lambda h: comm[h], n_c, lambda g: 1 + g),
        (0, lambda h: np.zeros_like(h), 1, lambda g: np.zeros_like(g)),
    )
    for level, group_of, n_groups, market_of in levels:
        if level == 1:  # bids leave their house, offers enter their community
            b_rate, b_fees = b_rate - f_house[b_house], b_fees + f_house[b_house]
            o_rate, o_fees = o_rate + f_comm[comm[o_house]], o_fees + f_comm[comm[o_house]]
        elif level == 0:  # bids leave their community, offers enter the grid
            b_rate, b_fees = b_rate - f_comm[comm[b_house]], b_fees + f_comm[comm[b_house]]
            o_rate, o_fees = o_rate + f_grid, o_fees + f_grid
        m = match_grouped(
            group_of(b_house),
            b_rate,
            b_kwh,
            group_of(o_house),
            o_rate,
            o_kwh,
            n_groups,
            pay_as_clear,
        )
        if len(m.energy_kwh):
            parts.append(
                dict(
                    energy_kwh=m.energy_kwh,
                    level=np.full(len(m.bid), level),
                    market=market_of(m.group),
                    rate=m.rate,
                    buyer_house=b_house[m.bid],
                    seller_house=o_house[m.offer],
                    buyer_rate=m.rate + b_fees[m.bid],
                    seller_rate=m.rate - o_fees[m.offer],
                    seller_kind=o_kind[m.offer],
                )
            )
            b_kwh = b_kwh - np.bincount(m.bid, weights=m.energy_kwh, minlength=len(b_kwh))
            o_kwh = o_kwh - np.bincount(m.offer, weights=m.energy_kwh, minlength=len(o_kwh))
            b_left, o_left = b_kwh > _EPS_KWH, o_kwh > _EPS_KWH
            b_house, b_kwh, b_rate, b_fees = b_house[b_left], b_kwh[b_left], b_rate[b_left], b_fees[b_left]
            o_house, o_kwh, o_rate, o_fees, o_kind = (
                o_house[o_left],
                o_kwh[o_left],
                o_rate[o_left],
                o_fees[o_left],
                o_kind[o_left],
            )

    # --- the external supplier, a child of the grid market ------------------------------------
    import_rate = supplier_sell_ct_per_kwh + f_grid  # its offer enters the grid market
    n_b = len(b_house)
    parts.append(
        dict(
            energy_kwh=b_kwh,
            level=np.zeros(n_b, np.int64),
            market=np.zeros(n_b, np.int64),
            rate=np.full(n_b, import_rate),
            buyer_house=b_house,
            seller_house=np.full(n_b, EXTERNAL),
            buyer_rate=import_rate + b_fees,
            seller_rate=np.full(n_b, float(supplier_sell_ct_per_kwh)),
            seller_kind=np.full(n_b, -1),
        )
    )
    floor = 0.0 if orders.min_export_revenue is None else np.maximum(orders.min_export_revenue[o_house], 0.0)
    sells = feed_in_ct_per_kwh - o_fees >= floor
    n_s = int(sells.sum())
    parts.append(
        dict(
            energy_kwh=o_kwh[sells],
            level=np.zeros(n_s, np.int64),
            market=np.zeros(n_s, np.int64),
            rate=np.full(n_s, float(feed_in_ct_per_kwh)),
            buyer_house=np.full(n_s, EXTERNAL),
            seller_house=o_house[sells],
            buyer_rate=np.full(n_s, float(feed_in_ct_per_kwh)),
            seller_rate=feed_in_ct_per_kwh - o_fees[sells],
            seller_kind=o_kind[sells],
        )
    )
    curtailed = np.bincount(o_house[~sells], weights=o_kwh[~sells], minlength=n_h)
    trades = Trades(**{k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    return ClearedSlot(trades=trades, curtailed_kwh=curtailed, unserved_kwh=np.zeros(n_h))
