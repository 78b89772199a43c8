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
    "risk_note",
    "risk_metrics",
    "anomaly_metrics",
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
    box_fault_rate: float = 0.3,
    onu_failure_rate: float = 0.06,
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
    box_fault_rate, onu_failure_rate : float, default 0.3, 0.06
        Street-box faults per box-year and ONU hardware failures per ONU-year: the prior
        that tells a dead ONU from a fault of its box where the ONU is alone on its box
        (:class:`~guardian_lib.models.cause.CauseClassifier`). [1/year]

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
        box_fault_rate=box_fault_rate,
        onu_failure_rate=onu_failure_rate,
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


def risk_note(y: np.ndarray, horizon_h: int) -> str | None:
    """Why the risk figures of one horizon are not measurable on these labels, or ``None``.

    Parameters
    ----------
    y : ndarray
        The horizon's labelled rows (0/1; rows without a label already dropped). [-]
    horizon_h : int
        The horizon. [h]

    Returns
    -------
    str or None
        No labelled row (the evaluated period ends before the horizon does): PR-AUC and
        the Brier scores are NaN. One class only (no fault, or only faults): PR-AUC is NaN
        (nothing to rank) while the Brier scores stay measured.
    """
    if len(y) == 0:
        return (
            f"no row of the evaluated period has a {horizon_h} h risk label (the period "
            f"ends before the horizon does): risk_{horizon_h}h PR-AUC and Brier are not "
            "measurable (NaN)"
        )
    if y.min() == y.max():
        what = "a fault" if y[0] else "no fault"
        return (
            f"every labelled row has {what} within {horizon_h} h: risk_{horizon_h}h PR-AUC "
            "is not measurable (NaN: nothing to rank); the Brier scores are measured"
        )
    return None


#: Why macro-F1 is NaN on an evaluation period without a symptomatic row.
CAUSE_NOT_MEASURABLE = (
    "no symptomatic row in the evaluated period: the cause classifier's macro-F1 is not "
    "measurable (NaN) and its per-class figures count no row"
)


def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray, present: list[str]) -> float:
    """Macro-F1 over the classes ``present`` in ``y_true``; NaN when there is none."""
    if not present:
        return float("nan")
    return float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))


#: Why the anomaly PR-AUC is NaN on an evaluation period without an active fault.
ANOMALY_NOT_MEASURABLE = (
    "no row of the evaluated period has an active fault: anomaly PR-AUC is not measurable (NaN)"
)


def _prf(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Binary precision, recall and F1; NaN where a figure has nothing to measure.

    Without a true positive row, recall and F1 are NaN (not 0: nothing was missed); without
    a predicted positive row, precision is NaN. A period with false alarms and no true row
    keeps precision 0.
    """
    if not len(y_true):  # no symptomatic row at all: nothing predicted, nothing to recall
        return dict.fromkeys(("precision", "recall", "f1"), float("nan"))
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="binary", zero_division=0)
    out = {"precision": float(p), "recall": float(r), "f1": float(f)}
    if not np.any(y_true):
        out["recall"] = out["f1"] = float("nan")
    if not np.any(y_pred):
        out["precision"] = float("nan")
    return out


def risk_metrics(
    metrics: dict,
    base: dict,
    horizon_h: int,
    y: np.ndarray,
    risk: np.ndarray,
    rule: np.ndarray,
    training_prevalence: float,
) -> None:
    """Fill one horizon's risk figures of the model (``metrics``) and the rules (``base``).

    ``risk_{h}h_pr_auc``, ``risk_{h}h_brier``, ``risk_{h}h_brier_training_prevalence`` and,
    at 24 h, ``risk_24h_prevalence`` and ``risk_24h_brier_prevalence``; every key is
    present, NaN where not measurable, with ``risk_{h}h_note`` saying why
    (:func:`risk_note`). Shared by the serial and the Dask evaluation.

    Parameters
    ----------
    y : ndarray
        Labelled rows of the horizon (0/1). [-]
    risk, rule : ndarray
        The model's and the rules' risk on the same rows. [-]
    training_prevalence : float
        The horizon's prevalence in the training data (a constant reference). [-]
    """
    nan = float("nan")
    note = risk_note(y, horizon_h)
    if note is not None:
        metrics[f"risk_{horizon_h}h_note"] = note
    ranked = note is None
    metrics[f"risk_{horizon_h}h_pr_auc"] = (
        float(average_precision_score(y, risk)) if ranked else nan
    )
    base[f"risk_{horizon_h}h_pr_auc"] = float(average_precision_score(y, rule)) if ranked else nan
    if not len(y):
        metrics[f"risk_{horizon_h}h_brier"] = nan
        metrics[f"risk_{horizon_h}h_brier_training_prevalence"] = nan
    else:
        metrics[f"risk_{horizon_h}h_brier"] = float(brier_score_loss(y, risk))
        metrics[f"risk_{horizon_h}h_brier_training_prevalence"] = float(
            brier_score_loss(y, np.full(len(y), training_prevalence))
        )
    if horizon_h == 24:
        prev = float(y.mean()) if len(y) else nan
        metrics["risk_24h_prevalence"] = base["risk_24h_prevalence"] = prev
        # Two constant references: this run's own prevalence (known only afterwards,
        # the harder one to beat) and the training prevalence (what a forecaster
        # without the model would have said beforehand).
        metrics["risk_24h_brier_prevalence"] = (
            float(brier_score_loss(y, np.full(len(y), prev))) if len(y) else nan
        )


def anomaly_metrics(
    metrics: dict, base: dict, fault_active: np.ndarray, score: np.ndarray, rule: np.ndarray
) -> None:
    """Fill ``anomaly_pr_auc`` and ``anomaly_prevalence`` (model) and the rules' PR-AUC.

    Without an active fault the PR-AUCs are NaN and ``anomaly_note`` says why (sklearn
    would answer 0 with a warning). Shared by the serial and the Dask evaluation.

    Parameters
    ----------
    fault_active : ndarray
        Whether a fault is active at each row (0/1). [-]
    score, rule : ndarray
        The model's anomaly score and the rule's, on the same rows. [-]
    """
    fa = np.asarray(fault_active).astype(int)
    if fa.any():
        metrics["anomaly_pr_auc"] = float(average_precision_score(fa, score))
        base["anomaly_pr_auc"] = float(average_precision_score(fa, rule))
    else:
        metrics["anomaly_pr_auc"] = base["anomaly_pr_auc"] = float("nan")
        metrics["anomaly_note"] = ANOMALY_NOT_MEASURABLE
    metrics["anomaly_prevalence"] = float(fa.mean())


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
    preds: pd.DataFrame | None = None,
) -> dict:
    """Metrics of the bundle and of the rule baselines on labelled rows.

    ``preds``: ``bundle.predict(features)`` if the caller has it already (with or without
    reasons: the same figures); computed here otherwise.

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
        Every key is present; a figure the labels cannot measure is NaN and a note says
        why: ``risk_{h}h_note`` (no labelled row for the horizon, or one class only:
        :func:`risk_note`), ``anomaly_note`` (no active fault), ``cause_note`` (no
        symptomatic row), ``massive_note``.

    Raises
    ------
    ValueError
        ``features`` has no row (e.g. a split after the end of the run).
    """
    if not len(features):
        raise ValueError("no rows to evaluate (the evaluated period or split holds none)")
    if preds is None:
        preds = bundle.predict(features, explain=False)
    elif len(preds) != len(features):
        raise ValueError(f"preds has {len(preds)} rows for {len(features)} feature rows")
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
    metrics["macro_f1"] = _macro_f1(y_cause, pred_cause, present)
    metrics["macro_f1_classes"] = present
    if not present:  # sklearn refuses empty arrays: every figure is 0 of 0
        metrics["cause_note"] = CAUSE_NOT_MEASURABLE
        p = r = f = s = np.zeros(len(classes))
        matrix = np.zeros((len(classes), len(classes)), dtype=int)
    else:
        p, r, f, s = precision_recall_fscore_support(
            y_cause, pred_cause, labels=classes, zero_division=0
        )
        matrix = confusion_matrix(y_cause, pred_cause, labels=classes)
    metrics["per_class"] = {
        c: {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(s[i]),
        }
        for i, c in enumerate(classes)
    }
    metrics["confusion_matrix"] = {"labels": classes, "matrix": matrix.tolist()}
    base: dict = {"macro_f1": _macro_f1(y_cause, rule_cause(X[sym]), present)}
    for k, v in _prf(is_massive, rule_massive(X[sym]).astype(int)).items():
        base[f"massive_{k}"] = v
    risk = preds.loc[:, [f"risk_{h}h" for h in RISK_HORIZONS_H]].to_numpy()
    # A fault within 2 h is a fault within 6 h and 24 h: rows that say otherwise.
    metrics["monotonicity_violations"] = monotonicity_violations(risk)
    rr = rule_risk(X)
    for k, h in enumerate(RISK_HORIZONS_H):
        y = labels[f"risk_{h}h"].to_numpy(dtype=float)
        ok = ~np.isnan(y)
        risk_metrics(
            metrics, base, h, y[ok].astype(int), risk[ok, k], rr[ok], bundle.risk.prevalence_[k]
        )
    fa = labels["fault_active"].to_numpy()
    anomaly_metrics(metrics, base, fa, preds["anomaly_score"].to_numpy(), rule_anomaly(X))
    if truth is not None:
        leads = anomaly_lead_minutes(preds, features, truth)
        metrics["anomaly_median_lead_minutes"] = float(np.median(leads)) if leads else float("nan")
        metrics["anomaly_lead_faults"] = len(leads)
    metrics["baselines"] = base
    return metrics
