"""Round trip: simulator → OLT agents → poller → warehouse (RAW → SILVER), every vendor MIB.

The simulated tiny ISP (``load_scenario("tiny")``) is served as each vendor family in turn
(Huawei, ZTE C320 on 3902.1012, ZTE C600 on 3902.1082, FiberHome; same live state, the
vendor's model and PON ifIndex), with a few ONUs forced offline by LOS
and by dying gasp; the poller must find every ONU and give back the simulator's readings
within the vendor's resolution, nothing for offline ONUs, and the right events.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import typer
import yaml
from typer.testing import CliRunner

from acs_emulator.olt.serve import EmulatorCredentials, simulated_pool, write_inventory
from acs_emulator.olt.vendors import VENDOR_MIBS, mib_for
from guardian_lib.ingest import ingest_run
from guardian_lib.snmp import load_inventory, poll_once, write_to_warehouse
from guardian_lib.snmp.cli import register as register_poll
from guardian_lib.warehouse import silver_dir
from simulator.engine import Simulation
from simulator.scenario import load_scenario
from simulator.topology import pon_if_index

# MIB family → (fields the vendor reports, resolution [dB])
FAMILIES = {
    "huawei": (("rx_dbm", "tx_dbm", "olt_rx_dbm"), 0.01),
    "zte_1012": (("rx_dbm",), 0.002),
    "zte_1082": (("olt_rx_dbm",), 0.001),
    "fiberhome": (("rx_dbm", "tx_dbm"), 0.01),
}
MODELS = {
    "huawei": ("huawei", "MA5800-X7"),
    "zte_1012": ("zte", "C320"),
    "zte_1082": ("zte", "C600"),
    "fiberhome": ("fiberhome", "AN5516-06"),
}
LOS_ROWS, GASP_ROWS = [0, 5], [7]


@pytest.fixture(scope="module")
def sim():
    s = Simulation(load_scenario("tiny"), seed=7)
    s.step()
    st = s.state
    for rows, cause in ((LOS_ROWS, 1), (GASP_ROWS, 2)):
        for name in ("rx_dbm", "tx_dbm", "olt_rx_dbm"):
            getattr(st, name)[rows] = np.nan
        st.online[rows] = False
        st.down_cause[rows] = cause
    return s


class Reskinned:
    """The simulation's live state under another vendor's OLT (model, PON ifIndex)."""

    def __init__(self, sim: Simulation, vendor: str, model: str) -> None:
        topo = sim.topology
        pons = topo.pons.copy()
        pons["if_index"] = pon_if_index(vendor, pons["slot"], pons["port"])
        olts = topo.olts.assign(vendor=vendor, model=model)
        self.topology = SimpleNamespace(olts=olts, pons=pons, onus=topo.onus)
        self._sim = sim

    @property
    def state(self):
        return self._sim.state


@pytest.fixture(scope="module")
def served(sim):
    """One agent per MIB family, each serving the tiny scenario's OLT as that vendor."""
    olt_id = str(sim.topology.olts["olt_id"].iloc[0])
    creds = EmulatorCredentials()
    pools = {}
    for family, (vendor, model) in MODELS.items():
        source = Reskinned(sim, vendor, model)
        assert mib_for(vendor, model) == family
        pools[family] = simulated_pool(source, creds, olt_ids=[olt_id]).start_in_thread()
    yield pools, creds
    for pool in pools.values():
        pool.stop_thread()


def _inventory(tmp: Path, pools, creds, family: str, version: str) -> Path:
    path, _ = write_inventory(tmp / f"{family}.yaml", pools[family], creds, version=version)
    return path


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_round_trip_matches_simulator(sim, served, tmp_path, family):
    pools, creds = served
    version = "3" if family in ("huawei", "zte_1082") else "2c"  # both versions exercised
    inv = load_inventory(_inventory(tmp_path, pools, creds, family, version))
    report = poll_once(inv)
    r = report.results[0]
    assert r.complete, r.error
    onus = sim.topology.onus
    t = r.telemetry.set_index("onu_id").loc[onus["onu_id"]]  # every ONU found, by serial
    assert len(r.telemetry) == len(onus)
    fields, resolution = FAMILIES[family]
    st = sim.state
    for name in ("rx_dbm", "tx_dbm", "olt_rx_dbm"):
        got = t[name].to_numpy()
        if name not in fields:
            assert np.isnan(got).all(), f"{family} invented {name}"
            continue
        want = getattr(st, name)
        assert np.array_equal(np.isnan(got), np.isnan(want)), f"{family} {name} NaN pattern"
        ok = ~np.isnan(want)
        assert np.abs(got[ok] - want[ok]).max() <= resolution / 2 + 1e-9, (family, name)
    assert (t["online"].to_numpy(dtype=bool) == st.online).all()
    if family != "fiberhome":  # FiberHome's table carries no last-down cause
        by_type = r.events.groupby("type")["entity_id"].apply(sorted).to_dict()
        assert by_type == {
            "LOS": sorted(onus["onu_id"].iloc[LOS_ROWS]),
            "DYING_GASP": sorted(onus["onu_id"].iloc[GASP_ROWS]),
        }
    expected_profile = {
        "huawei": "huawei_ma5800",
        "zte_1012": "zte_c300_v1",
        "zte_1082": "zte_c600",
        "fiberhome": "fiberhome_an5516",
    }[family]
    assert r.profile == expected_profile
    # → warehouse: RAW files that the project's ingest turns into SILVER, values intact
    run = tmp_path / "run"
    paths = write_to_warehouse(report, run)
    raw = pd.read_parquet([p for p in paths if "telemetry" in p.parts][0])
    assert len(raw) == len(onus) and set(raw["source"]) == {"snmp"}
    assert ingest_run(run).silver_telemetry_rows == len(onus)
    silver = pd.read_parquet(silver_dir(run, "telemetry")).set_index("onu_id")
    silver = silver.loc[onus["onu_id"]]
    for name in fields:
        want = getattr(st, name)
        ok = ~np.isnan(want)
        assert np.abs(silver[name].to_numpy()[ok] - want[ok]).max() <= resolution / 2 + 1e-9


def test_live_values_follow_the_simulation(sim, served, tmp_path):
    pools, creds = served
    inv = load_inventory(_inventory(tmp_path, pools, creds, "huawei", "2c"))
    sim.step()  # the agent rebuilds its table on the next request
    r = poll_once(inv).results[0]
    t = r.telemetry.set_index("onu_id").loc[sim.topology.onus["onu_id"]]
    want = sim.state.rx_dbm
    ok = ~np.isnan(want)
    assert np.abs(t["rx_dbm"].to_numpy()[ok] - want[ok]).max() <= 0.005 + 1e-9


def test_mib_for_models():
    assert mib_for("zte", "C600") == "zte_1082"
    assert mib_for("zte", "C320") == "zte_1012"
    assert mib_for("huawei", "MA5800-X7") == "huawei"
    assert set(FAMILIES) == set(VENDOR_MIBS)
    with pytest.raises(ValueError, match="no OLT MIB for vendor 'nokia'"):
        mib_for("nokia", "ISAM")


_SERVE = (
    "import sys, typer\n"
    "from acs_emulator.olt.cli import register\n"
    "app = typer.Typer()\n"
    "register(app)\n"
    "app(sys.argv[1:])\n"
)  # only the olt commands: `guardian` itself loads every plugin, slow under load


@pytest.mark.slow
def test_cli_serve_then_poll(tmp_path, monkeypatch):
    """``olt serve`` (subprocess) writes the inventory; ``poll --once --out`` reads it."""
    inv = tmp_path / "olts.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDIAN_SNMP_")}
    for k in [k for k in os.environ if k.startswith("GUARDIAN_SNMP_")]:
        monkeypatch.delenv(k)
    serve = subprocess.Popen(
        [sys.executable, "-c", _SERVE, "olt", "serve", "--scenario", "tiny", "--base-port", "0",
         "--inventory", str(inv), "--version", "3"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        for _ in range(600):  # bounded: ≤ 60 s
            if inv.exists() or serve.poll() is not None:
                break
            time.sleep(0.1)
        assert inv.exists(), serve.communicate(timeout=5)[0]
        doc = yaml.safe_load(inv.read_text())
        assert doc["olts"][0]["version"] == "3" and "auth_key" not in inv.read_text()
        assert (tmp_path / "olts.secrets.yaml").stat().st_mode & 0o077 == 0
        out = tmp_path / "poll.parquet"
        app = typer.Typer()
        register_poll(app)
        app.command("noop", hidden=True)(lambda: None)
        res = CliRunner().invoke(
            app, ["poll", "--inventory", str(inv), "--once", "--out", str(out)]
        )
        assert res.exit_code == 0, res.output
        frame = pd.read_parquet(out)
        assert len(frame) == 64 and frame["onu_id"].str.startswith("HWTC").all()
    finally:
        serve.terminate()
        serve.wait(timeout=10)
