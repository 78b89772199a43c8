"""Maintenance windows block autopilot actions in their area (the ``maintenance_window``
safety rule), in the engine every loop uses and in ``guardian operate``; audited by name."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from guardian_lib.decision import Autopilot, AutopilotSettings, Decision, SafetyGuard, Snapshot
from guardian_lib.decision.maintenance import load_maintenance
from guardian_lib.errors import ConfigError
from guardian_lib.operate.fleet import load_subscribers
from guardian_lib.operate.site import load_site

T0 = pd.Timestamp("2026-03-02T04:30:00Z")
WINDOW = {"name": "olt-1-firmware", "matchers": {"olt": "OLT-1"},
          "start": "2026-03-02T04:00:00Z", "end": "2026-03-02T06:00:00Z",
          "comment": "firmware upgrade, ticket 4711"}  # fmt: skip


def _file(tmp_path, windows, **extra):
    p = tmp_path / "maint.yaml"
    p.write_text(yaml.safe_dump({**extra, "maintenance_windows": windows}))
    return p


def _status():
    return pd.DataFrame(
        {"customer_id": ["C1", "C2"], "cpe_id": ["CPE-A", "CPE-B"], "pon_id": ["P1", "P9"],
         "box_id": ["B1", "B9"], "olt_id": ["OLT-1", "OLT-2"], "region": ["Campinas"] * 2,
         "online": True, "service_up": True, "degraded": False},
        index=pd.Index(["A", "B"], name="onu_id"),
    )  # fmt: skip


class _Policy:
    """Decides the given actions on every snapshot."""

    name, version = "stub", "1"

    def __init__(self, *actions):
        self.actions = actions

    def decide(self, snap):
        return [Decision(ts=snap.ts, subject=s, action=a, targets=t) for s, a, t in self.actions]


def _no_predictions(snap):
    return pd.DataFrame({"onu_id": list(snap.status.index)})


ACTIONS = (("A", "reboot", ("CPE-A",)), ("A", "schedule_visit", ("A",)),
           ("A", "notify", ("A",)), ("A", "cancel_visit", ("OS-1",)),
           ("B", "reboot", ("CPE-B",)))  # fmt: skip


def test_the_guard_blocks_what_the_window_covers_only_while_in_force(tmp_path):
    cal = load_maintenance(_file(tmp_path, [WINDOW]))
    guard = SafetyGuard(AutopilotSettings(jitter_max_seconds=0), maintenance=cal)
    on_olt1 = [{"onu": "A", "pon": "P1", "olt": "OLT-1", "region": "Campinas"}]
    on_olt2 = [{"onu": "B", "pon": "P9", "olt": "OLT-2", "region": "Campinas"}]
    reboot = Decision(ts=T0, subject="A", action="reboot", targets=("CPE-A",))
    v = guard.check(reboot, T0, pon_id="P1", places=on_olt1)
    assert (v.allowed, v.rule, v.maintenance_window) == (
        False,
        "maintenance_window",
        WINDOW["name"],
    )
    assert "ticket 4711" in v.detail
    visit = Decision(ts=T0, subject="A", action="schedule_visit", targets=("A",))
    assert guard.check(visit, T0, places=on_olt1).rule == "maintenance_window"
    cancel = Decision(ts=T0, subject="A", action="cancel_visit", targets=("OS-1",))
    assert guard.check(cancel, T0, places=on_olt1).allowed  # takes work away: never blocked
    reboot_b = Decision(ts=T0, subject="B", action="reboot", targets=("CPE-B",))
    assert guard.check(reboot_b, T0, pon_id="P9", places=on_olt2).allowed  # other OLT
    after = pd.Timestamp(WINDOW["end"])
    assert guard.check(reboot, after, pon_id="P1", places=on_olt1).allowed  # end is exclusive
    assert guard.blocked["maintenance_window"] == 2


def test_a_region_window_and_a_regex_cover_every_onu_beneath(tmp_path):
    region = {**WINDOW, "name": "storm", "matchers": {"region": "~Camp.*"}}
    cal = load_maintenance(_file(tmp_path, [region]))
    places = [{"onu": "B", "olt": "OLT-2", "region": "Campinas"}]
    assert cal.covering(places, T0).name == "storm"
    assert cal.covering([{"onu": "X", "region": "Sorocaba"}], T0) is None


def test_the_engine_audits_blocked_actions_with_the_window(tmp_path):
    """The path the backtest and the twin take: Autopilot(settings) builds the guard."""
    settings = AutopilotSettings(jitter_max_seconds=0, maintenance_file=_file(tmp_path, [WINDOW]))
    ap = Autopilot(_Policy(*ACTIONS), _no_predictions, settings=settings)
    ap.step(Snapshot(ts=T0, status=_status()))
    dec = ap.audit.frame("decisions").set_index("action", append=True)
    blocked = dec.loc[~dec["allowed"]]
    assert sorted(a for _, a in blocked.index) == ["notify", "reboot", "schedule_visit"]
    assert set(blocked["blocked_rule"]) == {"maintenance_window"}
    assert all(json.loads(r)["maintenance_window"] == WINDOW["name"] for r in blocked["rationale"])
    acts = ap.audit.frame("actions")
    done = acts.loc[acts["status"] != "blocked"]
    assert sorted(zip(done["action_type"], done["target"], strict=True)) == [
        ("cancel_visit", "OS-1"), ("reboot", "CPE-B")]  # fmt: skip
    for r in acts.loc[acts["status"] == "blocked", "result"]:
        assert json.loads(r) == {"rule": "maintenance_window", "maintenance_window": WINDOW["name"]}


def test_bad_windows_are_refused_naming_the_file_and_field(tmp_path):
    bad_end = {**WINDOW, "end": "2026-03-02T03:00:00Z"}
    with pytest.raises(ConfigError, match=r"maint.yaml.*maintenance_windows\[0\].*after start"):
        load_maintenance(_file(tmp_path, [bad_end]))
    with pytest.raises(ConfigError, match=r"used twice"):
        load_maintenance(_file(tmp_path, [WINDOW, WINDOW]))
    with pytest.raises(ConfigError, match="maint.yaml"):
        SafetyGuard(AutopilotSettings(maintenance_file=_file(tmp_path, [{"name": "x"}])))


def _operator(tmp_path, mode):
    from guardian_lib.operate.service import Operator

    rules = {"rules": [{"name": "R", "source": "incidents"}], "maintenance_windows": [WINDOW]}
    (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(rules))
    (tmp_path / "olts.yaml").write_text(yaml.safe_dump(
        {"olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "credentials": "noc"}]}))  # fmt: skip
    (tmp_path / "subs.csv").write_text(
        "onu_id,customer_id,pon_id,olt_id,region,cpe_id\n"
        "A,C1,P1,OLT-1,Campinas,CPE-A\nB,C2,P9,OLT-2,Campinas,CPE-B\n"
    )
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(
        {"inventory": "olts.yaml", "warehouse": "wh", "model_alias": None,
         "subscribers": "subs.csv", "alerts": "alerts.yaml"}))  # fmt: skip
    return Operator(load_site(tmp_path / "site.yaml"), tmp_path / "state", mode=mode)


def test_operate_takes_the_windows_of_its_alerting_file(tmp_path):
    op = _operator(tmp_path, "execute")
    try:
        assert op.settings.maintenance_file == tmp_path / "alerts.yaml"
        op._build(load_subscribers(tmp_path / "subs.csv"))
        ap = op.autopilot
        ap.policy, ap.scorer = _Policy(*ACTIONS), _no_predictions
        ap.step(Snapshot(ts=T0, status=_status()))
        op.audit.flush()
        dec = ap.audit.frame("decisions")
    finally:
        op.close()
    assert int((dec["blocked_rule"] == "maintenance_window").sum()) == 3
    assert ap.guard.blocked["maintenance_window"] == 3


def test_an_approved_reboot_is_not_sent_inside_a_window(tmp_path):
    op = _operator(tmp_path, "approve")
    try:
        op._build(load_subscribers(tmp_path / "subs.csv"))
        for onu, cpe in (("A", "CPE-A"), ("B", "CPE-B")):
            aid = op.store.propose(ts=T0.isoformat(), action="reboot", subject=onu, target=cpe)
            op.store.decide(aid, "approved", "ana")
        op._run_approved(T0)
        rows = {a["subject"]: a for a in op.store.approvals()}
        op.audit.flush()
        dec = op.audit.frame("decisions")
    finally:
        op.close()
    assert rows["A"]["status"] == "failed"
    # the blocked decision names the window as the autopilot's do
    [rationale] = dec.loc[dec["subject"] == "A", "rationale"]
    assert json.loads(rationale)["maintenance_window"] == WINDOW["name"]
    assert json.loads(rows["A"]["result"]) == {
        "rule": "maintenance_window", "maintenance_window": WINDOW["name"]}  # fmt: skip
    assert rows["B"]["status"] != "approved"  # outside the window: it was sent (or tried)
    assert "maintenance_window" not in rows["B"]["result"]


def test_operate_refuses_a_bad_safety_maintenance_file_at_start(tmp_path):
    from guardian_lib.operate.service import Operator

    (tmp_path / "olts.yaml").write_text(yaml.safe_dump(
        {"olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "credentials": "noc"}]}))  # fmt: skip
    _file(tmp_path, [{**WINDOW, "start": "2026-03-02T04:00:00"}])  # no time zone
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(
        {"inventory": "olts.yaml", "warehouse": "wh", "model_alias": None,
         "safety": {"maintenance_file": "maint.yaml"}}))  # fmt: skip
    with pytest.raises(ConfigError, match=r"maint.yaml.*maintenance_windows\[0\].*time zone"):
        Operator(load_site(tmp_path / "site.yaml"), tmp_path / "state")
