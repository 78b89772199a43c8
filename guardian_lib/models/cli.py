"""``guardian train / score / evaluate / features / models list``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

models_app = typer.Typer(help="The model registry.", no_args_is_help=True)


def _summary_metrics(m: dict) -> dict[str, float]:
    flat = {k: v for k, v in m.items() if isinstance(v, (int, float))}
    for k, v in m.get("baselines", {}).items():
        if isinstance(v, (int, float)):
            flat[f"baseline_{k}"] = v
    return flat


def train_command(
    run: Annotated[list[Path], typer.Option(help="Simulated run(s) to train on (repeatable).")],
    every_minutes: Annotated[int, typer.Option(min=1, help="Spacing of training rows. [min]")] = 15,
    n_estimators: Annotated[int, typer.Option(help="Trees per LightGBM model.")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    alias: Annotated[
        str, typer.Option(help="Registry alias to point at the new version.")
    ] = "champion",
) -> None:
    """Train the models on simulated runs, log them to MLflow and register them."""
    import pandas as pd
    from rich.console import Console

    from guardian_lib.models.explain import global_importance, shap_values
    from guardian_lib.models.registry import register_bundle
    from guardian_lib.models.training import evaluate_bundle, fit_bundle, labelled_frame

    console = Console(stderr=True)
    frames, labels = [], []
    for r in run:
        console.print(f"features and labels of {r} …")
        f, lab = labelled_frame(r, every_minutes=every_minutes)
        frames.append(f)
        labels.append(lab)
    features = pd.concat(frames, ignore_index=True)
    labels_all = pd.concat(labels, ignore_index=True)
    console.print(
        f"training on {len(features):,} rows ({int(labels_all['symptomatic'].sum()):,} symptomatic) …"
    )
    bundle = fit_bundle(features, labels_all, n_estimators=n_estimators, random_state=seed)
    metrics = evaluate_bundle(bundle, features, labels_all)
    sample = features.sample(min(len(features), 5000), random_state=seed)
    X = sample.loc[:, list(bundle.risk_columns)].astype(float)
    importance = (
        global_importance(shap_values(bundle.risk[24].booster_, X), X.columns)
        if bundle.risk[24].booster_ is not None
        else pd.DataFrame()
    )
    bundle.metadata = {"trained_on": [str(r) for r in run], "rows": len(features)}
    version = register_bundle(
        bundle,
        params={"runs": [str(r) for r in run], "every_minutes": every_minutes,
                "n_estimators": n_estimators, "seed": seed},
        metrics={f"train_{k}": v for k, v in _summary_metrics(metrics).items()},
        artifacts={"train_metrics.json": metrics, "shap_global_importance.csv": importance,
                   "reference_features.parquet": sample.to_parquet(index=False)},
        alias=alias,
    )  # fmt: skip
    console.print(f"[green]registered[/] {version} as {alias!r}")


def score_command(
    run: Annotated[Path, typer.Option(help="Run to score.")],
    alias: Annotated[str, typer.Option(help="Registry alias to load.")] = "champion",
    every_minutes: Annotated[int, typer.Option(min=1, help="Spacing of scoring times. [min]")] = 15,
) -> None:
    """Write ml_predictions for a run with the registered models."""
    from rich.console import Console

    from guardian_lib.models.registry import load_bundle
    from guardian_lib.models.scoring import score_run

    bundle = load_bundle(alias)
    path = score_run(run, bundle, every_minutes=every_minutes)
    Console(stderr=True).print(f"[green]predictions[/] {path} ({bundle.model_version})")


def evaluate_command(
    run: Annotated[Path, typer.Option(help="Simulated run the models did not see.")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the metrics here.")] = None,
    alias: Annotated[str, typer.Option(help="Registry alias to load.")] = "champion",
    every_minutes: Annotated[
        int, typer.Option(min=1, help="Spacing of evaluation rows. [min]")
    ] = 15,
    split_time: Annotated[
        str | None,
        typer.Option(help="Evaluate only rows at or after this UTC time (time-based split)."),
    ] = None,
) -> None:
    """Evaluate the registered models (and the rule baselines) on a run; log drift."""
    import pandas as pd

    from guardian_lib.models.drift import drift_report
    from guardian_lib.models.registry import configure_mlflow, load_bundle
    from guardian_lib.models.training import evaluate_bundle, labelled_frame, load_truth

    bundle = load_bundle(alias)
    features, labels = labelled_frame(run, every_minutes=every_minutes)
    if split_time is not None:
        keep = features["ts"] >= pd.Timestamp(split_time, tz="UTC")
        features, labels = (
            features[keep].reset_index(drop=True),
            labels[keep].reset_index(drop=True),
        )
    metrics = evaluate_bundle(bundle, features, labels, load_truth(run))
    metrics["model_version"] = bundle.model_version
    metrics["run"] = str(run)
    mlflow = configure_mlflow()
    from mlflow import MlflowClient

    client = MlflowClient()
    mv = client.get_model_version_by_alias("network-guardian", alias)
    ref_path = client.download_artifacts(mv.run_id, "reference_features.parquet")
    drift = drift_report(pd.read_parquet(ref_path), features, columns=bundle.feature_columns)
    metrics["drift_features_over_0_2"] = int(drift["drifted"].sum())
    metrics["drift_max_psi"] = float(drift["psi"].max())
    with mlflow.start_run(run_name=f"evaluate {Path(run).name}"):
        mlflow.log_params({"model_version": bundle.model_version, "run": str(run)})
        mlflow.log_metrics({k: v for k, v in _summary_metrics(metrics).items() if v == v})
        mlflow.log_dict(metrics, "metrics.json")
        mlflow.log_text(drift.to_csv(index=False), "drift_psi.csv")
    text = json.dumps(metrics, indent=2, default=str)
    if json_out:
        json_out.write_text(text)
    typer.echo(text)


def features_command(
    run: Annotated[Path, typer.Option(help="Run with an ingested warehouse.")],
    every_minutes: Annotated[int, typer.Option(min=1, help="Spacing of feature rows. [min]")] = 5,
) -> None:
    """Materialize the point-in-time feature store (incremental) as lake/gold/features."""
    from guardian_lib.features import materialize_features

    res = materialize_features(run, every_minutes=every_minutes, progress=True)
    typer.echo(json.dumps(res))


@models_app.command("list")
def list_command() -> None:
    """List registered model versions and their aliases."""
    from guardian_lib.models.registry import list_models

    for m in list_models():
        typer.echo(
            f"{m['name']}/{m['version']}  aliases={','.join(m['aliases']) or '-'}  run={m['run_id']}"
        )


def register(app: typer.Typer) -> None:
    """Add the model commands to the ``guardian`` CLI."""
    app.command("train")(train_command)
    app.command("score")(score_command)
    app.command("evaluate")(evaluate_command)
    app.command("features")(features_command)
    app.add_typer(models_app, name="models")
