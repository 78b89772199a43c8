"""``guardian run``: registered through the ``guardian.commands`` entry point (argument parsing only)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register", "run_command", "parse_set"]


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """``["days=1", "report.langs=[en]"]`` → ``{"days": 1, "report.langs": ["en"]}`` (YAML values)."""
    import yaml

    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        out[key.strip()] = yaml.safe_load(value)
    return out


def run_command(
    experiment: Annotated[Path, typer.Argument(help="experiments/<name>.yaml")],
    reports_dir: Annotated[Path, typer.Option(help="Root of the report folders.")] = Path(
        "reports"
    ),
    data_dir: Annotated[
        Path | None, typer.Option(help="Where simulated runs go (default data/runs).")
    ] = None,
    notebooks: Annotated[Path, typer.Option(help="Folder of the notebooks.")] = Path("notebooks"),
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override an experiment key, e.g. --set days=1 (repeatable)."),
    ] = None,
    mlflow: Annotated[bool, typer.Option(help="Log an MLflow parent run.")] = True,
) -> None:
    """Run an experiment's notebooks through papermill and write its report folder."""
    from simulator.experiment import run_experiment

    result = run_experiment(
        experiment,
        reports_root=reports_dir,
        data_root=data_dir,
        notebooks_dir=notebooks,
        overrides=parse_set(set_),
        log_mlflow=mlflow,
        log=lambda msg: typer.echo(msg, err=True),
    )
    typer.echo(f"report folder: {result.report_dir}", err=True)
    if result.mlflow_run_id:
        typer.echo(f"MLflow run: {result.mlflow_run_id}", err=True)
    for path in result.reports:
        typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add ``guardian run`` to the CLI."""
    app.command("run")(run_command)
