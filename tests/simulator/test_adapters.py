"""The simulator's adapters of the closed loop, shared by the backtest and the twin."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from guardian_lib.actions import UnknownTargetError
from guardian_lib.loop import EventRow, Tick
from simulator.adapters import SimClock, SimDevices, SimFieldService, SimNotifier, SimTelemetry
from simulator.backtest import BacktestWorld, run_policy
from simulator.engine import Simulation
from simulator.scenario import load_scenario


@pytest.fixture(scope="module")
def hangs():
    """Tiny, 12 h, hung CPEs only (the reboot case), like the backtest tests."""
    from simulator.faults import DRAWN_KINDS

    sc = load_scenario("tiny")
    faults = sc.faults.model_dump()
    for kind in DRAWN_KINDS:
        faults[kind]["rate_per_year"] = 0.0
    faults["cpe_hang"]["rate_per_year"] = 40.0
    faults["cpe_hang_precursor_share"] = 0.0
    return sc.with_overrides(
        faults=faults,
        days=0.5,
        weather=sc.weather.model_dump() | {"storms_per_year_per_region": 0.0},
        customers=sc.customers.model_dump() | {"background_calls_per_year": 0.0},
    )


def test_unknown_targets_raise_one_clear_error(tiny_scenario):
    sim = Simulation(tiny_scenario, seed=1)
    with pytest.raises(UnknownTargetError, match="SimDevices.reboot: unknown CPE 'CPE-X'"):
        SimDevices(sim).reboot("CPE-X")
    with pytest.raises(UnknownTargetError, match="SimFieldService.open_visit: unknown ONU 'O-X'"):
        SimFieldService(sim).open_visit("O-X", "test", "high")
    with pytest.raises(UnknownTargetError, match="SimNotifier.notify: unknown ONU 'O-X'"):
        SimNotifier(sim).notify("O-X", "generic", 6.0)
    with pytest.raises(KeyError):  # still a KeyError for callers that catch those
        SimNotifier(sim).notify("O-X", "generic", 6.0)


def test_field_service_lists_and_cancels_its_orders(tiny_scenario):
    sim = Simulation(tiny_scenario, seed=1)
    sim.ops.reactive = False
    field = SimFieldService(sim)
    onu = str(sim.onu_ids[3])
    os_id = field.open_visit(onu, "test", "normal")
    orders = field.open_orders()
    assert orders[["os_id", "onu_id", "opened_by"]].values.tolist() == [[os_id, onu, "autopilot"]]
    assert field.status(os_id) == "scheduled" and field.status("OS-nope") == "unknown"
    assert field.cancel_visit(os_id, "test")
    sim.env.run(until=sim.env.now + 1)  # the technician's process takes the cancellation
    assert field.open_orders().empty and field.status(os_id) == "cancelled"
    assert not field.cancel_visit(os_id, "again")
    assert SimClock(sim).now() == sim.ts_of(sim.env.now)


def test_telemetry_source_yields_ticks_with_event_rows(hangs):
    sim = Simulation(hangs, seed=3)
    source = SimTelemetry(sim)
    ticks = []
    for tick in source:
        ticks.append(tick)
        if len(ticks) == 60:
            break
    assert isinstance(ticks[0], Tick) and ticks[0].n_onus == len(sim.onu_ids)
    step = {b.ts - a.ts for a, b in zip(ticks, ticks[1:], strict=False)}
    assert step == {pd.Timedelta(minutes=hangs.tick_minutes)}
    events = [e for t in ticks for e in t.events]
    assert events and all(isinstance(e, EventRow) for e in events)
    assert all(t.ts - pd.Timedelta(minutes=hangs.tick_minutes) <= e.ts <= t.ts
               for t in ticks[1:] for e in t.events)  # fmt: skip
    np.testing.assert_array_equal(ticks[-1].online, sim.state.online)
    calls = [e for e in events if e.type == "CUSTOMER_CALL"]
    assert [json.loads(e.payload)["onu_id"] for e in calls] == [c[1] for c in source.calls]
    source.connect(object())
    with pytest.raises(RuntimeError, match="a loop is connected"):
        next(iter(source))


def test_a_backtest_restarted_mid_run_gives_the_same_kpis(hangs):
    """Restart = new autopilot, adapters and loop from the pickled state (as after kill -9)."""
    whole = run_policy(hangs, "autopilot", seed=3)
    assert whole["reboots"] > 0 and whole["decisions"] > 0
    world = BacktestWorld.build(hangs, "autopilot", seed=3)
    old = world.loop
    # Run until a reboot awaits its verification, with an open case: then "crash".
    while not (old.autopilot._pending and old.autopilot.cases):
        world.sim.step()
    at = world.sim.tick_index + 1
    assert at < world.sim.n_ticks - 12
    new = world.restart()
    assert new is not old and new.autopilot is not old.autopilot
    world.sim.run()
    assert old.ticks == at and new.ticks == world.sim.n_ticks
    restarted = world.close()
    assert json.dumps(restarted, sort_keys=True, default=str) == json.dumps(
        whole, sort_keys=True, default=str
    )
