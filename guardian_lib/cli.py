"""The ``guardian`` command line.

Sub-commands are plugged in through the ``guardian.commands`` entry-point group: each
entry point is a ``register(app: typer.Typer) -> None`` function. The library's own
commands are registered the same way (``register_core``), so that ``guardian_lib``
never imports ``simulator`` or ``acs_emulator``: an operator who installs only the
library gets only the library's commands.

This module only parses arguments and calls library functions.

Errors take one path (:func:`main`): an expected error (:class:`GuardianError`, a missing
file, a bad value) prints one ``error: …`` line and exits with status 2; anything else
prints one ``internal error: …`` line and exits with status 1. ``--debug`` (or
``GUARDIAN_DEBUG=1``) prints the traceback instead.
"""

from __future__ import annotations

import json
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from guardian_lib.errors import error_line, is_expected

__all__ = ["app", "main", "register_core", "ENTRY_POINT_GROUP", "DEBUG_ENV"]

ENTRY_POINT_GROUP = "guardian.commands"
#: Environment variable that turns on tracebacks (same as ``--debug``).
DEBUG_ENV = "GUARDIAN_DEBUG"

app = typer.Typer(
    name="guardian",
    help="Network Guardian: keep fibre ISP customers online.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
_state = {"debug": False}


@app.callback()
def _global_options(
    debug: Annotated[
        bool, typer.Option("--debug", help=f"Show tracebacks (also ${DEBUG_ENV}=1).")
    ] = False,
) -> None:
    """Network Guardian: keep fibre ISP customers online."""
    _state["debug"] = debug


def _debug_on() -> bool:
    return _state["debug"] or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes")


def register_core(app: typer.Typer) -> None:
    """Register the library's own commands (``ingest``, ``info``)."""
    app.command("ingest")(ingest_command)
    app.command("info")(info_command)


def ingest_command(
    run: Annotated[
        Path,
        typer.Option(help="Run directory (simulator output or an existing warehouse folder)."),
    ],
    telemetry: Annotated[
        list[Path] | None,
        typer.Option(help="Your own telemetry file(s), CSV, Parquet or .xlsx, to add to RAW."),
    ] = None,
    source: Annotated[
        Path | None,
        typer.Option(
            help="Folder of your own exports (inventory, telemetry, events, contacts, "
            "tickets, CPE state) imported through --mapping (default DIR/mapping.yaml) "
            "into the warehouse RUN (a new one, or one made by an earlier --source)."
        ),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(
            help="YAML mapping: of the --source folder's tables, or of the columns of "
            "--telemetry files (see docs/ingest.md)."
        ),
    ] = None,
    lock_wait: Annotated[
        float, typer.Option(help="Seconds to wait for another ingest of the same run. [s]")
    ] = 30.0,
    grid_seconds: Annotated[
        int | None,
        typer.Option(
            help="SILVER's time grid, a divisor of a day (30, 90, 300, 900 …). Default: a "
            "simulated run's tick, else the warehouse's, else inferred from the telemetry. "
            "A grid other than the warehouse's re-snaps all of SILVER from RAW. [s]"
        ),
    ] = None,
) -> None:
    """Load a run's RAW data into the warehouse and (re)build SILVER. Idempotent."""
    from guardian_lib.ingest import ingest_run, ingest_user_telemetry, load_column_mapping

    if source is not None:
        if telemetry:
            raise typer.BadParameter(
                "give either --source (with its mapping) or --telemetry files, not both",
                param_hint="--telemetry",
            )
        from guardian_lib.owndata import import_source

        result = import_source(
            run, mapping or source / "mapping.yaml", source_dir=source, lock_wait_s=lock_wait,
            progress=True, grid_s=grid_seconds,
        )  # fmt: skip
        for name, t in result.tables.items():
            console.print(
                f"[green]{t.status}[/] {name}: {t.rows:,} rows → {t.destination}", soft_wrap=True
            )
        summary = result.ingest
    else:
        col_map = load_column_mapping(mapping) if mapping else None
        for path in telemetry or []:
            report = ingest_user_telemetry(run, path, mapping=col_map, lock_wait_s=lock_wait)
            console.print(f"[green]added[/] {path}: {report.rows_added} rows ({report.status})")
        summary = ingest_run(
            run, progress=True, lock_wait_s=lock_wait, grid_s=grid_seconds,
            regrid=grid_seconds is not None,
        )  # fmt: skip
    if summary.regridded_from is not None:
        console.print(
            f"[yellow]re-snapped[/] SILVER from a {summary.regridded_from} s grid to "
            f"{summary.grid_s} s (rebuilt from RAW, which keeps every row)"
        )
    console.print(f"[green]grid[/] {summary.grid_s} s ({summary.grid_source})", soft_wrap=True)
    console.print(
        f"[green]warehouse[/] {summary.warehouse_path}: "
        f"{summary.silver_telemetry_rows:,} SILVER telemetry rows "
        f"({summary.dates_rebuilt} date partitions rebuilt, {summary.dates_unchanged} unchanged)"
    )


def info_command(
    run: Annotated[Path, typer.Option(help="Run directory with an ingested warehouse.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Summarise a warehouse: row counts, time range, faults, calls, visits."""
    from guardian_lib.warehouse import run_summary

    summary = run_summary(run)
    for rel in summary.get("unreadable_files", []):
        sys.stderr.write(f"warning: {run / rel}: unreadable RAW file, left out\n")
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    out = Console()
    out.print(f"[bold]Warehouse[/] {summary['warehouse']}")
    tr = summary["time_range"]
    out.print(f"Time range: {tr['start']} → {tr['end']}")
    counts = Table(title="Rows per table")
    counts.add_column("table")
    counts.add_column("rows", justify="right")
    for name, n in summary["row_counts"].items():
        counts.add_row(name, f"{n:,}")
    out.print(counts)
    ops = summary["operations"]
    out.print(
        f"Customers: {ops['customers']:,}  ONUs: {ops['onus']:,}  "
        f"calls: {ops['calls']:,}  visits: {ops['visits']:,} "
        f"(no fault found: {ops['visits_no_fault_found']:,})"
    )
    if summary.get("faults_by_class"):
        faults = Table(title="Faults (ground truth, simulator only)")
        faults.add_column("class")
        faults.add_column("kind")
        faults.add_column("faults", justify="right")
        faults.add_column("ONUs affected", justify="right")
        for row in summary["faults_by_kind"]:
            faults.add_row(
                row["cause_class"], row["kind"], f"{row['faults']:,}", f"{row['onus']:,}"
            )
        out.print(faults)


#: Entry points already registered on ``app``: ``main`` called again in one process (a
#: test, a notebook) must not add each command group twice.
_REGISTERED: set[str] = set()


def _load_plugins() -> None:
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in _REGISTERED:
            continue
        try:
            register = ep.load()
        except ImportError as exc:  # an optional part not installed: say so, keep the rest
            console.print(f"[yellow]warning:[/] command group {ep.name!r} unavailable: {exc}")
            continue
        register(app)
        _REGISTERED.add(ep.name)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``guardian`` console script: the one error path of every command.

    Expected errors (:func:`~guardian_lib.errors.is_expected`) print ``error: <message>``
    and exit 2; unexpected ones print ``internal error: <type>: <message>`` and exit 1;
    Ctrl-C exits 130. ``--debug`` / ``GUARDIAN_DEBUG=1`` re-raise (full traceback).
    """
    _load_plugins()
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as exc:
        if _debug_on():
            raise
        # Plain text: messages hold paths and brackets that must not be wrapped or styled.
        if is_expected(exc):
            sys.stderr.write(f"error: {error_line(exc)}\n")
            sys.exit(2)
        sys.stderr.write(
            f"internal error: {error_line(exc)} (a bug: run with --debug for the traceback "
            "and report it)\n"
        )
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
