"""Point 6: misspelled settings refuse to start, limits have hard bounds, the kill switch
can be flipped while the autopilot runs (file or SIGUSR1) and an invalid mode is one line."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pandas as pd
import pytest
from cli_runner import run_guardian

from guardian_lib.decision import AutopilotSettings, Decision, SafetyGuard
from guardian_lib.decision.settings import HARD_LIMITS, check_environment
from guardian_lib.errors import ConfigError

T0 = pd.Timestamp("2026-01-05T00:00Z")


def _reboot(device: str, ts: pd.Timestamp) -> Decision:
    return Decision(ts=ts, subject=device, action="reboot", targets=(device,))


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("AUTOPILOT_KILL_SWITCH", "KILL_SWITCH"),
        ("GUARDIAN_KILLSWITCH", "KILL_SWITCH"),
        ("KILLSWITCH", "KILL_SWITCH"),
        ("Reboot_Cooldown_Minutes_", "REBOOT_COOLDOWN_MINUTES"),
        ("AUTOPILOT_MOD", None),
        ("GUARDIAN_DEBUGG", None),
    ],
)
def test_misspelled_variable_refuses_with_one_line(monkeypatch, name, meant):
    monkeypatch.setenv(name, "true")
    with pytest.raises(ConfigError) as err:
        AutopilotSettings()
    msg = str(err.value)
    assert "\n" not in msg
    assert name in msg and "KILL_SWITCH_FILE" in msg and "AUTOPILOT_MODE" in msg
    assert (f"did you mean {meant}?" in msg) if meant else ("did you mean" not in msg)


def test_unrelated_and_other_components_variables_pass():
    check_environment(
        {"PATH": "/bin", "KILL": "1", "GUARDIAN_SNMP_LAB_COMMUNITY": "x",
         "GUARDIAN_NBI_TOKEN": "t", "GUARDIAN_DEBUG": "1", "kill_switch": "1"}
    )  # fmt: skip


def test_every_guardian_variable_the_project_reads_is_accepted():
    """A new GUARDIAN_* variable elsewhere in the code must not make the autopilot refuse."""
    import re

    root = Path(__file__).resolve().parents[2]
    names = set()
    for folder in ("guardian_lib", "simulator", "acs_emulator", "tests", "docs"):
        for path in (root / folder).rglob("*"):
            if path.suffix in (".py", ".md", ".yaml") and path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace")
                names |= set(re.findall(r"(?<![A-Za-z0-9_])GUARDIAN_[A-Z0-9_]*[A-Z0-9]\b", text))
    assert "GUARDIAN_DATA_DIR" in names
    constants = {"GUARDIAN_ENV_NAMES", "GUARDIAN_ENV_FAMILIES"}  # settings.py itself
    for name in sorted(names - constants - {"GUARDIAN_KILLSWITCH", "GUARDIAN_DEBUGG"}):
        check_environment({name: "x"})


@pytest.mark.parametrize("field", sorted(HARD_LIMITS))
def test_every_limit_has_a_hard_bound(monkeypatch, field):
    lo, hi = HARD_LIMITS[field]
    monkeypatch.setenv(field.upper(), str(hi * 10 + 1))
    with pytest.raises(ConfigError, match=rf"{field.upper()}: .*hard limits {lo:g} to {hi:g}"):
        AutopilotSettings()
    monkeypatch.setenv(field.upper(), str(hi))
    assert getattr(AutopilotSettings(), field) == hi


def test_ceilings_stop_a_reboot_storm_of_one_device():
    with pytest.raises(ConfigError):
        AutopilotSettings(reboot_cooldown_minutes=0, max_reboots_per_day=10**9)
    s = AutopilotSettings(
        reboot_cooldown_minutes=HARD_LIMITS["reboot_cooldown_minutes"][0],
        max_reboots_per_day=HARD_LIMITS["max_reboots_per_day"][1],
        max_reboots_per_pon_per_hour=HARD_LIMITS["max_reboots_per_pon_per_hour"][1],
        max_actions_fleet_per_hour=HARD_LIMITS["max_actions_fleet_per_hour"][1],
        jitter_max_seconds=0,
    )
    guard = SafetyGuard(s)
    allowed = sum(
        guard.check(_reboot("CPE-1", T0 + pd.Timedelta(milliseconds=i)), T0).allowed
        for i in range(1000)
    )
    assert allowed == 1


def test_kill_switch_file_flipped_while_running(tmp_path):
    flag = tmp_path / "KILL"
    guard = SafetyGuard(AutopilotSettings(kill_switch_file=flag, jitter_max_seconds=0))
    assert guard.check(_reboot("A", T0), T0).allowed
    flag.touch()  # flipped between two decisions
    v = guard.check(_reboot("B", T0), T0)
    assert not v.allowed and v.rule == "kill_switch"
    flag.unlink()
    assert guard.check(_reboot("C", T0), T0).allowed


def test_kill_switch_by_sigusr1(monkeypatch):
    previous = signal.getsignal(signal.SIGUSR1)
    guard = SafetyGuard(AutopilotSettings(jitter_max_seconds=0))
    try:
        guard.install_signal(signal.SIGUSR1)
        assert guard.check(_reboot("A", T0), T0).allowed
        os.kill(os.getpid(), signal.SIGUSR1)
        v = guard.check(_reboot("B", T0), T0)
        assert not v.allowed and v.rule == "kill_switch"
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_kill_switch_from_environment_file(monkeypatch, tmp_path):
    monkeypatch.setenv("KILL_SWITCH_FILE", str(tmp_path / "stop"))
    guard = SafetyGuard(AutopilotSettings(jitter_max_seconds=0))
    (tmp_path / "stop").write_text("")
    assert guard.check(_reboot("A", T0), T0).rule == "kill_switch"


def test_invalid_mode_is_one_line_exit_2():
    res = run_guardian("twin", "--scenario", "tiny", "--hours", "0.1",
                       env={"AUTOPILOT_MODE": "yolo"}, check=False)  # fmt: skip
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0
    assert "AUTOPILOT_MODE" in res.stderr and "'yolo'" in res.stderr
    assert "Traceback" not in res.stderr


class _Devices:
    def __init__(self):
        self.calls = []

    def reboot(self, device_id):
        self.calls.append(device_id)
        return "200"


def test_running_autopilot_honours_the_kill_file_at_the_next_step(tmp_path):
    """Execute mode: a hung ONU is rebooted; the file appears; the next hung one is not."""
    import numpy as np

    from guardian_lib.actions import Dispatcher
    from guardian_lib.decision import Autopilot, Observer, RuleScorer, RulesPolicy, Snapshot
    from guardian_lib.loop.tick import Tick

    n = 16
    ids = [f"ONU{i:02d}" for i in range(n)]
    obs = Observer(
        pd.DataFrame({"onu_id": ids, "pon_id": [f"PON{i}" for i in range(n)], "olt_id": "OLT1",
                      "splitter_id": [f"B{i}" for i in range(n)]}),
        pd.DataFrame({"customer_id": [f"C{i:02d}" for i in range(n)], "onu_id": ids,
                      "cpe_id": [f"CPE{i:02d}" for i in range(n)], "region": "R",
                      "segment": "residential"}),
    )  # fmt: skip

    def snap(minutes: float, hung: tuple[int, ...]) -> Snapshot:
        loss = np.full(n, 0.1)
        loss[list(hung)] = 100.0
        vals = {"rx_dbm": np.full(n, -20.0), "tx_dbm": np.full(n, 2.0), "ber": np.full(n, 1e-12),
                "latency_ms": np.full(n, 10.0), "loss_pct": loss}  # fmt: skip
        ts = T0 + pd.Timedelta(minutes=minutes)
        obs.update(Tick(ts, {**vals, "online": np.ones(n, dtype=bool)}))
        return Snapshot(ts=ts, status=obs.status())

    flag = tmp_path / "KILL"
    settings = AutopilotSettings(
        autopilot_mode="execute", jitter_max_seconds=0, kill_switch_file=flag
    )
    devices = _Devices()
    ap = Autopilot(RulesPolicy(), RuleScorer(), settings=settings,
                   dispatcher=Dispatcher("execute", devices=devices))  # fmt: skip
    snap(0, ())
    ap.step(snap(15, (3,)))
    assert devices.calls == ["CPE03"]
    flag.touch()  # the operator flips the switch while the loop runs
    ap.step(snap(30, (3, 9)))
    assert devices.calls == ["CPE03"]
    dec = ap.audit.frame("decisions")
    assert "kill_switch" in set(dec.loc[~dec["allowed"], "blocked_rule"])


def test_operate_has_a_kill_file_in_its_state_folder_and_sigusr1(tmp_path):
    """``guardian operate``: ``touch <state>/KILL_SWITCH`` or SIGUSR1 blocks the next action."""
    import yaml

    from guardian_lib.operate.fleet import load_subscribers
    from guardian_lib.operate.service import KILL_SWITCH_FILENAME, Operator
    from guardian_lib.operate.site import load_site

    (tmp_path / "olts.yaml").write_text(
        yaml.safe_dump({"olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "credentials": "noc"}]})
    )
    (tmp_path / "subs.csv").write_text("onu_id,pon_id\nA,P1\n")
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"inventory": "olts.yaml", "warehouse": "wh",
                                    "model_alias": None, "subscribers": "subs.csv"}))  # fmt: skip
    previous = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT)}
    op = Operator(load_site(site), tmp_path / "state", mode="execute")
    try:
        op.install_signal_handlers()  # as `guardian operate` does, before the first cycle
        op._build(load_subscribers(tmp_path / "subs.csv"))
        guard = op.autopilot.guard
        assert guard.settings.kill_switch_file == tmp_path / "state" / KILL_SWITCH_FILENAME
        assert guard.check(_reboot("CPE-A", T0), T0).rule != "kill_switch"
        guard.settings.kill_switch_file.touch()
        assert guard.check(_reboot("CPE-B", T0), T0).rule == "kill_switch"
        guard.settings.kill_switch_file.unlink()
        assert guard.check(_reboot("CPE-D", T0 + pd.Timedelta(hours=1)), T0).rule != "kill_switch"
        os.kill(os.getpid(), signal.SIGUSR1)
        assert guard.check(_reboot("CPE-C", T0), T0).rule == "kill_switch"
    finally:
        op.close()
        for s, h in previous.items():
            signal.signal(s, h)
