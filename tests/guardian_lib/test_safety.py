"""Property tests: no sequence of decisions breaks the safety limits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardian_lib.decision import AutopilotSettings, Decision, SafetyGuard
from guardian_lib.loop.tick import Tick

T0 = pd.Timestamp("2026-01-05", tz="UTC")

step = st.tuples(
    st.floats(0, 4 * 3600),  # time since the previous decision [s]
    st.integers(0, 5),  # device
    st.integers(0, 2),  # PON
    st.sampled_from(["reboot", "reboot", "reboot", "notify", "schedule_visit"]),
    st.booleans(),  # outage on the PON
    st.booleans(),  # outcome fed to the breaker
    st.sampled_from(["ok", "ok", "ok", "ok", "empty", "wildcard", "two"]),
)
limits = st.fixed_dictionaries(
    {
        "reboot_cooldown_minutes": st.floats(10, 720),
        "max_reboots_per_day": st.integers(0, 4),
        "max_reboots_per_pon_per_hour": st.integers(0, 5),
        "max_actions_fleet_per_hour": st.integers(0, 8),
        "jitter_max_seconds": st.floats(0, 600),
        "jitter_seed": st.integers(0, 2**16),
        "breaker_window": st.integers(1, 6),
        "breaker_min_success_rate": st.floats(0, 1),
        "breaker_pause_minutes": st.floats(0, 300),
        "kill_switch": st.booleans(),
    }
)


def _targets(kind: str, device: int) -> tuple[str, ...]:
    return {
        "ok": (f"CPE-{device}",),
        "empty": (),
        "wildcard": ("*",),
        "two": (f"CPE-{device}", "CPE-x"),
    }[kind]


def _max_in_window(times: list[float], width_s: float) -> int:
    x = np.sort(np.asarray(times))
    if len(x) == 0:
        return 0
    return int((np.searchsorted(x, x + width_s, side="left") - np.arange(len(x))).max())


@settings(max_examples=200, deadline=None)
@given(limits, st.lists(step, max_size=60))
def test_no_sequence_breaks_cooldown_or_caps(lim, steps):
    s = AutopilotSettings(**lim)
    guard = SafetyGuard(s)
    now = T0
    allowed: list[tuple[str, str, float]] = []
    for dt, device, pon, action, outage, outcome, kind in steps:
        now = now + pd.Timedelta(seconds=dt)
        d = Decision(ts=now, subject=f"ONU-{device}", action=action, targets=_targets(kind, device))
        breaker_was_open = guard.breaker_open(now)
        v = guard.check(d, now, pon_id=f"PON-{pon}", outage=outage)
        if v.allowed:
            assert not s.kill_switch
            assert kind not in ("empty", "wildcard")
            if action == "reboot":
                assert kind == "ok" and not outage and not breaker_was_open
                assert v.execute_at >= now
                allowed.append((d.targets[0], f"PON-{pon}", v.execute_at.value / 1e9))
        else:
            assert v.rule is not None
        if action == "reboot" and v.allowed:
            guard.record_outcome(outcome, now)
    for target in {a[0] for a in allowed}:
        t = sorted(x[2] for x in allowed if x[0] == target)
        assert all(np.diff(t) >= s.reboot_cooldown_minutes * 60 - 1e-6)
        assert _max_in_window(t, 86400.0) <= s.max_reboots_per_day
    for pon in {a[1] for a in allowed}:
        t = [x[2] for x in allowed if x[1] == pon]
        assert _max_in_window(t, 3600.0) <= s.max_reboots_per_pon_per_hour
    assert _max_in_window([x[2] for x in allowed], 3600.0) <= s.max_actions_fleet_per_hour


def test_blocked_rules_are_named():
    guard = SafetyGuard(AutopilotSettings(reboot_cooldown_minutes=360, jitter_max_seconds=0))
    d = Decision(ts=T0, subject="ONU-1", action="reboot", targets=("CPE-1",))
    assert guard.check(d, T0, pon_id="P").allowed
    later = T0 + pd.Timedelta(hours=1)
    v = guard.check(d, later, pon_id="P")
    assert (v.allowed, v.rule) == (False, "reboot_cooldown")
    v = guard.check(d, later, pon_id="P", outage=True)
    assert v.rule == "active_outage"
    empty = Decision(ts=T0, subject="ONU-1", action="notify", targets=())
    assert guard.check(empty, later).rule == "empty_target"
    assert guard.blocked["reboot_cooldown"] == 1 and guard.blocked["empty_target"] == 1


def test_kill_switch_from_environment(monkeypatch):
    monkeypatch.setenv("KILL_SWITCH", "true")
    monkeypatch.setenv("REBOOT_COOLDOWN_MINUTES", "60")
    s = AutopilotSettings()
    assert s.kill_switch and s.reboot_cooldown_minutes == 60
    assert s.autopilot_mode == "simulate"
    d = Decision(ts=T0, subject="ONU-1", action="reboot", targets=("CPE-1",))
    assert SafetyGuard(s).check(d, T0).rule == "kill_switch"


def test_circuit_breaker_trips_and_recovers():
    s = AutopilotSettings(
        breaker_window=3, breaker_min_success_rate=0.5, breaker_pause_minutes=60,
        jitter_max_seconds=0,
    )  # fmt: skip
    guard = SafetyGuard(s)
    for _ in range(3):
        guard.record_outcome(False, T0)
    d = Decision(ts=T0, subject="ONU-1", action="reboot", targets=("CPE-1",))
    assert guard.check(d, T0 + pd.Timedelta(minutes=30)).rule == "circuit_breaker"
    assert guard.check(d, T0 + pd.Timedelta(minutes=61)).allowed


def test_jitter_is_deterministic():
    def times(seed):
        g = SafetyGuard(AutopilotSettings(jitter_seed=seed, max_actions_fleet_per_hour=100))
        out = []
        for i in range(5):
            d = Decision(ts=T0, subject=f"O{i}", action="reboot", targets=(f"C{i}",))
            out.append(g.check(d, T0, pon_id=f"P{i}").execute_at)
        return out

    assert times(3) == times(3)
    assert times(3) != times(4)


def test_decision_rejects_unknown_action():
    with pytest.raises(ValueError, match="action must be one of"):
        Decision(ts=T0, subject="x", action="factory_reset_everything")


class _Recorder:
    def __init__(self):
        self.calls: list[str] = []

    def reboot(self, device_id):
        self.calls.append(device_id)
        return "200"


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.sets(st.integers(0, 11), max_size=6), min_size=1, max_size=12),
    st.integers(0, 3),
    st.integers(0, 2**16),
)
def test_the_whole_loop_never_breaks_the_limits(hung_per_round, pon_cap, seed):
    """Any pattern of hung CPEs, rounds every 15 min: executed reboots obey every limit."""
    from guardian_lib.actions import Dispatcher
    from guardian_lib.decision import Autopilot, Observer, RuleScorer, RulesPolicy, Snapshot

    n = 12
    ids = [f"ONU{i:02d}" for i in range(n)]
    onus = pd.DataFrame({"onu_id": ids, "pon_id": [f"P{i % 2}" for i in range(n)],
                         "olt_id": "O", "splitter_id": [f"B{i % 4}" for i in range(n)]})  # fmt: skip
    cust = pd.DataFrame({"customer_id": ids, "onu_id": ids, "cpe_id": [f"C{i}" for i in ids],
                         "region": "R", "segment": "residential"})  # fmt: skip
    s = AutopilotSettings(
        autopilot_mode="execute", max_reboots_per_pon_per_hour=pon_cap, jitter_seed=seed,
        reboot_cooldown_minutes=60,
    )  # fmt: skip
    dev = _Recorder()
    times: list[tuple[str, str, float]] = []

    class Timed(Dispatcher):
        def execute(self, decision, at=None):
            if decision.action == "reboot":
                times.append((decision.targets[0], f"P{int(decision.subject[3:]) % 2}",
                              at.value / 1e9))  # fmt: skip
            return super().execute(decision, at)

    ap = Autopilot(RulesPolicy(), RuleScorer(), settings=s,
                   dispatcher=Timed("execute", devices=dev))  # fmt: skip
    obs = Observer(onus, cust)
    for k, hung in enumerate(hung_per_round):
        loss = np.full(n, 0.1)
        loss[list(hung)] = 100.0
        vals = {"rx_dbm": np.full(n, -20.0), "tx_dbm": np.full(n, 2.0),
                "ber": np.full(n, 1e-12), "latency_ms": np.full(n, 10.0), "loss_pct": loss}  # fmt: skip
        ts = T0 + pd.Timedelta(minutes=15 * k)
        obs.update(Tick(ts, {**vals, "online": np.ones(n, dtype=bool)}))
        ap.step(Snapshot(ts=ts, status=obs.status()))
    assert len(dev.calls) == len(times)
    for target in {t[0] for t in times}:
        x = sorted(t[2] for t in times if t[0] == target)
        assert all(np.diff(x) >= 60 * 60 - 1e-6)
        assert _max_in_window(x, 86400.0) <= s.max_reboots_per_day
    for pon in {t[1] for t in times}:
        assert _max_in_window([t[2] for t in times if t[1] == pon], 3600.0) <= pon_cap
