"""Street boxes of uneven fill (``topology.box_take_rate``).

Real boxes differ in take rate (a new street, a sparse rural road, a competitor's
building): many serve one to three customers while others are full. Without the option
the ONUs of a PON are dealt round-robin, every box about as full as the others.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import yaml

from guardian_lib.errors import ConfigError
from simulator.engine import Simulation
from simulator.scenario import BoxTakeRate, Scenario, load_scenario
from simulator.topology import Topology, build_topology


def _with_take_rate(sc: Scenario, spec: dict | None, **topology) -> Scenario:
    """``sc`` with ``topology.box_take_rate = spec`` and other topology keys changed."""
    topo = sc.topology.model_dump() | topology | {"box_take_rate": spec}
    return Scenario.model_validate(sc.model_dump() | {"topology": topo})


def _build(sc: Scenario, seed: int) -> Topology:
    """The topology the engine builds for ``seed`` (child 0 of the seed's streams)."""
    return build_topology(sc, np.random.default_rng(seed).spawn(7)[0])


def _box_sizes(topo: Topology) -> np.ndarray:
    return np.bincount(topo.onu_box, minlength=topo.n_boxes)


#: Layouts and specs that reach every branch: boxes built until the PON's ONUs fit
#: (8x8, 16x2), boxes that all hold too few so that the rest go to free ports (a low take
#: rate on 4x16 and 2x32), and nearly every box full (a high one on 16x2).
CASES = [
    ("mix_8x8", {"mean": 0.75, "sd": 0.25}, {}),
    ("mix_4x16", {"mean": 0.2, "sd": 0.15}, {}),
    ("mix_2x32", {"mean": 0.75, "sd": 0.25}, {}),
    ("unseen_16x2", {"mean": 0.95, "sd": 0.1}, {}),
    ("unseen_16x2", {"mean": 0.3, "sd": 0.2}, {}),
]


@pytest.mark.parametrize(("name", "spec", "topology"), CASES)
def test_every_onu_in_a_box_of_its_pon_within_capacity(name, spec, topology):
    base = load_scenario(name)
    sc = _with_take_rate(base, spec, **topology)
    ratio, first = sc.topology.second_stage_ratio, sc.topology.first_stage_ratio
    for seed in (1, 2, 3):
        topo = _build(sc, seed)
        sizes = _box_sizes(topo)
        # No box over capacity, none empty (a fault of an empty box would darken no one).
        assert sizes.min() >= 1 and sizes.max() <= ratio
        # Every ONU hangs from a box of its own PON; no PON has more boxes than its
        # first stage has ports.
        assert (topo.box_pon[topo.onu_box] == topo.onu_pon).all()
        assert np.bincount(topo.box_pon).max() <= first
        # PON sizes are those of the same seed without the option.
        plain = _build(_with_take_rate(base, None), seed)
        assert (np.bincount(topo.onu_pon) == np.bincount(plain.onu_pon)).all()
        # The inventory says the same: one level-2 row per box, each ONU's splitter_id
        # that box's id.
        boxes = topo.splitters[topo.splitters["level"] == 2].reset_index(drop=True)
        assert len(boxes) == topo.n_boxes
        assert (
            topo.onus["splitter_id"].to_numpy() == boxes["splitter_id"].to_numpy()[topo.onu_box]
        ).all()
        assert (boxes["pon_id"].to_numpy()[topo.onu_box] == topo.onus["pon_id"].to_numpy()).all()


def test_boxes_differ_in_fill_only_with_the_option():
    base = load_scenario("mix_8x8")
    for spec, uneven in ((None, False), ({"mean": 0.75, "sd": 0.25}, True)):
        sc = _with_take_rate(base, spec)
        topo = _build(sc, 301)
        sizes = pd.Series(_box_sizes(topo))
        spread = sizes.groupby(topo.box_pon).agg(lambda s: s.max() - s.min())
        # Round-robin: the boxes of a PON differ by at most one ONU.
        assert (spread.max() > 1) == uneven
        assert (sizes == 1).any() == uneven


def test_mean_fill_follows_the_take_rate():
    # 1:16 x 1:16 PONs of 40 ONUs rarely fill all 16 boxes: the boxes built before the
    # last one of each PON hold round(take rate x 16) ONUs, so their mean fill is the
    # Beta's mean up to rounding.
    sc = load_scenario("small")
    for mean in (0.3, 0.75):
        spec = {"mean": mean, "sd": 0.2}
        layout = {"first_stage_ratio": 16, "second_stage_ratio": 16}
        topo = _build(_with_take_rate(sc, spec, **layout), 5)
        sizes = _box_sizes(topo)
        last = np.r_[np.flatnonzero(np.diff(topo.box_pon)), topo.n_boxes - 1]
        inner = np.delete(sizes, last) / 16
        assert inner.mean() == pytest.approx(mean, abs=0.04)


def test_same_seed_same_boxes_other_seed_other_boxes():
    sc = _with_take_rate(load_scenario("mix_8x8"), {"mean": 0.75, "sd": 0.25})
    one, again, other = _build(sc, 7), _build(sc, 7), _build(sc, 8)
    for name, table in one.tables().items():
        pd.testing.assert_frame_equal(table, again.tables()[name])
    assert (one.onu_box == again.onu_box).all()
    assert not np.array_equal(_box_sizes(one), _box_sizes(other))


def test_the_option_moves_no_other_draw():
    # Its draws come from a stream of its own: the ONUs, their devices, customers and
    # transmitters are those of the same seed without it; only the boxes (and with them
    # the ONUs' positions and fibre lengths) change.
    base = load_scenario("mix_4x16")
    plain = _build(_with_take_rate(base, None), 11)
    uneven = _build(_with_take_rate(base, {"mean": 0.75, "sd": 0.25}), 11)
    assert not np.array_equal(plain.onu_box, uneven.onu_box)
    for col in ("onu_id", "serial", "pon_id", "olt_id", "onu_index", "vendor", "model"):
        assert (plain.onus[col] == uneven.onus[col]).all(), col
    cust = [c for c in plain.customers.columns if c not in ("lat", "lon")]
    pd.testing.assert_frame_equal(plain.customers[cust], uneven.customers[cust])
    assert np.array_equal(plain.base_tx_dbm, uneven.base_tx_dbm)
    pd.testing.assert_frame_equal(plain.pons, uneven.pons)


def _tables_digest(name: str, seed: int) -> str:
    """A digest of the inventory tables and per-ONU arrays ``name`` builds for ``seed``."""
    topo = _build(load_scenario(name), seed)
    h = hashlib.sha256()
    for table_name, table in sorted(topo.tables().items()):
        h.update(table_name.encode())
        h.update(pd.util.hash_pandas_object(table, index=True).to_numpy().tobytes())
    for arr in (topo.onu_box, topo.box_pon, topo.base_rx_dbm, topo.onu_xy_km):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize(
    ("name", "seed", "digest"),
    # Digests of main 9c0c715, before box_take_rate: without the option every table is
    # the same, to the last bit.
    [("small", 1, "c281efa00bfe4d6d"), ("unseen_8x4", 1, "7fca0f424c420642")],
)
def test_without_the_option_the_tables_are_unchanged(name, seed, digest):
    assert _tables_digest(name, seed) == digest


def test_box_faults_of_uneven_boxes_hit_someone():
    # Every box has an ONU, so every box fault darkens at least one; on a box of one it
    # is that customer's drop fault (1:16 x 1:4 PONs of 32 ONUs, half the ports in use).
    sc = load_scenario("tiny", days=20)
    faults = sc.faults.model_dump() | {"box_fault": {"rate_per_year": 20.0}}
    sc = _with_take_rate(
        Scenario.model_validate(sc.model_dump() | {"faults": faults}),
        {"mean": 0.5, "sd": 0.25},
        first_stage_ratio=16,
        second_stage_ratio=4,
    )
    sim = Simulation(sc, seed=3)
    sizes = _box_sizes(sim.topology)
    assert (sizes == 1).any()
    box_faults = [f for f in sim.faults if f.scope_type == "box"]
    assert len(box_faults) > 20
    for f in box_faults:
        assert len(f.onus) >= 1
        assert (f.kind == "box_drop_fault") == (len(f.onus) == 1)


def test_beta_shape_has_the_given_mean_and_sd():
    spec = BoxTakeRate(mean=0.75, sd=0.25)
    a, b = spec.beta_ab
    assert a / (a + b) == pytest.approx(0.75)
    assert np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))) == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"mean": 0.75, "sd": 0.45}, r"box_take_rate.*sd \(0\.45\) must be < sqrt"),
        ({"mean": 1.0, "sd": 0.1}, r"box_take_rate\.mean"),
        ({"mean": 0.5, "sd": 0.0}, r"box_take_rate\.sd"),
        ({"mean": 0.5}, r"box_take_rate\.sd"),
        ({"mean": 0.5, "sd": 0.2, "p90": 0.9}, r"box_take_rate\.p90"),
    ],
)
def test_bad_take_rates_are_refused_with_the_field(tmp_path, spec, match):
    body = load_scenario("tiny").model_dump(mode="json")
    body["topology"]["box_take_rate"] = spec
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(ConfigError, match=match):
        load_scenario(path)
