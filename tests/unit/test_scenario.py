"""Scenario files: the shipped ones load; bad ones say which field is wrong and why."""

from pathlib import Path

import pytest

from app.exchange.generate import generate_scenario
from app.exchange.generate import main as generate_main
from app.exchange.grid import build_grid
from app.exchange.scenario import ScenarioError, dump_scenario, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[2]


def minimal(**grid_overrides):
    house = {"name": "H1", "assets": [{"type": "load", "annual_kwh": 3000}]}
    grid = {"communities": [{"name": "C1", "houses": [house]}]}
    grid.update(grid_overrides)
    return {"name": "t", "start": "2026-06-21T00:00", "grid": grid}


def problems(data) -> list[str]:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data)
    return err.value.problems


def test_default_scenario_loads_with_about_80_houses_in_three_communities():
    scenario = load_scenario(ROOT / "scenarios" / "default.yaml")
    grid = build_grid(scenario)
    assert grid.n_communities == 3
    assert 70 <= grid.n_houses <= 90
    assert (grid.bat_capacity_kwh > 0).sum() >= 5
    assert (grid.flex_kind == "ev").sum() >= 5


def test_negative_pv_capacity_names_the_field_path():
    data = minimal()
    data["grid"]["communities"].append(
        {
            "name": "C2",
            "houses": [{"name": f"H{i}", "assets": []} for i in range(3)]
            + [{"name": "H4", "assets": [{"type": "pv", "kwp": -1}]}],
        }
    )
    assert problems(data) == ["grid.communities[1].houses[3].assets[0].kwp: must be >= 0"]


def test_missing_field_is_reported():
    data = minimal()
    del data["grid"]["communities"][0]["houses"][0]["assets"][0]["annual_kwh"]
    assert problems(data) == ["grid.communities[0].houses[0].assets[0].annual_kwh: is required"]


def test_unknown_asset_type_is_reported_with_the_known_ones():
    data = minimal()
    data["grid"]["communities"][0]["houses"][0]["assets"].append({"type": "nuclear", "mw": 1})
    (problem,) = problems(data)
    assert problem.startswith("grid.communities[0].houses[0].assets[1]: unknown asset type 'nuclear'")
    assert "battery" in problem and "flexible_load" in problem


def test_negative_battery_capacity_and_unknown_field_are_both_reported():
    data = minimal()
    data["grid"]["communities"][0]["houses"][0]["assets"].append(
        {"type": "battery", "capacity_kwh": -5, "power_kw": 3, "colour": "red"}
    )
    assert sorted(problems(data)) == [
        "grid.communities[0].houses[0].assets[1].capacity_kwh: must be >= 0",
        "grid.communities[0].houses[0].assets[1].colour: unknown field",
    ]


def test_inconsistent_values_are_explained():
    data = minimal(fee_ct_per_kwh=500)
    assert problems(data) == ["(top level): an initial fee is above fee_limits.max_ct_per_kwh"]
    data = minimal()
    data["slot_length_min"] = 7
    assert problems(data) == ["(top level): slot_length_min must divide a day (1440 minutes)"]
    data = minimal()
    data["supplier"] = {"sell_rate_ct_per_kwh": [30] * 23}
    assert problems(data) == ["supplier.sell_rate_ct_per_kwh: must be one number or 24 hourly values, got 23"]


def test_broken_yaml_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ngrid: [unclosed\n  communities: 3\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert "not valid YAML/JSON at line" in err.value.problems[0]
    assert str(path) in str(err.value)


def test_missing_file_and_non_mapping_are_clear_errors(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read file"):
        load_scenario(tmp_path / "nope.yaml")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ScenarioError, match="must be a mapping"):
        load_scenario(tmp_path / "list.json")


def test_houses_with_count_expand_to_distinct_markets():
    data = minimal()
    data["grid"]["communities"][0]["houses"][0]["count"] = 12
    grid = build_grid(parse_scenario(data))
    names = [m.name for m in grid.markets if m.level == 2]
    assert len(names) == 12 and len(set(names)) == 12
    assert len({m.uuid for m in grid.markets}) == grid.n_markets


def test_market_uuids_are_stable_across_loads():
    a = build_grid(load_scenario(ROOT / "scenarios" / "default.yaml"))
    b = build_grid(load_scenario(ROOT / "scenarios" / "default.yaml"))
    assert [m.uuid for m in a.markets] == [m.uuid for m in b.markets]


def test_generator_makes_n_communities_of_m_houses_and_round_trips(tmp_path):
    scenario = generate_scenario(4, 25, seed=3)
    grid = build_grid(scenario)
    assert grid.n_communities == 4 and grid.n_houses == 100
    out = tmp_path / "gen.yaml"
    assert generate_main(["--communities", "2", "--houses", "7", "-o", str(out)]) == 0
    again = load_scenario(out)
    assert again.house_count() == 14
    assert parse_scenario(__import__("yaml").safe_load(dump_scenario(scenario))) == scenario


def test_sc_limits_are_per_market_and_do_not_change_the_stored_run():
    """Flow limits steer the operator, not the simulation: a run stored before they were set
    (or with other limits) is still the same run."""
    from app.store.repo import scenario_hash

    base = load_scenario(ROOT / "scenarios" / "default.yaml")
    limits = base.market_limits()
    assert limits["Grid"].import_kwh_per_slot == 25
    assert limits["Community North"].export_kwh_per_slot == 28
    data = base.model_dump(mode="json")
    data["grid"]["limits"] = None
    for c in data["grid"]["communities"]:
        c["limits"] = None
    without = parse_scenario(data)
    assert without.market_limits() == {}
    assert scenario_hash(without) == scenario_hash(base)


def test_sc_a_limit_must_be_positive():
    data = load_scenario(ROOT / "scenarios" / "default.yaml").model_dump(mode="json")
    data["grid"]["communities"][0]["limits"] = {"import_kwh_per_slot": -3}
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data)
    assert "grid.communities[0].limits.import_kwh_per_slot: must be > 0" in str(err.value)
