"""Profiles: H25 and pvlib figures match the reference; the same seed gives the same numbers."""

import datetime as dt

import numpy as np
import pytest

from app.exchange.generate import generate_scenario
from app.exchange.grid import build_grid
from app.exchange.profiles import ProfileSource, _pv_day_kw_per_kwp, h25_day_kw


def test_h25_day_matches_the_reference_figures():
    # reference §4.1: 21 June 2024, 3,500 kWh/a -> 7.84 kWh that day, peak 0.479 kW at 19:30
    kw = h25_day_kw(dt.date(2024, 6, 21)) * 3500 / 1e6
    assert kw.sum() * 0.25 == pytest.approx(7.84, abs=0.02)
    assert kw.max() == pytest.approx(0.479, abs=0.002)
    assert int(np.argmax(kw)) == 19 * 4 + 2


def test_clear_sky_pv_matches_the_reference_figures():
    # reference §4.2: 5 kWp, Berlin, 21 June, clear sky -> about 35.2 kWh, peak about 4.1 kW
    kw = 5 * _pv_day_kw_per_kwp("2024-06-21", 52.52, 13.40, 34.0, "Europe/Berlin", 30.0, 180.0)
    assert kw.sum() * 0.25 == pytest.approx(35.2, rel=0.03)
    assert kw.max() == pytest.approx(4.12, rel=0.03)
    assert kw[:12].max() == 0 and kw[-8:].max() == 0  # nothing at night


def test_same_seed_same_numbers_and_days_do_not_depend_on_order():
    scenario = generate_scenario(2, 10, seed=4)
    grid = build_grid(scenario)
    a, b = ProfileSource(scenario, grid), ProfileSource(scenario, grid)
    day2_first = a.day(2)
    b.day(0), b.day(1)
    for x, y in [(day2_first, b.day(2)), (a.day(0), b.day(0))]:
        np.testing.assert_array_equal(x.load_kwh, y.load_kwh)
        np.testing.assert_array_equal(x.pv_kwh, y.pv_kwh)
        np.testing.assert_array_equal(x.flex_energy_kwh, y.flex_energy_kwh)


def test_other_seed_other_numbers_but_same_shape_and_scale():
    s1, s2 = generate_scenario(2, 10, seed=4), generate_scenario(2, 10, seed=5)
    d1 = ProfileSource(s1, build_grid(s1)).day(0)
    d2 = ProfileSource(s2, build_grid(s2)).day(0)
    assert not np.array_equal(d1.load_kwh, d2.load_kwh)
    assert d1.load_kwh.shape == (96, 20)
    assert (d1.load_kwh >= 0).all() and (d1.pv_kwh >= 0).all()


def test_houses_do_not_all_peak_in_the_same_slot():
    scenario = generate_scenario(1, 60, seed=1)
    day = ProfileSource(scenario, build_grid(scenario)).day(0)
    assert len(set(np.argmax(day.load_kwh, axis=0).tolist())) > 10
