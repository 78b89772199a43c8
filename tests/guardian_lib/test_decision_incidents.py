"""Shared incidents from topology evidence, whatever the scorer says (issue 15).

The scorer here calls every dark ONU an individual equipment failure (as an ML bundle
that does not recognise the network's massive outages does); the incidents must come
from the ONUs of one scope failing together, as a share of the scope and a count.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from decision_harness import SyntheticNet, targets

from guardian_lib.decision import RuleScorer
from guardian_lib.decision._types import CLASS_COLUMNS
from guardian_lib.decision.neighbours import OutageEvidence, coincident_outages


class IndividualScorer(RuleScorer):
    """Every impacted ONU is an individual equipment failure, never a massive outage."""

    def __call__(self, snapshot):
        out = super().__call__(snapshot)
        hit = snapshot.status["impacted"].to_numpy(dtype=bool)
        for c in CLASS_COLUMNS:
            out.loc[hit, c] = 0.0
        out.loc[hit, "p_equipment_fail"] = 0.9
        out.loc[hit, "p_unknown"] = 0.1
        return out


class Net(SyntheticNet):
    """A fleet whose scorer calls every impacted ONU an individual fault; ``run`` takes
    ``down_at(m)`` → {ONU index: 'LOS' or 'DYING_GASP'}."""

    def __init__(self, n_pons: int, pon_size: int, box_size: int, policy: str = "autopilot"):
        super().__init__(n_pons, pon_size, box_size, policy, scorer=IndividualScorer)

    def run(self, minutes, down_at) -> pd.DataFrame:
        return super().run(minutes, lambda m: (down_at(m), {}, ()))


@pytest.mark.parametrize("policy", ["autopilot", "rules"])
@pytest.mark.parametrize(("pon_size", "box_size"), [(32, 4), (32, 8), (64, 32)])
def test_box_fault_is_one_incident_without_per_onu_visits(policy, pon_size, box_size):
    net = Net(2, pon_size, box_size, policy)
    box = range(box_size, 2 * box_size)  # the second box of the first PON fails (LOS)
    dec = net.run(
        range(0, 5 * 60, 15), lambda m: dict.fromkeys(box, "LOS") if 30 <= m < 210 else {}
    )
    opened = dec.loc[dec["action"] == "open_incident"]
    assert len(opened) == 1
    assert opened["subject"].iat[0] == "box:B1"
    assert targets(opened["targets"].iat[0]) == {net.ids[k] for k in box}
    why = json.loads(opened["rationale"].iat[0])
    assert why["failed_together"] == box_size and why["share_of_scope"] == 1.0
    # The scorer called each ONU an equipment failure; no one was sent.
    assert net.field.opened == []
    assert not (dec["action"] == "schedule_visit").any()
    # The incident ends with its cause.
    closed = dec.loc[dec["action"] == "close_incident", "mins"]
    assert len(closed) == 1 and 210 <= closed.iat[0] <= 210 + 45 and net.ap.incidents == {}


@pytest.mark.parametrize("kind", ["LOS", "DYING_GASP"])
def test_single_dark_onu_is_an_individual_case(kind):
    net = Net(1, 32, 8)
    dec = net.run(range(0, 3 * 60, 15), lambda m: {5: kind} if m >= 30 else {})
    assert not dec["action"].isin(["open_incident", "join_incident"]).any()
    mine = dec.loc[dec["subject"] == "ONU005", "action"]
    assert (mine == "open_case").sum() == 1
    if kind == "LOS":  # an equipment failure with nobody else down: the technician goes
        assert net.field.opened == ["ONU005"]


@pytest.mark.parametrize("same_box", [False, True])
def test_two_unrelated_dark_onus_on_a_big_pon_are_not_merged(same_box):
    net = Net(1, 64, 8)
    a, b = (9, 12) if same_box else (9, 50)  # minutes apart, 2 of 8 or 2 of 64
    dec = net.run(
        range(0, 3 * 60, 15),
        lambda m: {k: "LOS" for k, t0 in ((a, 30), (b, 45)) if m >= t0},
    )
    assert not dec["action"].isin(["open_incident", "join_incident"]).any()
    for k in (a, b):
        assert ((dec["subject"] == net.ids[k]) & (dec["action"] == "open_case")).sum() == 1
    assert sorted(net.field.opened) == sorted([net.ids[a], net.ids[b]])


def test_feeder_cut_residual_members_become_their_own_cases_not_a_new_incident():
    net = Net(2, 32, 8)
    pon = range(32)
    stuck = {3, 11, 19, 27}  # a quarter of the PON's boxes lose one ONU for good
    dec = net.run(
        range(0, 6 * 60, 15),
        lambda m: {k: "LOS" for k in pon if 30 <= m < 180 or (m >= 30 and k in stuck)},
    )
    opened = dec.loc[dec["action"] == "open_incident"]
    assert list(opened["subject"]) == ["pon:P0"]  # one incident, at the PON, not per box
    assert len(targets(opened["targets"].iat[0])) == 32
    t_close = dec.loc[dec["action"] == "close_incident", "mins"]
    assert len(t_close) == 1
    # The four still down become cases at the close and get their visits; no new incident.
    cases = dec.loc[(dec["action"] == "open_case") & (dec["mins"] >= t_close.iat[0])]
    assert set(cases["subject"]) == {net.ids[k] for k in stuck}
    assert sorted(net.field.opened) == sorted(net.ids[k] for k in stuck)


def test_coincident_outages_counts_share_count_and_time():
    ev = OutageEvidence()
    n = 16  # one PON of two boxes of 8
    st = pd.DataFrame(
        {"online": np.ones(n, dtype=bool), "service_up": np.ones(n, dtype=bool),
         "impacted_min": np.zeros(n), "box_id": [f"B{k // 8}" for k in range(n)],
         "pon_id": "P0", "olt_id": "O0"},
        index=pd.Index([f"ONU{k:02d}" for k in range(n)], name="onu_id"),
    )  # fmt: skip
    # Box B0: three dark together (3/8 ≥ 0.3) and one dark for a day (not with them).
    st.loc[st.index[[0, 1, 2, 3]], "online"] = False
    st.loc[st.index[[0, 1, 2, 3]], "impacted_min"] = [20.0, 25.0, 30.0, 24 * 60.0]
    # Box B1: two dark together (2/8 < 0.3), half an hour after B0's three.
    st.loc[st.index[[8, 9]], "online"] = False
    st.loc[st.index[[8, 9]], "impacted_min"] = 60.0
    out = coincident_outages(st, ev)
    assert list(out["outage_scope_type"].iloc[:3]) == ["box", "box", "box"]
    assert pd.isna(out["outage_scope_type"].iat[3])
    assert list(out["outage_n"].iloc[:3]) == [3, 3, 3]
    assert out["outage_share"].iat[0] == pytest.approx(3 / 8)
    assert out["outage_scope_type"].iloc[4:].isna().all()
    # A wider window chains B1's pair to them: 5 of the PON's 16 failed together → the PON
    # (its OLT, with a second PON of 16 healthy ONUs, only 5 of 32).
    other = st.rename(index=lambda i: i + "b").assign(
        online=True, impacted_min=0.0, pon_id="P1", box_id=lambda d: d["box_id"] + "b"
    )
    wide = coincident_outages(pd.concat([st, other]), OutageEvidence(coincidence_min=30.0))
    assert set(wide["outage_scope_type"].iloc[[0, 1, 2, 8, 9]]) == {"pon"}
    # Leaving ONUs out (judged on their own) takes them out of the count.
    eligible = np.ones(n, dtype=bool)
    eligible[[0]] = False
    assert coincident_outages(st, ev, eligible)["outage_scope_type"].isna().all()


@pytest.mark.parametrize(
    ("kw", "msg"),
    [({"box_min_share": 0.0}, "box_min_share"), ({"pon_min_count": 1}, "pon_min_count"),
     ({"olt_min_share": float("nan")}, "olt_min_share"),
     ({"coincidence_min": float("inf")}, "coincidence_min")],
)  # fmt: skip
def test_outage_evidence_refuses_bad_thresholds(kw, msg):
    with pytest.raises(ValueError, match=msg):
        OutageEvidence(**kw)


def test_a_scope_that_is_its_wider_scope_is_named_wide():
    """Without street boxes in the inventory (or a PON of one box), the failure of all of
    it is the PON's: the wider scope wins a tie of the same ONUs."""
    n = 8
    st = pd.DataFrame(
        {"online": np.zeros(n, dtype=bool), "service_up": np.zeros(n, dtype=bool),
         "impacted_min": np.full(n, 5.0), "box_id": "P0", "pon_id": "P0", "olt_id": "O0"},
        index=pd.Index([f"ONU{k:02d}" for k in range(n)], name="onu_id"),
    )  # fmt: skip
    st = pd.concat([st, st.rename(index=lambda i: i + "b").assign(
        online=True, service_up=True, impacted_min=0.0, box_id="P1", pon_id="P1")])  # fmt: skip
    out = coincident_outages(st, OutageEvidence())
    assert set(out["outage_scope_type"].iloc[:n]) == {"pon"}
    assert set(out["outage_n"].iloc[:n]) == {n}


def test_one_stray_dark_onu_does_not_widen_a_box_outage_to_the_olt():
    """A whole box of 8 dark plus one unrelated ONU of another PON in the same minutes is
    9 of the OLT's 32 (share and count of an OLT outage), but the one ONU beyond the box is
    one customer's fault: the box stays a box incident and the stray ONU stays its own."""
    n = 32  # one OLT, two PONs of 16, boxes of 8
    st = pd.DataFrame(
        {"online": np.ones(n, dtype=bool), "service_up": np.ones(n, dtype=bool),
         "impacted_min": np.zeros(n), "box_id": [f"B{k // 8}" for k in range(n)],
         "pon_id": [f"P{k // 16}" for k in range(n)], "olt_id": "O0"},
        index=pd.Index([f"ONU{k:02d}" for k in range(n)], name="onu_id"),
    )  # fmt: skip
    st.loc[st.index[:8], ["online", "impacted_min"]] = [False, 10.0]
    st.loc[st.index[20], ["online", "impacted_min"]] = [False, 14.0]
    out = coincident_outages(st, OutageEvidence())
    assert set(out["outage_scope_type"].iloc[:8]) == {"box"}
    assert set(out["outage_n"].iloc[:8]) == {8}
    assert pd.isna(out["outage_scope_type"].iat[20])
    # Two more boxes' worth beyond it — a second box of the other PON — is an OLT outage.
    st.loc[st.index[16:24], ["online", "impacted_min"]] = [False, 14.0]
    wide = coincident_outages(st, OutageEvidence())
    assert set(wide["outage_scope_type"].iloc[list(range(8)) + list(range(16, 24))]) == {"olt"}
