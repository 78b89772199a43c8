"""``guardian sweep``: registered through the ``guardian.commands`` entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register", "sweep_command"]


def sweep_command(
    file: Annotated[Path, typer.Argument(help="Sweep file (experiments/sweeps/NAME.yaml).")],
    out: Annotated[
        Path | None, typer.Option(help="Sweep folder (default reports/sweeps/NAME).")
    ] = None,
    scheduler: Annotated[
        str, typer.Option(help="'local' (a LocalCluster on this machine) or tcp://HOST:8786.")
    ] = "local",
    workers: Annotated[
        int, typer.Option(min=1, help="Workers of the LocalCluster (ignored with an address).")
    ] = 2,
    mlflow: Annotated[
        bool, typer.Option(help="Log a parent MLflow run and one child run per cell.")
    ] = True,
    status: Annotated[
        bool, typer.Option("--status", help="List the done and pending cells; run nothing.")
    ] = False,
) -> None:
    """Run a sweep's cells (variants × seeds × policies × models) on Dask; finished cells
    are skipped."""
    from distributed import progress
    from rich.console import Console

    from guardian_lib.cluster import check_scheduler, open_client
    from simulator.sweep import load_sweep, pending_cells, run_sweep

    console = Console(stderr=True)
    try:
        check_scheduler(scheduler)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scheduler") from exc
    sweep, scenario_path = load_sweep(file)
    target = out if out is not None else Path("reports") / "sweeps" / sweep.name
    cells, todo = pending_cells(sweep, scenario_path, target)
    if status:
        pending = {c.key for c in todo}
        for c in cells:
            model = "" if c.model is None else f"  model={c.model}"
            state = "pending" if c.key in pending else "done"
            typer.echo(f"{state:8} {c.variant}  seed={c.seed}  {c.policy}{model}  {c.key}")
        typer.echo(f"{len(cells) - len(todo)} done, {len(todo)} pending ({target})")
        return
    if not todo:  # every cell is done: rebuild the table, start no cluster
        result = run_sweep(sweep, scenario_path, target, client=None, mlflow=mlflow)
    else:
        with open_client(scheduler, n_workers=workers) as client:
            console.print(f"Dask dashboard: {client.dashboard_link}")
            result = run_sweep(
                sweep, scenario_path, target, client=client, mlflow=mlflow,
                on_submit=lambda futures: progress(futures),
            )  # fmt: skip
    console.print(
        f"[green]sweep {sweep.name}[/]: {result['cells']} cells ({result['ran']} run, "
        f"{result['skipped']} already done) → {result['results']}"
    )
    if result["mlflow_run_id"]:
        console.print(f"MLflow parent run: {result['mlflow_run_id']}")
    print(result["results"])


def register(app: typer.Typer) -> None:
    """Add ``guardian sweep`` to the CLI."""
    app.command("sweep")(sweep_command)
