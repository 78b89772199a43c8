"""``guardian simulate``: registered through the ``guardian.commands`` entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register", "simulate_command"]


def simulate_command(
    scenario: Annotated[
        str, typer.Option(help="Scenario YAML file or shipped name (tiny, small, city).")
    ],
    out: Annotated[Path, typer.Option(help="Run directory to create.")],
    seed: Annotated[int | None, typer.Option(min=0, help="Override the scenario's seed.")] = None,
    days: Annotated[float | None, typer.Option(help="Override the scenario's days.")] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an existing run directory (one with a run.json).")
    ] = False,
    allow_large: Annotated[
        bool,
        typer.Option(help="Lift the scenario size guards (ONUs, telemetry rows, fault starts)."),
    ] = False,
) -> None:
    """Simulate a fibre ISP and write its RAW data, inventory and ground truth."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from simulator.output import check_out_dir, simulate_to_dir
    from simulator.scenario import load_scenario

    overrides = {} if days is None else {"days": days}
    sc = load_scenario(scenario, allow_large=allow_large, **overrides)
    check_out_dir(out, overwrite)
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]simulating[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} ticks"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(sc.name, total=sc.n_ticks)
        path = simulate_to_dir(
            sc,
            out,
            seed=seed,
            overwrite=overwrite,
            progress=lambda done, total: bar.update(task, completed=done),
        )
    import json

    from guardian_lib.layout import RunLayout

    rows = json.loads(RunLayout(path).manifest.read_text())["rows"]
    console.print(
        f"[green]simulated[/] {sc.name} → {path}: {rows['telemetry']:,} telemetry rows, "
        f"{rows['events']:,} events, {rows['faults_truth']:,} faults, {rows['calls']:,} calls, "
        f"{rows['service_orders']:,} service orders"
    )


def register(app: typer.Typer) -> None:
    """Add the simulator's commands to the ``guardian`` CLI."""
    app.command("simulate")(simulate_command)
