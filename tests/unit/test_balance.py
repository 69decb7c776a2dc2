"""Money and energy balance every slot, for random orders and fees and for a simulated day."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.exchange.generate import generate_scenario
from app.exchange.grid import build_grid
from app.exchange.matching import EXTERNAL, HouseOrders, clear_slot
from app.exchange.simulation import Simulation
from app.exchange.stats import slot_stats

GRID = build_grid(generate_scenario(3, 6, seed=5))
H, M = GRID.n_houses, GRID.n_markets


def check_balances(grid, orders, fee, cleared, consumption, production):
    t = cleared.trades
    paid = (t.energy_kwh * t.buyer_rate).sum()
    received = (t.energy_kwh * t.seller_rate).sum()
    stats = slot_stats(grid, t, fee, fee, consumption, production, cleared.curtailed_kwh)
    # what buyers pay = what sellers receive + all fee revenue
    assert paid == pytest.approx(received + stats.market_fee_revenue.sum(), rel=1e-9, abs=1e-9)
    # energy bought by houses = their demand; energy sold = supply less curtailment
    bought = np.bincount(
        t.buyer_house[t.buyer_house != EXTERNAL],
        weights=t.energy_kwh[t.buyer_house != EXTERNAL],
        minlength=grid.n_houses,
    )
    sold = np.bincount(
        t.seller_house[t.seller_house != EXTERNAL],
        weights=t.energy_kwh[t.seller_house != EXTERNAL],
        minlength=grid.n_houses,
    )
    assert bought == pytest.approx(orders.demand_kwh, abs=1e-7)
    assert sold + cleared.curtailed_kwh == pytest.approx(orders.pv_kwh + orders.battery_kwh, abs=1e-7)
    # a market's import - export = what its subtree bought minus sold, beyond its own trades
    comm = grid.house_community
    for c in range(grid.n_communities):
        inside_b = (t.buyer_house != EXTERNAL) & (comm[np.maximum(t.buyer_house, 0)] == c)
        inside_s = (t.seller_house != EXTERNAL) & (comm[np.maximum(t.seller_house, 0)] == c)
        net_in = t.energy_kwh[inside_b & ~inside_s].sum() - t.energy_kwh[inside_s & ~inside_b].sum()
        assert stats.import_kwh[1 + c] - stats.export_kwh[1 + c] == pytest.approx(net_in, abs=1e-7)
    ext_in = t.energy_kwh[t.seller_house == EXTERNAL].sum()
    ext_out = t.energy_kwh[t.buyer_house == EXTERNAL].sum()
    assert stats.import_kwh[0] - stats.export_kwh[0] == pytest.approx(ext_in - ext_out, abs=1e-7)
    # every trade price is finite and no seller gets a negative price
    assert np.isfinite(t.buyer_rate).all() and (t.seller_rate >= -1e-9).all()
    return stats


kwh = st.lists(st.floats(0, 5), min_size=H, max_size=H)
rates = st.lists(st.floats(0, 60), min_size=H, max_size=H)
fees = st.lists(st.floats(0, 20), min_size=M, max_size=M)


@settings(max_examples=60, deadline=None)
@given(kwh, rates, kwh, rates, kwh, rates, fees, st.booleans())
def test_money_and_energy_balance_for_any_orders_and_fees(d, b, pv, pr, bat, br, f, clear):
    orders = HouseOrders(np.array(d), np.array(b), np.array(pv), np.array(pr), np.array(bat), np.array(br))
    fee = np.array(f)
    cleared = clear_slot(GRID, orders, fee, 30.0, 8.0, pay_as_clear=clear)
    check_balances(GRID, orders, fee, cleared, np.array(d), np.array(pv))


@pytest.mark.parametrize("matching", ["pay_as_bid", "pay_as_clear"])
def test_money_and_energy_balance_every_slot_of_a_simulated_day(matching):
    scenario = generate_scenario(3, 8, seed=11).model_copy(update={"matching": matching})
    sim = Simulation(scenario)
    fee = sim.grid.initial_fee_ct_per_kwh.copy()
    for slot in range(96):
        fee[1 + slot % 3] = (slot % 7) * 1.5  # fees that move
        out = sim.run_slot(slot, fee)
        check_balances(sim.grid, out.orders, fee, out.cleared, out.consumption_kwh, out.production_kwh)
