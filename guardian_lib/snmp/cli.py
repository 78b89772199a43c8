"""``guardian poll``: poll the OLTs of an inventory once or every N minutes."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated

import typer

from guardian_lib.errors import ConfigError

__all__ = ["register", "poll_command", "parse_interval_s"]


def parse_interval_s(text: str) -> float:
    """``"5m"`` → 300.0; accepts ``s``, ``m``, ``h`` suffixes (seconds without one). [s]

    Examples
    --------
    >>> parse_interval_s("5m")
    300.0
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"--every must look like 30s, 5m or 1h, got {text!r}")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def poll_command(
    inventory: Annotated[Path, typer.Option(help="OLT inventory YAML (see docs/snmp.md).")],
    once: Annotated[bool, typer.Option("--once", help="Poll one cycle and exit.")] = False,
    every: Annotated[str | None, typer.Option(help="Poll repeatedly, e.g. 5m.")] = None,
    run: Annotated[
        Path | None, typer.Option(help="Run directory: append rows to its RAW lake.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write telemetry rows to this Parquet file instead.")
    ] = None,
    profiles: Annotated[
        list[Path] | None, typer.Option(help="Extra directory of YAML vendor profiles.")
    ] = None,
    cycles: Annotated[
        int | None, typer.Option(help="With --every: stop after N cycles.", hidden=True)
    ] = None,
) -> None:
    """Poll OLTs over SNMP into telemetry_raw / events_raw rows (source 'snmp')."""
    from rich.console import Console

    from guardian_lib.snmp.inventory import load_inventory
    from guardian_lib.snmp.poller import (
        EVENTS_SCHEMA,
        TELEMETRY_SCHEMA,
        poll_inventory,
        write_parquet,
        write_to_warehouse,
    )
    from guardian_lib.snmp.profiles import load_profiles

    if once == (every is not None):
        raise ConfigError("give exactly one of --once or --every")
    if (run is None) == (out is None):
        raise ConfigError("give exactly one of --run DIR or --out FILE.parquet")
    interval_s = parse_interval_s(every) if every else 0.0
    inv = load_inventory(inventory)
    base = inventory.parent
    profs = load_profiles([*(base / p for p in inv.profiles_dirs), *(profiles or [])])
    console = Console(stderr=True)

    async def loop() -> int:
        from guardian_lib.snmp.transport import new_engine

        engine = new_engine()
        previous = None
        n = 0
        failed_any = 0
        while True:
            started = asyncio.get_running_loop().time()
            report = await poll_inventory(inv, profs, previous_online=previous, engine=engine)
            previous = report.online_by_onu()
            if out is not None:
                write_parquet(report.telemetry, out, TELEMETRY_SCHEMA)
                if len(report.events):
                    ev = out.with_name(out.stem + ".events.parquet")
                    write_parquet(report.events, ev, EVENTS_SCHEMA)
            else:
                write_to_warehouse(report, run)
            t = report.telemetry
            console.print(
                f"[green]polled[/] {len(report.results)} OLTs: {len(t):,} ONU rows, "
                f"{len(report.events):,} events"
            )
            for r in report.failed:
                console.print(f"[yellow]incomplete[/] {r.olt_id}: {r.error}")
            failed_any = failed_any or len(report.failed)
            n += 1
            if once or (cycles is not None and n >= cycles):
                return 1 if failed_any else 0
            elapsed = asyncio.get_running_loop().time() - started
            await asyncio.sleep(max(0.0, interval_s - elapsed))

    code = asyncio.run(loop())
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``guardian poll`` to the CLI."""
    app.command("poll")(poll_command)
