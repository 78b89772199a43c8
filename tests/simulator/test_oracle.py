"""The oracle picks the cheapest correct action: no visit that a remote action or the
fault's own timing makes unnecessary, and a visit at once for what only a visit ends."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sim_faults import HOUR, inject

from simulator import optics
from simulator.backtest import BacktestWorld
from simulator.fault_model import Fault
from simulator.faults import DRAWN_KINDS
from simulator.scenario import load_scenario


@pytest.fixture(scope="module")
def oracle_run():
    """Tiny, 12 h, no random faults; two customers with injected faults.

    * row 3: a fibre degrading so slowly it hurts only weeks later, and, from 1 h, a
      Wi-Fi interference episode that would last 100 h (a profile change always ends it:
      ``wifi_profile_fix_prob`` 1);
    * row 40: a fibre degrading fast enough to hurt 3 h after it starts (at 2 h).
    """
    sc = load_scenario("tiny")  # every random fault off (as conftest.only_fault)
    faults = sc.faults.model_dump()
    for kind in DRAWN_KINDS:
        faults[kind]["rate_per_year"] = 0.0
    faults |= {"wifi_profile_fix_prob": 1.0, "wifi_recurrence_prob": 0.0}
    sc = sc.with_overrides(
        faults=faults,
        days=0.5,
        data_quality=sc.data_quality.model_dump() | {"unexplained_symptoms_per_year": 0.0},
        weather=sc.weather.model_dump() | {"storms_per_year_per_region": 0.0},
        customers=sc.customers.model_dump() | {"background_calls_per_year": 0.0},
        # Field times near their medians: the test is about when the oracle orders the
        # visit, not about a lucky or unlucky travel draw.
        operations=sc.operations.model_dump()
        | {"travel": {"median_h": 0.6, "p90_h": 0.7}, "work": {"median_h": 1.0, "p90_h": 1.1}},
    )
    world = BacktestWorld.build(sc, "oracle", seed=4)
    sim = world.sim
    assert not [f for f in sim.faults if f.recorded]  # only what the test injects
    margin_db = float(sim.topology.base_rx_dbm[40] - optics.IMPACT_RX_DBM)
    faults = {
        "slow_fibre": inject(sim, "T1", "fibre_degradation", 3, 0.5, db_per_s=1e-8),
        "wifi": inject(sim, "T2", "wifi_interference", 3, 1.0, duration_h=100.0),
        "fast_fibre": inject(sim, "T3", "fibre_degradation", 40, 2.0,
                              db_per_s=margin_db / (3 * HOUR)),
    }  # fmt: skip
    sim.run()
    kpis = world.close()
    return sim, faults, kpis


def test_wifi_on_a_customer_with_a_slow_fibre_is_fixed_remotely_not_by_a_visit(oracle_run):
    # The old oracle sent a technician at once (the customer was impacted and the fibre
    # "needs a visit sooner or later"), paying a visit whose fibre benefit lies weeks
    # beyond its lead time and doing for R$ 150 what a R$ 0.5 profile change does.
    sim, faults, _ = oracle_run
    assert faults["wifi"].fixed_by == "wifi_profile"
    assert faults["wifi"].end_s - faults["wifi"].start_s <= 0.5 * HOUR
    assert faults["slow_fibre"].end_s is None  # still there: its visit is not due yet
    visited = [o.onu_row for o in sim.ops.orders if o.status == "completed"]
    assert 3 not in visited
    assert any(w["onu_row"] == 3 for w in sim.wifi_changes)


def test_a_fibre_about_to_hurt_gets_one_visit_before_it_does(oracle_run):
    # (With the old oracle the needless visit to row 3 also kept the technician busy, so
    # this one arrived after the outage had begun.)
    sim, faults, kpis = oracle_run
    fast = faults["fast_fibre"]
    assert fast.fixed_by == "visit"
    assert fast.impact_start_s is None  # fixed before the customer noticed
    done = [o for o in sim.ops.orders if o.status == "completed"]
    assert [o.onu_row for o in done] == [40]
    assert kpis["visits"] == 1
    assert kpis["safety_violations"] == 0


def _quiet_tiny(hours: float, **fault_params):
    """Tiny with every random fault, storm, background call and blip off."""
    sc = load_scenario("tiny")
    faults = sc.faults.model_dump()
    for kind in DRAWN_KINDS:
        faults[kind]["rate_per_year"] = 0.0
    return sc.with_overrides(
        faults=faults | fault_params,
        days=hours / 24,
        data_quality=sc.data_quality.model_dump() | {"unexplained_symptoms_per_year": 0.0},
        weather=sc.weather.model_dump() | {"storms_per_year_per_region": 0.0},
        customers=sc.customers.model_dump() | {"background_calls_per_year": 0.0},
    )


@pytest.fixture(scope="module")
def power_cut_run():
    """Tiny (one OLT, two PONs, six street boxes), 6 h, no random faults:

    * a power cut over 3 customers of each of 5 street boxes (a circle on the map, not
      a box or a PON), for the whole run;
    * from 1 h, a CPE of the sixth box hangs for 4 h unless rebooted (a reboot always
      clears it).
    """
    world = BacktestWorld.build(_quiet_tiny(6.0, cpe_hang_reboot_fix_prob=1.0), "oracle", seed=4)
    sim = world.sim
    boxes = sim.topology.onus["splitter_id"].to_numpy()
    names = sorted(set(boxes))
    cut = np.concatenate([np.flatnonzero(boxes == b)[:3] for b in names[:5]])
    hung_row = int(np.flatnonzero(boxes == names[5])[0])
    power = Fault(fault_id="T-power", kind="power_outage", start_s=0.5 * HOUR, onus=cut,
                  scope_type="geo", scope_key="circle", duration_s=24 * HOUR)  # fmt: skip
    sim.add_fault(power)
    hang = inject(sim, "T-hang", "cpe_hang", hung_row, 1.0, duration_h=4.0, precursor_s=0.0)
    sim.run()
    decisions = world.audit.frame("decisions")
    actions = world.audit.frame("actions")
    kpis = world.close()
    return sim, hang, decisions, actions, kpis


def test_a_power_cut_over_several_boxes_holds_no_reboot_beyond_them(power_cut_run):
    # Version 3 scoped the cut by the neighbour evidence — one incident on the whole
    # OLT, open as long as the cut — and its hold refused the reboot of the hung CPE
    # of another box every round for 4 h (unseen_8x4 seed 4). The oracle knows which
    # customers the cut took down: its incidents are their street boxes.
    sim, hang, decisions, actions, _ = power_cut_run
    opened = decisions.loc[decisions["action"] == "open_incident"]
    assert len(opened) >= 1
    assert set(opened["subject"].str.split(":").str[0]) == {"box"}
    assert not (actions["status"] == "blocked").any()
    assert hang.fixed_by == "reboot"
    assert hang.end_s - hang.start_s <= 0.5 * HOUR


def test_no_reboot_that_the_oracle_knows_will_fail():
    # Each reboot's outcome is drawn per hang and attempt, and the oracle reads it:
    # here no reboot clears a hang (probability 0), so it pays for none and waits the
    # 2 h hang out (a visit would cost more). Version 3 rebooted it, in vain.
    world = BacktestWorld.build(_quiet_tiny(4.0, cpe_hang_reboot_fix_prob=0.0), "oracle", seed=4)
    sim = world.sim
    hang = inject(sim, "T-hang", "cpe_hang", 10, 0.5, duration_h=2.0, precursor_s=0.0)
    sim.run()
    kpis = world.close()
    assert hang.fixed_by == "timer"
    assert sim.reboots == []
    assert kpis["visits"] == 0
    assert kpis["reboots"] == 0


def test_a_visit_that_stops_the_wifi_episodes_to_come_is_worth_its_cost():
    # A profile change ends one Wi-Fi episode, a visit ends the interference for good.
    # Here no change works (probability 0); the first episode lasts 20 h (waiting it out,
    # R$ ~46 of degraded service, is cheaper than a visit) but two 60 h episodes are drawn
    # to follow it. Version 4 priced the first episode alone and sent nobody.
    sc = _quiet_tiny(6.0, wifi_profile_fix_prob=0.0, wifi_recurrence_prob=0.0)
    world = BacktestWorld.build(sc, "oracle", seed=4)
    sim = world.sim
    first = inject(sim, "T-w1", "wifi_interference", 7, 0.5, duration_h=20.0)
    inject(sim, "T-w2", "wifi_interference", 7, 30.0, duration_h=60.0, follows="T-w1")
    inject(sim, "T-w3", "wifi_interference", 7, 100.0, duration_h=60.0, follows="T-w2")
    sim.run()
    world.close()
    assert [o.onu_row for o in sim.ops.orders] == [7]
    assert sim.wifi_changes == []
    assert first.end_s is None or first.fixed_by == "visit"


def test_a_wifi_episode_with_nothing_to_follow_is_waited_out():
    # The control of the test above: the same first episode alone gets no visit.
    sc = _quiet_tiny(6.0, wifi_profile_fix_prob=0.0, wifi_recurrence_prob=0.0)
    world = BacktestWorld.build(sc, "oracle", seed=4)
    sim = world.sim
    inject(sim, "T-w1", "wifi_interference", 7, 0.5, duration_h=20.0)
    sim.run()
    world.close()
    assert sim.ops.orders == []


def test_a_member_down_for_a_fault_of_its_own_does_not_hold_the_incident_open():
    # A power cut takes 3 customers of one street box down for 2 h; a Wi-Fi episode of
    # one of them begins during the cut and would last 30 h (a profile change ends it);
    # a CPE of the same box hangs 2 h after the cut, for 4 h (a reboot clears it).
    # Version 5 counted the Wi-Fi customer as still down for the cut: the box incident
    # never closed, the Wi-Fi was never acted on and the incident's hold refused the
    # reboot (unseen_8x4 seed 5: 62 h of impact the autopilot spared).
    sc = _quiet_tiny(10.0, cpe_hang_reboot_fix_prob=1.0, wifi_profile_fix_prob=1.0,
                     wifi_recurrence_prob=0.0)  # fmt: skip
    world = BacktestWorld.build(sc, "oracle", seed=4)
    sim = world.sim
    boxes = sim.topology.onus["splitter_id"].to_numpy()
    box_rows = np.flatnonzero(boxes == sorted(set(boxes))[0])
    assert len(box_rows) >= 4
    cut = box_rows[:3]
    power = Fault(fault_id="T-power", kind="power_outage", start_s=0.5 * HOUR, onus=cut,
                  scope_type="geo", scope_key="circle", duration_s=2.0 * HOUR)  # fmt: skip
    sim.add_fault(power)
    wifi = inject(sim, "T-wifi", "wifi_interference", int(cut[0]), 1.0, duration_h=30.0)
    hang = inject(sim, "T-hang", "cpe_hang", int(box_rows[3]), 4.5, duration_h=4.0,
                   precursor_s=0.0)  # fmt: skip
    sim.run()
    decisions = world.audit.frame("decisions")
    kpis = world.close()
    assert (decisions["action"] == "open_incident").sum() == 1
    assert (decisions["action"] == "close_incident").sum() == 1
    assert wifi.fixed_by == "wifi_profile"
    assert wifi.end_s <= power.end_s + 1.5 * HOUR
    assert hang.fixed_by == "reboot"
    assert hang.end_s - hang.start_s <= 0.5 * HOUR
    assert kpis["visits"] == 0
    assert kpis["safety_violations"] == 0


def test_add_fault_refuses_a_used_id_an_unknown_kind_and_the_past():
    sim = BacktestWorld.build(load_scenario("tiny", days=0.1), "reactive", seed=1).sim
    inject(sim, "T-a", "cpe_hang", 0, 0.5)
    with pytest.raises(ValueError, match="already used"):
        inject(sim, "T-a", "cpe_hang", 1, 0.5)
    with pytest.raises(ValueError, match="unknown kind 'meteor'"):
        inject(sim, "T-b", "meteor", 1, 0.5)
    sim.step()
    sim.step()
    with pytest.raises(ValueError, match="before the simulation's time"):
        inject(sim, "T-c", "cpe_hang", 1, 0.0)


def test_a_visit_the_field_service_cancelled_is_ordered_again_while_the_fault_lasts():
    # A dead ONU (only a visit ends it) gets the oracle's visit at once; the dispatcher
    # cancels the order before the technician goes. Version 6 kept one visit per case:
    # the ONU stayed dark to the end of the run. The oracle knows the fault is still
    # there and orders a new visit once the dispatcher's cancellation lifts
    # (revisit_after_cancel_h, 8 h, as every policy).
    world = BacktestWorld.build(_quiet_tiny(14.0), "oracle", seed=4)
    sim = world.sim
    dead = inject(sim, "T-dead", "hardware_failure", 10, 0.5, dead=True, drift_s=0.0,
                  drift_db=6.0)  # fmt: skip
    cancelled_at = 1.25 * HOUR

    def dispatcher():
        yield sim.env.timeout(cancelled_at)
        for order in list(sim.ops.open_order_by_onu.values()):
            sim.ops.cancel_order(order.os_id, "dispatcher_no_slot")

    sim.env.process(dispatcher())
    sim.run()
    decisions = world.audit.frame("decisions")
    kpis = world.close()
    orders = [o for o in sim.ops.orders if o.onu_row == 10]
    assert [(o.status, o.outcome) for o in orders] == [
        ("cancelled", "dispatcher_no_slot"), ("completed", "fixed_equipment_fail")]  # fmt: skip
    after_h = (orders[1].opened_s - cancelled_at) / HOUR
    assert 8.0 <= after_h <= 8.5
    assert dead.fixed_by == "visit"
    assert (decisions["action"] == "schedule_visit").sum() == 2
    assert kpis["visits"] == 1 and kpis["safety_violations"] == 0


def test_a_fault_that_is_gone_gets_no_new_visit_after_a_cancellation():
    # The control: the dead ONU's fault ends by itself (a timer here) before the
    # cancellation lifts; the case gets no second visit.
    world = BacktestWorld.build(_quiet_tiny(14.0), "oracle", seed=4)
    sim = world.sim
    inject(sim, "T-dead", "hardware_failure", 10, 0.5, duration_h=3.0, dead=True, drift_s=0.0,
           drift_db=6.0)  # fmt: skip

    def dispatcher():
        yield sim.env.timeout(1.25 * HOUR)
        for order in list(sim.ops.open_order_by_onu.values()):
            sim.ops.cancel_order(order.os_id, "dispatcher_no_slot")

    sim.env.process(dispatcher())
    sim.run()
    world.close()
    assert [o.status for o in sim.ops.orders] == ["cancelled"]


def _boxes_of_four(hours: float) -> BacktestWorld:
    """Quiet tiny (:func:`_quiet_tiny`) with street boxes of 4 ONUs (1:8 then 1:4, as
    unseen_8x4): two dark ONUs of a box are 0.5 of it, enough for the observed
    evidence of a box outage (``OutageEvidence``: 2 ONUs and 0.3 of the box)."""
    sc = _quiet_tiny(hours)
    topo = sc.topology.model_dump() | {"first_stage_ratio": 8, "second_stage_ratio": 4}
    return BacktestWorld.build(sc.with_overrides(topology=topo), "oracle", seed=4)


def _first_box_rows(sim) -> np.ndarray:
    boxes = sim.topology.onus["splitter_id"].to_numpy()
    rows = np.flatnonzero(boxes == sorted(set(boxes))[0])
    assert len(rows) == 4
    return rows


def test_two_dead_onus_of_one_box_are_no_incident_and_both_get_their_visit():
    # Two ONUs of one street box die 6 min apart, each for a fault of its own (only a
    # visit ends it). They went dark together as far as the topology shows, but the
    # truth has no shared fault. Version 8 took the observed evidence: it opened a box
    # incident, closed it the next round (neither member is down for it) and opened it
    # again every round, and the opening held (cancelled) both visits: after 8 h both
    # ONUs were still dark, their visits re-ordered only once the cancellation lifted.
    world = _boxes_of_four(8.0)
    sim = world.sim
    rows = _first_box_rows(sim)
    dead = [inject(sim, f"T-dead{i}", "hardware_failure", int(rows[i]), start_h, dead=True,
                   drift_s=0.0, drift_db=6.0)
            for i, start_h in enumerate((0.5, 0.6))]  # fmt: skip
    sim.run()
    decisions = world.audit.frame("decisions")
    kpis = world.close()
    assert not decisions["action"].isin(["open_incident", "join_incident", "hold_visits"]).any()
    assert sorted((o.onu_row, o.status) for o in sim.ops.orders) == [
        (int(rows[0]), "completed"), (int(rows[1]), "completed")]  # fmt: skip
    assert [f.fixed_by for f in dead] == ["visit", "visit"]
    assert kpis["visits"] == 2 and kpis["safety_violations"] == 0


def _power_cut_beside_a_dead_onu(hours: float, cut_h: float, cut_for_h: float, dead_h: float):
    """A run on boxes of four ONUs: a power cut of the first box's first two customers at
    ``cut_h`` for ``cut_for_h`` hours, its third ONU dead for a fault of its own from
    ``dead_h``. Returns the closed world, the box's rows, the dead ONU's fault and the
    decisions."""
    world = _boxes_of_four(hours)
    sim = world.sim
    rows = _first_box_rows(sim)
    power = Fault(fault_id="T-power", kind="power_outage", start_s=cut_h * HOUR, onus=rows[:2],
                  scope_type="geo", scope_key="circle", duration_s=cut_for_h * HOUR)  # fmt: skip
    sim.add_fault(power)
    dead = inject(sim, "T-dead", "hardware_failure", int(rows[2]), dead_h, dead=True,
                  drift_s=0.0, drift_db=6.0)  # fmt: skip
    sim.run()
    decisions = world.audit.frame("decisions")
    world.close()
    return world, rows, dead, decisions


def test_a_dead_onu_beside_a_power_cut_is_no_member_and_keeps_its_visit():
    # A power cut takes 2 customers of a street box down; 18 min before, a third ONU of
    # the box died (a fault of its own) and got its visit. The truth's incident is the
    # cut's two customers. Version 8 made every dark ONU of the box whose failure began
    # within the join window a member: the dead ONU too, and its visit was held
    # (cancelled); it was repaired only 8 h later.
    world, rows, dead, decisions = _power_cut_beside_a_dead_onu(8.0, 0.6, 6.0, 0.3)
    sim = world.sim
    ids = sim.onu_ids
    opened = decisions.loc[decisions["action"] == "open_incident"]
    assert len(opened) == 1
    assert sorted(json.loads(opened["targets"].iat[0])) == sorted(str(ids[r]) for r in rows[:2])
    assert not decisions["action"].isin(["join_incident", "hold_visits"]).any()
    assert [(o.onu_row, o.status) for o in sim.ops.orders] == [(int(rows[2]), "completed")]
    assert dead.fixed_by == "visit"


def test_the_evidence_of_an_oracle_incident_counts_only_the_shared_fault():
    # A power cut takes 2 customers of a street box down at 30 min; a third ONU of the
    # box dies 3 min earlier, for a fault of its own: the three went dark within the
    # 15 min of the topology evidence. The incident's audit record says how many ONUs
    # failed together; version 8 counted the dead ONU (3 of the box's 4), though the
    # truth it acts on says the cut took two.
    _, _, _, decisions = _power_cut_beside_a_dead_onu(4.0, 0.5, 2.0, 0.45)
    opened = decisions.loc[decisions["action"] == "open_incident"]
    assert len(opened) == 1
    assert len(json.loads(opened["targets"].iat[0])) == 2
    assert json.loads(opened["rationale"].iat[0])["failed_together"] == 2
