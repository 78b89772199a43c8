"""The model workflows: train, score and evaluate a run, as plain library calls.

``guardian train / score / evaluate`` (:mod:`guardian_lib.models.cli`) only parse their
arguments and call these functions; notebook 04 calls :func:`train_and_evaluate` in its
own process. Everything is logged to the project's MLflow store
(:func:`guardian_lib.models.registry.configure_mlflow`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from guardian_lib.layout import ReportLayout, RunLayout
from guardian_lib.models.registry import MODEL_NAME
from guardian_lib.schema import MODEL_EVERY_MINUTES

__all__ = [
    "DEFAULT_ALIAS",
    "train",
    "score",
    "evaluate",
    "train_and_evaluate",
    "fetch_shap_importance",
    "summary_metrics",
]

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
    runs: Sequence[Path | str], every_minutes: int, log: Callable[[str], None]
) -> tuple[Any, Any]:
    """Features and labels of every run, concatenated."""
    import pandas as pd

    from guardian_lib.models.training import labelled_frame

    frames, labels = [], []
    for r in runs:
        log(f"features and labels of {r} …")
        f, lab = labelled_frame(r, every_minutes=every_minutes)
        frames.append(f)
        labels.append(lab)
    return pd.concat(frames, ignore_index=True), pd.concat(labels, ignore_index=True)


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
) -> str:
    """Train the models on simulated runs, log them to MLflow and register them.

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

    Returns
    -------
    str
        The registered model version.
    """
    from guardian_lib.models.registry import register_bundle
    from guardian_lib.models.training import evaluate_bundle, fit_bundle

    seed = int(seed)
    features, labels_all = _labelled_frames(runs, every_minutes, log)
    log(
        f"training on {len(features):,} rows ({int(labels_all['symptomatic'].sum()):,} symptomatic) …"
    )
    bundle = fit_bundle(features, labels_all, n_estimators=n_estimators, random_state=seed)
    metrics = evaluate_bundle(bundle, features, labels_all)
    sample = features.sample(min(len(features), REFERENCE_SAMPLE_ROWS), random_state=seed)
    importance = _global_importance(bundle, sample)
    bundle.metadata = {"trained_on": [str(r) for r in runs], "rows": len(features)}
    return register_bundle(
        bundle,
        params={"runs": [str(r) for r in runs], "every_minutes": every_minutes,
                "n_estimators": n_estimators, "seed": seed},
        metrics={f"train_{k}": v for k, v in summary_metrics(metrics).items()},
        artifacts={"train_metrics.json": metrics, "shap_global_importance.csv": importance,
                   "reference_features.parquet": sample.to_parquet(index=False)},
        alias=alias,
    )  # fmt: skip


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
    client: Any = None,
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
        Also write the metrics here (``evaluation.json``).
    client : distributed.Client, optional
        Evaluate on Dask, one (date, OLT group) partition per task
        (:func:`~guardian_lib.models.distributed.evaluate_partitions`); same metrics.

    Returns
    -------
    dict
        The metrics, with ``model_version``, ``run`` and the drift summary.
    """
    import pandas as pd
    from mlflow import MlflowClient

    from guardian_lib.models.drift import drift_report
    from guardian_lib.models.registry import configure_mlflow, load_bundle
    from guardian_lib.models.training import evaluate_bundle, labelled_frame, load_truth

    bundle = load_bundle(alias)
    mlflow = configure_mlflow()
    mlflow_client = MlflowClient()
    mv = mlflow_client.get_model_version_by_alias(MODEL_NAME, alias)
    reference = pd.read_parquet(
        mlflow_client.download_artifacts(mv.run_id, "reference_features.parquet")
    )
    if client is not None:
        from guardian_lib.models.distributed import evaluate_partitions

        metrics, drift = evaluate_partitions(
            run, bundle, client, load_truth(run), every_minutes, split_time, reference
        )
    else:
        features, labels = labelled_frame(run, every_minutes=every_minutes)
        if split_time is not None:
            keep = features["ts"] >= pd.Timestamp(split_time, tz="UTC")
            features, labels = (
                features[keep].reset_index(drop=True),
                labels[keep].reset_index(drop=True),
            )
        metrics = evaluate_bundle(bundle, features, labels, load_truth(run))
        drift = drift_report(reference, features, columns=bundle.feature_columns)
    metrics["model_version"] = bundle.model_version
    metrics["run"] = str(run)
    metrics["drift_features_over_0_2"] = int(drift["drifted"].sum())
    metrics["drift_max_psi"] = float(drift["psi"].max())
    with mlflow.start_run(run_name=f"evaluate {Path(run).name}"):
        mlflow.log_params({"model_version": bundle.model_version, "run": str(run)})
        mlflow.log_metrics({k: v for k, v in summary_metrics(metrics).items() if v == v})
        mlflow.log_dict(metrics, "metrics.json")
        mlflow.log_text(drift.to_csv(index=False), "drift_psi.csv")
    if json_out is not None:
        Path(json_out).write_text(json.dumps(metrics, indent=2, default=str))
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
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train([train_run], every_minutes=every_minutes, n_estimators=n_estimators, seed=seed, log=log)
    score(test_run, every_minutes=every_minutes)
    metrics_path = ReportLayout(out).evaluation
    metrics = evaluate(test_run, every_minutes=every_minutes, json_out=metrics_path)
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
