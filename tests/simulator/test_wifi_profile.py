"""The Wi-Fi profile change: a remote action that ends interference with a probability."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.adapters import SimDevices
from simulator.engine import Simulation


def _sim_with_wifi(only_fault, p_fix: float) -> tuple[Simulation, int]:
    sc = only_fault(
        "wifi_interference",
        200.0,
        days=0.5,
        fault_params={"wifi_profile_fix_prob": p_fix, "wifi_recurrence_prob": 0.0},
    )
    sim = Simulation(sc, seed=2)
    for _ in range(sim.n_ticks):
        sim.step()
        rows = [r for r, b in sim._active.items() if any(f.recorded for f in b.values())]
        if rows:
            return sim, rows[0]
    pytest.fail("no Wi-Fi interference started in the test scenario")


@pytest.mark.parametrize("p_fix", [1.0, 0.0])
def test_profile_change_ends_interference_with_the_scenario_probability(only_fault, p_fix):
    sim, row = _sim_with_wifi(only_fault, p_fix)
    (fault,) = sim.active_faults(row)
    cpe = sim.topology.customers["cpe_id"].iat[row]
    answer = SimDevices(sim).change_wifi_profile(cpe)
    sim.step()  # the fault process ends at the next event
    assert answer == ("fixed" if p_fix == 1.0 else "done")
    assert (fault.fixed_by == "wifi_profile") is (p_fix == 1.0)
    assert (sim.active_faults(row) == []) is (p_fix == 1.0)
    assert sim.wifi_changes[-1]["onu_row"] == row


def test_scenario_rejects_a_probability_above_one(only_fault):
    with pytest.raises(ValueError, match="wifi_profile_fix_prob"):
        only_fault("wifi_interference", 1.0, fault_params={"wifi_profile_fix_prob": 1.5})


def test_action_outcomes_belong_to_the_fault_and_attempt_not_to_the_run_order():
    # Common random numbers: the k-th attempt on a fault has the same outcome in every
    # policy's run of a seed. With one stream shared by all actions, a reboot elsewhere
    # first shifted the draws, and the same reboot at the same time failed in one run
    # and succeeded in the other.
    from simulator.fault_model import Fault
    from simulator.scenario import load_scenario

    def fault(fid: str) -> Fault:
        return Fault(fault_id=fid, kind="cpe_hang", start_s=0.0, onus=np.array([0]),
                     scope_type="onu", scope_key="x", duration_s=None)  # fmt: skip

    sc = load_scenario("tiny")
    alone, busy = Simulation(sc, seed=7), Simulation(sc, seed=7)
    target = fault("F-target")
    seq_alone = [alone.attempt_fixes(target, "reboot", 0.5) for _ in range(40)]
    seq_busy = []
    for k in range(40):
        busy.attempt_fixes(fault(f"F-other-{k}"), "reboot", 0.5)
        busy.attempt_fixes(target, "wifi_profile", 0.5)  # another action: its own draws
        peeked = busy.attempt_fixes(target, "reboot", 0.5, peek=True)
        seq_busy.append(busy.attempt_fixes(target, "reboot", 0.5))
        assert peeked == seq_busy[-1]  # the oracle's look ahead is the outcome
    assert seq_alone == seq_busy
    assert 0 < sum(seq_alone) < 40  # both outcomes happen
    other_seed = Simulation(sc, seed=8)
    assert [other_seed.attempt_fixes(target, "reboot", 0.5) for _ in range(40)] != seq_alone
    # Over many faults an attempt succeeds with the given probability.
    wins = [alone.attempt_fixes(fault(f"F{i}"), "reboot", 0.3) for i in range(4000)]
    assert abs(np.mean(wins) - 0.3) < 0.03
