"""Cases opened on risk alone: the expected-cost policy opens one only where a proactive
action could answer the risk (a leak or a drift seen, or a cause the scorer names), not on
a bare risk score of a healthy ONU (guardian_lib.decision.proactive)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from one_pon import T0, Devices, Field, N, Notifier, SilentCauseScorer, one_pon_observer

from guardian_lib.actions import Dispatcher
from guardian_lib.decision import (
    Autopilot,
    AutopilotSettings,
    ExpectedCostPolicy,
    PolicyBase,
    RuleScorer,
    RulesPolicy,
    Snapshot,
    make_autopilot,
)
from guardian_lib.decision.proactive import proactive_grounds, risk_grounds
from guardian_lib.loop.tick import EventRow, Tick

RISKY = 5  # the ONU the scorer calls at risk


def _feed(obs, minutes, tx, latency, events=None) -> pd.Timestamp:
    vals = {"rx_dbm": np.full(N, -20.0), "tx_dbm": tx, "ber": np.full(N, 1e-12),
            "latency_ms": latency, "loss_pct": np.full(N, 0.1)}  # fmt: skip
    ts = T0 + pd.Timedelta(minutes=minutes)
    rows = tuple(EventRow(ts, o, "onu", e, "minor", "{}") for o, e in (events or ()))
    obs.update(Tick(ts, {**vals, "online": np.ones(N, dtype=bool)}, rows))
    return ts


class BareRiskScorer(SilentCauseScorer):
    """Like an ML bundle on an unseen layout: a high 24 h risk on ONU05 whatever its
    readings (risk_2h and risk_6h small), no cause on rows without a symptom."""

    def __call__(self, snapshot):
        # A new frame: the policy reads it, not the arrays the rule scorer handed over.
        out = super().__call__(snapshot).copy()
        calm = ~snapshot.status["impacted"].to_numpy(dtype=bool)
        row = np.flatnonzero(out["onu_id"].to_numpy(dtype=object) == f"ONU{RISKY:02d}")[0]
        if calm[row]:
            out.loc[row, ["risk_2h", "risk_6h", "risk_24h"]] = [0.0003, 0.0009, 0.85]
        return out


def _run(policy, scorer, tx_drop_db=0.0, latency_ms=10.0, dhcp_every=None, hours=4):
    """Feed ``hours`` of 15-minute rounds (ONU05 changes from minute 60) through the
    autopilot; ONU05's decisions and the rebooted devices."""
    devices = Devices()
    disp = Dispatcher("execute", devices=devices, field_ops=Field(), notifier=Notifier())
    settings = AutopilotSettings(autopilot_mode="execute")
    ap = Autopilot(policy, scorer, settings=settings, dispatcher=disp)
    obs = one_pon_observer()
    for m in range(0, hours * 60, 15):
        tx = np.full(N, 2.0)
        lat = np.full(N, 10.0)
        if m >= 60:
            tx[RISKY] -= tx_drop_db
            lat[RISKY] = latency_ms
        ev = None
        if dhcp_every and m >= 60 and m % dhcp_every == 0:
            ev = [(f"ONU{RISKY:02d}", "DHCP_FAIL")]
        ts = _feed(obs, m, tx, lat, ev)
        ap.step(Snapshot(ts=ts, status=obs.status()))
    dec = ap.audit.frame("decisions")
    return dec.loc[dec["subject"] == f"ONU{RISKY:02d}"], devices


def test_bare_risk_on_a_healthy_onu_opens_no_case():
    scorer, pol = make_autopilot(BareRiskScorer())
    mine, devices = _run(pol, scorer)
    assert (mine["action"] == "open_case").sum() == 0
    assert mine.empty and devices.rebooted == []


def test_the_same_risk_with_a_drift_seen_opens_one_case():
    scorer, pol = make_autopilot(BareRiskScorer())
    mine, _ = _run(pol, scorer, tx_drop_db=2.0)  # 2 dB below its baseline, service fine
    assert (mine["action"] == "open_case").sum() == 1


def test_the_same_risk_on_a_leaking_cpe_opens_a_case_and_reboots_it():
    scorer, pol = make_autopilot(BareRiskScorer())
    mine, devices = _run(pol, scorer, latency_ms=40.0, dhcp_every=60)
    assert (mine["action"] == "open_case").sum() >= 1
    assert devices.rebooted == [f"CPE{RISKY:02d}"]


def test_rules_policy_still_opens_on_risk_alone():
    # The product notes' rules have no cost comparison: a shared branch, left as it was.
    mine, _ = _run(RulesPolicy(), BareRiskScorer())
    assert (mine["action"] == "open_case").sum() == 1


class Ungated(ExpectedCostPolicy):
    """The expected-cost policy as it was: every risk above the threshold opens a case."""

    def proactive_grounds(self, rows):
        return PolicyBase.proactive_grounds(self, rows)


@pytest.mark.parametrize("scorer", [RuleScorer, SilentCauseScorer], ids=["rules", "silent"])
@pytest.mark.parametrize(
    "change", [{"tx_drop_db": 4.0}, {"latency_ms": 40.0, "dhcp_every": 60}], ids=["drift", "leak"]
)
def test_rule_scorer_risks_have_grounds_so_its_autopilot_is_unchanged(scorer, change):
    # Every risk the rule scorer raises comes from a drift or a leak it sees: the gate
    # changes nothing for it, with its own cause probabilities or with silent ones.
    sc, gated = make_autopilot(scorer())
    mine, _ = _run(gated, sc, **change)
    before, _ = _run(Ungated(costs=gated.costs, settings=gated.settings,
                             outage_evidence=gated.outage_evidence), scorer(), **change)  # fmt: skip
    assert (mine["action"] == "open_case").sum() >= 1
    cols = ["ts", "action", "targets"]
    assert mine[cols].reset_index(drop=True).equals(before[cols].reset_index(drop=True))


def test_risk_grounds_reads_the_scorer_before_the_telemetry():
    names = ("p_massive_outage", "p_customer_premises", "p_equipment_fail",
             "p_external_network", "p_intermittent", "p_unknown")  # fmt: skip
    rows = {c: np.zeros(3) for c in names}
    rows["p_unknown"] = np.array([1.0, 0.0, 0.0])  # silent, then named
    rows["p_massive_outage"] = np.array([0.0, 1.0, 0.0])  # all massive: no visit fixes it
    rows["p_equipment_fail"] = np.array([0.0, 0.0, 1.0])
    rows["rx_drop_db"] = np.array([0.3, 3.0, 0.0])
    rows["online"] = np.ones(3, dtype=bool)
    premises, fixable = risk_grounds(rows)
    assert fixable.tolist() == [0.0, 0.0, 1.0] and premises.tolist() == [0.0, 0.0, 0.0]
    assert proactive_grounds(rows).tolist() == [False, False, True]
