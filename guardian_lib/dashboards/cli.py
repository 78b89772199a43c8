"""``guardian dashboard`` and ``guardian run``: registered through ``guardian.commands``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register", "dashboard_command", "run_command", "report_command"]


def dashboard_command(
    run: Annotated[Path, typer.Option(help="Run folder with an ingested warehouse.")],
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port to serve on.")] = 5006,
    lang: Annotated[str, typer.Option(help="Language of the labels: en or pt-BR.")] = "en",
    address: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    kpis: Annotated[
        Path | None, typer.Option(help="A backtest kpis.json (default: RUN/kpis.json).")
    ] = None,
    audit: Annotated[
        Path | None, typer.Option(help="DuckDB file with the audit tables (default: RUN's).")
    ] = None,
    show: Annotated[bool, typer.Option(help="Open a browser tab.")] = False,
) -> None:
    """Serve the live dashboard of a run (NOC overview, risk queue, dossier, KPIs, …)."""
    from guardian_lib.dashboards.app import serve
    from guardian_lib.i18n import normalize_lang

    try:
        lang = normalize_lang(lang)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--lang") from None
    typer.echo(f"serving {run} on http://{address}:{port}/ (Ctrl-C to stop)", err=True)
    serve(run, port=port, lang=lang, address=address, kpis=kpis, audit=audit, show=show)


def report_command(
    run: Annotated[Path, typer.Option(help="Run folder with an ingested warehouse.")],
    out: Annotated[Path, typer.Option(help="HTML file to write.")],
    lang: Annotated[str, typer.Option(help="Language of the labels: en or pt-BR.")] = "en",
    kpis: Annotated[
        Path | None, typer.Option(help="A backtest kpis.json (default: RUN/kpis.json).")
    ] = None,
    audit: Annotated[
        Path | None, typer.Option(help="DuckDB file with the audit tables (default: RUN's).")
    ] = None,
) -> None:
    """Write the self-contained offline HTML report of a run."""
    from guardian_lib.dashboards.report import write_report
    from guardian_lib.i18n import normalize_lang

    try:
        lang = normalize_lang(lang)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--lang") from None
    typer.echo(str(write_report(run, out, lang=lang, kpis=kpis, audit=audit)))


def _parse_set(items: list[str] | None) -> dict:
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
    from guardian_lib.pipeline import run_experiment

    result = run_experiment(
        experiment,
        reports_root=reports_dir,
        data_root=data_dir,
        notebooks_dir=notebooks,
        overrides=_parse_set(set_),
        log_mlflow=mlflow,
        log=lambda msg: typer.echo(msg, err=True),
    )
    typer.echo(f"report folder: {result.report_dir}", err=True)
    if result.mlflow_run_id:
        typer.echo(f"MLflow run: {result.mlflow_run_id}", err=True)
    for path in result.reports:
        typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add ``dashboard``, ``report`` and ``run`` to the ``guardian`` CLI."""
    app.command("dashboard")(dashboard_command)
    app.command("report")(report_command)
    app.command("run")(run_command)
