"""Household load and PV generation per slot and house, one simulated day at a time.

Load: demandlib's BDEW ``H25`` (2025 household profile; the old ``ElecSlp`` turns every warning
into an error process-wide and breaks under pandas 3.1). PV: pvlib clear-sky (Ineichen, with
the Linke turbidity table pvlib ships) on a tilted plane, PVWatts DC and inverter, times a
seeded clearness index with slot-to-slot persistence (an AR(1) process per community per day).

Diversity: every house gets a seeded scale of its annual energy, a time shift of its load of up
to two slots and per-slot noise, so houses do not all peak in the same slot. Everything is
seeded from ``(scenario.seed, day)``: the same scenario and seed give the same numbers, and a
day's numbers do not depend on which days were generated before it.

Nothing here downloads anything.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from functools import lru_cache

# pandas at import, not in the first day's thread: plotly, in a request thread, would otherwise
# read a half-imported pandas from sys.modules (a 500 "partially initialized module 'pandas'")
import numpy as np
import pandas as pd

from app.exchange.grid import GridModel
from app.exchange.scenario import Scenario

_H25_ANNUAL_KWH = 1e6  # H25 values are kW for a consumption of 1 GWh/a


@dataclass(frozen=True)
class DayProfiles:
    """Energy per slot [kWh], shape (slots_per_day, houses)."""

    load_kwh: np.ndarray
    pv_kwh: np.ndarray
    flex_energy_kwh: np.ndarray  # [F] energy each flexible load needs in this day's window


def _to_slots(values_15min: np.ndarray, slot_length_min: int) -> np.ndarray:
    """Average 96 quarter-hour values into slots of any length that divides a day."""
    per_minute = np.repeat(np.asarray(values_15min, dtype=float), 15)
    return per_minute.reshape(-1, slot_length_min).mean(axis=1)


def h25_day_kw(date: dt.date) -> np.ndarray:
    """H25 household profile for one day, 96 quarter-hour values [kW per 1 GWh/a]."""
    return _h25_day_kw(date.isoformat())


@lru_cache(maxsize=64)
def _h25_day_kw(iso_date: str) -> np.ndarray:
    from demandlib import bdew

    idx = pd.date_range(iso_date, periods=96, freq="15min")
    with warnings.catch_warnings():
        # demandlib 0.2.2 still uses pandas' inplace keywords; the numbers are right.
        warnings.simplefilter("ignore")
        values = np.asarray(bdew.H25(idx), dtype=float)
    values.setflags(write=False)
    return values


@lru_cache(maxsize=256)
def _pv_day_kw_per_kwp(
    iso_date: str,
    latitude: float,
    longitude: float,
    altitude: float,
    tz: str,
    tilt: float,
    azimuth: float,
) -> np.ndarray:
    """Clear-sky AC output of a 1 kWp plant, 96 quarter-hour values [kW/kWp]."""
    import pvlib
    from pvlib.location import Location

    naive = pd.date_range(iso_date, periods=96, freq="15min") + pd.Timedelta(minutes=7.5)
    times = naive.tz_localize(tz, ambiguous=np.zeros(len(naive), dtype=bool), nonexistent="shift_forward")
    with warnings.catch_warnings():
        # pvlib 0.16 still reads DatetimeIndex.dayofyear, deprecated in pandas 3.1
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        site = Location(latitude, longitude, tz=tz, altitude=altitude)
        clear = site.get_clearsky(times, model="ineichen")
        sun = site.get_solarposition(times)
        poa = pvlib.irradiance.get_total_irradiance(
            tilt,
            azimuth,
            sun["apparent_zenith"],
            sun["azimuth"],
            dni=clear["dni"],
            ghi=clear["ghi"],
            dhi=clear["dhi"],
        )
        params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_glass"]
        t_cell = pvlib.temperature.sapm_cell(poa["poa_global"], 20, 1, **params)
        p_dc = pvlib.pvsystem.pvwatts_dc(poa["poa_global"], t_cell, pdc0=1000, gamma_pdc=-0.004)
        p_ac = pvlib.inverter.pvwatts(p_dc, pdc0=1000 / 0.96, eta_inv_nom=0.96)
    values = np.clip(np.nan_to_num(np.asarray(p_ac, dtype=float)), 0, None) / 1000.0
    values.setflags(write=False)
    return values


def clearness_index(rng: np.random.Generator, n_series: int, n_slots: int) -> np.ndarray:
    """Seeded cloud cover: a day type (clear, mixed, overcast) and AR(1) variation per slot.

    Returns values in [0.05, 1] with shape (n_slots, n_series).
    """
    day_mean = rng.choice([0.92, 0.7, 0.35], p=[0.5, 0.35, 0.15])
    spread = {0.92: 0.05, 0.7: 0.22, 0.35: 0.12}[day_mean]
    series_mean = np.clip(day_mean + rng.normal(0, 0.04, n_series), 0.1, 1.0)
    shocks = rng.normal(0, spread, (n_slots, n_series))
    k = np.empty((n_slots, n_series))
    prev = np.zeros(n_series)
    for s in range(n_slots):  # loop over slots (96), vectorised over series
        prev = 0.85 * prev + np.sqrt(1 - 0.85**2) * shocks[s]
        k[s] = prev
    return np.clip(series_mean + k, 0.05, 1.0)


class ProfileSource:
    """Gives ``DayProfiles`` for day ``d`` (0 = the scenario's start date) of a grid."""

    def __init__(self, scenario: Scenario, grid: GridModel):
        self.scenario = scenario
        self.grid = grid
        n_h = grid.n_houses
        rng = np.random.default_rng([scenario.seed, 1])
        # per-house constants: annual-energy scale and a load time shift of -2..+2 slots
        self.load_scale = grid.load_annual_kwh / _H25_ANNUAL_KWH * rng.lognormal(0, 0.25, n_h)
        self.load_shift = rng.integers(-2, 3, n_h)
        self.pv_scale = grid.pv_kwp * rng.uniform(0.85, 1.0, n_h)  # orientation, soiling
        self._cache: dict[int, DayProfiles] = {}

    def date_of(self, day: int) -> dt.date:
        return self.scenario.start.date() + dt.timedelta(days=day)

    def day(self, day: int) -> DayProfiles:
        if day not in self._cache:
            if len(self._cache) >= 2:
                self._cache.pop(min(self._cache))
            self._cache[day] = self._build(day)
        return self._cache[day]

    def _build(self, day: int) -> DayProfiles:
        sc, grid = self.scenario, self.grid
        date = self.date_of(day)
        n_slots, slot_h = sc.slots_per_day, sc.slot_length_min / 60
        rng = np.random.default_rng([sc.seed, 2, day])

        shape = _to_slots(h25_day_kw(date), sc.slot_length_min)  # [S] kW per GWh/a
        rows = (np.arange(n_slots)[:, None] - self.load_shift[None, :]) % n_slots
        noise = rng.lognormal(-0.5 * 0.2**2, 0.2, (n_slots, grid.n_houses))
        # in place, in the order of ``shape[rows] * scale * noise * slot_h``: the same numbers
        # without three temporaries of (slots x houses)
        load_kwh = shape[rows]
        load_kwh *= self.load_scale[None, :]
        load_kwh *= noise
        load_kwh *= slot_h
        del noise

        pv_kwh = np.zeros((n_slots, grid.n_houses))
        has_pv = self.pv_scale > 0
        if has_pv.any():
            loc = sc.location
            k_t = clearness_index(rng, grid.n_communities, n_slots)[:, grid.house_community]
            orient = np.stack([grid.pv_tilt_deg, grid.pv_azimuth_deg], axis=1)
            combos, which = np.unique(orient[has_pv], axis=0, return_inverse=True)
            per_kwp = np.empty((n_slots, len(combos)))
            for i, (tilt, az) in enumerate(combos):  # one pvlib run per orientation
                per_kwp[:, i] = _to_slots(
                    _pv_day_kw_per_kwp(
                        date.isoformat(),
                        loc.latitude,
                        loc.longitude,
                        loc.altitude_m,
                        loc.tz,
                        float(tilt),
                        float(az),
                    ),
                    sc.slot_length_min,
                )
            idx = np.flatnonzero(has_pv)
            pv = per_kwp[:, which.ravel()]
            pv *= self.pv_scale[idx]
            pv *= k_t[:, idx]
            pv *= slot_h
            pv_kwh[:, idx] = pv

        flex_need = grid.flex_energy_kwh * rng.uniform(0.5, 1.2, len(grid.flex_energy_kwh))
        return DayProfiles(load_kwh=load_kwh, pv_kwh=pv_kwh, flex_energy_kwh=flex_need)
