"""RuleScorer, RulesPolicy and ExpectedCostPolicy on hand-made observable snapshots."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from policy_snapshots import PER_BOX, T0, case_frame, inventory, observe, snapshot

from guardian_lib.decision import (
    PREDICTION_COLUMNS,
    ExpectedCostPolicy,
    Observer,
    RuleScorer,
    RulesPolicy,
    Snapshot,
    make_autopilot,
)
from guardian_lib.decision._types import CLASS_COLUMNS
from guardian_lib.decision.costs import CostModel
from guardian_lib.decision.expected_cost import (
    cap_fixable_on_dying_gasp,
    explain_by_light_drop,
    visit_priority,
)
from guardian_lib.loop.tick import EventRow, Tick


@pytest.fixture
def obs() -> Observer:
    return Observer(*inventory())


def test_scorer_contract(obs):
    observe(obs, 0)
    ts = observe(obs, 5)
    snap = snapshot(obs, ts)
    p = snap.predictions
    assert list(p.columns) == list(PREDICTION_COLUMNS)
    probs = p[[c for c in p.columns if c.startswith("p_")]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert ((p["anomaly_score"] >= 0) & (p["anomaly_score"] <= 1)).all()
    assert (p["anomaly_score"] == 0).all()  # all healthy
    assert all(isinstance(json.loads(r), list) for r in p["top_reasons"])


def test_scorer_tells_massive_from_individual(obs):
    observe(obs, 0)
    online = np.ones(obs.n, dtype=bool)
    online[:PER_BOX] = False  # box 0 down: a massive outage
    online[20] = False  # one ONU of box 2 down
    loss = np.full(obs.n, 0.1)
    loss[28] = 100.0  # online without PPPoE: a hung CPE
    ts = observe(obs, 5, online=online, loss_pct=loss)
    p = snapshot(obs, ts).predictions.set_index("onu_id")
    assert p.loc["ONU000", "p_massive_outage"] > 0.8
    assert p.loc["ONU020", "p_massive_outage"] < 0.2
    assert p.loc["ONU020", ["p_equipment_fail", "p_intermittent"]].sum() > 0.6
    classes = [c for c in PREDICTION_COLUMNS if c.startswith("p_")]
    assert p.loc["ONU028", classes].astype(float).idxmax() == "p_customer_premises"


def test_rules_open_incident_hold_visits_and_notify(obs):
    observe(obs, 0)
    online = np.ones(obs.n, dtype=bool)
    online[:PER_BOX] = False
    ts = observe(obs, 10, online=online)
    orders = pd.DataFrame(
        {"os_id": ["OS1"], "onu_id": ["ONU003"], "status": ["scheduled"], "opened_by": ["cc"]}
    )
    snap = snapshot(obs, ts, orders=orders, cases=case_frame("ONU003", T0, visit="OS1"))
    decisions = RulesPolicy().decide(snap)
    by_action = {d.action: d for d in decisions}
    assert by_action["open_incident"].params["scope_type"] == "box"
    assert set(by_action["open_incident"].targets) == {f"ONU{i:03d}" for i in range(PER_BOX)}
    assert by_action["hold_visits"].targets == ("OS1",)
    assert len(by_action["notify"].targets) == PER_BOX
    assert by_action["close_case"].subject == "ONU003"  # merged into the incident
    assert not any(d.action == "open_case" for d in decisions)


def test_rules_notify_reboot_then_visit_then_close(obs):
    loss = np.full(obs.n, 0.1)
    loss[5] = 100.0
    observe(obs, 0)
    ts = observe(obs, 5, loss_pct=loss)
    pol = RulesPolicy()
    d0 = pol.decide(snapshot(obs, ts))
    assert [d.action for d in d0] == ["open_case", "notify", "reboot"]
    cases = case_frame("ONU005", ts)
    ts = observe(obs, 20, loss_pct=loss)
    d1 = pol.decide(snapshot(obs, ts, cases=cases))
    assert {d.action for d in d1} == {"notify", "reboot"}
    reboot = next(d for d in d1 if d.action == "reboot")
    assert reboot.targets == ("OUI-X-005",) and reboot.case_id == "CASE1"
    # Rebooted 15 min ago: no second reboot within 6 h, no visit yet.
    cases = case_frame("ONU005", T0, reboots=1, last_reboot=ts)
    cases["notified"] = True
    assert pol.decide(snapshot(obs, observe(obs, 35, loss_pct=loss), cases=cases)) == []
    # Still down 90 min after the reboot: a priority visit.
    cases = case_frame("ONU005", T0, reboots=1, last_reboot=ts)
    cases["notified"] = True
    ts2 = observe(obs, 110, loss_pct=loss)
    d2 = pol.decide(snapshot(obs, ts2, cases=cases))
    assert [d.action for d in d2] == ["schedule_visit"]
    assert d2[0].params["priority"] == "high"
    # Back and stable for 30 min: close and cancel the visit.
    observe(obs, 115)
    ts3 = observe(obs, 150)
    cases["visit_os_id"] = "OS9"
    orders = pd.DataFrame(
        {"os_id": ["OS9"], "onu_id": ["ONU005"], "status": ["scheduled"], "opened_by": ["a"]}
    )
    d3 = pol.decide(snapshot(obs, ts3, cases=cases, orders=orders))
    assert [d.action for d in d3] == ["cancel_visit", "close_case"]
    assert d3[0].targets == ("OS9",)


def test_expected_cost_reboots_a_hang_and_waits_on_a_power_cut(obs):
    loss = np.full(obs.n, 0.1)
    loss[5] = 100.0
    online = np.ones(obs.n, dtype=bool)
    online[12] = False
    observe(obs, 0)
    ts = observe(obs, 5, online=online, loss_pct=loss)
    gasp = EventRow(ts, "ONU012", "onu", "DYING_GASP", "major")
    obs.update(Tick(ts, {**obs.values, "online": obs.online}, (gasp,)))
    ts = observe(obs, 60, online=online, loss_pct=loss)
    cases = pd.concat([case_frame("ONU005", T0), case_frame("ONU012", T0)])
    cases["case_id"] = ["CASE1", "CASE2"]
    scorer, pol = make_autopilot()
    snap = snapshot(obs, ts, scorer=scorer, cases=cases)
    assert snap.status.loc["ONU012", "down_type"] == "DYING_GASP"
    decisions = pol.decide(snap)
    acts = {(d.subject, d.action) for d in decisions}
    assert ("ONU005", "reboot") in acts
    assert ("ONU012", "schedule_visit") not in acts
    reboot = next(d for d in decisions if d.action == "reboot")
    costs = reboot.rationale["costs_brl"]
    assert costs["reboot"] == min(costs.values())
    assert reboot.expected_cost_brl == pytest.approx(costs["reboot"], abs=0.01)
    assert reboot.rationale["subtype"] == "hang"


def test_expected_cost_sends_a_technician_to_a_lone_los(obs):
    online = np.ones(obs.n, dtype=bool)
    online[20] = False
    observe(obs, 0)
    observe(obs, 5, online=online)
    pol = ExpectedCostPolicy()
    ts = observe(obs, 20, online=online)
    d = pol.decide(snapshot(obs, ts, cases=case_frame("ONU020", T0)))
    assert not [x for x in d if x.action == "schedule_visit"]  # too early: could be a blip
    ts = observe(obs, 90, online=online)
    d = pol.decide(snapshot(obs, ts, cases=case_frame("ONU020", T0)))
    visit = [x for x in d if x.action == "schedule_visit"]
    assert len(visit) == 1 and visit[0].targets == ("ONU020",)
    assert (
        visit[0].rationale["costs_brl"]["schedule_visit"] < visit[0].rationale["costs_brl"]["wait"]
    )


def test_policy_needs_predictions(obs):
    ts = observe(obs, 0)
    with pytest.raises(ValueError, match="predictions is None"):
        RulesPolicy().decide(Snapshot(ts=ts, status=obs.status()))


def test_nan_class_probabilities_from_the_ml_models_are_safe(obs):
    """The ML models leave p_* NaN where there is no symptom: policies must cope."""
    online = np.ones(obs.n, dtype=bool)
    online[20] = False
    observe(obs, 0)
    observe(obs, 5, online=online)
    ts = observe(obs, 90, online=online)

    def ml_like(snap):
        p = RuleScorer(model_version="ml/1")(snap)
        healthy_rows = p["onu_id"] != "ONU020"
        p.loc[healthy_rows, [c for c in p.columns if c.startswith("p_")]] = np.nan
        p.loc[healthy_rows, "top_reasons"] = None
        return p

    scorer, pol = make_autopilot(scorer=ml_like)
    d = pol.decide(snapshot(obs, ts, scorer=scorer, cases=case_frame("ONU020", T0)))
    assert [x.action for x in d] == ["notify", "schedule_visit"]
    assert d[1].model_version == "ml/1"
    with pytest.raises(KeyError, match="risk_24h"):
        pol.decide(Snapshot(ts=ts, status=obs.status(),
                            predictions=ml_like(Snapshot(ts=ts, status=obs.status()))
                            .drop(columns=["risk_24h"])))  # fmt: skip


def test_expected_cost_waits_on_a_dying_gasp_whatever_the_scorer_says(obs):
    """A lone ONU that sent a dying gasp lost its power: fibre and a dead laser show as
    LOS, so a scorer's equipment probability (an ML bundle on a layout it never saw)
    does not buy a visit; a visit-fixable cause is capped at the power-supply share."""
    online = np.ones(obs.n, dtype=bool)
    online[12] = False
    observe(obs, 0)
    ts = observe(obs, 5, online=online)
    gasp = EventRow(ts, "ONU012", "onu", "DYING_GASP", "major")
    obs.update(Tick(ts, {**obs.values, "online": obs.online}, (gasp,)))
    ts = observe(obs, 90, online=online)

    def ml_like(onu: str):
        """The rule scorer, but 0.94 equipment failure on ``onu`` (as an ML bundle may say)."""

        def score(snap):
            p = RuleScorer(model_version="ml/1")(snap)
            row = p["onu_id"] == onu
            p.loc[row, ["p_customer_premises", "p_equipment_fail", "p_unknown"]] = [
                0.04,
                0.94,
                0.02,
            ]
            return p.copy()  # a new frame: the scorer's cached columns are of the old one

        return score

    scorer, pol = make_autopilot(scorer=ml_like("ONU012"))
    snap = snapshot(obs, ts, scorer=scorer, cases=case_frame("ONU012", T0))
    assert snap.status.loc["ONU012", "down_type"] == "DYING_GASP"
    decisions = pol.decide(snap)
    assert [d.action for d in decisions] == ["notify"]
    costs = decisions[0].rationale["costs_brl"]
    assert costs["wait"] < costs["schedule_visit"]
    assert decisions[0].rationale["subtype"] == "power"
    # The same scorer on a lone LOS (nothing capped) still sends the technician.
    online[12], online[20] = True, False
    obs2 = Observer(*inventory())
    observe(obs2, 0)
    observe(obs2, 5, online=online)
    ts = observe(obs2, 90, online=online)

    scorer, pol = make_autopilot(scorer=ml_like("ONU020"))
    d = pol.decide(snapshot(obs2, ts, scorer=scorer, cases=case_frame("ONU020", T0)))
    assert "schedule_visit" in [x.action for x in d]


def test_dying_gasp_cap_leaves_the_rule_scorer_alone(obs):
    """The rule scorer's dying-gasp row is below the cap: its autopilot is unchanged."""
    online = np.ones(obs.n, dtype=bool)
    online[12] = False
    observe(obs, 0)
    ts = observe(obs, 5, online=online)
    gasp = EventRow(ts, "ONU012", "onu", "DYING_GASP", "major")
    obs.update(Tick(ts, {**obs.values, "online": obs.online}, (gasp,)))
    ts = observe(obs, 60, online=online)
    pred = snapshot(obs, ts).predictions
    q = pred[list(CLASS_COLUMNS)].to_numpy(dtype=float)
    dg = (pred["onu_id"] == "ONU012").to_numpy()
    assert q[dg, CLASS_COLUMNS.index("p_customer_premises")][0] > 0.5
    np.testing.assert_array_equal(
        cap_fixable_on_dying_gasp(q, dg, CostModel().dying_gasp_fixable_share), q
    )


def test_dying_gasp_cap_leaves_other_rows_and_calibrated_scorers_alone():
    q = np.array(
        [
            [0.0, 0.04, 0.90, 0.0, 0.04, 0.02],  # dying gasp, equipment-heavy: capped
            [0.0, 0.85, 0.02, 0.0, 0.00, 0.13],  # dying gasp, the rule scorer's row: kept
            [0.0, 0.04, 0.90, 0.0, 0.04, 0.02],  # LOS: kept
            [0.5, 0.04, 0.40, 0.0, 0.04, 0.02],  # dying gasp with a massive share
        ]
    )
    dg = np.array([True, True, False, True])
    out = cap_fixable_on_dying_gasp(q, dg, 0.05)
    np.testing.assert_allclose(out.sum(axis=1), q.sum(axis=1))
    np.testing.assert_array_equal(out[1:3], q[1:3])
    for i in (0, 3):
        individual = out[i, 1] + out[i, 2] + out[i, 4]
        assert out[i, 2] + out[i, 4] == pytest.approx(0.05 * individual)
        assert out[i, 2] / out[i, 4] == pytest.approx(q[i, 2] / q[i, 4])  # proportions kept
        assert out[i, [0, 3, 5]].tolist() == q[i, [0, 3, 5]].tolist()
    assert q[0, 2] == 0.90  # the input is not modified


def test_a_degrading_link_gets_a_priority_visit_degraded_wifi_the_regular_slot(obs):
    """Bit errors with the light 3 dB down will not end alone and are heading for LOS: the
    visit is a priority one (the regular slot, days away, only pays for problems that
    may end before the technician comes). Degraded Wi-Fi keeps the regular slot."""
    rx = np.full(obs.n, -20.0)
    ber = np.full(obs.n, 1e-12)
    rx[7], ber[7] = -23.0, 1e-5  # a degrading fibre: errors, light down
    observe(obs, 0)
    for m in range(5, 95, 5):
        ts = observe(obs, m, rx_dbm=rx, ber=ber)

    def sure(snap):  # no short-blip share: a visit is the cheapest option at once
        p = RuleScorer()(snap)
        row = p["onu_id"] == "ONU007"
        p.loc[row, ["p_intermittent", "p_unknown"]] = [0.88, 0.0]
        return p.copy()  # a new frame: the scorer's cached columns are of the old one

    scorer, pol = make_autopilot(scorer=sure)
    snap = snapshot(obs, ts, scorer=scorer, cases=case_frame("ONU007", T0))
    assert snap.status.loc["ONU007", "degraded"] and snap.status.loc["ONU007", "online"]
    visit = [d for d in pol.decide(snap) if d.action == "schedule_visit"]
    assert len(visit) == 1 and visit[0].params["priority"] == "high"
    assert visit[0].rationale["p_self_resolving_posterior"] < 0.5
    assert visit_priority(False, True, 0.9) == "normal"  # Wi-Fi-like: may end first
    assert visit_priority(True, True, 0.9) == "high"  # an outage always
    assert visit_priority(False, False, 0.0) == "normal"  # proactive: planned ahead


def test_a_degraded_link_with_its_light_down_is_visited_not_waited_on(obs):
    """Bit errors with the light 3 dB down: a link fault (Wi-Fi and unexplained blips do
    not move the optical level). Whatever short-blip or Wi-Fi share the scorer leaves,
    the visit the link needs anyway is ordered once the problem has lasted
    ``min_visit_min``, not after hours of errors that come and go, and no Wi-Fi profile
    change is spent on it. The same errors with the light at its baseline wait."""
    rx = np.full(obs.n, -20.0)
    ber = np.full(obs.n, 1e-12)
    rx[7], ber[7] = -23.0, 1e-5  # a degrading fibre
    observe(obs, 0)
    for m in (5, 10, 15, 20, 25, 30):
        ts = observe(obs, m, rx_dbm=rx, ber=ber)
    scorer, pol = make_autopilot()
    snap = snapshot(obs, ts, scorer=scorer, cases=case_frame("ONU007", T0))
    p = snap.predictions.set_index("onu_id").loc["ONU007"]
    assert p["p_unknown"] + p["p_customer_premises"] > 0.1  # the scorer leaves room
    d = pol.decide(snap)
    assert [x.action for x in d] == ["schedule_visit"]
    assert d[0].params["priority"] == "high"
    costs = d[0].rationale["costs_brl"]
    assert costs["schedule_visit"] < costs["wait"]
    q = np.array([[0.0, 0.02, 0.10, 0.0, 0.78, 0.10], [0.0, 0.55, 0.05, 0.0, 0.0, 0.40]])
    out = explain_by_light_drop(q, np.array([True, False]), 0.02)
    assert out[0, 1] + out[0, 5] == pytest.approx(0.02)
    np.testing.assert_allclose(out.sum(axis=1), q.sum(axis=1))
    np.testing.assert_array_equal(out[1], q[1])  # light at its baseline: untouched
