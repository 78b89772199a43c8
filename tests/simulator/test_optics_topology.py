import numpy as np
import pytest

from simulator import optics
from simulator.engine import Simulation
from simulator.scenario import load_scenario
from simulator.topology import build_topology, pon_if_index


def test_link_loss_adds_up():
    loss = optics.link_loss_db(10.0, optics.splitter_loss_db([4, 16]).sum(), 4, 1490)
    assert loss == pytest.approx(10 * 0.25 + 7.0 + 13.8 + 2.0)
    assert optics.link_loss_db(10.0, 0, 0, 1310) > optics.link_loss_db(10.0, 0, 0, 1490)
    with pytest.raises(ValueError, match="splitter ratio"):
        optics.splitter_loss_db([3])


def test_ber_rises_steeply_near_sensitivity():
    ber = optics.ber_from_rx(np.array([-18.0, -25.0, -27.5, -30.0]))
    assert ber[0] <= 1e-12 and ber[1] <= 1e-12
    assert 1e-7 < ber[2] < 1e-5
    assert ber[3] == pytest.approx(1e-3)
    assert np.all(np.diff(ber) >= 0)


def test_small_fleet_optics_are_healthy_and_within_budget():
    sc = load_scenario("small")
    topo = build_topology(sc, np.random.default_rng(3))
    rx = topo.base_rx_dbm
    assert 1500 <= topo.n_onus <= 2600
    share_healthy = np.mean((rx >= -25) & (rx <= -15))
    assert share_healthy > 0.95
    # Every link within the class B+ budget (13–28 dB) in both directions.
    olt_tx = topo.pons["olt_tx_dbm"].to_numpy()[topo.onu_pon]
    down = olt_tx - rx
    up = topo.base_tx_dbm - topo.base_olt_rx_dbm
    lo, hi = optics.BUDGET_B_PLUS_DB
    assert down.min() >= lo and down.max() <= hi
    assert up.min() >= lo and up.max() <= hi


def test_healthy_tick_readings():
    sim = Simulation(load_scenario("tiny"), seed=5)
    state = sim.step()
    on = state.online
    assert on.mean() > 0.95
    assert np.all(np.isnan(state.rx_dbm[~on]))
    assert np.nanmedian(state.rx_dbm) == pytest.approx(np.median(sim.topology.base_rx_dbm), abs=0.3)


def test_topology_hierarchy_is_consistent():
    sc = load_scenario("small")
    topo = build_topology(sc, np.random.default_rng(9))
    onus, pons, spl = topo.onus, topo.pons, topo.splitters
    assert onus["onu_id"].is_unique and onus["serial"].is_unique
    boxes = spl.set_index("splitter_id")
    # Each ONU's box hangs off a first-stage splitter on the ONU's own PON.
    assert (boxes.loc[onus["splitter_id"], "pon_id"].to_numpy() == onus["pon_id"].to_numpy()).all()
    assert (boxes.loc[onus["splitter_id"], "level"] == 2).all()
    per_box = onus.groupby("splitter_id").size()
    assert per_box.max() <= sc.topology.second_stage_ratio
    cust = topo.customers
    assert (
        cust["cpe_id"]
        == cust["cpe_oui"] + "-" + cust["cpe_product_class"] + "-" + cust["cpe_serial"]
    ).all()
    huawei = pons.merge(topo.olts, on="olt_id").query("vendor == 'huawei'")
    expected = 0xFA000000 + huawei["slot"] * 8192 + huawei["port"] * 256
    assert (huawei["if_index"] == expected).all()


def test_pon_if_index_rejects_unknown_vendor():
    with pytest.raises(ValueError, match="unknown vendor"):
        pon_if_index("acme", np.array([1]), np.array([0]))
