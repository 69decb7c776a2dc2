"""One slot of the exchange: assets decide on the fees in force, the markets clear, stats follow.

``Simulation`` holds the compiled grid, the profile source and the asset state. It knows no
clock, no store and no HTTP: the runner drives it slot by slot, and backtests drive it as fast
as they can.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.exchange import assets
from app.exchange.grid import GridModel, build_grid
from app.exchange.matching import ClearedSlot, HouseOrders, clear_slot
from app.exchange.profiles import ProfileSource
from app.exchange.scenario import Scenario
from app.exchange.stats import SlotStats, slot_stats


@dataclass(frozen=True)
class SlotOutcome:
    slot: int
    fee_ct_per_kwh: np.ndarray  # [M] fees in force
    orders: HouseOrders
    cleared: ClearedSlot
    consumption_kwh: np.ndarray  # [H] loads + flexible loads
    production_kwh: np.ndarray  # [H] PV
    flex_kwh: np.ndarray  # [F]

    def stats(self, grid: GridModel, next_fee_ct_per_kwh: np.ndarray) -> SlotStats:
        unmatched = self.cleared.curtailed_kwh + self.cleared.unserved_kwh
        return slot_stats(
            grid,
            self.cleared.trades,
            self.fee_ct_per_kwh,
            next_fee_ct_per_kwh,
            self.consumption_kwh,
            self.production_kwh,
            unmatched,
        )


class Simulation:
    def __init__(self, scenario: Scenario, grid: GridModel | None = None):
        self.scenario = scenario
        self.grid = grid or build_grid(scenario)
        self.profiles = ProfileSource(scenario, self.grid)
        rng = np.random.default_rng([scenario.seed, 3])
        n_h = self.grid.n_houses
        self._bid_share = rng.uniform(0.85, 1.0, n_h)  # of the price the supplier would charge
        self._pv_ask = rng.uniform(0.0, 1.0, n_h)
        self._battery_ask = rng.uniform(0.6, 0.9, n_h)
        # owners differ: each flexible load's price thresholds are its scenario's +-15 %
        n_f = len(self.grid.flex_house)
        self._flex_price_full = self.grid.flex_price_full * rng.uniform(0.85, 1.15, n_f)
        self._flex_price_min = self._flex_price_full + (
            self.grid.flex_price_min - self.grid.flex_price_full
        ) * rng.uniform(0.85, 1.15, n_f)
        # below this share of the feed-in rate (after fees) an owner curtails rather than export
        self._export_floor_share = rng.uniform(0.0, 0.6, n_h)
        fees = self.grid.initial_fee_ct_per_kwh
        self.state = assets.initial_state(self.grid, self.buy_price(0, fees))

    def slot_minute(self, slot: int) -> int:
        return self.scenario.day_and_slot(slot)[1] * self.scenario.slot_length_min

    def supplier_rates(self, slot: int) -> tuple[float, float]:
        """(sell, feed-in) rate of the external supplier in ``slot`` [ct/kWh]."""
        return self.scenario.supplier_rates(slot)

    def buy_price(self, slot: int, fee_ct_per_kwh: np.ndarray) -> np.ndarray:
        """What each house pays for energy from the supplier in ``slot`` [ct/kWh]."""
        return self.supplier_rates(slot)[0] + assets.path_fees(self.grid, fee_ct_per_kwh)

    def run_slot(self, slot: int, fee_ct_per_kwh: np.ndarray) -> SlotOutcome:
        """Simulate ``slot`` with the fees in force for it; advances the asset state."""
        sc, grid = self.scenario, self.grid
        fee = np.asarray(fee_ct_per_kwh, dtype=float)
        day_index, s = sc.day_and_slot(slot)
        day = self.profiles.day(day_index)
        load, pv = day.load_kwh[s], day.pv_kwh[s]
        sell, feed_in = self.supplier_rates(slot)
        fees_on_path = assets.path_fees(grid, fee)
        buy = sell + fees_on_path
        flex = assets.flexible_load_kwh(
            grid,
            self.state,
            self.slot_minute(slot),
            sc.slot_length_min,
            day.flex_energy_kwh,
            buy,
            np.maximum(pv - load, 0.0),
            self._flex_price_full,
            self._flex_price_min,
        )
        flex_house = np.bincount(grid.flex_house, weights=flex, minlength=grid.n_houses)
        residual = load + flex_house - pv
        charge, discharge = assets.battery_kwh(grid, self.state, residual, buy, sc.slot_length_min)

        orders = HouseOrders(
            demand_kwh=load + flex_house + charge,
            bid_rate=self._bid_share * buy,
            pv_kwh=pv,
            pv_rate=feed_in + self._pv_ask * max(0.8 * sell - feed_in, 0.0),
            battery_kwh=discharge,
            battery_rate=feed_in + self._battery_ask * max(sell - feed_in, 0.0),
            min_export_revenue=self._export_floor_share * feed_in,
        )
        cleared = clear_slot(grid, orders, fee, sell, feed_in, sc.matching == "pay_as_clear")
        return SlotOutcome(slot, fee, orders, cleared, load + flex_house, pv, flex)
