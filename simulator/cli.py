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
    shards: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Run the regions in N shards on Dask (per-region random streams: any N "
            "gives the same files). Omit for the single-process engine.",
        ),
    ] = None,
    scheduler: Annotated[
        str,
        typer.Option(help="With --shards: 'local' (a LocalCluster) or tcp://HOST:8786."),
    ] = "local",
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
    if shards is not None:
        path = _simulate_sharded(sc, out, shards, scheduler, seed, overwrite, console)
        _print_summary(console, sc.name, path)
        if export is not None:
            _export(console, path, export, seed, overwrite)
        return
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
    _print_summary(console, sc.name, path)
    if export is not None:
        _export(console, path, export, seed, overwrite)


def _simulate_sharded(sc, out: Path, shards: int, scheduler: str, seed, overwrite, console) -> Path:
    """Run the sharded simulator here (1 shard, local) or on a Dask cluster."""
    from guardian_lib.cluster import check_scheduler, open_client
    from simulator.sharded import simulate_sharded

    try:
        check_scheduler(scheduler)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scheduler") from exc
    n_regions = len(sc.topology.regions)
    if shards > n_regions:
        raise typer.BadParameter(
            f"{shards}: scenario {sc.name!r} has {n_regions} region(s); a region is the unit "
            "of sharding (see docs/scale-out.md)",
            param_hint="--shards",
        )
    if shards == 1 and scheduler == "local":
        return simulate_sharded(sc, out, 1, seed=seed, overwrite=overwrite)
    import os

    from distributed import progress

    with open_client(scheduler, n_workers=min(shards, os.cpu_count() or 1)) as client:
        console.print(f"Dask dashboard: {client.dashboard_link}")
        return simulate_sharded(
            sc, out, shards, client=client, seed=seed, overwrite=overwrite,
            on_submit=lambda futures: progress(futures),
        )  # fmt: skip


def _print_summary(console, name: str, path: Path) -> None:
    import json

    from guardian_lib.layout import RunLayout

    rows = json.loads(RunLayout(path).manifest.read_text())["rows"]
    console.print(
        f"[green]simulated[/] {name} → {path}: {rows['telemetry']:,} telemetry rows, "
        f"{rows['events']:,} events, {rows['faults_truth']:,} faults, {rows['calls']:,} calls, "
        f"{rows['service_orders']:,} service orders"
    )


def _export(console, path: Path, export: tuple[str, Path], seed, overwrite: bool) -> None:
    """Write the run as an operator's exports (``--export operator DIR``)."""
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
