"""A fault of a street box that serves one ONU is that customer's drop fault.

DESIGN calls an outage massive when two or more ONUs of one box or PON go down together.
On a box of one ONU a box fault darkens one customer: the simulator draws it as a
``box_drop_fault`` (INTERMITTENT, ended by the technician sent to the dark ONU; no crew is
dispatched for one dark ONU unless ``Faults.lone_box_crew``), from the same draws as any
box fault, so that other layouts' data do not move.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from simulator.backtest import BacktestWorld, _labels
from simulator.engine import Simulation
from simulator.fault_model import Fault
from simulator.faults import DRAWN_KINDS
from simulator.run_tables import faults_truth_frame
from simulator.scenario import Scenario, load_scenario

HOUR = 3600.0


def _tiny_boxes(hours: float, box_rate: float = 0.0, **fault_params) -> Scenario:
    """Tiny with street boxes of one or two ONUs (1:16 × 1:2, 20 ONUs a PON: 14 boxes,
    8 of one ONU) and every random fault, storm, background call and blip off except
    box faults at ``box_rate`` per box-year."""
    sc = load_scenario("tiny")
    faults = sc.faults.model_dump()
    for kind in DRAWN_KINDS:
        faults[kind]["rate_per_year"] = 0.0
    faults["box_fault"]["rate_per_year"] = box_rate
    topology = sc.topology.model_dump() | {
        "first_stage_ratio": 16, "second_stage_ratio": 2,
        "onus_per_pon_min": 20, "onus_per_pon_max": 20,
    }  # fmt: skip
    return sc.with_overrides(
        topology=topology,
        faults=faults | fault_params,
        days=hours / 24,
        data_quality=sc.data_quality.model_dump() | {"unexplained_symptoms_per_year": 0.0},
        weather=sc.weather.model_dump() | {"storms_per_year_per_region": 0.0},
        customers=sc.customers.model_dump() | {"background_calls_per_year": 0.0},
    )


def _box_rows(sim: Simulation, size: int) -> list[np.ndarray]:
    """ONU rows of each street box that serves ``size`` ONUs."""
    onu_box = sim.topology.onu_box
    counts = np.bincount(onu_box)
    return [np.flatnonzero(onu_box == b) for b in np.flatnonzero(counts == size)]


def _box_fault(sim: Simulation, fault_id: str, kind: str, rows: np.ndarray, start_h: float,
               duration_h: float | None, step_db: float = 0.0) -> Fault:  # fmt: skip
    """A box fault on the box of ``rows``, added to ``sim``: LOS, or an RX step of
    ``step_db`` [dB] when it is given; ``duration_h`` None: no crew's clock."""
    box = str(sim.topology.onus["splitter_id"].to_numpy()[rows[0]])
    duration_s = None if duration_h is None else duration_h * HOUR
    return sim.add_fault(Fault(fault_id=fault_id, kind=kind, start_s=start_h * HOUR,
                               onus=np.asarray(rows, dtype=np.int64), scope_type="box",
                               scope_key=box, duration_s=duration_s,
                               params={"los": step_db == 0.0, "step_db": step_db}))  # fmt: skip


def test_a_box_fault_on_a_box_of_one_onu_is_drawn_as_that_customers_drop_fault():
    # Before, every box fault was MASSIVE_OUTAGE and only the crew's timer ended it.
    sim = Simulation(_tiny_boxes(24 * 20, box_rate=20.0), seed=3)
    counts = np.bincount(sim.topology.onu_box)
    assert (counts == 1).any() and (counts == 2).any()
    boxes = [f for f in sim.faults if f.scope_type == "box"]
    kinds = {f.kind for f in boxes}
    assert kinds == {"box_fault", "box_drop_fault"}
    for f in boxes:
        served = int(counts[sim.topology.onu_box[f.onus[0]]])
        assert len(f.onus) == served
        if served == 1:
            assert f.kind == "box_drop_fault"
            assert f.cause_class == "INTERMITTENT" and f.fixable_by_visit
        else:
            assert f.kind == "box_fault"
            assert f.cause_class == "MASSIVE_OUTAGE" and not f.fixable_by_visit


def _digest(name: str, seed: int) -> str:
    """A digest of every fault ``name`` draws for ``seed`` over 7 days."""
    sim = Simulation(load_scenario(name, days=7), seed=seed)
    h = hashlib.sha256()
    for f in sim.faults:
        rec = [f.fault_id, f.kind, f.start_s, f.onus.tolist(), f.scope_type, f.scope_key,
               f.duration_s, dict(sorted(f.params.items()))]  # fmt: skip
        h.update(json.dumps(rec, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


@pytest.mark.parametrize(
    ("name", "seed", "digest"),
    # Digests of main 3ebb2ed, before box_drop_fault: layouts without one-ONU boxes
    # draw the same faults, in the same order, from the same streams.
    [("small", 1, "1095cf46f8f5913a"), ("unseen_8x4", 1, "a0b805d3da4be174")],
)
def test_layouts_without_one_onu_boxes_draw_the_same_faults(name, seed, digest):
    assert _digest(name, seed) == digest


def test_a_visit_ends_a_one_onu_box_fault_and_not_a_two_onu_one():
    sim = Simulation(_tiny_boxes(12.0), seed=3)
    one, two = _box_rows(sim, 1)[0], _box_rows(sim, 2)[0]
    drop = _box_fault(sim, "T-drop", "box_drop_fault", one, 1.0, 8.0)
    box = _box_fault(sim, "T-box", "box_fault", two, 1.0, 8.0)
    while sim.env.now < 2 * HOUR:
        sim.step()
    assert not sim.state.online[one].any() and not sim.state.online[two].any()
    assert sim.visit_premises(int(one[0])) == "fixed_intermittent"
    assert sim.visit_premises(int(two[0])) == "massive_outage"
    sim.step()
    assert sim.state.online[one].all() and not sim.state.online[two].any()
    sim.run()
    assert (drop.fixed_by, drop.end_s) == ("visit", pytest.approx(2 * HOUR, abs=sim.tick_s))
    assert (box.fixed_by, box.end_s) == ("timer", 9 * HOUR)


def test_drawn_one_onu_box_faults_last_until_a_visit_unless_a_crew_comes():
    # Before 2026-12-06 a crew repaired every box fault on its own clock, a box of one ONU
    # included: nobody dispatches a crew for one dark ONU (the NOC sees a customer's fault).
    no_crew = Simulation(_tiny_boxes(24 * 20, box_rate=20.0), seed=3)
    crew = Simulation(_tiny_boxes(24 * 20, box_rate=20.0, lone_box_crew=True), seed=3)
    assert [f.kind for f in no_crew.faults] == [f.kind for f in crew.faults]
    drops = 0
    for a, b in zip(no_crew.faults, crew.faults, strict=True):
        assert (a.start_s, a.onus.tolist(), a.params) == (b.start_s, b.onus.tolist(), b.params)
        assert b.duration_s is not None
        if a.kind == "box_drop_fault":
            drops += 1
            assert a.duration_s is None
        else:
            assert a.duration_s == b.duration_s
    assert drops > 0
    # The call centre sends technicians to callers; nothing else ends a drop fault.
    no_crew.run()
    crew.run()
    ends = {f.fixed_by for f in no_crew.faults if f.kind == "box_drop_fault"}
    assert ends <= {"visit", None} and None in ends
    assert "timer" in {f.fixed_by for f in crew.faults if f.kind == "box_drop_fault"}


def test_unvisited_one_onu_box_fault_ends_by_the_crews_timer_where_a_crew_comes():
    sim = Simulation(_tiny_boxes(12.0, lone_box_crew=True), seed=3)
    drop = _box_fault(sim, "T-drop", "box_drop_fault", _box_rows(sim, 1)[0], 1.0, 3.0)
    sim.run()
    assert (drop.fixed_by, drop.end_s) == ("timer", 4 * HOUR)


def test_one_onu_box_fault_is_labelled_individual():
    # DESIGN: massive is two or more ONUs of one box or PON down together.
    sim = Simulation(_tiny_boxes(6.0), seed=3)
    one, two = _box_rows(sim, 1)[0], _box_rows(sim, 2)[0]
    _box_fault(sim, "T-drop", "box_drop_fault", one, 1.0, 2.0)
    _box_fault(sim, "T-box", "box_fault", two, 1.0, 2.0)
    sim.run()
    truth = faults_truth_frame(sim).set_index("fault_id")
    assert truth.loc["T-drop", "cause_class"] == "INTERMITTENT"
    assert truth.loc["T-box", "cause_class"] == "MASSIVE_OUTAGE"
    labels = _labels(sim).set_index("onu_id")["massive"]
    assert not labels[str(sim.onu_ids[one[0]])]
    assert labels[[str(o) for o in sim.onu_ids[two]]].all()


def test_the_call_centre_treats_a_one_onu_box_fault_as_the_customers_own():
    # The agent sees a massive outage on the NOC's board, not one dark ONU: a caller of a
    # two-ONU box fault gets no visit (visit_prob_known_outage 0), one of a one-ONU box
    # fault gets one like any customer with a fault (visit_prob_with_fault 1).
    sc = _tiny_boxes(6.0)
    ops = sc.operations.model_dump() | {"visit_prob_with_fault": 1.0,
                                         "visit_prob_known_outage": 0.0}  # fmt: skip
    world = BacktestWorld.build(sc.with_overrides(operations=ops), "reactive", seed=3)
    sim = world.sim
    one, two = _box_rows(sim, 1)[0], _box_rows(sim, 2)[0]
    _box_fault(sim, "T-drop", "box_drop_fault", one, 1.0, 4.0)
    _box_fault(sim, "T-box", "box_fault", two, 1.0, 4.0)
    while sim.env.now < 2 * HOUR:
        sim.step()
    sim.ops.on_call(int(one[0]), "offline")
    sim.ops.on_call(int(two[0]), "offline")
    assert set(sim.ops.open_order_by_onu) == {int(one[0])}
    world.close()


@pytest.fixture(scope="module")
def oracle_boxes():
    """Tiny 1:16 × 1:2, 12 h, oracle; three box faults (LOS) an hour apart (ONUs that go
    dark within minutes of each other look like one outage, whatever the truth):

    * from 1 h, one-ONU box, 60 h: the outage until the crew costs more than a visit;
    * from 2 h, one-ONU box, 3 h: waiting for the crew costs less than a visit;
    * from 3 h, two-ONU box, 60 h: a massive outage, no visit helps.
    """
    world = BacktestWorld.build(_tiny_boxes(12.0), "oracle", seed=3)
    sim = world.sim
    ones, two = _box_rows(sim, 1), _box_rows(sim, 2)[0]
    faults = {
        "long": _box_fault(sim, "T-long", "box_drop_fault", ones[0], 1.0, 60.0),
        "short": _box_fault(sim, "T-short", "box_drop_fault", ones[1], 2.0, 3.0),
        "massive": _box_fault(sim, "T-box", "box_fault", two, 3.0, 60.0),
    }
    sim.run()
    decisions = world.audit.frame("decisions")
    kpis = world.close()
    return sim, faults, decisions, kpis


def test_the_oracle_visits_a_one_onu_box_fault_when_the_crew_is_far_off(oracle_boxes):
    # The old oracle never visited a box fault: it waited 60 h for the crew.
    sim, faults, _, kpis = oracle_boxes
    assert faults["long"].fixed_by == "visit"
    assert faults["long"].end_s < 5 * HOUR
    assert faults["short"].fixed_by == "timer"
    assert faults["massive"].end_s is None
    visited = {o.onu_row for o in sim.ops.orders if o.status == "completed"}
    assert visited == {int(faults["long"].onus[0])}
    assert kpis["safety_violations"] == 0


def test_without_a_crew_the_oracle_visits_a_drawn_one_onu_box_fault_at_once():
    # Nothing else ends it: the oracle's cheapest correct action is the visit, as for a
    # dead ONU (with a crew on its way, waiting can be cheaper: the fixture above).
    world = BacktestWorld.build(_tiny_boxes(36.0, box_rate=150.0), "oracle", seed=3)
    sim = world.sim
    sim.run()
    kpis = world.close()
    drops = [f for f in sim.faults
             if f.kind == "box_drop_fault" and f.params["los"] and f.start_s < 30 * HOUR]  # fmt: skip
    assert len(drops) >= 2
    for f in drops:
        assert f.fixed_by == "visit"
        assert f.end_s - f.start_s < 6 * HOUR
    assert kpis["safety_violations"] == 0


def test_the_oracle_gives_a_one_onu_box_fault_a_case_not_an_incident(oracle_boxes):
    sim, faults, decisions, _ = oracle_boxes
    opened = decisions.loc[decisions["action"] == "open_incident", "subject"]
    assert set(opened.str.split(":").str[0]) == {"box"}
    box_of = sim.topology.onus["splitter_id"].to_numpy()
    assert not any(str(box_of[faults[k].onus[0]]) in s for k in ("long", "short") for s in opened)
    cases = set(decisions.loc[decisions["action"] == "open_case", "subject"])
    assert str(sim.onu_ids[faults["long"].onus[0]]) in cases


def test_the_operator_export_closes_a_one_onu_box_fault_as_a_drop_repair(tmp_path):
    # The technician who fixed it writes a drop repair, which the example label map reads
    # as INTERMITTENT, the class of faults_truth (before: no closure code for the kind).
    from guardian_lib.label_map import classify_tickets, load_label_map
    from simulator.operator_export import ExportNoise, _code_and_notes
    from simulator.operator_vocab import LABEL_MAP_YAML

    (tmp_path / "labels.yaml").write_text(LABEL_MAP_YAML, encoding="utf-8")
    label_map = load_label_map(tmp_path / "labels.yaml")
    exact = ExportNoise(code_missing=0.0, code_wrong=0.0, notes_missing=0.0)
    rng = np.random.default_rng(1)
    rows = [_code_and_notes("box_drop_fault", rng, exact) for _ in range(20)]
    tickets = pd.DataFrame({
        "os_id": [f"OS{i}" for i in range(len(rows))], "closed_at": pd.Timestamp("2026-01-05"),
        "closure_code": [c for c, _ in rows], "notes": [n for _, n in rows],
    })  # fmt: skip
    assert (classify_tickets(tickets, label_map)["label"] == "INTERMITTENT").all()


def test_the_oracle_leaves_a_one_onu_box_step_that_does_not_hurt():
    # Version 9 visited every one-ONU box fault at once; like the other faults only a
    # visit ends, it now gets its visit when it hurts: an RX step that leaves the ONU
    # above the impact level costs no customer-hour while it lasts.
    from simulator import optics

    world = BacktestWorld.build(_tiny_boxes(12.0), "oracle", seed=3)
    sim = world.sim
    ones = _box_rows(sim, 1)
    base = sim.topology.base_rx_dbm
    margin = {int(r[0]): float(base[r[0]] - optics.IMPACT_RX_DBM) for r in ones}
    mild_row = max(margin, key=margin.get)
    harsh_row = next(r for r in margin if r != mild_row)
    assert margin[mild_row] > 4.5
    faults = {
        name: _box_fault(sim, f"T-{name}", "box_drop_fault", np.array([row]), 1.0, None, step)
        for name, row, step in (("mild", mild_row, margin[mild_row] - 3.0),
                                ("harsh", harsh_row, margin[harsh_row] + 3.0))
    }  # fmt: skip
    sim.run()
    world.close()
    assert faults["harsh"].fixed_by == "visit"
    assert faults["mild"].end_s is None
    visited = {o.onu_row for o in sim.ops.orders}
    assert mild_row not in visited and harsh_row in visited


def test_an_rx_step_hurts_only_the_onus_it_takes_below_the_impact_level():
    """A box's RX step (4-9 dB) that leaves an ONU above the impact level costs that
    customer margin, not service: its problem starts only where the step crosses the
    level, and a step that crosses it nowhere never hurts (before 2026-12-06 every ONU
    of the box was hurt from the start: 17 of 19 RX-step box faults of unseen_8x4,
    seeds 1-5, hurt no one)."""
    from simulator.optics import IMPACT_RX_DBM

    sim = Simulation(_tiny_boxes(6.0), seed=3)
    margin = sim.topology.base_rx_dbm - IMPACT_RX_DBM
    # Two-ONU boxes whose ONUs' margins differ enough for a step between them.
    boxes = [r for r in _box_rows(sim, 2) if abs(margin[r[0]] - margin[r[1]]) > 0.2]
    assert len(boxes) >= 2, "the tiny layout changed: no two-ONU boxes of uneven margin"
    split_rows, none_rows = boxes[0], boxes[1]
    weak, strong = split_rows[np.argsort(margin[split_rows])]
    step_split = (margin[weak] + margin[strong]) / 2  # crosses at the weak ONU only
    step_none = margin[none_rows].min() - 0.5  # crosses nowhere
    split = _box_fault(sim, "T-split", "box_fault", split_rows, 1.0, 2.0, step_db=step_split)
    none = _box_fault(sim, "T-none", "box_fault", none_rows, 1.0, 2.0, step_db=step_none)
    sim.run()
    assert split.impact_start_s == pytest.approx(HOUR) and split.hurt_onus.tolist() == [weak]
    assert none.impact_start_s is None and none.hurt_onus.size == 0
    truth = faults_truth_frame(sim).set_index("fault_id")
    assert pd.isna(truth.at["T-none", "impact_start_at"])
    assert truth.at["T-split", "impact_start_at"] == sim.start + pd.Timedelta(hours=1)
    labels = _labels(sim)
    hurt = labels.loc[labels["start_at"].notna(), "onu_id"].tolist()
    assert hurt == [str(sim.onu_ids[weak])]
    # The unhurt ONUs' rows keep the fault's span (its onset), for what they show.
    assert len(labels) == 4 and labels["onset_at"].notna().all()
