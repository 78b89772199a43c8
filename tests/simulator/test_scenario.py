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


#: Kinds that end only when their drawn duration runs out (a crew, the utility, the customer).
TIMED_KINDS = ("feeder_cut", "box_fault", "olt_board_failure", "power_outage",
               "upstream_failure", "wifi_interference", "customer_power_off")  # fmt: skip


@pytest.mark.parametrize("path", sorted(scenario_dir().glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_has_durations_for_timed_kinds(path: Path):
    faults = load_scenario(path).faults
    for kind in TIMED_KINDS:
        assert getattr(faults, kind).duration is not None, f"{path.name}: {kind}"


def test_a_rate_without_duration_keeps_the_default_duration():
    default = load_scenario("tiny").faults
    sc = load_scenario("tiny").model_dump()
    sc["faults"] = {
        "power_outage": {"rate_per_year": 300.0},
        "olt_board_failure": {"rate_per_year": 50.0},
        "feeder_cut": {"rate_per_year": 2.0, "duration": {"median_h": 2, "p90_h": 3}},
    }
    faults = load_scenario(sc).faults
    assert faults.power_outage.rate_per_year == 300.0
    assert faults.power_outage.duration == default.power_outage.duration
    assert faults.olt_board_failure.duration == default.olt_board_failure.duration
    assert faults.feeder_cut.duration.median_h == 2  # a given duration is kept
    assert faults.fibre_degradation.duration is None  # ends by a visit: no duration


def test_power_outages_given_only_a_rate_end_on_their_own():
    from simulator.engine import Simulation

    sc = load_scenario("tiny").model_dump()
    sc["faults"] = {"power_outage": {"rate_per_year": 2000.0}}
    sim = Simulation(load_scenario(sc), seed=3)
    outages = [f for f in sim.faults if f.kind == "power_outage"]
    assert outages, "the rate should give some outages in a day"
    assert all(f.duration_s is not None and f.duration_s > 0 for f in outages)


def test_explicit_null_duration_of_a_timed_kind_is_refused():
    sc = load_scenario("tiny").model_dump()
    sc["faults"] = {"upstream_failure": {"rate_per_year": 2.0, "duration": None}}
    with pytest.raises(ConfigError, match=r"upstream_failure\.duration.*0\.75 h"):
        load_scenario(sc)


@pytest.mark.parametrize("path", sorted(scenario_dir().glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_variant_has_the_same_operator(path: Path):
    """The reactive calibration describes the operator: no variant tunes its behaviour.

    Only the crew size may follow the network's size (experiments/scenarios/README.md,
    "Calibration of the reactive operation").
    """
    from simulator.scenario import read_yaml_mapping

    data = read_yaml_mapping(path)
    assert set(data.get("operations", {})) <= {"technicians_per_region"}, path.name
    assert "customers" not in data, path.name
