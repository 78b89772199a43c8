"""The model workflows: train, score and evaluate a run, as plain library calls.

``guardian train / score / evaluate`` (:mod:`guardian_lib.models.cli`) only parse their
arguments and call these functions; notebook 04 calls :func:`train_and_evaluate` in its
own process. Everything is logged to the project's MLflow store
(:func:`guardian_lib.models.registry.configure_mlflow`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from guardian_lib._json import dumps_strict, finite_or_none
from guardian_lib.errors import ConfigError
from guardian_lib.layout import ReportLayout, RunLayout
from guardian_lib.models.registry import MODEL_NAME
from guardian_lib.schema import MODEL_EVERY_MINUTES

__all__ = [
    "DEFAULT_ALIAS",
    "LABEL_SOURCES",
    "train",
    "score",
    "evaluate",
    "train_and_evaluate",
    "fetch_shap_importance",
    "summary_metrics",
]

#: Where training and evaluation labels come from: the simulator's ground truth or an
#: operator's closed tickets through a label map (:mod:`guardian_lib.labels_tickets`).
LABEL_SOURCES = ("truth", "tickets")
#: Registry alias the workflows write and read unless told otherwise.
DEFAULT_ALIAS = "champion"
#: Rows of the training frame kept as the drift reference and the SHAP sample. [-]
REFERENCE_SAMPLE_ROWS = 5000


def _silent(_msg: str) -> None:
    return None


def summary_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The scalar metrics of an evaluation, baselines flattened as ``baseline_<name>``."""
    flat = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
    for k, v in metrics.get("baselines", {}).items():
        if isinstance(v, int | float):
            flat[f"baseline_{k}"] = v
    return flat


def _labelled_frames(
    runs: Sequence[Path | str],
    every_minutes: int,
    log: Callable[[str], None],
    labels: str = "truth",
    label_map: Path | str | None = None,
    until: str | None = None,
    since: str | None = None,
    audit: Path | str | None = None,
) -> tuple[Any, Any, dict[str, Any]]:
    """Features and labels of every run, concatenated, and the ticket label reports."""
    import pandas as pd

    from guardian_lib.models.training import labelled_frame, ticket_labelled_frame

    frames, label_frames, reports = [], [], {}
    for r in runs:
        log(f"features and labels ({labels}) of {r} …")
        if labels == "tickets":
            f, lab, report = ticket_labelled_frame(
                r, label_map, every_minutes, until=until, since=since, audit=audit
            )
            reports[str(r)] = report
            log(_report_line(report))
        else:
            f, lab = labelled_frame(r, every_minutes=every_minutes)
        frames.append(f)
        label_frames.append(lab)
    return pd.concat(frames, ignore_index=True), pd.concat(label_frames, ignore_index=True), reports


def _report_line(report: dict[str, Any]) -> str:
    """The ticket label report in one line (counts; examples are in the MLflow artifact)."""
    c = report["counts"]
    line = (
        f"tickets: {c['labelled']} labelled {report['per_class']}, {c['no_fault']} no fault, "
        f"{c['unlabelled']} unlabelled, {c['contradictory']} contradictory, {c['ignored']} "
        f"ignored, {c['open']} open; {report['labelled_rows']:,} rows labelled, "
        f"{report['unlabelled_symptomatic_rows']:,} symptomatic rows nothing explains"
    )
    if report.get("event_faults"):
        line += f"; intervals from events {report['event_faults']}"
    if report.get("reboots"):
        line += f"; autopilot reboots {report['reboots']}"
    return line


def _check_label_source(labels: str, label_map: Path | str | None) -> None:
    if labels not in LABEL_SOURCES:
        raise ValueError(f"labels={labels!r}: expected one of {list(LABEL_SOURCES)}")
    if labels == "tickets" and label_map is None:
        raise ValueError("labels from tickets need a label map (--label-map labels.yaml)")


def _global_importance(bundle: Any, sample: Any) -> Any:
    """Mean |SHAP| per feature of the 24 h risk model on ``sample`` (empty without a booster)."""
    import pandas as pd

    from guardian_lib.models.explain import global_importance, shap_values

    if bundle.risk[24].booster_ is None:
        return pd.DataFrame()
    X = sample.loc[:, list(bundle.risk_columns)].astype(float)
    return global_importance(shap_values(bundle.risk[24].booster_, X), X.columns)


def train(
    runs: Sequence[Path | str],
    every_minutes: int = MODEL_EVERY_MINUTES,
    n_estimators: int = 300,
    seed: int = 0,
    alias: str = DEFAULT_ALIAS,
    log: Callable[[str], None] = _silent,
    labels: str = "truth",
    label_map: Path | str | None = None,
    until: str | None = None,
    since: str | None = None,
    audit: Path | str | None = None,
    box_fault_rate: float = 0.3,
    onu_failure_rate: float = 0.06,
) -> str:
    """Train the models on runs, log them to MLflow and register them.

    Parameters
    ----------
    runs : sequence of path
        Ingested run folders to train on.
    every_minutes : int
        Spacing of training rows. [min]
    n_estimators : int, default 300
        Trees per LightGBM model. [-]
    seed : int, default 0
        The one seed of training (model fits and the reference sample).
    alias : str, default 'champion'
        Registry alias pointed at the new version.
    log : callable, optional
        ``log(message)`` for progress lines.
    labels : {'truth', 'tickets'}, default 'truth'
        Labels from the simulator's ground truth, or from the runs' closed tickets
        through ``label_map`` (an operator's runs).
    label_map : path, optional
        Label map YAML; required with ``labels='tickets'``.
    until : str, optional
        Training cut-off (UTC) with ``labels='tickets'``: later rows and tickets closed
        later are left for evaluation.
    since : str, optional
        With ``labels='tickets'``: train on rows from this time (UTC) on.
    audit : path, optional
        With ``labels='tickets'``: the autopilot's audit file; reboots that fixed the
        customer become labels.
    box_fault_rate, onu_failure_rate : float, default 0.3, 0.06
        Street-box faults per box-year and ONU hardware failures per ONU-year (see
        :func:`~guardian_lib.models.training.fit_bundle`). [1/year]

    Returns
    -------
    str
        The registered model version.

    Raises
    ------
    guardian_lib.models.sufficiency.InsufficientTrainingData
        Before any feature is computed, no run longer than the longest risk horizon
        within ``since`` / ``until``; after labelling, too few labelled faults (the
        minimums of :mod:`guardian_lib.models.sufficiency`). Nothing is registered.
    """
    from guardian_lib.labels import RISK_HORIZONS_H
    from guardian_lib.models.registry import alias_version, register_bundle
    from guardian_lib.models.sufficiency import check_labels, check_spans, run_spans
    from guardian_lib.models.training import evaluate_bundle, fit_bundle

    seed = int(seed)
    _check_label_source(labels, label_map)
    # Fail at once on runs too short to label the longest horizon (before the features).
    window = {"since": since, "until": until} if labels == "tickets" else {}
    check_spans(run_spans(runs), RISK_HORIZONS_H, **window)
    features, labels_all, reports = _labelled_frames(
        runs, every_minutes, log, labels=labels, label_map=label_map, until=until,
        since=since, audit=audit,
    )  # fmt: skip
    # Too few labelled faults: refuse before anything is registered under the alias.
    counts = check_labels(features, labels_all, RISK_HORIZONS_H)
    log(
        f"training on {len(features):,} rows ({int(labels_all['symptomatic'].sum()):,} symptomatic; "
        f"ONUs per cause {counts['cause_onus']}, per risk interval {counts['risk_onus']}) …"
    )
    bundle = fit_bundle(
        features, labels_all, n_estimators=n_estimators, random_state=seed,
        box_fault_rate=box_fault_rate, onu_failure_rate=onu_failure_rate,
    )  # fmt: skip
    metrics = evaluate_bundle(bundle, features, labels_all)
    sample = features.sample(min(len(features), REFERENCE_SAMPLE_ROWS), random_state=seed)
    importance = _global_importance(bundle, sample)
    bundle.metadata = {"trained_on": [str(r) for r in runs], "rows": len(features),
                       "labels": labels}  # fmt: skip
    artifacts = {"train_metrics.json": metrics, "shap_global_importance.csv": importance,
                 "reference_features.parquet": sample.to_parquet(index=False)}  # fmt: skip
    if reports:
        artifacts["ticket_labels_report.json"] = reports
    previous = alias_version(alias)
    version = register_bundle(
        bundle,
        params={"runs": [str(r) for r in runs], "every_minutes": every_minutes,
                "n_estimators": n_estimators, "seed": seed, "labels": labels,
                "label_map": str(label_map) if label_map else None, "until": until,
                "since": since, "audit": str(audit) if audit else None,
                "box_fault_rate": box_fault_rate, "onu_failure_rate": onu_failure_rate},
        metrics={f"train_{k}": v for k, v in summary_metrics(metrics).items()},
        artifacts=artifacts,
        alias=alias,
    )  # fmt: skip
    if previous is not None and previous != version:
        log(
            f"alias {alias!r} moved from {previous} to {version} ({previous} stays registered: "
            f"`guardian train --since` compares on a hold-out and promotes only a better model)"
        )
    return version


def score(
    run: Path | str,
    alias: str = DEFAULT_ALIAS,
    every_minutes: int = MODEL_EVERY_MINUTES,
    client: Any = None,
) -> tuple[Path, str]:
    """Write ``ml_predictions`` for a run with the registered models.

    With a Dask ``client`` the run is scored one (date, OLT group) partition per task;
    the file written is the same.

    Returns
    -------
    (Path, str)
        The predictions written and the model version that wrote them.
    """
    from guardian_lib.models.registry import load_bundle
    from guardian_lib.models.scoring import score_run

    bundle = load_bundle(alias)
    path = score_run(run, bundle, every_minutes=every_minutes, client=client)
    return path, bundle.model_version


def evaluate(
    run: Path | str,
    alias: str = DEFAULT_ALIAS,
    every_minutes: int = MODEL_EVERY_MINUTES,
    split_time: str | None = None,
    json_out: Path | str | None = None,
    labels: str = "truth",
    label_map: Path | str | None = None,
    client: Any = None,
    labelled: tuple[Any, Any] | None = None,
    predictions: Any = None,
) -> dict[str, Any]:
    """Evaluate the registered models (and the rule baselines) on a run; log drift.

    Parameters
    ----------
    run : path
        A simulated run the models did not see.
    alias : str, default 'champion'
    every_minutes : int
        Spacing of evaluation rows. [min]
    split_time : str, optional
        Evaluate only rows at or after this UTC time (time-based split).
    json_out : path, optional
        Also write the metrics here (``evaluation.json``), as strict JSON: figures that
        are not defined (NaN in the returned dict) are ``null``.
    labels : {'truth', 'tickets'}, default 'truth'
        Evaluate against the ground truth, or against the run's closed tickets through
        ``label_map`` (with ``split_time``: the held-out later period).
    label_map : path, optional
        Label map YAML; required with ``labels='tickets'``.
    client : distributed.Client, optional
        Evaluate on Dask, one (date, OLT group) partition per task
        (:func:`~guardian_lib.models.distributed.evaluate_partitions`); same metrics.
        Ground-truth labels only.
    labelled : (DataFrame, DataFrame), optional
        ``labelled_frame(run, every_minutes)`` (features and ground-truth labels) if the
        caller already has it: the same metrics, without reading the features again.
        Ground-truth labels, no ``client``.
    predictions : DataFrame, optional
        With ``labelled`` and no ``split_time``: the model's predictions of those
        features (``bundle.predict``, as scoring wrote them), not computed again.

    Returns
    -------
    dict
        The metrics, with ``model_version``, ``run`` and the drift summary.
    """
    import pandas as pd
    from mlflow import MlflowClient

    from guardian_lib.models.drift import drift_report
    from guardian_lib.models.registry import configure_mlflow, load_bundle
    from guardian_lib.models.training import (
        evaluate_bundle,
        labelled_frame,
        load_truth,
        ticket_labelled_frame,
    )

    _check_label_source(labels, label_map)
    if labelled is not None and (labels != "truth" or client is not None):
        raise ValueError("evaluate: labelled frames are ground-truth features, without client")
    if predictions is not None and (labelled is None or split_time is not None):
        raise ValueError("evaluate: predictions go with the labelled frames, without split")
    bundle = load_bundle(alias)
    if client is not None and labels == "tickets":
        raise ConfigError(
            "evaluation on Dask uses the ground-truth labels: run --labels tickets "
            "without --scheduler / --workers"
        )
    mlflow = configure_mlflow()
    mlflow_client = MlflowClient()
    mv = mlflow_client.get_model_version_by_alias(MODEL_NAME, alias)
    reference = pd.read_parquet(
        mlflow_client.download_artifacts(mv.run_id, "reference_features.parquet")
    )
    report = None
    if client is not None:
        from guardian_lib.models.distributed import evaluate_partitions

        metrics, drift = evaluate_partitions(
            run, bundle, client, load_truth(run), every_minutes, split_time, reference
        )
    else:
        if labels == "tickets":
            features, label_frame, report = ticket_labelled_frame(
                run, label_map, every_minutes, since=split_time
            )
            truth = None
        else:
            features, label_frame = labelled or labelled_frame(run, every_minutes=every_minutes)
            truth = load_truth(run)
        if split_time is not None and labels != "tickets":
            keep = features["ts"] >= pd.Timestamp(split_time, tz="UTC")
            features, label_frame = (
                features[keep].reset_index(drop=True),
                label_frame[keep].reset_index(drop=True),
            )
        metrics = evaluate_bundle(bundle, features, label_frame, truth, preds=predictions)
        drift = drift_report(reference, features, columns=bundle.feature_columns)
    metrics["labels"] = labels
    if report is not None:
        metrics["ticket_labels"] = {k: report[k] for k in ("counts", "per_class", "labelled_rows")}
    metrics["model_version"] = bundle.model_version
    metrics["run"] = str(run)
    metrics["drift_features_over_0_2"] = int(drift["drifted"].sum())
    metrics["drift_max_psi"] = float(drift["psi"].max())
    with mlflow.start_run(run_name=f"evaluate {Path(run).name}"):
        mlflow.log_params({"model_version": bundle.model_version, "run": str(run)})
        mlflow.log_metrics({k: v for k, v in summary_metrics(metrics).items() if v == v})
        mlflow.log_dict(finite_or_none(metrics), "metrics.json")
        mlflow.log_text(drift.to_csv(index=False), "drift_psi.csv")
    if json_out is not None:
        # Strict JSON: a figure that is not defined (NaN) is written as null.
        Path(json_out).write_text(dumps_strict(metrics, indent=2, default=str))
    return metrics


def train_and_evaluate(
    train_run: Path | str,
    test_run: Path | str,
    out_dir: Path | str,
    n_estimators: int = 200,
    every_minutes: int = MODEL_EVERY_MINUTES,
    seed: int = 0,
    log: Callable[[str], None] = _silent,
) -> dict[str, Any]:
    """Train on ``train_run``, then score and evaluate on ``test_run`` (all in this process).

    Parameters
    ----------
    train_run, test_run : path
    out_dir : path
        Where ``evaluation.json`` is written.
    n_estimators : int, default 200
        Trees per LightGBM model. [-]
    every_minutes : int
        Spacing of training, scoring and evaluation rows. [min]
    seed : int, default 0
        The training seed.
    log : callable, optional

    Returns
    -------
    dict
        ``{"status": "ok", "metrics": {...}, "metrics_path": str, "shap": str}``.
    """
    from guardian_lib.models.registry import load_bundle
    from guardian_lib.models.scoring import write_predictions
    from guardian_lib.models.training import labelled_frame

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train([train_run], every_minutes=every_minutes, n_estimators=n_estimators, seed=seed, log=log)
    # The test run's features are read and predicted once, for scoring (what `score`
    # writes: `score_run` of the whole run) and for the evaluation.
    test = labelled_frame(test_run, every_minutes=every_minutes)
    bundle = load_bundle(DEFAULT_ALIAS)
    preds = bundle.predict(test[0], explain=True)
    write_predictions(test_run, preds, bundle.model_version)
    metrics_path = ReportLayout(out).evaluation
    metrics = evaluate(test_run, every_minutes=every_minutes, json_out=metrics_path,
                       labelled=test, predictions=preds)  # fmt: skip
    shap = fetch_shap_importance(test_run)
    return {"status": "ok", "metrics": metrics, "metrics_path": str(metrics_path), "shap": shap}


def fetch_shap_importance(
    run: Path | str, model: str = MODEL_NAME, alias: str = DEFAULT_ALIAS
) -> str:
    """Copy the registered model's global SHAP importance into ``<run>/models/``.

    :func:`train` logs ``shap_global_importance.csv`` with the model it registers; the
    dashboards read it from the run folder.

    Returns
    -------
    str
        The file written, or ``"unavailable: <reason>"`` (no such model, alias or artifact).
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient

    from guardian_lib.models.registry import configure_mlflow

    dest = RunLayout(run).models
    try:
        client = MlflowClient(configure_mlflow().get_tracking_uri())
        mv = client.get_model_version_by_alias(model, alias)
        dest.mkdir(parents=True, exist_ok=True)
        path = client.download_artifacts(mv.run_id, "shap_global_importance.csv", str(dest))
    except Exception as exc:  # noqa: BLE001 (reported to the caller, with the model and alias)
        return f"unavailable: {model}@{alias}: {type(exc).__name__}: {exc}"
    return str(path)
