"""benchmarks/headline_unseen.py: the monotonicity count and the ML-autopilot merge."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from benchmark_scripts import benchmark_module

from guardian_lib.decision import RuleScorer
from simulator.backtest import POLICIES, run_backtest
from simulator.scenario import load_scenario


@pytest.fixture(scope="module")
def headline():
    yield from benchmark_module("headline_unseen")


class _FixedRisk:
    """A scorer returning fixed risks; one row breaks 2h <= 6h, one 6h <= 24h."""

    def __init__(self) -> None:
        self.ticks = 0

    def update(self, tick) -> None:
        self.ticks += 1

    def __call__(self, snapshot):
        return pd.DataFrame(
            {
                "risk_2h": [0.1, 0.5, 0.1, np.nan, 0.2],
                "risk_6h": [0.2, 0.4, 0.3, 0.1, 0.2],
                "risk_24h": [0.3, 0.6, 0.2, 0.0, 0.2],
            }
        )


class _Bindable:
    def bind(self, onus, tick_s):
        return _FixedRisk()


def test_counter_counts_rows_whose_risk_falls_with_the_horizon(headline, tmp_path):
    path = tmp_path / "mono.jsonl"
    counter = pickle.loads(pickle.dumps(headline.MonotonicityCounter(_Bindable(), path)))
    bound = counter.bind(None, 300)
    bound.update(object())
    assert bound.inner.ticks == 1  # ticks reach the inner scorer
    bound(None)
    bound(None)
    # Rows 2 and 3 break the order; the NaN row is not scored; equal risks are fine.
    assert headline._mono(path) == {"rows": 8, "violations": 4}
    unbound = headline.MonotonicityCounter(_FixedRisk(), tmp_path / "b.jsonl")
    assert len(unbound(None)) == 5
    assert headline._mono(tmp_path / "b.jsonl") == {"rows": 4, "violations": 2}


def test_ml_autopilot_run_alone_merges_to_the_joint_runs_figures(headline, tmp_path):
    """The autopilot run on its own, summarised against the rule run's reactive, rules and
    oracle, gives exactly the joint run's autopilot figures (common random numbers)."""
    sc = load_scenario("tiny", days=0.125)
    seeds = [1, 2]
    meta = {"scenario": "tiny", "seeds": seeds, "days": 0.125, "every_minutes": 15}
    joint = run_backtest(sc, POLICIES, seeds, scorer=RuleScorer(), workers=1)
    joint |= {"meta": meta, "monotonicity": {"rows": 0, "violations": 0}}
    alone = run_backtest(sc, ["autopilot"], seeds, scorer=RuleScorer(), workers=1)
    alone |= {"meta": meta | {"alias": "rule", "full_every": 1},
              "monotonicity": {"rows": 0, "violations": 0}}  # fmt: skip
    alone = json.loads(json.dumps(alone))  # as read back from its file
    merged = headline.merge_ml(joint, alone)
    for key in ("visits", "total_cost_brl", "visits_avoided_vs_reactive_pct",
                "mttr_ratio_vs_reactive", "rules_oracle_gap_share"):  # fmt: skip
        want = joint["policies"]["autopilot"][key]
        assert merged[key]["mean"] == pytest.approx(want["mean"], nan_ok=True)
        assert list(merged[key]["ci95"]) == pytest.approx(list(want["ci95"]), nan_ok=True)
    text = headline.table(joint, [alone])
    assert text.count("\n") == len(headline._ROWS) + 2
    assert "autopilot (ML `rule`, full_every=1)" in text
    with pytest.raises(ValueError, match="seeds differs"):
        headline.merge_ml(joint, alone | {"meta": alone["meta"] | {"seeds": [1, 3]}})


def test_decision_f1_from_precision_and_recall(headline):
    nan = float("nan")
    runs = [
        {"massive_precision": 1.0, "massive_recall": 0.5,
         "individual_precision": 0.5, "individual_recall": 0.5},
        {"massive_precision": 0.5, "massive_recall": 0.5,
         "individual_precision": nan, "individual_recall": 1.0},
    ]  # fmt: skip
    f1 = headline.decision_f1(runs)
    # Seed 1: massive 2/3, individual 1/2, macro 7/12; seed 2: massive 1/2, no individual.
    assert f1["massive_f1"]["mean"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert f1["individual_f1"]["mean"] == pytest.approx(0.5)
    assert f1["macro_f1"]["mean"] == pytest.approx(7 / 12)
    assert 0.0 <= f1["macro_f1"]["ci95"][0] <= f1["macro_f1"]["ci95"][1] <= 1.0
    assert headline.decision_f1([{"massive_precision": nan}]) == {}
