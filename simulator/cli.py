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
    export: Annotated[
        tuple[str, Path] | None,
        typer.Option(
            metavar="KIND DIR",
            help="Also write the run as an operator's exports: 'operator DIR' (CSVs, "
            "mapping.yaml, labels.yaml; no ground truth).",
        ),
    ] = None,
) -> None:
    """Simulate a fibre ISP and write its RAW data, inventory and ground truth."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from simulator.output import check_out_dir, simulate_to_dir
    from simulator.scenario import load_scenario

    overrides = {} if days is None else {"days": days}
    sc = load_scenario(scenario, allow_large=allow_large, **overrides)
    check_out_dir(out, overwrite)
    if export is not None:
        from simulator.operator_export import EXPORT_KINDS, check_export_dir

        if export[0] not in EXPORT_KINDS:
            raise typer.BadParameter(
                f"{export[0]!r}: expected one of {', '.join(EXPORT_KINDS)}", param_hint="--export"
            )
        check_export_dir(export[1], overwrite)
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
    if export is not None:
        from simulator.operator_export import export_operator

        written = export_operator(path, export[1], seed=seed, overwrite=overwrite)
        console.print(
            f"[green]exported[/] {path} as an operator would have it → {export[1]}: "
            f"{written['telemetry']:,} telemetry rows, {written['events']:,} alarms, "
            f"{written['contacts']:,} contacts, {written['tickets']:,} tickets "
            f"({written['noc_incidents']:,} NOC incidents); mapping.yaml, labels.yaml"
        )


def register(app: typer.Typer) -> None:
    """Add the simulator's commands to the ``guardian`` CLI."""
    app.command("simulate")(simulate_command)
