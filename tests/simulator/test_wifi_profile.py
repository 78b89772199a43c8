"""The Wi-Fi profile change: a remote action that ends interference with a probability."""

from __future__ import annotations

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
