"""Evaluation of a run on Dask, one task per (date, OLT group) partition.

Each task computes its partition's features, labels and predictions and sends back
only what the metrics need: confusion counts (model and rules, cause and massive),
bin counts of every feature against the drift reference's bins, the few score and
label columns the PR-AUC and Brier scores need over the whole run (they are not
sums), and the rows of the ONUs whose faults the anomaly lead time follows. The
client adds the counts and computes the metrics of
:func:`~guardian_lib.models.training.evaluate_bundle` and the drift of
:func:`~guardian_lib.models.drift.drift_report`; they equal the single-process
evaluation (tests/guardian_lib/test_features_distributed.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from guardian_lib.labels import CAUSE_CLASSES, MASSIVE_CLASSES, RISK_HORIZONS_H, build_labels
from guardian_lib.models.baselines import rule_anomaly, rule_cause, rule_massive, rule_risk
from guardian_lib.models.drift import PSI_ALERT, bin_counts, psi_edges, psi_from_counts
from guardian_lib.models.training import (
    CAUSE_NOT_MEASURABLE,
    MASSIVE_NOT_MEASURABLE,
    anomaly_lead_minutes,
    anomaly_metrics,
    monotonicity_violations,
    risk_metrics,
)
from guardian_lib.schema import CLASS_COLUMNS, US_PER_S

__all__ = ["evaluate_partitions"]

#: Fault kinds the anomaly lead time follows (as :func:`anomaly_lead_minutes`).
_LEAD_KINDS = ("fibre_degradation", "hardware_failure")


def _counts(y_true: np.ndarray, y_pred: np.ndarray, labels: list) -> np.ndarray:
    """Confusion counts, rows true, columns predicted (labels outside are dropped)."""
    pos = {c: i for i, c in enumerate(labels)}
    t = np.array([pos.get(v, -1) for v in y_true], dtype=np.int64)
    p = np.array([pos.get(v, -1) for v in y_pred], dtype=np.int64)
    ok = (t >= 0) & (p >= 0)
    k = len(labels)
    return np.bincount(t[ok] * k + p[ok], minlength=k * k).reshape(k, k)


def _evaluation_part(
    run: str, day, onu_ids, every_minutes: int, span, bundle, truth, until, split_us, refs
) -> dict[str, Any] | None:
    from guardian_lib.features._distributed import partition_features

    features = partition_features(run, day, onu_ids, every_minutes, span)
    if split_us is not None and len(features):
        keep = features["ts"].to_numpy("datetime64[us]").astype(np.int64) >= split_us
        features = features[keep].reset_index(drop=True)
    if not len(features):
        return None
    labels = build_labels(features, truth, observed_until=until)
    preds = bundle.predict(features, explain=False)
    sym = labels["symptomatic"].to_numpy()
    y_cause = labels.loc[sym, "cause"].astype(str).to_numpy()
    proba = preds.loc[sym, list(CLASS_COLUMNS.values())].to_numpy()
    pred_cause = np.array(list(CLASS_COLUMNS))[np.argmax(proba, axis=1)]
    is_massive = np.isin(y_cause, MASSIVE_CLASSES).astype(int)
    p_massive = preds.loc[sym, ["p_massive_outage", "p_external_network"]].sum(axis=1).to_numpy()
    risk = preds.loc[:, [f"risk_{h}h" for h in RISK_HORIZONS_H]].to_numpy()
    scores = pd.DataFrame(
        {
            **{f"y_{h}h": labels[f"risk_{h}h"].to_numpy() for h in RISK_HORIZONS_H},
            **{f"risk_{h}h": preds[f"risk_{h}h"].to_numpy() for h in RISK_HORIZONS_H},
            "rule_risk": rule_risk(features),
            "fault_active": labels["fault_active"].to_numpy(),
            "anomaly_score": preds["anomaly_score"].to_numpy(),
            "rule_anomaly": rule_anomaly(features),
        }
    )
    followed = set(truth.loc[truth["kind"].isin(_LEAD_KINDS), "affected_onus"].map(lambda a: a[0]))
    mine = features["onu_id"].astype(str).isin(followed).to_numpy()
    lead = pd.DataFrame(
        {
            "ts": features.loc[mine, "ts"].array,
            "onu_id": features.loc[mine, "onu_id"].to_numpy(),
            "anomaly_score": preds.loc[mine, "anomaly_score"].to_numpy(),
            "los_1h": features.loc[mine, "los_1h"].to_numpy(),
            "calls_24h": features.loc[mine, "calls_24h"].to_numpy(),
        }
    )
    classes = list(CAUSE_CLASSES)
    return {
        "n_rows": len(features),
        "n_symptomatic": int(sym.sum()),
        "cause": _counts(y_cause, pred_cause, classes),
        "cause_rule": _counts(y_cause, rule_cause(features[sym]), classes),
        "massive": _counts(is_massive, (p_massive >= 0.5).astype(int), [0, 1]),
        "massive_rule": _counts(
            is_massive, rule_massive(features[sym]).astype(int), [0, 1]
        ),  # fmt: skip
        "present": sorted(set(y_cause.tolist())),
        "monotonicity_violations": monotonicity_violations(risk),
        "scores": scores,
        "lead": lead,
        "drift": {c: bin_counts(features[c].to_numpy(), inner) for c, inner in refs.items()},
    }


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    den = 2 * tp + fp + fn
    return np.divide(2 * tp, den, out=np.zeros(len(tp)), where=den > 0)


def _per_class(cm: np.ndarray) -> tuple[np.ndarray, ...]:
    """Precision, recall, F1 and support per class of a confusion matrix (0 if undefined)."""
    tp = np.diag(cm).astype(float)
    pred, true = cm.sum(axis=0).astype(float), cm.sum(axis=1).astype(float)
    p = np.divide(tp, pred, out=np.zeros(len(tp)), where=pred > 0)
    r = np.divide(tp, true, out=np.zeros(len(tp)), where=true > 0)
    return p, r, _f1(tp, pred - tp, true - tp), true.astype(int)


def _binary(cm: np.ndarray) -> dict[str, float]:
    """Precision, recall, F1 of class 1 with the serial evaluation's NaN rules (``_prf``)."""
    p, r, f, _ = _per_class(cm)
    out = {"precision": float(p[1]), "recall": float(r[1]), "f1": float(f[1])}
    if not cm[1].sum():  # no true row: nothing to recall
        out["recall"] = out["f1"] = float("nan")
    if not cm[:, 1].sum():  # nothing predicted positive
        out["precision"] = float("nan")
    return out


def _macro_f1(cm: np.ndarray, classes: list[str], present: list[str]) -> float:
    f = _per_class(cm)[2]
    if not present:  # as the serial evaluation: no symptomatic row, nothing to measure
        return float("nan")
    return float(np.mean([f[classes.index(c)] for c in present]))


def evaluate_partitions(
    run,
    bundle,
    client,
    truth: pd.DataFrame,
    every_minutes: int,
    split_time: str | None = None,
    reference: pd.DataFrame | None = None,
    on_submit=None,
) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """The metrics of :func:`~guardian_lib.models.training.evaluate_bundle` on Dask.

    Parameters
    ----------
    run : path
    bundle : ModelBundle
    client : distributed.Client
    truth : pandas.DataFrame
        The run's ground truth (:func:`~guardian_lib.models.training.load_truth`).
    every_minutes : int
        Spacing of evaluation rows. [min]
    split_time : str, optional
        Only rows at or after this UTC time.
    reference : pandas.DataFrame, optional
        The drift reference (the registered model's training sample).

    Returns
    -------
    (dict, pandas.DataFrame or None)
        The metrics and, with a reference, the drift report (as :func:`drift_report`).
    """
    from guardian_lib.features._distributed import feature_tasks, map_partitions

    days, groups, span = feature_tasks(run)
    step = every_minutes * 60 * US_PER_S
    first = -(-span[0] // step) * step
    # The labels' horizon ends at the run's last scoring time, not a partition's.
    until = pd.Timestamp(first + (span[1] - first) // step * step, unit="us", tz="UTC")
    split_us = None if split_time is None else pd.Timestamp(split_time, tz="UTC").value // 1000
    columns = list(bundle.feature_columns)
    refs = {c: psi_edges(reference[c].to_numpy()) for c in columns} if reference is not None else {}
    [shared] = client.scatter([bundle], broadcast=True)
    [truth_f] = client.scatter([truth], broadcast=True)
    results = map_partitions(client, _evaluation_part, run, days, groups, every_minutes, span,
                             shared, truth_f, until, split_us, refs,
                             on_submit=on_submit)  # fmt: skip
    parts = [p for p in results if p is not None]
    if not parts:
        raise ValueError(f"{run}: no rows to evaluate")
    total = {k: sum(p[k] for p in parts) for k in ("cause", "cause_rule", "massive",
             "massive_rule", "n_rows", "n_symptomatic", "monotonicity_violations")}  # fmt: skip
    scores = pd.concat([p["scores"] for p in parts], ignore_index=True)
    classes = list(CAUSE_CLASSES)
    present = [c for c in classes if any(c in p["present"] for p in parts)]
    metrics: dict[str, Any] = {
        "n_rows": int(total["n_rows"]),
        "n_symptomatic": int(total["n_symptomatic"]),
    }
    for k, v in _binary(total["massive"]).items():
        metrics[f"massive_{k}"] = v
    metrics["massive_support"] = int(total["massive"][1].sum())
    if not metrics["massive_support"]:  # as the serial evaluation: say why there is no figure
        metrics["massive_note"] = MASSIVE_NOT_MEASURABLE
    metrics["macro_f1"] = _macro_f1(total["cause"], classes, present)
    metrics["macro_f1_classes"] = present
    if not present:
        metrics["cause_note"] = CAUSE_NOT_MEASURABLE
    p, r, f, s = _per_class(total["cause"])
    metrics["per_class"] = {
        c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
            "support": int(s[i])}
        for i, c in enumerate(classes)
    }  # fmt: skip
    metrics["confusion_matrix"] = {"labels": classes, "matrix": total["cause"].tolist()}
    base: dict[str, Any] = {"macro_f1": _macro_f1(total["cause_rule"], classes, present)}
    for k, v in _binary(total["massive_rule"]).items():
        base[f"massive_{k}"] = v
    metrics["monotonicity_violations"] = int(total["monotonicity_violations"])
    for k, h in enumerate(RISK_HORIZONS_H):
        y = scores[f"y_{h}h"].to_numpy(dtype=float)
        ok = ~np.isnan(y)
        risk_metrics(
            metrics, base, h, y[ok].astype(int), scores[f"risk_{h}h"].to_numpy()[ok],
            scores["rule_risk"].to_numpy()[ok], bundle.risk.prevalence_[k],
        )  # fmt: skip
    anomaly_metrics(
        metrics, base, scores["fault_active"].to_numpy(), scores["anomaly_score"].to_numpy(),
        scores["rule_anomaly"].to_numpy(),
    )  # fmt: skip
    lead = pd.concat([p["lead"] for p in parts], ignore_index=True)
    lead = lead.sort_values(["ts", "onu_id"], kind="stable").reset_index(drop=True)
    leads = anomaly_lead_minutes(lead, lead, truth)
    metrics["anomaly_median_lead_minutes"] = float(np.median(leads)) if leads else float("nan")
    metrics["anomaly_lead_faults"] = len(leads)
    metrics["baselines"] = base
    if reference is None:
        return metrics, None
    rows = [
        {
            "feature": c,
            "psi": psi_from_counts(
                bin_counts(reference[c].to_numpy(), refs[c]), sum(p["drift"][c] for p in parts)
            ),
        }
        for c in columns
    ]
    drift = pd.DataFrame(rows).sort_values("psi", ascending=False).reset_index(drop=True)
    drift["drifted"] = drift["psi"] > PSI_ALERT
    return metrics, drift
