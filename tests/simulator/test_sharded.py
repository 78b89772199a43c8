"""Sharded simulation: any number of shards, in any order, writes the same files."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.output import simulate_to_dir
from simulator.scenario import load_scenario
from simulator.sharded import assign_shards, fleet_draws, region_parts, simulate_sharded

# Three regions (one with two OLTs), stormy and fault-heavy so that storms, BNG failures,
# power outages and service orders all occur within half a day (dead ONUs: only a
# visit fixes them, so their calls become service orders).
_SCENARIO = {
    "name": "three_regions",
    "seed": 5,
    "start": "2026-03-02T00:00:00Z",
    "days": 0.5,
    "topology": {
        "regions": [
            {
                "name": "A",
                "olts": 2,
                "cities": [{"name": "A", "lat": -21.2, "lon": -47.8, "radius_km": 5}],
            },
            {
                "name": "B",
                "olts": 1,
                "cities": [{"name": "B", "lat": -22.3, "lon": -49.1, "radius_km": 5}],
            },
            {
                "name": "C",
                "olts": 1,
                "cities": [{"name": "C", "lat": -20.5, "lon": -47.4, "radius_km": 5}],
            },
        ],
        "boards_per_olt": 1,
        "pons_per_board": 2,
        "onus_per_pon_min": 8,
        "onus_per_pon_max": 16,
        "first_stage_ratio": 8,
        "second_stage_ratio": 8,
        "vendor_mix": {"huawei": 0.4, "zte": 0.3, "fiberhome": 0.3},
    },
    "faults": {
        "feeder_cut": {"rate_per_year": 60.0, "duration": {"median_h": 2, "p90_h": 5}},
        "power_outage": {"rate_per_year": 300.0},
        "upstream_failure": {"rate_per_year": 1500.0},
        "cpe_hang": {"rate_per_year": 30.0},
        "hardware_failure": {"rate_per_year": 200.0},
    },
    "weather": {"storms_per_year_per_region": 300},
    "operations": {"technicians_per_region": 1},
}


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(_SCENARIO)


@pytest.fixture(scope="module")
def client():
    from guardian_lib.cluster import open_client

    with open_client(n_workers=2, processes=False) as c:
        yield c


def test_one_two_and_three_shards_write_the_same_files(scenario, client, tmp_path):
    one = tree_hashes(simulate_sharded(scenario, tmp_path / "one", 1))
    two = tree_hashes(simulate_sharded(scenario, tmp_path / "two", 2, client=client))
    three = tree_hashes(simulate_sharded(scenario, tmp_path / "three", 3, client=client))
    assert one == two == three
    # One part file per region in each date folder, and something happened in each.
    parts = {Path(k).name for k in one if k.startswith("lake/raw/telemetry")}
    assert parts == {"sim-part-0000.parquet", "sim-part-0001.parquet", "sim-part-0002.parquet"}
    run = tmp_path / "one"
    truth = pd.read_parquet(run / "ops" / "faults_truth.parquet")
    assert {"upstream_failure", "power_outage", "feeder_cut"} <= set(truth["kind"])
    orders = pd.read_parquet(run / "ops" / "service_orders.parquet")
    assert len(orders) > 0 and orders["os_id"].is_unique
    assert orders["opened_at"].is_monotonic_increasing


def test_row_for_row_and_a_different_seed_differs(scenario, client, tmp_path):
    a = simulate_sharded(scenario, tmp_path / "a", 1)
    b = simulate_sharded(scenario, tmp_path / "b", 3, client=client)
    ta = pd.read_parquet(a / "lake" / "raw" / "telemetry")
    tb = pd.read_parquet(b / "lake" / "raw" / "telemetry")
    pd.testing.assert_frame_equal(ta, tb)
    c = simulate_sharded(scenario, tmp_path / "c", 1, seed=6)
    tc = pd.read_parquet(c / "lake" / "raw" / "telemetry")
    assert len(tc) != len(ta) or not np.array_equal(tc["rx_dbm"], ta["rx_dbm"], equal_nan=True)


def test_network_wide_draws_equal_the_unsharded_engine(scenario, tmp_path):
    """Inventory and faults are drawn once, as the single-process engine draws them."""
    legacy = simulate_to_dir(scenario, tmp_path / "legacy")
    sharded = simulate_sharded(scenario, tmp_path / "sharded", 1)
    for name in ("olts", "pons", "onus", "customers", "splitters"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(legacy / "inventory" / f"{name}.parquet"),
            pd.read_parquet(sharded / "inventory" / f"{name}.parquet"),
        )
    cols = ["fault_id", "kind", "start_at", "scope_key", "affected_onus"]
    lt = pd.read_parquet(legacy / "ops" / "faults_truth.parquet")[cols]
    st = pd.read_parquet(sharded / "ops" / "faults_truth.parquet")[cols]
    pd.testing.assert_frame_equal(lt.astype(str), st.astype(str))


def test_region_parts_cover_every_onu_and_fault_once(scenario):
    topology, storms, faults = fleet_draws(scenario)
    parts = region_parts(topology, storms, faults)
    assert sum(p.n_onus for p in parts) == topology.n_onus
    assert sorted(f.fault_id for p in parts for f in p.faults) == sorted(f.fault_id for f in faults)
    assert assign_shards([5, 9, 1], 2) == [[1], [0, 2]]
    with pytest.raises(ValueError, match="between 1 and the scenario's 3 region"):
        assign_shards([5, 9, 1], 4)


def test_cli_refuses_more_shards_than_regions_and_a_bad_scheduler(tmp_path):
    import typer
    from typer.testing import CliRunner

    from simulator.cli import register

    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # two commands: typer keeps the sub-command name
    base = ["simulate", "--scenario", "tiny", "--out", str(tmp_path / "r")]
    res = CliRunner().invoke(app, [*base, "--shards", "2"])
    assert res.exit_code == 2 and "has 1 region(s)" in res.output
    res = CliRunner().invoke(app, [*base, "--shards", "1", "--scheduler", "http://x"])
    assert res.exit_code == 2 and "tcp://HOST:8786" in res.output
    assert not (tmp_path / "r").exists()


def test_a_region_run_twice_in_one_process_gives_the_same_files(scenario, tmp_path):
    """As a task retried on the same worker would: the parts are not changed by a run."""
    from simulator.sharded import simulate_regions

    topology, storms, faults = fleet_draws(scenario)
    parts = region_parts(topology, storms, faults)
    first = simulate_regions(scenario, parts[::-1], str(tmp_path / "a"))
    again = simulate_regions(scenario, parts, str(tmp_path / "b"))
    assert tree_hashes(tmp_path / "a") == tree_hashes(tmp_path / "b")
    by_region = {r["truth"]["fault_id"].iloc[0]: r["truth"] for r in again}
    for r in first:
        pd.testing.assert_frame_equal(r["truth"], by_region[r["truth"]["fault_id"].iloc[0]])
