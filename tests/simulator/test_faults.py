"""Each fault kind produces its telemetry and event signature."""

import numpy as np
import pytest

from simulator.engine import Simulation
from simulator.telemetry import DOWN_DYING_GASP, DOWN_LOS


def run_collect(sim: Simulation, sink_events: bool = True):
    """Run to the end, keeping every tick's state and event list."""
    states, events = [], []

    class Keep:
        def on_tick(self, sim, state, evs):
            states.append(state)
            events.append(evs)

    sim.sinks.append(Keep())
    sim.run()
    return states, events


def first_fault(sim, kind):
    faults = [f for f in sim.faults if f.kind == kind]
    assert faults, f"scenario drew no {kind}"
    return faults[0]


def tick_after(sim, t_s):
    return int(np.ceil(t_s / sim.tick_s))


def step_until(sim, t_s):
    """Step the simulation tick by tick until its clock reaches ``t_s``."""
    while sim.env.now < t_s:
        sim.step()


def test_feeder_cut_takes_whole_pon_down_at_once(only_fault):
    sim = Simulation(only_fault("feeder_cut", 200.0, days=1), seed=3)
    states, events = run_collect(sim)
    fault = first_fault(sim, "feeder_cut")
    k = tick_after(sim, fault.start_s)
    pon_rows = np.flatnonzero(
        sim.onu_ids[sim.topology.onu_pon] == sim.onu_ids[sim.topology.onu_pon]
    )
    pon_rows = np.flatnonzero(
        sim.topology.pons["pon_id"].to_numpy()[sim.topology.onu_pon] == fault.scope_key
    )
    assert set(fault.onus.tolist()) == set(pon_rows.tolist())
    assert states[k - 1].online[pon_rows].mean() > 0.9
    assert not states[k].online[pon_rows].any()
    assert (states[k].down_cause[pon_rows] == DOWN_LOS).all()
    los_now = {e.entity_id for e in events[k] if e.type == "LOS"}
    was_online = set(sim.onu_ids[pon_rows[states[k - 1].online[pon_rows]]])
    assert was_online <= los_now
    # ONUs on the other PON are unaffected by this fault.
    others = np.setdiff1d(
        np.arange(sim.topology.n_onus),
        np.concatenate([f.onus for f in sim.faults if f.start_s <= k * sim.tick_s]),
    )
    assert states[k].online[others].mean() > 0.9


def test_power_outage_gives_dying_gasps_clustered_in_space(only_fault):
    sim = Simulation(only_fault("power_outage", 5000.0, base="small", days=0.5), seed=2)
    states, events = run_collect(sim)
    fault = max((f for f in sim.faults if f.kind == "power_outage"), key=lambda f: len(f.onus))
    assert len(fault.onus) >= 5
    k = tick_after(sim, fault.start_s)
    gasps = {e.entity_id for e in events[k] if e.type == "DYING_GASP"}
    assert gasps & set(sim.onu_ids[fault.onus])
    assert (states[k].down_cause[fault.onus] == DOWN_DYING_GASP).all()
    xy = sim.topology.onu_xy_km
    radius = np.hypot(*(xy[fault.onus] - xy[fault.onus].mean(axis=0)).T).max()
    assert radius <= 2 * sim.scenario.faults.power_outage_radius_km
    # The cluster crosses PONs: power is geographic, not topological.
    assert len(np.unique(sim.topology.onu_pon[fault.onus])) >= 2


def test_cpe_hang_keeps_onu_online_with_pppoe_down(only_fault):
    sc = only_fault("cpe_hang", 400.0, days=0.5, fault_params={"cpe_hang_precursor_share": 0.0})
    sim = Simulation(sc, seed=4)
    states, events = run_collect(sim)
    fault = first_fault(sim, "cpe_hang")
    k = tick_after(sim, fault.start_s)
    row = int(fault.onus[0])
    assert states[k].online[row]
    assert not states[k].pppoe_up[row]
    assert states[k].loss_pct[row] == 100.0 and np.isnan(states[k].latency_ms[row])
    assert not np.isnan(states[k].rx_dbm[row])
    assert any(e.entity_id == sim.onu_ids[row] and e.type == "PPPOE_DOWN" for e in events[k])


def test_reboot_fixes_a_hang(only_fault):
    sc = only_fault(
        "cpe_hang",
        400.0,
        days=0.5,
        fault_params={"cpe_hang_reboot_fix_prob": 1.0, "cpe_hang_precursor_share": 0.0},
    )
    sim = Simulation(sc, seed=4)
    fault = first_fault(sim, "cpe_hang")
    step_until(sim, fault.start_s + 600)
    row = int(fault.onus[0])
    assert not sim.state.pppoe_up[row]
    seen = []
    sim.sinks.append(type("Keep", (), {"on_tick": lambda self, s, st, ev: seen.extend(ev)})())
    sim.reboot_cpe(sim.onu_ids[row])
    sim.step()
    assert sim.state.online[row] and sim.state.pppoe_up[row]
    assert any(e.entity_id == sim.onu_ids[row] and e.type == "REBOOT" for e in seen)
    assert fault.fixed_by == "reboot"
    assert sim.state.uptime_s[row] < 600


def test_leaking_cpe_slows_down_before_it_hangs(only_fault):
    sc = only_fault("cpe_hang", 400.0, days=1, fault_params={"cpe_hang_precursor_share": 1.0})
    sim = Simulation(sc, seed=4)
    states, events = run_collect(sim)
    fault = next(
        f
        for f in sim.faults
        if f.kind == "cpe_hang" and f.params["precursor_s"] > 3600 and f.start_s > 3 * 3600
    )
    row = int(fault.onus[0])
    k0, k1 = tick_after(sim, fault.start_s), tick_after(sim, fault.impact_start_s)
    assert fault.impact_start_s == pytest.approx(fault.start_s + fault.params["precursor_s"])
    lat = np.array([s.latency_ms[row] for s in states])
    # Leaking: still forwarding (PPPoE up) but slower than the same CPE the hour before.
    assert all(states[k].pppoe_up[row] for k in range(k0, k1))
    assert np.nanmean(lat[k0:k1]) > np.nanmean(lat[k0 - 12 : k0]) + 10
    if fault.end_s is None or fault.end_s > k1 * sim.tick_s:
        assert not states[k1].pppoe_up[row]  # then it hangs


def test_reboot_during_the_leak_prevents_the_hang(only_fault):
    sc = only_fault(
        "cpe_hang",
        400.0,
        days=1,
        fault_params={"cpe_hang_precursor_share": 1.0, "cpe_hang_reboot_fix_prob": 1.0},
    )
    sim = Simulation(sc, seed=4)
    fault = next(f for f in sim.faults if f.kind == "cpe_hang" and f.params["precursor_s"] > 3600)
    step_until(sim, fault.start_s + 600)
    row = int(fault.onus[0])
    assert sim.state.pppoe_up[row] and sim.effects.leak_n[row] == 1
    sim.reboot_cpe(row)
    for _ in range(3):
        sim.step()
    assert fault.fixed_by == "reboot"
    assert fault.impact_start_s is None  # it never hurt the customer
    assert sim.effects.leak_n[row] == 0 and sim.effects.hang_n[row] == 0


def test_degrading_fibre_hurts_when_rx_crosses_the_impact_level(only_fault):
    from simulator.optics import IMPACT_RX_DBM

    sc = only_fault("fibre_degradation", 300.0, days=2)
    sim = Simulation(sc, seed=6)
    states, _ = run_collect(sim)
    checked = 0
    for fault in (f for f in sim.faults if f.kind == "fibre_degradation"):
        if fault.impact_start_s is None or fault.impact_start_s <= fault.start_s + 1800:
            continue
        row = int(fault.onus[0])
        k = int(fault.impact_start_s // sim.tick_s)
        if k + 1 >= len(states) or len(sim.active_faults(row)) > 1:
            continue
        before = np.nanmean([states[j].rx_dbm[row] for j in range(max(k - 2, 0), k)])
        # Noise is ±0.2 dB and other faults may overlap: the crossing is within ~1 dB.
        assert before > IMPACT_RX_DBM - 1.0
        assert before < IMPACT_RX_DBM + 1.5
        checked += 1
    assert checked >= 3


def test_wifi_comes_back_unless_a_visit_fixed_it(only_fault):
    sc = only_fault(
        "wifi_interference",
        100.0,
        days=4,
        fault_params={
            "wifi_recurrence_prob": 0.9,
            "wifi_interference": {"rate_per_year": 100.0, "duration": {"median_h": 3, "p90_h": 6}},
        },
    )
    sim = Simulation(sc, seed=5)
    followers = [f for f in sim.faults if "follows" in f.params]
    assert followers
    by_id = {f.fault_id: f for f in sim.faults}
    for f in followers:
        prev = by_id[f.params["follows"]]
        assert prev.kind == "wifi_interference" and prev.scope_key == f.scope_key
        assert f.start_s > prev.start_s + prev.duration_s
    # A visit fixes the first episode of a chain: none of its recurrences happens.
    first = next(
        by_id[f.params["follows"]]
        for f in followers
        if "follows" not in by_id[f.params["follows"]].params
    )
    chain, ids = [], {first.fault_id}
    for f in sorted(followers, key=lambda f: f.start_s):
        if f.params["follows"] in ids:
            chain.append(f)
            ids.add(f.fault_id)
    step_until(sim, first.start_s + 60)
    assert sim.fix_fault(first, "visit")
    sim.run()
    assert chain and all(not f.recorded for f in chain)
    assert any(f.recorded for f in followers if f.scope_key != first.scope_key)


def test_fibre_degradation_is_a_gradual_rx_drop(only_fault):
    sc = only_fault("fibre_degradation", 300.0, days=1)
    sim = Simulation(sc, seed=6)
    states, events = run_collect(sim)
    fault = first_fault(sim, "fibre_degradation")
    row = int(fault.onus[0])
    k0 = tick_after(sim, fault.start_s)
    rx = np.array([s.rx_dbm[row] for s in states[k0:]])
    rx = rx[~np.isnan(rx)]
    assert len(rx) > 20
    t = np.arange(len(rx))
    slope = np.polyfit(t, rx, 1)[0]
    assert slope < 0
    # Gradual: no step between consecutive readings beyond noise + drift.
    assert np.abs(np.diff(rx)).max() < 1.5
    olt_rx = np.array([s.olt_rx_dbm[row] for s in states[k0:]])
    olt_rx = olt_rx[~np.isnan(olt_rx)]
    assert np.polyfit(np.arange(len(olt_rx)), olt_rx, 1)[0] > slope  # 1310 nm suffers less


def test_olt_board_failure_raises_alarm_and_takes_board_down(only_fault):
    sim = Simulation(only_fault("olt_board_failure", 300.0, days=0.5), seed=1)
    states, events = run_collect(sim)
    fault = first_fault(sim, "olt_board_failure")
    k = tick_after(sim, fault.start_s)
    assert not states[k].online[fault.onus].any()
    alarms = [e for evs in events for e in evs if e.type == "OLT_ALARM"]
    assert alarms and alarms[0][2] == "olt" and alarms[0][4] == "critical"


def test_upstream_failure_keeps_optics_normal(only_fault):
    sim = Simulation(only_fault("upstream_failure", 3000.0, days=0.5), seed=1)
    states, _ = run_collect(sim)
    fault = first_fault(sim, "upstream_failure")
    k = tick_after(sim, fault.start_s)
    s = states[k]
    assert s.online[fault.onus].mean() > 0.9
    assert not s.pppoe_up[fault.onus].any()
    assert np.nanmedian(s.rx_dbm[fault.onus]) > -26


def test_hardware_failure_ends_only_by_visit(only_fault):
    sim = Simulation(only_fault("hardware_failure", 200.0, days=1), seed=2)
    states, _ = run_collect(sim)
    for fault in (f for f in sim.faults if f.kind == "hardware_failure"):
        assert fault.fixed_by in (None, "visit")
    dead = [f for f in sim.faults if f.kind == "hardware_failure" and f.params["drift_s"] == 0]
    assert dead
    k = tick_after(sim, dead[0].start_s)
    if dead[0].end_s is None or dead[0].end_s > k * sim.tick_s:
        assert not states[k].online[dead[0].onus[0]]


def test_calls_follow_faults(only_fault):
    quiet = Simulation(only_fault("feeder_cut", 0.0, base="small", days=1), seed=8)
    quiet.run()
    busy = Simulation(only_fault("feeder_cut", 60.0, base="small", days=1), seed=8)
    busy.run()
    assert quiet.ops.calls == 0  # no fault, no background calls
    assert busy.ops.calls > 10
    affected = set()
    for f in busy.faults:
        affected |= set(busy.customer_ids[f.onus].tolist())
    visits = busy.ops.records()
    assert visits and all(v["customer_id"] in affected for v in visits)


@pytest.mark.parametrize("seed", [1, 2])
def test_overlapping_faults_unwind(only_fault, seed):
    sc = only_fault("customer_power_off", 2000.0, days=0.5)
    sim = Simulation(sc, seed=seed)
    sim.run()
    expected = np.zeros(sim.topology.n_onus, dtype=int)
    for f in sim.faults:
        if f.start_s <= sim.env.now and f.end_s is None:
            expected[f.onus] += 1
    assert (sim.effects.power_n == expected).all()
    assert sum(f.end_s is not None for f in sim.faults) > 0
