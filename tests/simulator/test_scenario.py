from pathlib import Path

import pytest

from guardian_lib.errors import ConfigError
from simulator.scenario import load_scenario, scenario_dir


@pytest.mark.parametrize("name", ["tiny", "small", "city"])
def test_shipped_scenarios_load(name):
    sc = load_scenario(name)
    assert sc.name == name
    assert sc.n_ticks == sc.days * 24 * 60 // sc.tick_minutes


def test_unknown_field_names_file_and_path(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    text = (
        (scenario_dir() / "tiny.yaml")
        .read_text()
        .replace("boards_per_olt: 1", "boards_per_olt: 12a")
    )
    bad.write_text(text + "\nfaults:\n  feeder_cut: {rate_per_yr: 1}\n")
    with pytest.raises(ConfigError) as err:
        load_scenario(bad)
    msg = str(err.value)
    assert str(bad) in msg
    assert "topology.boards_per_olt" in msg and "'12a'" in msg
    assert "faults.feeder_cut.rate_per_yr" in msg


def test_missing_scenario_lists_shipped_ones():
    with pytest.raises(ConfigError, match="tiny"):
        load_scenario("no_such_scenario")


def test_bad_values_rejected():
    with pytest.raises(ConfigError, match="tick_minutes"):
        load_scenario("tiny", tick_minutes=7)
    with pytest.raises(ConfigError, match="first_stage_ratio"):
        sc = load_scenario("tiny").model_dump()
        sc["topology"]["first_stage_ratio"] = 3
        load_scenario(sc)
    with pytest.raises(ConfigError, match="p90_h"):
        sc = load_scenario("tiny").model_dump()
        sc["faults"]["feeder_cut"]["duration"] = {"median_h": 5, "p90_h": 1}
        load_scenario(sc)


def test_not_yaml(tmp_path: Path):
    bad = tmp_path / "x.yaml"
    bad.write_text("topology: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_scenario(bad)
