"""The Autopilot loop: simulate mode touches nothing, execute mode calls the clients,
blocked actions are audited with their rule, cases are tracked."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from one_pon import T0, N, one_pon_observer

from guardian_lib.actions import Dispatcher
from guardian_lib.audit import case_lifecycle
from guardian_lib.decision import (
    Autopilot,
    AutopilotSettings,
    Decision,
    Observer,
    RuleScorer,
    RulesPolicy,
    Snapshot,
    make_autopilot,
)
from guardian_lib.loop.tick import Tick


class Untouchable:
    """A device client that fails the test if anything calls it."""

    def reboot(self, device_id):
        raise AssertionError(f"simulate mode rebooted {device_id}")


class FakeDevices:
    def __init__(self, fail=False):
        self.calls, self.fail = [], fail

    def reboot(self, device_id):
        if self.fail:
            raise ConnectionError("ACS unreachable")
        self.calls.append(device_id)
        return "200"


class FakeField:
    def __init__(self):
        self.opened, self.cancelled = [], []

    def open_visit(self, onu_id, reason, priority):
        self.opened.append((onu_id, priority))
        return f"OS{len(self.opened)}"

    def cancel_visit(self, os_id, reason):
        self.cancelled.append(os_id)
        return True

    def status(self, os_id):
        return "scheduled"


class FakeNotifier:
    def __init__(self):
        self.sent = []

    def notify(self, onu_id, template, until_h):
        self.sent.append(onu_id)
        return True


def _round(obs: Observer, minutes: float, hung: tuple[int, ...] = ()) -> Snapshot:
    loss = np.full(N, 0.1)
    loss[list(hung)] = 100.0
    vals = {"rx_dbm": np.full(N, -20.0), "tx_dbm": np.full(N, 2.0), "ber": np.full(N, 1e-12),
            "latency_ms": np.full(N, 10.0), "loss_pct": loss}  # fmt: skip
    ts = T0 + pd.Timedelta(minutes=minutes)
    obs.update(Tick(ts, {**vals, "online": np.ones(N, dtype=bool)}))
    return Snapshot(ts=ts, status=obs.status())


def test_simulate_mode_decides_and_audits_but_touches_nothing():
    settings = AutopilotSettings()  # simulate by default
    disp = Dispatcher("simulate", devices=Untouchable())
    ap = Autopilot(RulesPolicy(), RuleScorer(), settings=settings, dispatcher=disp)
    obs = one_pon_observer()
    _round(obs, 0)
    ap.step(_round(obs, 15, hung=(3,)))
    acts = ap.audit.frame("actions")
    assert set(acts["status"]) == {"simulated"}
    assert "reboot" in set(acts["action_type"])
    dec = ap.audit.frame("decisions")
    assert set(dec["mode"]) == {"simulate"}
    assert (dec["inputs_digest"].str.len() == 64).all()
    assert ap.cases["ONU03"]["reboots"] == 1


def test_execute_mode_verifies_reboots_and_closes_the_case():
    devices, field, notifier = FakeDevices(), FakeField(), FakeNotifier()
    settings = AutopilotSettings(autopilot_mode="execute", jitter_max_seconds=0)
    disp = Dispatcher("execute", devices=devices, field_ops=field, notifier=notifier)
    scorer, policy = make_autopilot(settings=settings)
    ap = Autopilot(policy, scorer, settings=settings, dispatcher=disp)
    obs = one_pon_observer()
    _round(obs, 0)
    ap.step(_round(obs, 15, hung=(5,)))
    assert devices.calls == ["CPE05"]
    for m in range(30, 121, 15):  # the reboot worked: back and stable
        ap.step(_round(obs, m))
    acts = ap.audit.frame("actions")
    reboot = acts.loc[acts["action_type"] == "reboot"].iloc[0]
    assert reboot["status"] == "succeeded" and json.loads(reboot["result"])["verified"]
    assert "ONU05" not in ap.cases
    life = case_lifecycle(ap.audit.frame("decisions"), acts)
    assert life["outcome"].tolist() == ["visit_avoided"]
    assert notifier.sent == []  # fixed before the customer needed telling


def test_listeners_hear_the_verified_reboot_with_its_case_and_a_failing_one_is_contained():
    settings = AutopilotSettings(autopilot_mode="execute", jitter_max_seconds=0)
    disp = Dispatcher("execute", devices=FakeDevices(), field_ops=FakeField())
    scorer, policy = make_autopilot(settings=settings)
    ap = Autopilot(policy, scorer, settings=settings, dispatcher=disp)
    heard = []

    def broken(outcome):
        raise RuntimeError("listener bug")

    ap.listeners += [broken, heard.append]
    obs = one_pon_observer()
    _round(obs, 0)
    ap.step(_round(obs, 15, hung=(5,)))
    case_id = ap.cases["ONU05"]["case_id"]
    assert [o.action for o in heard] == []  # sent, not verified yet
    ap.step(_round(obs, 30))
    (o,) = [o for o in heard if o.action == "reboot"]
    assert (o.subject, o.target, o.status, o.case_id) == ("ONU05", "CPE05", "succeeded", case_id)
    assert o.at == T0 + pd.Timedelta(minutes=30)
    reboot = ap.audit.frame("actions").query("action_type == 'reboot'").iloc[0]
    assert json.loads(reboot["result"])["case_id"] == case_id  # the replay reads it too


def test_blocked_actions_are_recorded_with_their_rule():
    settings = AutopilotSettings(autopilot_mode="execute", kill_switch=True)
    devices = FakeDevices()
    ap = Autopilot(RulesPolicy(), RuleScorer(), settings=settings,
                   dispatcher=Dispatcher("execute", devices=devices))  # fmt: skip
    obs = one_pon_observer()
    _round(obs, 0)
    ap.step(_round(obs, 15, hung=(2,)))
    assert devices.calls == []
    dec = ap.audit.frame("decisions")
    blocked = dec.loc[~dec["allowed"]]
    assert set(blocked["blocked_rule"]) == {"kill_switch"}
    acts = ap.audit.frame("actions")
    assert set(acts["status"]) == {"blocked"}
    assert all(json.loads(r)["rule"] == "kill_switch" for r in acts["result"])


def test_client_errors_become_failed_actions_not_exceptions():
    disp = Dispatcher("execute", devices=FakeDevices(fail=True))
    d = Decision(ts=T0, subject="ONU1", action="reboot", targets=("CPE1",))
    (r,) = disp.execute(d)
    assert r.status == "failed" and "ACS unreachable" in r.error and "CPE1" in r.error
    (r,) = Dispatcher("execute").execute(
        Decision(ts=T0, subject="ONU1", action="notify", targets=("ONU1",))
    )
    assert r.status == "failed" and "no notifier client" in r.error


def test_dispatcher_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode must be"):
        Dispatcher("yolo")


def test_massive_incident_opens_and_closes_in_the_audit():
    ap = Autopilot(RulesPolicy(), RuleScorer(), settings=AutopilotSettings())
    obs = one_pon_observer()
    _round(obs, 0)
    vals = {"rx_dbm": np.full(N, -20.0), "loss_pct": np.full(N, 0.1)}
    online = np.ones(N, dtype=bool)
    online[:8] = False  # box B0 dark
    for m in (15, 30):
        ts = T0 + pd.Timedelta(minutes=m)
        obs.update(Tick(ts, {**vals, "online": online}))
        ap.step(Snapshot(ts=ts, status=obs.status()))
    assert len(ap.incidents) == 1
    for m in range(45, 121, 15):
        ap.step(_round(obs, m))
    assert ap.incidents == {}
    inc = ap.audit.frame("incidents")
    assert len(inc) == 2 and inc["end_at"].notna().sum() == 1
    assert set(inc["scope_key"]) == {"B0"} and set(inc["affected_customers"]) == {8}
    dec = ap.audit.frame("decisions")
    assert {"open_incident", "notify", "close_incident"} <= set(dec["action"])
    assert "open_case" not in set(dec["action"])  # the box's ONUs belong to the incident
