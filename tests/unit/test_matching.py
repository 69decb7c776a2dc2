"""Hand-checked matching cases, with fees on a two-level path (reference §2.3's worked example)."""

import numpy as np
import pytest

from app.exchange.grid import build_grid
from app.exchange.matching import EXTERNAL, HouseOrders, clear_slot, match_grouped
from app.exchange.scenario import parse_scenario


def a(*values):
    return np.asarray(values, dtype=float)


def i(*values):
    return np.asarray(values, dtype=np.int64)


def test_pay_as_bid_pairs_in_merit_order_at_bid_rate():
    # bids 30 (2 kWh) and 20 (3 kWh); offers 10 (1 kWh), 15 (3 kWh), 25 (5 kWh)
    m = match_grouped(i(0, 0), a(20, 30), a(3, 2), i(0, 0, 0), a(25, 10, 15), a(5, 1, 3), 1)
    pairs = sorted(
        zip(m.bid.tolist(), m.offer.tolist(), m.energy_kwh.round(9).tolist(), m.rate.tolist(), strict=True)
    )
    # 30-bid takes 1 kWh of the 10-offer and 1 kWh of the 15-offer; 20-bid takes 2 kWh of the
    # 15-offer; the 25-offer is above the 20-bid and stays out.
    assert pairs == [(0, 2, 2.0, 20.0), (1, 1, 1.0, 30.0), (1, 2, 1.0, 30.0)]


def test_pay_as_clear_uses_one_rate_per_market():
    m = match_grouped(
        i(0, 0), a(20, 30), a(3, 2), i(0, 0, 0), a(25, 10, 15), a(5, 1, 3), 1, pay_as_clear=True
    )
    assert m.energy_kwh.sum() == pytest.approx(4.0)
    # marginal pair: the 20-bid and the 15-offer -> clears at 17.5 for everybody
    assert np.allclose(m.rate, 17.5)


def test_groups_are_matched_independently():
    # group 0 has only a bid, group 1 a bid and an offer, group 2 only an offer
    m = match_grouped(i(0, 1), a(40, 40), a(5, 2), i(1, 2), a(10, 10), a(3, 9), 3)
    assert m.group.tolist() == [1]
    assert m.energy_kwh.tolist() == pytest.approx([2.0])


def test_nothing_matches_when_offers_are_above_bids():
    m = match_grouped(i(0), a(10), a(5), i(0), a(11), a(5), 1)
    assert len(m.energy_kwh) == 0


def _two_house_grid(house_fee=0.0, community_fee=1.0, grid_fee=2.0, two_communities=True):
    houses = [{"name": "H", "fee_ct_per_kwh": house_fee, "assets": [{"type": "load", "annual_kwh": 1}]}]
    communities = [{"name": "N1", "fee_ct_per_kwh": community_fee, "houses": houses}]
    if two_communities:
        communities.append({"name": "N2", "fee_ct_per_kwh": community_fee, "houses": houses})
    else:
        communities[0]["houses"] = houses * 2
    return build_grid(
        parse_scenario(
            {
                "name": "t",
                "start": "2026-06-21T00:00",
                "grid": {"fee_ct_per_kwh": grid_fee, "communities": communities},
            }
        )
    )


def _orders(demand, bid, pv, pv_rate):
    z = np.zeros(2)
    return HouseOrders(a(*demand), a(*bid), a(*pv), a(*pv_rate), z, z)


def test_reference_worked_example_two_sided_pay_as_bid():
    """Fees N1 = 1, Grid = 2, N2 = 1, houses 0. A 10 ct PV offer in House 2 (N2) and a 30 ct
    bid in House 1 (N1) meet in the grid: the offer is 13 there, the bid 29; they clear at 29,
    the load pays 30, the PV gets 26 and N1, Grid, N2 book 1, 2 and 1 ct/kWh."""
    grid = _two_house_grid()
    fee = grid.initial_fee_ct_per_kwh
    cleared = clear_slot(grid, _orders((1, 0), (30, 0), (0, 1), (0, 10)), fee, 40.0, 0.0)
    t = cleared.trades
    assert len(t) == 1
    assert t.level[0] == 0 and t.rate[0] == pytest.approx(29)
    assert t.buyer_rate[0] == pytest.approx(30) and t.seller_rate[0] == pytest.approx(26)
    from app.exchange.stats import slot_stats

    stats = slot_stats(grid, t, fee, fee, a(1, 0), a(0, 1), np.zeros(2))
    n1, n2 = 1, 2
    assert stats.market_fee_revenue.tolist()[:3] == pytest.approx([2.0, 1.0, 1.0])
    assert stats.import_kwh[n1] == pytest.approx(1) and stats.export_kwh[n2] == pytest.approx(1)
    # the trade's rate in each market of its chain: 30 in N1 (before N1's fee was deducted),
    # 29 in the grid where it cleared, 27 in N2 (the clearing rate less the grid's fee)
    assert stats.avg_trade_rate[n1] == pytest.approx(30)
    assert stats.avg_trade_rate[0] == pytest.approx(29)
    assert stats.avg_trade_rate[n2] == pytest.approx(27)


def test_unmatched_demand_buys_from_supplier_plus_fees_on_the_way_down():
    grid = _two_house_grid(house_fee=0.5)
    fee = grid.initial_fee_ct_per_kwh
    cleared = clear_slot(grid, _orders((2, 0), (50, 0), (0, 0), (0, 0)), fee, 30.0, 8.0)
    t = cleared.trades
    assert t.seller_house.tolist() == [EXTERNAL]
    assert t.seller_rate[0] == pytest.approx(30)
    assert t.buyer_rate[0] == pytest.approx(30 + 2 + 1 + 0.5)
    assert t.energy_kwh[0] == pytest.approx(2)


def test_unmatched_supply_sells_at_feed_in_minus_fees_or_is_curtailed():
    grid = _two_house_grid()
    fee = grid.initial_fee_ct_per_kwh
    cleared = clear_slot(grid, _orders((0, 0), (0, 0), (3, 0), (9, 0)), fee, 30.0, 8.0)
    assert cleared.trades.seller_rate[0] == pytest.approx(8 - 3)
    assert cleared.curtailed_kwh.sum() == 0
    high = fee.copy()
    high[1] = 7  # 8 - (0 + 7 + 2) < 0: nobody pays to take it
    cleared = clear_slot(grid, _orders((0, 0), (0, 0), (3, 0), (9, 0)), high, 30.0, 8.0)
    assert len(cleared.trades) == 0
    assert cleared.curtailed_kwh.tolist() == pytest.approx([3, 0])


def test_neighbours_trade_in_their_community_before_the_grid():
    grid = _two_house_grid(two_communities=False)
    fee = grid.initial_fee_ct_per_kwh
    cleared = clear_slot(grid, _orders((1, 0), (35, 0), (0, 1), (0, 12)), fee, 30.0, 8.0)
    t = cleared.trades
    assert t.level.tolist() == [1]
    assert t.market.tolist() == [1]
    assert t.buyer_rate[0] == pytest.approx(35) and t.seller_rate[0] == pytest.approx(35 - 1)
