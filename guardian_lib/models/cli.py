"""``guardian train / score / evaluate / features / models list``: argument parsing only.

The workflows themselves are :mod:`guardian_lib.models.workflow`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

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


def train_command(
    run: Annotated[list[Path], typer.Option(help="Simulated run(s) to train on (repeatable).")],
    every_minutes: Annotated[
        int, typer.Option(min=1, help="Spacing of training rows. [min]")
    ] = MODEL_EVERY_MINUTES,
    n_estimators: Annotated[int, typer.Option(help="Trees per LightGBM model.")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    alias: Annotated[
        str, typer.Option(help="Registry alias to point at the new version.")
    ] = DEFAULT_ALIAS,
) -> None:
    """Train the models on simulated runs, log them to MLflow and register them."""
    from rich.console import Console

    from guardian_lib.models.workflow import train

    console = Console(stderr=True)
    version = train(
        run, every_minutes=every_minutes, n_estimators=n_estimators, seed=seed, alias=alias,
        log=console.print,
    )  # fmt: skip
    console.print(f"[green]registered[/] {version} as {alias!r}")


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
    scheduler: _Scheduler = None,
    workers: _Workers = None,
) -> None:
    """Evaluate the registered models (and the rule baselines) on a run; log drift."""
    from guardian_lib.models.workflow import evaluate

    with _client(scheduler, workers) as client:
        metrics = evaluate(
            run, alias=alias, every_minutes=every_minutes, split_time=split_time,
            json_out=json_out, client=client,
        )  # fmt: skip
    typer.echo(json.dumps(metrics, indent=2, default=str))


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
