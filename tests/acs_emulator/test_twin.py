"""The live twin: simulator in scaled real time + ACS + CPE agents + autopilot, on loopback.

The scenario is ``tiny`` with only CPE hangs (about one a week per customer, so the
fleet of 64 has a hang within the first quarter-hour with seed 4) and a reboot that
always clears a hang. At 3000× a 5-minute tick takes 0.1 s of wall-clock time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from acs_emulator.twin import NbiDevices, Twin, TwinStateSource, run_twin
from guardian_lib.decision import AutopilotSettings
from simulator.engine import Simulation

GUARDIAN = Path(sys.executable).with_name("guardian")
SEED = 4
SPEED = 3000.0
TICKS = 12  # one simulated hour


@pytest.fixture
def hang_scenario(only_fault):
    return only_fault("cpe_hang", 60.0, fault_params={"cpe_hang_reboot_fix_prob": 1.0})


def _first_hang(scenario) -> tuple[str, float]:
    """Device id and start [s] of the scenario's first CPE hang (ground truth)."""
    sim = Simulation(scenario, seed=SEED)
    f = min((f for f in sim.faults if f.kind == "cpe_hang"), key=lambda f: f.start_s)
    cust = sim.topology.customers.set_index("onu_id")
    return str(cust.at[sim.onu_ids[int(f.onus[0])], "cpe_id"]), f.start_s


def _settings(mode: str) -> AutopilotSettings:
    return AutopilotSettings(autopilot_mode=mode, jitter_max_seconds=0, kill_switch=False)


def test_execute_mode_reboots_the_hung_cpe_through_the_nbi_and_the_hang_clears(hang_scenario):
    device_id, start_s = _first_hang(hang_scenario)
    assert start_s < 30 * 60, "the scenario must hang a CPE early for this test"
    twin = Twin(hang_scenario, seed=SEED, speed=SPEED, settings=_settings("execute"),
                every_minutes=5)  # fmt: skip
    try:
        report = twin.run(ticks=TICKS, settle_timeout_s=30)
        reboots = twin.audit.frame("actions").query("action_type == 'reboot'")
        events = [e for e in twin.sim.reboots if e["by"] == "acs"]
    finally:
        twin.close()
    assert report.mode == "execute" and report.ticks == TICKS
    # Autopilot → NBI (task done) → CPE agent got Reboot → simulator rebooted the ONU.
    assert [c["device_id"] for c in report.nbi_reboots] == [device_id]
    assert report.nbi_reboots[0]["status"] == "done"
    assert report.cpe_reboots == [device_id]
    assert report.sim_reboots_by_acs == 1 and len(events) == 1
    assert report.hangs_cleared_by_reboot == [device_id]
    # The reboot was verified afterwards: service back.
    assert list(reboots["target"]) == [device_id]
    assert list(reboots["status"]) == ["succeeded"]
    assert report.sessions_failed == 0 and report.sessions_ok >= 64
    # Scaled real time: an hour of simulation in seconds, not an hour.
    assert report.wall_s < 30


def test_simulate_mode_decides_and_audits_but_sends_nothing(hang_scenario):
    device_id, _ = _first_hang(hang_scenario)
    twin = Twin(hang_scenario, seed=SEED, speed=SPEED, settings=_settings("simulate"),
                every_minutes=5)  # fmt: skip
    try:
        report = twin.run(ticks=TICKS, settle_timeout_s=30)
        reboots = twin.audit.frame("actions").query("action_type == 'reboot'")
        decisions = twin.audit.frame("decisions")
    finally:
        twin.close()
    assert report.mode == "simulate"
    assert report.decisions.get("reboot", 0) >= 1
    assert set(reboots["status"]) == {"simulated"} and device_id in set(reboots["target"])
    assert set(decisions["mode"]) == {"simulate"}
    assert report.nbi_reboots == [] and twin.devices is not None and twin.devices.calls == []
    assert report.cpe_reboots == []
    assert report.sim_reboots_by_acs == 0
    assert report.hangs_cleared_by_reboot == []
    assert report.sessions_ok >= 64  # the ACS and the agents did run


def test_run_twin_stops_at_the_wall_clock_limit(hang_scenario):
    report = run_twin(hang_scenario, seed=SEED, speed=600.0, duration_s=1.0,
                      settings=_settings("simulate"), n_cpes=8)  # fmt: skip
    assert 1 <= report.ticks <= 4  # 0.5 s per tick at 600×
    assert json.loads(report.to_json())["speed"] == 600.0


def test_stop_event_ends_the_run_after_the_current_tick(hang_scenario):
    stop = threading.Event()
    twin = Twin(hang_scenario, seed=SEED, speed=SPEED, settings=_settings("simulate"), n_cpes=4)
    try:
        report = twin.run(stop=stop, on_tick=lambda k, r: stop.set() if k >= 2 else None)
    finally:
        twin.close()
    assert report.ticks == 3  # ticks 0, 1, 2


def test_twin_rejects_bad_arguments(hang_scenario):
    with pytest.raises(ValueError, match="speed must be > 0"):
        Twin(hang_scenario, speed=0)
    with pytest.raises(ValueError, match="loopback"):
        Twin(hang_scenario, host="0.0.0.0")
    with pytest.raises(ValueError, match="n_cpes"):
        Twin(hang_scenario, n_cpes=0)
    for every in (0, 7):  # used to be rounded to a whole tick (at least one)
        with pytest.raises(ValueError, match=rf"5-minute tick .*got {every}"):
            Twin(hang_scenario, every_minutes=every)


def test_nbi_devices_guards_empty_targets_and_records_errors():
    class Client:
        def __init__(self, fail: bool) -> None:
            self.fail, self.keys = fail, []

        def reboot(self, device_id: str, *, idempotency_key: str) -> str:
            self.keys.append(idempotency_key)
            if self.fail:
                raise ConnectionError("ACS down")
            return "done"

    ok = NbiDevices(Client(False))
    with pytest.raises(ValueError, match="non-empty"):
        ok.reboot("")
    assert ok.reboot("A-B-C") == "done" and ok.reboot("A-B-C") == "done"
    assert len(set(ok.client.keys)) == 2  # a new decision is a new idempotency key
    bad = NbiDevices(Client(True))
    with pytest.raises(ConnectionError):
        bad.reboot("A-B-C")
    assert bad.calls[0]["error"] == "ConnectionError: ACS down"


def test_state_source_applies_reboots_only_in_the_simulation_thread(hang_scenario):
    sim = Simulation(hang_scenario, seed=SEED)
    sim.step()
    src = TwinStateSource(sim)
    did = src.identities(1)[0].device_id
    t = threading.Thread(target=src.reboot, args=(did,))
    t.start()
    t.join()
    assert src.received == [did] and sim.reboots == []  # queued, not applied
    assert src.apply_reboots() == 1 and src.apply_reboots() == 0
    sim.step()
    assert [r["by"] for r in sim.reboots] == ["acs"]


def test_cli_twin_runs_and_prints_a_json_report():
    res = subprocess.run(
        [str(GUARDIAN), "twin", "--scenario", "tiny", "--seed", "1", "--speed", "6000",
         "--hours", "0.5", "--mode", "simulate", "--cpes", "8", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["mode"] == "simulate" and report["ticks"] == 6
    assert report["nbi_reboots"] == []


def test_cli_rejects_an_unknown_mode_before_starting_anything():
    import typer
    from typer.testing import CliRunner

    from acs_emulator.twin.cli import register

    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    res = CliRunner().invoke(app, ["twin", "--mode", "dry"])
    assert res.exit_code == 2 and "simulate or execute" in res.output


def test_the_twin_binds_and_feeds_the_scorer_every_tick_as_the_backtest(hang_scenario):
    from guardian_lib.decision import RuleScorer

    class Recording(RuleScorer):
        """Bound to the twin's fleet; records every tick it is fed (as the ML scorer)."""

        def __init__(self, onus=None):
            super().__init__()
            self.onus, self.fed, self.scored = onus, [], 0

        def bind(self, onus, tick_s):
            return Recording(onus)

        def update(self, tick):
            self.fed.append(tick)

        def __call__(self, snapshot):
            self.scored += 1
            return super().__call__(snapshot)

    twin = Twin(hang_scenario, seed=SEED, speed=SPEED, settings=_settings("simulate"),
                every_minutes=10, scorer=Recording(), n_cpes=4)  # fmt: skip
    try:
        report = twin.run(ticks=5, settle_timeout_s=30)
    finally:
        twin.close()
    bound = twin.autopilot.scorer
    assert isinstance(bound, Recording) and bound is twin.loop.scorer
    assert list(bound.onus["onu_id"]) == list(twin.sim.onu_ids)
    assert report.ticks == 5 and len(bound.fed) == 5  # ticks 0…4, each fed once
    assert [t.ts for t in bound.fed] == [twin.sim.ts_of(k * twin.sim.tick_s) for k in range(5)]
    assert bound.scored == 3  # decisions at ticks 0, 2, 4 (every 10 min)
