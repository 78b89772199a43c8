"""Massive outage or one customer's fault: the evidence and the decision-level scores.

Synthetic fleets fed tick by tick through the real :class:`Observer` and
:class:`Autopilot`; a scorer that never says "massive" (as an ML bundle that does not
know the network), so that every incident here comes from the topology evidence.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from decision_harness import T0, SyntheticNet, targets

from guardian_lib.decision import (
    RuleScorer,
    Snapshot,
)
from guardian_lib.decision._types import CLASS_COLUMNS
from guardian_lib.decision.neighbours import OutageEvidence, coincident_outages
from guardian_lib.kpis import classification_scores, problem_classification_scores
from guardian_lib.loop.tick import EventRow, Tick


class NeverMassiveScorer(RuleScorer):
    """The rule scorer's risks, but every symptom is called an individual fault."""

    def __call__(self, snapshot):
        out = super().__call__(snapshot)
        hit = out["p_unknown"].to_numpy() < 1.0
        for c in CLASS_COLUMNS:
            out.loc[hit, c] = 0.0
        out.loc[hit, "p_intermittent"] = 0.9
        out.loc[hit, "p_unknown"] = 0.1
        return out


def Net(n_pons: int, pon_size: int, box_size: int, policy: str = "autopilot") -> SyntheticNet:
    return SyntheticNet(n_pons, pon_size, box_size, policy, scorer=NeverMassiveScorer)


@pytest.mark.parametrize("policy", ["autopilot", "rules"])
@pytest.mark.parametrize("box_size", [2, 4])
def test_rx_step_under_a_box_is_one_incident_not_a_case_per_onu(policy, box_size):
    """A damaged street box cuts the light of its ONUs by 6 dB at once; they stay online
    with service. Before, each got a case (high risk, its own fault) and no incident
    opened (members had to be impacted); the box of 2 had no neighbour count at all."""
    net = Net(1, 16, box_size, policy)
    box = range(box_size, 2 * box_size)
    dec = net.run(range(0, 5 * 60, 15),
                  lambda m: ({}, dict.fromkeys(box, 6.0) if 30 <= m < 180 else {}, ()))  # fmt: skip
    opened = dec.loc[dec["action"] == "open_incident"]
    assert list(opened["subject"]) == ["box:B1"]
    assert targets(opened["targets"].iat[0]) == {net.ids[k] for k in box}
    assert not ((dec["action"] == "open_case") & dec["subject"].isin(net.ids)).any()
    assert net.field.opened == [] and net.notifier.sent == []  # service was never down
    closed = dec.loc[dec["action"] == "close_incident", "mins"]
    assert len(closed) == 1 and 180 <= closed.iat[0] <= 180 + 45 and net.ap.incidents == {}


def test_rx_drifts_of_two_onus_hours_apart_are_not_a_box_outage():
    """Two drop fibres of one box degrading at different times are two faults."""
    net = Net(1, 16, 4)
    dec = net.run(range(0, 8 * 60, 15),
                  lambda m: ({}, {k: 6.0 for k, t in ((4, 30), (5, 300)) if m >= t}, ()))  # fmt: skip
    assert not dec["action"].isin(["open_incident", "join_incident"]).any()
    cases = dec.loc[dec["action"] == "open_case", "subject"]
    assert set(cases) == {net.ids[4], net.ids[5]}


@pytest.mark.parametrize("policy", ["autopilot", "rules"])
def test_an_onu_degraded_before_the_outage_is_a_member_not_a_visit(policy):
    """ONU 4 has had slow service for two hours when its box goes dark. Before, its
    problem "began" two hours earlier, so it was not among the ONUs that failed
    together: the incident left it out and its LOS got a visit."""
    net = Net(1, 16, 4, policy)
    box = range(4, 8)
    dec = net.run(range(0, 5 * 60, 15),
                  lambda m: (dict.fromkeys(box, "LOS") if 120 <= m < 240 else {}, {},
                             (4,) if m < 240 else ()))  # fmt: skip
    opened = dec.loc[dec["action"] == "open_incident"]
    assert len(opened) == 1
    assert targets(opened["targets"].iat[0]) == {net.ids[k] for k in box}
    # No visit for its LOS; the case of its slow service merges into the incident.
    mine = dec.loc[dec["subject"] == net.ids[4]]
    assert not ((mine["action"] == "schedule_visit") & (mine["mins"] >= 120)).any()
    merged = mine.loc[(mine["action"] == "close_case") & (mine["mins"] == opened["mins"].iat[0])]
    assert "merged into massive incident" in merged["rationale"].iat[0]


def test_observer_times_a_degraded_onu_going_dark_from_when_it_went_dark():
    net = Net(1, 4, 4)
    net.run(range(0, 61, 15), lambda m: ({0: "LOS"} if m >= 45 else {}, {}, (0,)))
    st = net.obs.status()
    assert st["impacted_min"].iat[0] == 60.0 and st["down_min"].iat[0] == 15.0
    assert st["down_min"].iat[1] == 0.0 and st["rx_low_min"].iat[1] == 0.0
    # A state saved before these columns existed still loads (unknown: 0 min).
    state = net.obs.state_dict()
    del state["down_since_s"], state["rx_low_since_s"]
    net.obs.load_state_dict(state)
    assert (net.obs.status()["down_min"] == 0.0).all()


def test_coincident_rx_steps_need_share_count_and_time():
    n = 8  # one PON of two boxes of 4
    st = pd.DataFrame(
        {"online": True, "service_up": True, "impacted_min": 0.0, "down_min": 0.0,
         "rx_dbm": -20.0, "rx_drop_db": 0.0, "rx_low_min": 0.0,
         "box_id": [f"B{k // 4}" for k in range(n)], "pon_id": "P0", "olt_id": "O0"},
        index=pd.Index([f"ONU{k}" for k in range(n)], name="onu_id"),
    )  # fmt: skip
    st.loc[st.index[[0, 1]], ["rx_drop_db", "rx_low_min"]] = [6.0, 20.0]
    out = coincident_outages(st, OutageEvidence())
    assert list(out["outage_scope_type"].iloc[:2]) == ["box", "box"]
    assert out["outage_scope_type"].iloc[2:].isna().all()
    st.loc[st.index[1], "rx_low_min"] = 20.0 + 24 * 60  # the other one a day earlier
    assert coincident_outages(st, OutageEvidence())["outage_scope_type"].isna().all()


def ts(m: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=m)


def _dec(rows):
    return pd.DataFrame(rows, columns=["ts", "action", "targets", "case_id", "subject"]).assign(
        targets=lambda d: d["targets"].map(json.dumps)
    )


def test_problem_scores_judge_the_call_held_on_each_problem():
    labels = pd.DataFrame(
        {"onu_id": ["A", "B", "C", "D", "E", "F"],
         "start_at": [ts(0), ts(0), ts(120), ts(0), ts(0), pd.NaT],
         "end_at": [ts(60), ts(60), ts(240), ts(5), ts(60), ts(300)],
         "massive": [True, True, False, False, False, False],
         "onset_at": [ts(0), ts(0), ts(0), ts(0), ts(0), ts(100)],
         "confirmed": [True, True, True, True, False, True]}
    )  # fmt: skip
    dec = _dec([
        (ts(10), "open_incident", ["A"], "INC1", "box:B"),
        (ts(25), "join_incident", ["B"], "INC1", "box:B"),  # joined: massive, found
        (ts(30), "open_case", ["C"], "CASE1", "C"),  # proactive, before C's impact
        (ts(2), "open_case", ["D"], "CASE2", "D"),  # a 5-min problem: not scored
        (ts(10), "open_case", ["E"], "CASE3", "E"),  # unconfirmed symptom: not scored
        (ts(150), "open_case", ["F"], "CASE4", "F"),  # precursor of a fault never hurting
        (ts(10), "open_case", ["G"], "CASE5", "G"),  # nothing there: an error
        (ts(90), "close_incident", ["INC1"], "INC1", "box:B"),
    ])  # fmt: skip
    s = problem_classification_scores(dec, labels)
    assert s["problem_massive_precision"] == 1.0 and s["problem_massive_recall"] == 1.0
    assert s["problem_individual_recall"] == 1.0  # C, by its proactive case
    assert s["problem_individual_precision"] == pytest.approx(1 / 2)  # C right, G wrong
    assert s["problem_unscored_calls"] == 3  # D, E, F
    # The per-decision scores count the join and the proactive case as misses.
    old = classification_scores(dec, labels)
    assert old["massive_recall"] == pytest.approx(1 / 2)
    assert old["individual_recall"] == 0.0


def test_problem_scores_count_an_individual_fault_held_in_an_incident_as_massive():
    """A customer's own fault while its ONU is still a member of an incident: its visit
    was held as part of the outage, a massive call on an individual problem."""
    labels = pd.DataFrame(
        {"onu_id": ["A", "A"], "start_at": [ts(0), ts(70)], "end_at": [ts(60), ts(200)],
         "massive": [True, False]}
    )  # fmt: skip
    dec = _dec([(ts(10), "open_incident", ["A"], "INC1", "box:B"),
                (ts(100), "close_incident", ["INC1"], "INC1", "box:B")])  # fmt: skip
    s = problem_classification_scores(dec, labels)
    assert s["problem_massive_precision"] == pytest.approx(1 / 2)
    assert s["problem_individual_recall"] == 0.0
    assert np.isnan(s["problem_individual_precision"])


def test_a_problem_inside_another_of_the_same_onu_is_not_scored():
    """A customer switches the power off while a power cut has the ONU dark: nothing a
    policy sees changes; once it outlasts the cut it is scored again."""
    dec = _dec([(ts(10), "open_incident", ["A"], "INC1", "geo"),
                (ts(400), "close_incident", ["INC1"], "INC1", "geo")])  # fmt: skip
    for end, masked in ((200, 1), (500, 0)):
        labels = pd.DataFrame(
            {"onu_id": ["A", "A"], "start_at": [ts(0), ts(100)], "end_at": [ts(300), ts(end)],
             "massive": [True, False]}
        )  # fmt: skip
        s = problem_classification_scores(dec, labels)
        assert s["problem_masked"] == masked
        assert s["problem_massive_recall"] == 1.0
        if masked:
            assert np.isnan(s["problem_individual_recall"])
        else:  # held in the incident until minute 400: a massive call on it
            assert s["problem_individual_recall"] == 0.0


def _status_after(net: SyntheticNet, steps: list[tuple[float, set[int]]]) -> Snapshot:
    """Observer fed one tick per (minute, dark rows); the last snapshot."""
    for m, dark in steps:
        online = np.ones(net.n, dtype=bool)
        online[list(dark)] = False
        vals = {"rx_dbm": np.where(online, -20.0, np.nan), "loss_pct": np.full(net.n, 0.1),
                "latency_ms": np.full(net.n, 10.0)}  # fmt: skip
        ts_m = T0 + pd.Timedelta(minutes=m)
        ev = tuple(EventRow(ts_m, net.ids[k], "onu", "LOS", "minor", "{}") for k in dark)
        net.obs.update(Tick(ts_m, {**vals, "online": online}, ev))
    return Snapshot(ts=ts_m, status=net.obs.status())


def test_rule_scorer_calls_massive_only_what_failed_together():
    """Box B1 (4 ONUs): two dark for a day, a third dies now — one customer's fault, not
    an outage (before, ``rules-1`` counted the neighbours dark now, whenever they failed,
    and called it massive). Box B2: three go dark in the same minutes — an outage."""
    net = Net(1, 16, 4)
    snap = _status_after(net, [(0, {4, 5}), (24 * 60, {4, 5, 6, 8, 9, 10})])
    p = RuleScorer()(snap).set_index("onu_id")
    assert p.loc[net.ids[6], "p_massive_outage"] < 0.05
    assert p.loc[net.ids[6], "p_equipment_fail"] > 0.4
    assert (p.loc[[net.ids[k] for k in (8, 9, 10)], "p_massive_outage"] == 1.0).all()
    assert "failed together" in p.loc[net.ids[8], "top_reasons"]


@pytest.mark.parametrize("policy", ["autopilot", "rules"])
def test_sessions_lost_behind_the_bng_are_one_incident_and_a_lone_one_is_a_case(policy):
    """Every ONU of the OLT stays online but loses its PPPoE session at once (the BNG):
    one incident at the OLT, cause external network, no per-ONU case. A single ONU
    without a session (a hung CPE) is its own case."""
    net = Net(2, 16, 4, policy)
    every = tuple(range(net.n))
    dec = net.run(range(0, 4 * 60, 15),
                  lambda m: ({}, {}, (), every if 30 <= m < 150 else (3,) if m >= 180 else ()))  # fmt: skip
    opened = dec.loc[dec["action"] == "open_incident"]
    assert list(opened["subject"]) == ["bng:OLT1"]
    assert targets(opened["targets"].iat[0]) == set(net.ids)
    assert json.loads(opened["rationale"].iat[0])["params"]["cause"] == "EXTERNAL_NETWORK"
    early = dec.loc[dec["mins"] < 180]
    assert not (early["action"] == "open_case").any()
    late = dec.loc[(dec["mins"] >= 180) & dec["action"].isin(["open_case", "open_incident"])]
    assert list(zip(late["action"], late["subject"], strict=True)) == [("open_case", net.ids[3])]
