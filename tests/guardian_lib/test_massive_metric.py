"""Massive precision / recall / F1 on an evaluation period with and without massive rows."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from guardian_lib.models.training import (
    ANOMALY_NOT_MEASURABLE,
    CAUSE_NOT_MEASURABLE,
    MASSIVE_NOT_MEASURABLE,
    _prf,
    evaluate_bundle,
)
from guardian_lib.schema import CLASS_COLUMNS


def test_prf_is_nan_only_where_nothing_can_be_measured():
    none_true = _prf(np.array([0, 0, 0]), np.array([0, 0, 0]))
    assert all(math.isnan(v) for v in none_true.values())
    false_alarm = _prf(np.array([0, 0, 0]), np.array([1, 0, 0]))
    assert false_alarm["precision"] == 0.0
    assert math.isnan(false_alarm["recall"]) and math.isnan(false_alarm["f1"])
    missed = _prf(np.array([1, 0, 0]), np.array([0, 0, 0]))
    assert missed["recall"] == 0.0 and missed["f1"] == 0.0 and math.isnan(missed["precision"])
    half = _prf(np.array([1, 1, 0]), np.array([1, 0, 0]))
    assert half == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3})


class _StubBundle:
    """Predicts the cause given in ``features['pred']`` with certainty; flat risks."""

    model_version = "stub"
    risk = SimpleNamespace(prevalence_=[0.1, 0.1, 0.1])

    def predict(self, features: pd.DataFrame, explain: bool = False) -> pd.DataFrame:
        out = pd.DataFrame({"anomaly_score": features["online"].eq(0).astype(float)})
        for cause, col in CLASS_COLUMNS.items():
            out[col] = (features["pred"] == cause).astype(float)
        for h in (2, 6, 24):
            out[f"risk_{h}h"] = 0.1 * (h / 24)
        return out


def _frames(causes: list[str], preds: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = len(causes)
    features = pd.DataFrame(
        {
            "online": [0, 1] * (n // 2),
            "pppoe_down": 0,
            "rx_mean_1h": -20.0,
            "rx_dbm": -20.0,
            "dying_gasp_1h": 0,
            "loss_pct": 0.0,
            "rx_delta_7d": 0.0,
            "pon_share_pppoe_down": 0.0,
            "pred": preds,
        }  # fmt: skip
    )
    labels = pd.DataFrame(
        {
            "symptomatic": True,
            "cause": causes,
            "fault_active": [1, 0] * (n // 2),
            "risk_2h": [1.0, 0.0] * (n // 2),
            "risk_6h": [1.0, 0.0] * (n // 2),
            "risk_24h": [1.0, 0.0] * (n // 2),
        }  # fmt: skip
    )
    return features, labels


def test_no_massive_row_reports_massive_f1_as_not_measurable():
    causes = ["CUSTOMER_PREMISES", "EQUIPMENT_FAIL"] * 2
    features, labels = _frames(causes, causes)
    m = evaluate_bundle(_StubBundle(), features, labels)
    assert m["massive_support"] == 0 and m["massive_note"] == MASSIVE_NOT_MEASURABLE
    assert math.isnan(m["massive_f1"]) and math.isnan(m["massive_recall"])
    assert math.isnan(m["baselines"]["massive_f1"])
    assert m["macro_f1"] == 1.0 and m["macro_f1_classes"] == ["CUSTOMER_PREMISES", "EQUIPMENT_FAIL"]


def test_massive_rows_are_scored_and_carry_no_note():
    causes = ["MASSIVE_OUTAGE", "CUSTOMER_PREMISES"] * 2
    preds = ["MASSIVE_OUTAGE", "CUSTOMER_PREMISES", "CUSTOMER_PREMISES", "CUSTOMER_PREMISES"]
    features, labels = _frames(causes, preds)
    m = evaluate_bundle(_StubBundle(), features, labels)
    assert m["massive_support"] == 2 and "massive_note" not in m
    assert m["massive_precision"] == 1.0 and m["massive_recall"] == 0.5
    assert m["massive_f1"] == pytest.approx(2 / 3)


# --- periods whose labels leave a figure nothing to measure --------------------------------
def _quiet(risk: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Four rows, no active fault, every risk label ``risk`` (0: no fault; NaN: unlabelled)."""
    causes = ["CUSTOMER_PREMISES", "EQUIPMENT_FAIL"] * 2
    features, labels = _frames(causes, causes)
    labels["fault_active"] = 0
    for h in (2, 6, 24):
        labels[f"risk_{h}h"] = risk
    return features, labels


def test_no_positive_risk_label_gives_nan_pr_auc_with_a_note_and_keeps_brier():
    features, labels = _quiet(0.0)
    m = evaluate_bundle(_StubBundle(), features, labels)
    for h in (2, 6, 24):
        assert math.isnan(m[f"risk_{h}h_pr_auc"]) and math.isnan(
            m["baselines"][f"risk_{h}h_pr_auc"]
        )
        assert "no fault within" in m[f"risk_{h}h_note"]
        # all-negative labels still score a forecast: the stub says 0.1 * h / 24 everywhere
        assert m[f"risk_{h}h_brier"] == pytest.approx((0.1 * h / 24) ** 2)
    assert m["risk_24h_prevalence"] == 0.0 and m["risk_24h_brier_prevalence"] == 0.0
    assert math.isnan(m["anomaly_pr_auc"]) and m["anomaly_note"] == ANOMALY_NOT_MEASURABLE
    assert math.isnan(m["baselines"]["anomaly_pr_auc"]) and m["anomaly_prevalence"] == 0.0


def test_a_horizon_without_labelled_rows_gives_nan_figures_with_a_note():
    features, labels = _quiet(float("nan"))
    m = evaluate_bundle(_StubBundle(), features, labels)
    for h in (2, 6, 24):
        for key in ("pr_auc", "brier", "brier_training_prevalence"):
            assert math.isnan(m[f"risk_{h}h_{key}"]), key
        assert "ends before the horizon" in m[f"risk_{h}h_note"]
    assert math.isnan(m["risk_24h_prevalence"]) and math.isnan(m["risk_24h_brier_prevalence"])


def test_a_period_without_a_symptomatic_row_gives_nan_macro_f1_with_a_note():
    features, labels = _quiet(0.0)
    labels["symptomatic"] = False
    m = evaluate_bundle(_StubBundle(), features, labels)
    assert m["n_symptomatic"] == 0 and m["cause_note"] == CAUSE_NOT_MEASURABLE
    assert math.isnan(m["macro_f1"]) and math.isnan(m["baselines"]["macro_f1"])
    assert math.isnan(m["massive_f1"]) and m["macro_f1_classes"] == []
    assert all(v["support"] == 0 for v in m["per_class"].values())
    assert not any(map(any, m["confusion_matrix"]["matrix"]))


def test_an_empty_period_is_refused_with_a_clear_error():
    features, labels = _quiet(0.0)
    with pytest.raises(ValueError, match="no rows to evaluate"):
        evaluate_bundle(_StubBundle(), features.iloc[:0], labels.iloc[:0])


def test_guardian_evaluate_prints_the_notes(monkeypatch):
    import typer
    from typer.testing import CliRunner

    import guardian_lib.models.workflow
    from guardian_lib.models.cli import register

    features, labels = _quiet(0.0)
    metrics = evaluate_bundle(_StubBundle(), features, labels)
    monkeypatch.setattr(guardian_lib.models.workflow, "evaluate", lambda *a, **k: metrics)
    app = typer.Typer()
    register(app)
    res = CliRunner().invoke(app, ["evaluate", "--run", "unused"])
    assert res.exit_code == 0, res.output
    notes = [ln for ln in res.stderr.splitlines() if ln.startswith("note: ")]
    assert sorted(notes) == sorted(
        f"note: {k}: {v}" for k, v in metrics.items() if k.endswith("_note")
    )
    assert len(notes) == 5  # three horizons, anomaly, massive
