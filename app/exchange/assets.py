"""How batteries and flexible loads decide, each slot, on the price they will pay.

The price a house faces for the coming slot is known before it starts: the supplier's rate plus
the fees *in force for that slot* on the path grid -> community -> house (a fee queued while
the previous slot ran is part of it). That is what makes fees steer:

* **Flexible loads** (EV, heat pump) must get ``energy_kwh`` between ``available_from`` and
  ``due_by``. The flattest way is the even rate (what is left / slots left). Cheap slots pull
  them up towards full power: ``kwh = even + phi * (full - even)`` with
  ``phi = clip((price_min - price) / (price_min - price_full), 0, 1)``. A higher fee lowers
  ``phi``, spreads charging and lowers the peak; a fee that varies by slot moves energy into the
  cheap slots. They never charge slower than what finishes on time.
* **Batteries** (behind the house meter) store the house's PV surplus, discharge into the
  house's deficit when the buy price is at or above their reference price (a one-day moving
  average of the prices they saw), hold their charge when the price is below it, and charge
  from the grid when it is clearly (8 %) below (cheap slots). A fee peak therefore calls them out.

All functions are vectorised over houses or flexible loads. Energy [kWh], prices [ct/kWh].
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from app.exchange.grid import GridModel

_BAND = 0.03  # batteries treat prices within 3 % of their reference as "normal"
_CHEAP = 0.08  # and charge from the grid only 8 % or more below it
_GRID_CHARGE_TARGET = 0.9  # fraction of capacity a battery fills from the grid in cheap slots


@dataclass
class AssetState:
    """What changes from slot to slot; saved to the store after every slot."""

    soc_kwh: np.ndarray  # [H]
    ref_price: np.ndarray  # [H] ct/kWh, one-day moving average of the buy price
    flex_remaining_kwh: np.ndarray  # [F]

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> AssetState:
        return cls(**{f.name: np.array(arrays[f.name], dtype=float) for f in fields(cls)})


def initial_state(grid: GridModel, buy_price: np.ndarray) -> AssetState:
    return AssetState(
        soc_kwh=grid.bat_capacity_kwh * grid.bat_initial_soc,
        ref_price=np.asarray(buy_price, dtype=float).copy(),
        flex_remaining_kwh=np.zeros(len(grid.flex_house)),
    )


def path_fees(grid: GridModel, fee_ct_per_kwh: np.ndarray) -> np.ndarray:
    """Sum of the fees grid + community + house on each house's path [ct/kWh]."""
    n_c = grid.n_communities
    return fee_ct_per_kwh[0] + fee_ct_per_kwh[1 + grid.house_community] + fee_ct_per_kwh[1 + n_c :]


def flexible_load_kwh(
    grid: GridModel,
    state: AssetState,
    minute_of_day: int,
    slot_length_min: int,
    need_today_kwh: np.ndarray,
    buy_price: np.ndarray,
    surplus_kwh: np.ndarray,
    price_full: np.ndarray,
    price_min: np.ndarray,
) -> np.ndarray:
    """Energy each flexible load takes this slot [kWh]; updates ``state.flex_remaining_kwh``.

    ``buy_price`` [ct/kWh] and ``surplus_kwh`` (PV beyond the house's load) are per house: a
    flexible load always soaks up its house's surplus, and decides on the buy price for the rest.
    ``price_full`` / ``price_min`` [ct/kWh] are each load's thresholds (full power at or below
    the first, only what it must at or above the second).
    """
    if len(grid.flex_house) == 0:
        return np.zeros(0)
    start, due = grid.flex_from_min, grid.flex_due_min
    window = (due - start) % 1440
    into = (minute_of_day - start) % 1440
    active = into < window
    opens = into < slot_length_min  # the window opens in this slot
    remaining = np.where(opens, need_today_kwh, state.flex_remaining_kwh)
    slots_left = np.maximum(np.ceil((window - into) / slot_length_min), 1)
    full = grid.flex_power_kw * slot_length_min / 60
    even = np.minimum(remaining / slots_left, full)
    price = buy_price[grid.flex_house]
    phi = np.clip((price_min - price) / (price_min - price_full), 0, 1)
    own_pv = np.minimum(surplus_kwh[grid.flex_house], full)
    kwh = np.minimum(np.maximum(even + phi * (full - even), own_pv), remaining)
    kwh = np.where(active, np.maximum(kwh, 0.0), 0.0)
    state.flex_remaining_kwh = np.where(active, remaining - kwh, 0.0)
    return kwh


def battery_kwh(
    grid: GridModel,
    state: AssetState,
    residual_kwh: np.ndarray,
    buy_price: np.ndarray,
    slot_length_min: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(charge, discharge) of each house's battery this slot [kWh at the meter].

    ``residual_kwh`` is the house's demand minus its PV before the battery (positive: deficit).
    Updates ``state.soc_kwh`` and ``state.ref_price``.
    """
    cap = grid.bat_capacity_kwh
    eta = np.sqrt(grid.bat_efficiency)  # one-way efficiency
    step = grid.bat_power_kw * slot_length_min / 60
    room = np.maximum(cap - state.soc_kwh, 0) / eta
    usable = np.maximum(state.soc_kwh - grid.bat_min_soc * cap, 0) * eta

    surplus = np.maximum(-residual_kwh, 0)
    deficit = np.maximum(residual_kwh, 0)
    ref = state.ref_price
    charge = np.minimum.reduce([surplus, step, room])
    discharge = np.where(buy_price >= ref * (1 - _BAND), np.minimum.reduce([deficit, step, usable]), 0)
    cheap = (buy_price < ref * (1 - _CHEAP)) & (state.soc_kwh < _GRID_CHARGE_TARGET * cap)
    top_up = np.maximum(_GRID_CHARGE_TARGET * cap - state.soc_kwh, 0) / eta
    charge = charge + np.where(cheap, np.clip(np.minimum(step - charge, top_up - charge), 0, None), 0)

    state.soc_kwh = np.clip(state.soc_kwh + charge * eta - discharge / eta, 0, cap)
    alpha = slot_length_min / 1440
    state.ref_price = ref + alpha * (buy_price - ref)
    return charge, discharge
