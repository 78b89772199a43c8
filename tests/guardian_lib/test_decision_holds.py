"""Decision-engine follow-ups of issue 15: outage-evidence settings, policies that know
the reboots the safety layer would refuse, and reboots counted on a case when sent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from guardian_lib.actions import ActionResult, Dispatcher
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
from guardian_lib.decision.settings import SettingsError
from guardian_lib.errors import ConfigError
from guardian_lib.loop.tick import Tick

T0 = pd.Timestamp("2026-03-02 08:00", tz="UTC")


class Devices:
    def reboot(self, device_id):
        return "200"

    def change_wifi_profile(self, device_id):
        return "200"


class Queue(Dispatcher):
    """Approve mode's dispatcher in miniature: every device action is only proposed."""

    def execute(self, decision, at=None):
        at = decision.ts if at is None else at
        return [ActionResult(decision.action, str(t), "queued", at, at) for t in decision.targets]


class Fleet:
    """``n`` ONUs on one PON; ``hung(m)`` → ONU indices online without service at ``m``."""

    def __init__(self, policy: str, n: int = 8, dispatcher: Dispatcher | None = None):
        self.n = n
        self.ids = [f"ONU{k}" for k in range(n)]
        onus = pd.DataFrame({"onu_id": self.ids, "pon_id": "P0", "olt_id": "OLT1",
                             "splitter_id": [f"B{k // 4}" for k in range(n)]})  # fmt: skip
        cust = pd.DataFrame({"customer_id": [f"C{k}" for k in range(n)], "onu_id": self.ids,
                             "cpe_id": [f"CPE{k}" for k in range(n)], "region": "R",
                             "segment": "residential"})  # fmt: skip
        self.obs = Observer(onus, cust)
        settings = AutopilotSettings(autopilot_mode="execute", jitter_max_seconds=0)
        if policy == "rules":
            scorer, pol = RuleScorer(), RulesPolicy()
        else:
            scorer, pol = make_autopilot(RuleScorer(), settings=settings)
        disp = dispatcher or Dispatcher("execute", devices=Devices())
        self.ap = Autopilot(pol, scorer, settings=settings, dispatcher=disp)

    def run(self, minutes, hung, dark=lambda m: ()) -> pd.DataFrame:
        """Step every round; ``dark(m)`` → ONU indices offline (LOS) at ``m``."""
        for m in minutes:
            ts = T0 + pd.Timedelta(minutes=m)
            bad = np.zeros(self.n, dtype=bool)
            bad[list(hung(m))] = True
            online = np.ones(self.n, dtype=bool)
            online[list(dark(m))] = False
            vals = {"online": online, "rx_dbm": np.full(self.n, -20.0),
                    "tx_dbm": np.full(self.n, 2.0), "ber": np.full(self.n, 1e-12),
                    "latency_ms": np.full(self.n, 10.0),
                    "loss_pct": np.where(bad, 100.0, 0.1)}  # fmt: skip
            self.obs.update(Tick(ts, vals, ()))
            self.ap.step(Snapshot(ts=ts, status=self.obs.status()))
        dec = self.ap.audit.frame("decisions")
        dec["mins"] = (pd.to_datetime(dec["ts"], utc=True) - T0).dt.total_seconds() / 60
        return dec


# --- 1. outage evidence from the settings -----------------------------------------------
def test_outage_thresholds_are_settings_of_the_policy_the_env_and_the_site(tmp_path, monkeypatch):
    s = AutopilotSettings(outage_box_min_count=5, outage_pon_min_share=0.5,
                          outage_coincidence_min=5)  # fmt: skip
    _, policy = make_autopilot(settings=s)
    ev = policy.outage_evidence
    assert (ev.box_min_count, ev.pon_min_share, ev.coincidence_min) == (5, 0.5, 5.0)
    assert make_autopilot()[1].outage_evidence == AutopilotSettings().outage_evidence()
    monkeypatch.setenv("OUTAGE_OLT_MIN_COUNT", "12")
    assert make_autopilot(settings=AutopilotSettings())[1].outage_evidence.olt_min_count == 12
    monkeypatch.setenv("OUTAGE_OLT_MIN_COUNT", "1")
    with pytest.raises(SettingsError, match="OUTAGE_OLT_MIN_COUNT.*greater than or equal to 2"):
        AutopilotSettings()
    monkeypatch.delenv("OUTAGE_OLT_MIN_COUNT")
    monkeypatch.setenv("OUTAGE_BOX_MINSHARE", "0.4")  # misspelt: refused, with the hint
    with pytest.raises(ConfigError, match="did you mean OUTAGE_BOX_MIN_SHARE"):
        AutopilotSettings()
    monkeypatch.delenv("OUTAGE_BOX_MINSHARE")
    with pytest.raises(SettingsError, match="OUTAGE_PON_MIN_SHARE"):
        AutopilotSettings(outage_pon_min_share=1.5)
    # The site file names its own field.
    from guardian_lib.operate.site import load_site

    (tmp_path / "olts.yaml").write_text(yaml.safe_dump(
        {"olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "credentials": "noc"}]}))  # fmt: skip
    site = {"inventory": "olts.yaml", "warehouse": "wh", "safety": {"outage_box_min_share": 0}}
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    with pytest.raises(ConfigError, match=r"safety\.outage_box_min_share"):
        load_site(tmp_path / "site.yaml")
    site["safety"] = {"outage_box_min_share": 0.75}
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    ok = load_site(tmp_path / "site.yaml").autopilot_settings("execute")
    assert ok.outage_evidence().box_min_share == 0.75


# --- 2. reboots the safety layer would refuse -------------------------------------------
def _hang_twice(m):
    # hung 30–60 min, back (case closes), hung again from 120 min: within the cooldown
    return {3} if 30 <= m < 60 or m >= 120 else set()


@pytest.mark.parametrize("policy", ["rules", "autopilot"])
def test_a_reopened_case_waits_for_the_cpes_cooldown_instead_of_asking(policy):
    fleet = Fleet(policy)
    dec = fleet.run(range(0, 9 * 60, 15), _hang_twice)
    mine = dec[dec["subject"] == "ONU3"]
    assert (mine["action"] == "open_case").sum() == 2  # the case closed and reopened
    reboots = mine[mine["action"] == "reboot"]
    # every reboot asked was allowed: none during the cooldown of the first one
    assert reboots["allowed"].astype(bool).all()
    assert fleet.ap.guard.blocked["reboot_cooldown"] == 0
    first = reboots["mins"].iat[0]
    assert 30 <= first < 60
    later = reboots["mins"].to_numpy()[1:]
    assert (later >= first + 360).all()


@pytest.mark.parametrize("policy", ["rules", "autopilot"])
def test_no_reboot_is_asked_under_an_open_outage_of_the_box(policy):
    fleet = Fleet(policy)
    # three ONUs of box B0 go dark together at 30 min (an incident); their neighbour
    # ONU3 hangs at 120 min, too late to be a member: its reboot would be held
    dec = fleet.run(
        range(0, 4 * 60, 15),
        lambda m: {3} if m >= 120 else set(),
        lambda m: {0, 1, 2} if m >= 30 else (),
    )
    opened = dec[dec["action"] == "open_incident"]
    assert list(opened["subject"]) == ["box:B0"]
    assert ((dec["subject"] == "ONU3") & (dec["action"] == "open_case")).sum() == 1
    assert not ((dec["subject"] == "ONU3") & (dec["action"] == "reboot")).any()
    assert fleet.ap.guard.blocked["active_outage"] == 0


def test_the_guard_predicts_its_own_device_refusals():
    fleet = Fleet("rules")
    fleet.run(range(0, 61, 15), lambda m: {3} if m >= 30 else set())
    holds = fleet.ap.reboot_holds_frame(T0 + pd.Timedelta(minutes=60))
    assert list(holds.index) == ["CPE3"] and holds["rule"].iat[0] == "reboot_cooldown"
    assert holds["until"].iat[0] == T0 + pd.Timedelta(minutes=30 + 360)
    assert fleet.ap.reboot_holds_frame(T0 + pd.Timedelta(minutes=30 + 360)).empty


# --- 3. a proposal is not a reboot ----------------------------------------------------
def test_a_queued_reboot_is_not_counted_on_the_case_until_it_is_sent():
    fleet = Fleet("rules", dispatcher=Queue("execute"))
    dec = fleet.run(range(0, 61, 15), lambda m: {3} if m >= 30 else set())
    assert (dec["action"] == "reboot").any()
    case = fleet.ap.cases["ONU3"]
    assert case["reboots"] == 0 and pd.isna(case["last_reboot_at"])
    # the operator approves: the send takes the autopilot's path and counts then
    ts = T0 + pd.Timedelta(minutes=75)
    sent = Decision(ts=ts, subject="ONU3", action="reboot", targets=("CPE3",))
    fleet.ap.follow("D1", sent, [ActionResult("reboot", "CPE3", "pending", ts, None)], ts)
    assert case["reboots"] == 1 and case["last_reboot_at"] == ts
    fleet.ap.follow("D2", sent, [ActionResult("reboot", "CPE3", "failed", ts, ts)], ts)
    assert case["reboots"] == 1  # a send the ACS refused reached nothing
