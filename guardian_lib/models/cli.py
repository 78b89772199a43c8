"""``guardian train / score / evaluate / features / models list``: argument parsing only.

The workflows themselves are :mod:`guardian_lib.models.workflow`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from guardian_lib._json import dumps_strict
from guardian_lib.models.workflow import DEFAULT_ALIAS
from guardian_lib.schema import FEATURE_EVERY_MINUTES, MODEL_EVERY_MINUTES

__all__ = ["register"]

models_app = typer.Typer(help="The model registry.", no_args_is_help=True)

_Scheduler = Annotated[
    str | None,
    typer.Option(
        help="Run on Dask: 'local' (a LocalCluster on this machine) or tcp://HOST:8786. "
        "Default: in this process. Same output either way."
    ),
]
_Workers = Annotated[
    int | None,
    typer.Option(min=1, help="Workers of the LocalCluster (implies --scheduler local)."),
]


def _client(scheduler: str | None, workers: int | None):
    """The Dask client of the options (or none), the dashboard link on stderr."""
    from rich.console import Console

    from guardian_lib.cluster import optional_client

    console = Console(stderr=True)
    try:
        return optional_client(scheduler, workers, log=console.print)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scheduler") from exc


def _progress(futures: list) -> None:
    from distributed import progress

    progress(futures)


_LABELS_HELP = (
    "Where labels come from: 'truth' (a simulated run's ground truth) or 'tickets' "
    "(closed tickets through --label-map; an imported run)."
)


def train_command(
    run: Annotated[list[Path], typer.Option(help="Run(s) to train on (repeatable).")],
    every_minutes: Annotated[
        int, typer.Option(min=1, help="Spacing of training rows. [min]")
    ] = MODEL_EVERY_MINUTES,
    n_estimators: Annotated[int, typer.Option(help="Trees per LightGBM model.")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    alias: Annotated[
        str, typer.Option(help="Registry alias to point at the new version.")
    ] = DEFAULT_ALIAS,
    labels: Annotated[str, typer.Option(help=_LABELS_HELP)] = "truth",
    label_map: Annotated[
        Path | None,
        typer.Option(help="Label map YAML (closure codes → classes), with --labels tickets."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            help="With --labels tickets: train on rows and tickets closed up to this UTC time."
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Feedback loop (with --labels tickets): train a challenger on rows from this "
            "UTC time to the hold-out and promote it only if it beats the champion there."
        ),
    ] = None,
    holdout_days: Annotated[
        float, typer.Option(min=0.5, help="With --since: latest days held out to compare. [d]")
    ] = 7.0,
    promotion_metric: Annotated[
        str, typer.Option(help="With --since: macro_f1, massive_f1 or risk_24h_pr_auc.")
    ] = "macro_f1",
    audit: Annotated[
        Path | None,
        typer.Option(
            help="The autopilot's audit DuckDB file: reboots that fixed it become labels."
        ),
    ] = None,
    box_fault_rate: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Street-box faults (splitter port, connector, drop) per box-year: with "
            "--onu-failure-rate, the prior that tells a dead ONU from a fault of its box "
            "where the ONU is alone on its box; 0 turns it off. [1/year]",
        ),
    ] = 0.3,
    onu_failure_rate: Annotated[
        float, typer.Option(min=0.0, help="ONU hardware failures per ONU-year. [1/year]")
    ] = 0.06,
) -> None:
    """Train the models on runs, log them to MLflow and register them."""
    from rich.console import Console

    from guardian_lib.models.workflow import train

    _check_labels(labels, label_map)
    console = Console(stderr=True)
    if since is not None:
        if labels != "tickets" or len(run) != 1 or until is not None:
            raise typer.BadParameter(
                "--since retrains one operator run from its tickets: use it with one --run, "
                "--labels tickets and --label-map, without --until",
                param_hint="--since",
            )
        from guardian_lib.models.promotion import retrain

        res = retrain(
            run[0], since, label_map, holdout_days=holdout_days,
            promotion_metric=promotion_metric, audit=audit, every_minutes=every_minutes,
            n_estimators=n_estimators, seed=seed, champion_alias=alias, log=console.print,
            box_fault_rate=box_fault_rate, onu_failure_rate=onu_failure_rate,
        )  # fmt: skip
        typer.echo(dumps_strict(res, indent=2, default=str))
        return
    version = train(
        run, every_minutes=every_minutes, n_estimators=n_estimators, seed=seed, alias=alias,
        log=console.print, labels=labels, label_map=label_map, until=until, audit=audit,
        box_fault_rate=box_fault_rate, onu_failure_rate=onu_failure_rate,
    )  # fmt: skip
    console.print(f"[green]registered[/] {version} as {alias!r}")


def _check_labels(labels: str, label_map: Path | None) -> None:
    """Refuse a bad --labels / --label-map pair before any work (exit code 2)."""
    from guardian_lib.models.workflow import LABEL_SOURCES

    if labels not in LABEL_SOURCES:
        raise typer.BadParameter(
            f"{labels!r}: expected one of {', '.join(LABEL_SOURCES)}", param_hint="--labels"
        )
    if labels == "tickets" and label_map is None:
        raise typer.BadParameter("--labels tickets needs --label-map", param_hint="--label-map")
    if label_map is not None and labels != "tickets":
        raise typer.BadParameter(
            "--label-map is used with --labels tickets only", param_hint="--label-map"
        )


def score_command(
    run: Annotated[Path, typer.Option(help="Run to score.")],
    alias: Annotated[str, typer.Option(help="Registry alias to load.")] = DEFAULT_ALIAS,
    every_minutes: Annotated[
        int, typer.Option(min=1, help="Spacing of scoring times. [min]")
    ] = MODEL_EVERY_MINUTES,
    scheduler: _Scheduler = None,
    workers: _Workers = None,
) -> None:
    """Write ml_predictions for a run with the registered models."""
    from rich.console import Console

    from guardian_lib.models.workflow import score

    with _client(scheduler, workers) as client:
        path, version = score(run, alias=alias, every_minutes=every_minutes, client=client)
    Console(stderr=True).print(f"[green]predictions[/] {path} ({version})")


def evaluate_command(
    run: Annotated[Path, typer.Option(help="Simulated run the models did not see.")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the metrics here.")] = None,
    alias: Annotated[str, typer.Option(help="Registry alias to load.")] = DEFAULT_ALIAS,
    every_minutes: Annotated[
        int, typer.Option(min=1, help="Spacing of evaluation rows. [min]")
    ] = MODEL_EVERY_MINUTES,
    split_time: Annotated[
        str | None,
        typer.Option(help="Evaluate only rows at or after this UTC time (time-based split)."),
    ] = None,
    labels: Annotated[str, typer.Option(help=_LABELS_HELP)] = "truth",
    label_map: Annotated[
        Path | None, typer.Option(help="Label map YAML, with --labels tickets.")
    ] = None,
    scheduler: _Scheduler = None,
    workers: _Workers = None,
) -> None:
    """Evaluate the registered models (and the rule baselines) on a run; log drift."""
    from guardian_lib.models.workflow import evaluate

    _check_labels(labels, label_map)
    if labels == "tickets" and (scheduler is not None or workers is not None):
        raise typer.BadParameter(
            "evaluation on Dask uses the ground-truth labels: drop --scheduler / --workers",
            param_hint="--labels tickets",
        )
    with _client(scheduler, workers) as client:
        metrics = evaluate(
            run, alias=alias, every_minutes=every_minutes, split_time=split_time,
            json_out=json_out, labels=labels, label_map=label_map, client=client,
        )  # fmt: skip
    typer.echo(dumps_strict(metrics, indent=2, default=str))
    for key, note in _metric_notes(metrics).items():  # why a figure is null, beside the JSON
        typer.echo(f"note: {key}: {note}", err=True)


def _metric_notes(metrics: dict) -> dict[str, str]:
    """The notes of an evaluation (``massive_note``, ``risk_24h_note``, …) by key.

    Each says why a figure of :func:`~guardian_lib.models.training.evaluate_bundle` is
    NaN on the evaluated period (``null`` in the JSON printed and written).
    """
    return {k: str(v) for k, v in metrics.items() if k.endswith("_note") and v}


def features_command(
    run: Annotated[Path, typer.Option(help="Run with an ingested warehouse.")],
    every_minutes: Annotated[
        int, typer.Option(min=1, help="Spacing of feature rows. [min]")
    ] = FEATURE_EVERY_MINUTES,
    scheduler: _Scheduler = None,
    workers: _Workers = None,
) -> None:
    """Materialize the point-in-time feature store (incremental) as lake/gold/features."""
    from guardian_lib.features import materialize_features, materialize_features_distributed

    with _client(scheduler, workers) as client:
        if client is None:
            res = materialize_features(run, every_minutes=every_minutes, progress=True)
        else:
            res = materialize_features_distributed(
                run, client, every_minutes=every_minutes, on_submit=_progress
            )
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
