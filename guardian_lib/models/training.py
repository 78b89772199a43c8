"""Train and evaluate the model bundle on simulated runs (labels from ground truth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from guardian_lib.errors import WarehouseError
from guardian_lib.features import FEATURE_COLUMNS, feature_frame
from guardian_lib.labels import CAUSE_CLASSES, MASSIVE_CLASSES, RISK_HORIZONS_H, build_labels
from guardian_lib.models.anomaly import AnomalyScorer
from guardian_lib.models.baselines import rule_anomaly, rule_cause, rule_massive, rule_risk
from guardian_lib.models.bundle import (
    ANOMALY_COLUMNS,
    CAUSE_LAYOUT_COLUMNS,
    CLASS_COLUMNS,
    RISK_COLUMNS,
    ModelBundle,
)
from guardian_lib.models.cause import CauseClassifier
from guardian_lib.models.hazard import HazardRiskModel
from guardian_lib.schema import MODEL_EVERY_MINUTES
from guardian_lib.warehouse import connect

__all__ = [
    "load_truth",
    "labelled_frame",
    "ticket_labelled_frame",
    "fit_bundle",
    "evaluate_bundle",
    "anomaly_lead_minutes",
    "monotonicity_violations",
]


def load_truth(run: Path | str) -> pd.DataFrame:
    """The run's ``faults_truth`` (simulated runs only).

    Raises
    ------
    WarehouseError
        The run has no ground truth (a real operator's warehouse): it cannot be used to
        train or evaluate.
    """
    con = connect(run)
    try:
        tables = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        if "faults_truth" not in tables:
            raise WarehouseError(
                f"{run}: no faults_truth table: training and evaluation need a simulated run "
                "(guardian simulate + guardian ingest), or an operator's closed tickets "
                "(--labels tickets --label-map labels.yaml)"
            )
        truth = con.execute(
            "SELECT fault_id, kind, cause_class, epoch_us(start_at) AS s, "
            "epoch_us(impact_start_at) AS i, epoch_us(end_at) AS e, affected_onus FROM faults_truth"
        ).df()
    finally:
        con.close()
    for col, new in (("s", "start_at"), ("i", "impact_start_at"), ("e", "end_at")):
        truth[new] = pd.to_datetime(truth.pop(col), unit="us", utc=True)
    return truth


def labelled_frame(
    run: Path | str, every_minutes: int = MODEL_EVERY_MINUTES
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features of a run at every ``every_minutes`` and their labels."""
    features = feature_frame(run, every_minutes=every_minutes)
    labels = build_labels(features, load_truth(run))
    return features, labels


def _utc(value: pd.Timestamp | str) -> pd.Timestamp:
    """A timestamp in UTC; naive values are taken as UTC."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def ticket_labelled_frame(
    run: Path | str,
    label_map: Path | str,
    every_minutes: int = MODEL_EVERY_MINUTES,
    until: pd.Timestamp | str | None = None,
    since: pd.Timestamp | str | None = None,
    audit: Path | str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Features of a run and their labels from its closed tickets (an operator's run).

    Parameters
    ----------
    run : path
        An ingested run with imported tickets (``service_orders`` with ``closure_code``
        and ``notes``).
    label_map : path
        The label map YAML (:func:`guardian_lib.labels_tickets.load_label_map`).
    every_minutes : int
        Spacing of the rows. [min]
    until : Timestamp or str, optional
        Training cut-off (UTC): rows after it are dropped, only tickets closed by then
        count and risk labels whose horizon passes it are NaN.
    since : Timestamp or str, optional
        Keep only rows at or after this time (UTC) (evaluation on a later period, or
        retraining on the newest data).
    audit : path, optional
        The autopilot's audit DuckDB file: reboots that fixed the customer become labels
        (:mod:`guardian_lib.labels_feedback`).

    Returns
    -------
    (features, labels, report)
        ``report`` is :meth:`TicketLabelReport.to_dict` (counts and examples of
        unlabelled and contradictory tickets); with ``since``, over the kept period only
        (``counted_from`` of :func:`~guardian_lib.labels_tickets.build_ticket_labels`).
    """
    from guardian_lib.label_map import load_label_map
    from guardian_lib.labels_feedback import load_reboots
    from guardian_lib.labels_tickets import build_ticket_labels, load_ticket_inputs

    lm = load_label_map(label_map)
    inputs = load_ticket_inputs(run)
    reboots = None if audit is None else load_reboots(audit)
    cut = None if until is None else _utc(until)
    features = feature_frame(run, end=cut, every_minutes=every_minutes)
    labels, report = build_ticket_labels(
        features, inputs["tickets"], lm, contacts=inputs["contacts"], onus=inputs["onus"],
        customers=inputs["customers"], observed_until=cut, events=inputs["events"],
        reboots=reboots, counted_from=None if since is None else _utc(since),
    )  # fmt: skip
    if since is not None:
        keep = (features["ts"] >= _utc(since)).to_numpy()
        features = features[keep].reset_index(drop=True)
        labels = labels[keep].reset_index(drop=True)
    return features, labels, report.to_dict()


def _calibration_order(ts_us: np.ndarray) -> np.ndarray:
    """Row order for training: by time within each run, runs interleaved by progress.

    The risk models calibrate on the latest rows. Several runs concatenated (one per
    scenario variant, each in time order) are told apart where the time steps back or
    jumps by anything but the row spacing; rows are then ordered by the share of their
    run's time span already elapsed, so that "the latest 25 %" is the last quarter of
    *every* run. Sorting by the timestamp alone would hold out only the run with the
    latest dates (one variant's weather and fault rates) and calibrate to it.
    """
    n = len(ts_us)
    if n < 2:
        return np.arange(n)
    d = np.diff(ts_us)
    positive = d[d > 0]
    step = np.bincount(np.unique(positive, return_inverse=True)[1]).argmax() if len(positive) else 0
    spacing = np.unique(positive)[step] if len(positive) else 0
    new_run = np.concatenate([[True], (d != 0) & (d != spacing)])
    run = np.cumsum(new_run) - 1
    lo = np.minimum.reduceat(ts_us, np.flatnonzero(new_run))[run]
    hi = np.maximum.reduceat(ts_us, np.flatnonzero(new_run))[run]
    progress = (ts_us - lo) / np.maximum(hi - lo, 1)
    return np.lexsort((np.arange(n), run, progress))


def fit_bundle(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    n_estimators: int = 300,
    negative_subsample: float = 0.25,
    random_state: int = 0,
) -> ModelBundle:
    """Fit the anomaly scorer, the cause classifier and the hazard risk model.

    Parameters
    ----------
    features, labels : pandas.DataFrame
        From :func:`labelled_frame` (possibly several runs concatenated).
    n_estimators : int, default 300
        Trees per LightGBM model (the anomaly forest uses 100). [-]
    negative_subsample : float, default 0.25
        Share of negative rows the risk boosters train on (see :class:`HazardRiskModel`). [-]
    random_state : int, default 0

    Raises
    ------
    ValueError
        No symptomatic rows, runs too short to label a risk horizon, or a risk label
        without both classes.
    """
    order = _calibration_order(features["ts"].to_numpy("datetime64[us]").astype(np.int64))
    features = features.iloc[order].reset_index(drop=True)
    labels = labels.iloc[order].reset_index(drop=True)
    X = features.loc[:, list(FEATURE_COLUMNS)]
    rng = np.random.default_rng(random_state)
    seeds = rng.integers(0, 2**31 - 1, 5)
    # The anomaly reference: rows without a known fault (as an operator would pick a
    # quiet period), so that faults stand out.
    quiet = labels["fault_active"].to_numpy() == 0
    anomaly = AnomalyScorer(random_state=int(seeds[0])).fit(
        features.loc[quiet, list(ANOMALY_COLUMNS)]
    )
    sym = labels["symptomatic"].to_numpy()
    if not sym.any():
        raise ValueError("no symptomatic rows to train the cause classifier on")
    cause = CauseClassifier(
        n_estimators=n_estimators,
        booster_exclude=CAUSE_LAYOUT_COLUMNS,
        random_state=int(seeds[1]),
    ).fit(X[sym], labels.loc[sym, "cause"].astype(str).to_numpy())
    Y = labels.loc[:, [f"risk_{h}h" for h in RISK_HORIZONS_H]].to_numpy(dtype=float)
    # Rows with no horizon labelled (the customer is already hurt) carry nothing.
    ok = ~np.isnan(Y).all(axis=1)
    risk = HazardRiskModel(
        horizons_h=RISK_HORIZONS_H,
        n_estimators=n_estimators,
        negative_subsample=negative_subsample,
        random_state=int(seeds[2]),
    ).fit(X.loc[ok, list(RISK_COLUMNS)], Y[ok])
    return ModelBundle(anomaly=anomaly, cause=cause, risk=risk)


#: Why massive recall and F1 are NaN on an evaluation period without a massive row.
MASSIVE_NOT_MEASURABLE = (
    "no row of a massive cause in the evaluated period: massive recall and F1 are not "
    "measurable (NaN); precision is NaN too unless some row was predicted massive"
)


def _prf(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Binary precision, recall and F1; NaN where a figure has nothing to measure.

    Without a true positive row, recall and F1 are NaN (not 0: nothing was missed); without
    a predicted positive row, precision is NaN. A period with false alarms and no true row
    keeps precision 0.
    """
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="binary", zero_division=0)
    out = {"precision": float(p), "recall": float(r), "f1": float(f)}
    if not np.any(y_true):
        out["recall"] = out["f1"] = float("nan")
    if not np.any(y_pred):
        out["precision"] = float("nan")
    return out


def anomaly_lead_minutes(
    preds: pd.DataFrame,
    features: pd.DataFrame,
    truth: pd.DataFrame,
    threshold: float = 0.99,
    kinds: tuple[str, ...] = ("fibre_degradation", "hardware_failure"),
) -> list[float]:
    """Minutes between the first anomaly flag and the first LOS or customer call.

    For each fault of ``kinds`` on one ONU: the first scoring time after the fault
    started at which ``anomaly_score ≥ threshold`` and the first time (after the start)
    the ONU logged an LOS (``los_1h`` rising) or its customer called (``calls_24h``
    rising). Positive: flagged before the customer was hurt or called.
    """
    df = pd.DataFrame(
        {
            "ts": features["ts"].to_numpy(),
            "onu_id": features["onu_id"].to_numpy(),
            "flag": preds["anomaly_score"].to_numpy() >= threshold,
            "los": features["los_1h"].to_numpy() > 0,
            "calls": features["calls_24h"].to_numpy(),
        }
    )
    by_onu = dict(tuple(df.groupby("onu_id", sort=False)))
    leads = []
    for fault in truth[truth["kind"].isin(kinds)].itertuples(index=False):
        onu = str(fault.affected_onus[0])
        g = by_onu.get(onu)
        if g is None:
            continue
        g = g[g["ts"] >= fault.start_at]
        if g.empty:
            continue
        calls0 = g["calls"].iloc[0]
        hurt = g[(g["los"]) | (g["calls"] > calls0)]
        flagged = g[g["flag"]]
        if hurt.empty or flagged.empty:
            continue
        leads.append((hurt["ts"].iloc[0] - flagged["ts"].iloc[0]).total_seconds() / 60)
    return leads


def monotonicity_violations(risk: np.ndarray, tol: float = 0.0) -> int:
    """Rows whose risk decreases with the horizon (columns ordered by horizon).

    Parameters
    ----------
    risk : ndarray, shape (n_rows, n_horizons)
        Cumulative risks, shortest horizon first. [-]
    tol : float, default 0
        Decrease tolerated (0: any decrease counts). [-]
    """
    risk = np.asarray(risk, dtype=float)
    if risk.ndim != 2 or risk.shape[1] < 2:
        return 0
    return int((np.diff(risk, axis=1) < -tol).any(axis=1).sum())


def evaluate_bundle(
    bundle: ModelBundle,
    features: pd.DataFrame,
    labels: pd.DataFrame,
    truth: pd.DataFrame | None = None,
) -> dict:
    """Metrics of the bundle and of the rule baselines on labelled rows.

    Returns
    -------
    dict
        ``massive_precision``, ``massive_recall``, ``massive_f1`` (NaN when not measurable:
        no massive row, or for precision no row predicted massive; then ``massive_note``
        says so), ``massive_support`` (symptomatic rows of a massive cause), ``macro_f1`` (over
        the classes present in ``labels``, listed in ``macro_f1_classes``),
        ``per_class``, ``confusion_matrix`` (with ``labels``), ``risk_{2,6,24}h_pr_auc``,
        ``risk_24h_prevalence``, ``risk_{2,6,24}h_brier`` and
        ``risk_{2,6,24}h_brier_training_prevalence`` (the constant forecast at the
        training prevalence), ``risk_24h_brier_prevalence`` (the constant forecast at
        this run's own prevalence), ``monotonicity_violations`` (rows with
        ``risk_2h > risk_6h`` or ``risk_6h > risk_24h``; 0 by construction),
        ``anomaly_pr_auc``, ``anomaly_median_lead_minutes``, ``n_rows``,
        ``n_symptomatic``, and the same metrics for the rules under ``baselines``.
    """
    preds = bundle.predict(features, explain=False)
    X = features
    sym = labels["symptomatic"].to_numpy()
    y_cause = labels.loc[sym, "cause"].astype(str).to_numpy()
    proba = preds.loc[sym, list(CLASS_COLUMNS.values())].to_numpy()
    pred_cause = np.array(list(CLASS_COLUMNS))[np.argmax(proba, axis=1)]
    classes = list(CAUSE_CLASSES)
    metrics: dict = {"n_rows": int(len(features)), "n_symptomatic": int(sym.sum())}
    is_massive = np.isin(y_cause, MASSIVE_CLASSES).astype(int)
    p_massive = preds.loc[sym, ["p_massive_outage", "p_external_network"]].sum(axis=1).to_numpy()
    for k, v in _prf(is_massive, (p_massive >= 0.5).astype(int)).items():
        metrics[f"massive_{k}"] = v
    metrics["massive_support"] = int(is_massive.sum())
    if not is_massive.any():  # as macro_f1 skips absent classes: say why there is no figure
        metrics["massive_note"] = MASSIVE_NOT_MEASURABLE
    # Macro-F1 over the classes that occur in the evaluation data: a class with no true
    # row has no recall to measure (a week without a BNG failure would otherwise score
    # EXTERNAL_NETWORK as F1 = 0); rows wrongly given that class still count against the
    # recall of their true class.
    present = [c for c in classes if (y_cause == c).any()]
    metrics["macro_f1"] = float(
        f1_score(y_cause, pred_cause, labels=present, average="macro", zero_division=0)
    )
    metrics["macro_f1_classes"] = present
    p, r, f, s = precision_recall_fscore_support(
        y_cause, pred_cause, labels=classes, zero_division=0
    )
    metrics["per_class"] = {
        c: {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(s[i]),
        }
        for i, c in enumerate(classes)
    }
    metrics["confusion_matrix"] = {
        "labels": classes,
        "matrix": confusion_matrix(y_cause, pred_cause, labels=classes).tolist(),
    }
    base: dict = {}
    rc = rule_cause(X[sym])
    base["macro_f1"] = float(
        f1_score(y_cause, rc, labels=present, average="macro", zero_division=0)
    )
    for k, v in _prf(is_massive, rule_massive(X[sym]).astype(int)).items():
        base[f"massive_{k}"] = v
    risk = preds.loc[:, [f"risk_{h}h" for h in RISK_HORIZONS_H]].to_numpy()
    # A fault within 2 h is a fault within 6 h and 24 h: rows that say otherwise.
    metrics["monotonicity_violations"] = monotonicity_violations(risk)
    rr = rule_risk(X)
    for h in RISK_HORIZONS_H:
        y = labels[f"risk_{h}h"].to_numpy()
        ok = ~np.isnan(y)
        yy = y[ok].astype(int)
        if len(yy) == 0 or yy.min() == yy.max():  # nothing to rank (e.g. horizon past the data)
            metrics[f"risk_{h}h_pr_auc"] = base[f"risk_{h}h_pr_auc"] = float("nan")
            continue
        metrics[f"risk_{h}h_pr_auc"] = float(
            average_precision_score(yy, preds[f"risk_{h}h"].to_numpy()[ok])
        )
        base[f"risk_{h}h_pr_auc"] = float(average_precision_score(yy, rr[ok]))
        k = RISK_HORIZONS_H.index(h)
        metrics[f"risk_{h}h_brier"] = float(brier_score_loss(yy, risk[ok, k]))
        metrics[f"risk_{h}h_brier_training_prevalence"] = float(
            brier_score_loss(yy, np.full(len(yy), bundle.risk.prevalence_[k]))
        )
        if h == 24:
            prev = float(yy.mean())
            metrics["risk_24h_prevalence"] = prev
            # Two constant references: this run's own prevalence (known only afterwards,
            # the harder one to beat) and the training prevalence (what a forecaster
            # without the model would have said beforehand).
            metrics["risk_24h_brier_prevalence"] = float(
                brier_score_loss(yy, np.full(len(yy), prev))
            )
            base["risk_24h_prevalence"] = prev
    fa = labels["fault_active"].to_numpy()
    metrics["anomaly_pr_auc"] = float(average_precision_score(fa, preds["anomaly_score"]))
    metrics["anomaly_prevalence"] = float(fa.mean())
    base["anomaly_pr_auc"] = float(average_precision_score(fa, rule_anomaly(X)))
    if truth is not None:
        leads = anomaly_lead_minutes(preds, features, truth)
        metrics["anomaly_median_lead_minutes"] = float(np.median(leads)) if leads else float("nan")
        metrics["anomaly_lead_faults"] = len(leads)
    metrics["baselines"] = base
    return metrics
