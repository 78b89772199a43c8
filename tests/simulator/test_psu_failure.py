"""A failed ONU power supply in the closed loop: a dying gasp, dark until a visit.

The customer, whose lights are on, calls like any customer offline; the autopilot must
send a technician within days (it waited for weeks), while a customer's own power cut
(no call) gets none.
"""

from __future__ import annotations

import pytest
from sim_faults import HOUR, inject

from simulator.backtest import BacktestWorld
from simulator.faults import FAULT_KINDS
from simulator.scenario import load_scenario
from simulator.telemetry import DOWN_DYING_GASP

#: The run, and the bound on the time from the power supply's failure to the end of its
#: visit (at most 68 h dark once the customer called, then up to 8 h for the
#: technician). [h]
RUN_H, BOUND_H = 96.0, 76.0


@pytest.fixture(scope="module")
def psu_run():
    """Tiny, 96 h, no random faults; row 5's power supply fails at 2 h; row 30's
    customer switches the power off at 2 h for 60 h and never calls."""
    sc = load_scenario("tiny")
    faults = sc.faults.model_dump()
    for kind in FAULT_KINDS:
        faults[kind]["rate_per_year"] = 0.0
    sc = sc.with_overrides(
        faults=faults,
        days=RUN_H / 24,
        data_quality=sc.data_quality.model_dump() | {"unexplained_symptoms_per_year": 0.0},
        weather=sc.weather.model_dump() | {"storms_per_year_per_region": 0.0},
        customers=sc.customers.model_dump()
        | {"background_calls_per_year": 0.0, "call_rate_per_hour_power": 0.0},
    )
    world = BacktestWorld.build(sc, "autopilot", seed=3)
    sim = world.sim
    down = {}

    class Probe:
        def on_tick(self, sim, state, events):
            for row in (5, 30):
                if not state.online[row]:
                    down.setdefault(row, int(state.down_cause[row]))

    sim.sinks.append(Probe())
    psu = inject(sim, "T-psu", "hardware_failure", 5, 2.0, dead=True, drift_s=0.0,
                  power_supply=True)  # fmt: skip
    off = inject(sim, "T-off", "customer_power_off", 30, 2.0, duration_h=60.0)
    sim.run()
    calls = list(world.source.calls)
    kpis = world.close()
    return sim, psu, off, down, calls, kpis


def test_a_failed_power_supply_sends_a_dying_gasp_and_the_customer_calls(psu_run):
    sim, psu, off, down, calls, _ = psu_run
    assert down == {5: DOWN_DYING_GASP, 30: DOWN_DYING_GASP}
    onu5, onu30 = str(sim.onu_ids[5]), str(sim.onu_ids[30])
    assert any(o == onu5 and t >= psu.start_s for t, o in calls)
    assert not any(o == onu30 for _, o in calls)


def test_the_autopilot_visits_a_failed_power_supply_within_days_not_a_power_cut(psu_run):
    # Before, the autopilot waited on any lone dying gasp for 490-850 h: the failed
    # power supply stayed dark to the end of the run.
    sim, psu, off, _, _, kpis = psu_run
    assert psu.fixed_by == "visit"
    assert (psu.end_s - psu.start_s) / HOUR <= BOUND_H
    assert off.fixed_by == "timer"  # the power cut ended by itself after 60 h: no visit
    visited = [o.onu_row for o in sim.ops.orders]
    assert visited == [5]
    assert kpis["safety_violations"] == 0
