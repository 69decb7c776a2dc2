"""The grid tree of a scenario compiled into flat NumPy arrays.

Markets are numbered grid first (0), then communities (1..C), then houses (C+1..C+H), so that
a market's level is a slice and per-market sums are one ``np.bincount``. Every asset type is an
array over the assets of that type with the index of the house that owns it; there is no
per-house Python object on the hot path.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np

from app.exchange.scenario import PV, Battery, FlexibleLoad, Load, Scenario

_NAMESPACE = uuid.UUID("6c1f9a2e-3b0d-4c52-9a57-0c8f4f1de7a1")

LEVEL_GRID, LEVEL_COMMUNITY, LEVEL_HOUSE = 0, 1, 2
LEVEL_NAMES = {LEVEL_GRID: "grid", LEVEL_COMMUNITY: "community", LEVEL_HOUSE: "house"}


def market_uuid(scenario_name: str, path: str) -> str:
    """Stable id of a market: the same scenario gives the same ids after every restart."""
    return str(uuid.uuid5(_NAMESPACE, f"{scenario_name}/{path}"))


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


@dataclass(frozen=True)
class Market:
    index: int
    uuid: str
    name: str
    level: int
    parent_index: int | None  # None for the grid


@dataclass(frozen=True)
class GridModel:
    """Topology and asset parameters. Immutable; the state that changes lives in ``State``."""

    markets: tuple[Market, ...]
    n_communities: int
    n_houses: int
    house_community: np.ndarray  # [H] int, community index 0..C-1
    initial_fee_ct_per_kwh: np.ndarray  # [M]
    # load
    load_annual_kwh: np.ndarray  # [H], 0 when the house has no load
    # pv (one per house at most)
    pv_kwp: np.ndarray  # [H]
    pv_tilt_deg: np.ndarray  # [H]
    pv_azimuth_deg: np.ndarray  # [H]
    # battery (one per house at most)
    bat_capacity_kwh: np.ndarray  # [H], 0 = no battery
    bat_power_kw: np.ndarray
    bat_efficiency: np.ndarray
    bat_initial_soc: np.ndarray
    bat_min_soc: np.ndarray
    # flexible loads (any number per house)
    flex_house: np.ndarray  # [F] int
    flex_kind: np.ndarray  # [F] str
    flex_energy_kwh: np.ndarray
    flex_power_kw: np.ndarray
    flex_from_min: np.ndarray  # minutes after midnight
    flex_due_min: np.ndarray
    flex_price_full: np.ndarray  # ct/kWh
    flex_price_min: np.ndarray

    @property
    def n_markets(self) -> int:
        return len(self.markets)

    @property
    def house_market(self) -> np.ndarray:
        """Market index of each house."""
        return np.arange(self.n_houses) + 1 + self.n_communities

    @property
    def community_market(self) -> np.ndarray:
        """Market index of each community."""
        return np.arange(self.n_communities) + 1

    def levels(self) -> np.ndarray:
        return np.array([m.level for m in self.markets])

    def by_uuid(self) -> dict[str, Market]:
        return {m.uuid: m for m in self.markets}


def build_grid(scenario: Scenario) -> GridModel:
    name = scenario.name
    grid = scenario.grid
    markets: list[Market] = [Market(0, market_uuid(name, grid.name), grid.name, 0, None)]
    fees = [grid.fee_ct_per_kwh]
    for ci, community in enumerate(grid.communities):
        path = f"{grid.name}/{community.name}#{ci}"
        markets.append(Market(ci + 1, market_uuid(name, path), community.name, 1, 0))
        fees.append(community.fee_ct_per_kwh)

    house_comm: list[int] = []
    house_names: list[tuple[str, str]] = []
    loads, pvs, bats, flexes = [], [], [], []
    for ci, community in enumerate(grid.communities):
        for hi, house in enumerate(community.houses):
            for k in range(house.count):
                label = house.name if house.count == 1 else f"{house.name}-{k + 1:0{len(str(house.count))}d}"
                h = len(house_comm)
                house_comm.append(ci)
                house_names.append((f"{grid.name}/{community.name}#{ci}/{house.name}#{hi}/{k}", label))
                fees.append(house.fee_ct_per_kwh)
                for a in house.assets:
                    if isinstance(a, Load):
                        loads.append((h, a))
                    elif isinstance(a, PV):
                        pvs.append((h, a))
                    elif isinstance(a, Battery):
                        bats.append((h, a))
                    elif isinstance(a, FlexibleLoad):
                        flexes.append((h, a))
    n_c = len(grid.communities)
    for h, (path, label) in enumerate(house_names):
        markets.append(Market(1 + n_c + h, market_uuid(name, path), label, 2, 1 + house_comm[h]))

    n_h = len(house_comm)

    def per_house(items: list[tuple[int, object]], attr: str, default: float = 0.0) -> np.ndarray:
        out = np.full(n_h, default, dtype=float)
        for h, a in items:
            out[h] = getattr(a, attr)
        return out

    return GridModel(
        markets=tuple(markets),
        n_communities=n_c,
        n_houses=n_h,
        house_community=np.asarray(house_comm, dtype=np.int64),
        initial_fee_ct_per_kwh=np.asarray(fees, dtype=float),
        load_annual_kwh=per_house(loads, "annual_kwh"),
        pv_kwp=per_house(pvs, "kwp"),
        pv_tilt_deg=per_house(pvs, "tilt_deg", 30.0),
        pv_azimuth_deg=per_house(pvs, "azimuth_deg", 180.0),
        bat_capacity_kwh=per_house(bats, "capacity_kwh"),
        bat_power_kw=per_house(bats, "power_kw"),
        bat_efficiency=per_house(bats, "efficiency", 1.0),
        bat_initial_soc=per_house(bats, "initial_soc"),
        bat_min_soc=per_house(bats, "min_soc"),
        flex_house=np.asarray([h for h, _ in flexes], dtype=np.int64),
        flex_kind=np.asarray([a.kind for _, a in flexes], dtype=object),
        flex_energy_kwh=np.asarray([a.energy_kwh for _, a in flexes], dtype=float),
        flex_power_kw=np.asarray([a.power_kw for _, a in flexes], dtype=float),
        flex_from_min=np.asarray([_minutes(a.available_from) for _, a in flexes], dtype=np.int64),
        flex_due_min=np.asarray([_minutes(a.due_by) for _, a in flexes], dtype=np.int64),
        flex_price_full=np.asarray([a.price_full_ct_per_kwh for _, a in flexes], dtype=float),
        flex_price_min=np.asarray([a.price_min_ct_per_kwh for _, a in flexes], dtype=float),
    )
