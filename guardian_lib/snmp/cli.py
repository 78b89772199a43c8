"""``guardian poll``: poll the OLTs of an inventory once or every N minutes."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated

import typer

from guardian_lib.errors import ConfigError

__all__ = ["register", "poll_command", "traps_command", "parse_interval_s"]


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


def traps_command(
    inventory: Annotated[
        Path, typer.Option(help="OLT inventory: its secrets and the OLTs' addresses.")
    ],
    run: Annotated[Path, typer.Option(help="Run directory: trap events go to its RAW lake.")],
    credentials: Annotated[str, typer.Option(help="Credentials reference (as in the inventory).")],
    version: Annotated[str, typer.Option(help="2c or 3.")] = "2c",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="UDP port.")] = 162,
    engine_id: Annotated[
        list[str] | None, typer.Option(help="v3: OLT_ID=HEX snmpEngineID of a sender (repeat).")
    ] = None,
    flush_every: Annotated[str, typer.Option(help="Write the events every, e.g. 5s.")] = "5s",
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds.", hidden=True)
    ] = None,
) -> None:
    """Receive OLT traps (v2c / v3) into RAW events (source snmp-trap), until Ctrl-C."""
    import time
    from types import SimpleNamespace

    from rich.console import Console

    from guardian_lib.snmp.inventory import OltEntry, load_inventory, resolve_credentials
    from guardian_lib.snmp.poller import write_to_warehouse
    from guardian_lib.snmp.rows import TELEMETRY_SCHEMA, empty_frame
    from guardian_lib.snmp.traps import TrapReceiver, TrapUser, events_frame

    if version not in ("2c", "3"):
        raise ConfigError(f"--version must be '2c' or '3', got {version!r}")
    inv = load_inventory(inventory)
    entry = OltEntry(olt_id="traps", host=host, version=version, credentials=credentials)
    creds = resolve_credentials(entry, inv.secrets_path())
    users = []
    for item in engine_id or []:
        olt, _, hexid = item.partition("=")
        if not olt or not hexid:
            raise ConfigError(f"--engine-id must be OLT_ID=HEX, got {item!r}")
        users.append(TrapUser(creds.user, creds.auth_key, creds.priv_key, engine_id=hexid))
    if version == "3" and not users:
        raise ConfigError("SNMPv3 traps need --engine-id OLT_ID=HEX for each sending OLT")
    every_s = parse_interval_s(flush_every)
    rx = TrapReceiver(host, port, community=creds.community if version == "2c" else None,
                      users=users, sources={o.host: o.olt_id for o in inv.olts})  # fmt: skip
    rx.start_in_thread()
    console = Console(stderr=True)
    console.print(f"[green]listening[/] for SNMPv{version} traps on {host}:{rx.port}")

    def flush() -> None:
        rows = rx.drain()
        if rows:
            report = SimpleNamespace(telemetry=empty_frame(TELEMETRY_SCHEMA),
                                     events=events_frame(rows))  # fmt: skip
            write_to_warehouse(report, run)
            console.print(f"{len(rows)} trap event(s) written")

    end = None if duration is None else time.monotonic() + duration
    try:
        while end is None or time.monotonic() < end:
            time.sleep(every_s if end is None else max(0.0, min(every_s, end - time.monotonic())))
            flush()
    except KeyboardInterrupt:
        pass
    finally:
        rx.stop_thread()
        flush()  # what arrived since the last write
        console.print(f"stopped; {rx.stats}")


def register(app: typer.Typer) -> None:
    """Add ``guardian poll`` and ``guardian traps`` to the CLI."""
    app.command("poll")(poll_command)
    app.command("traps")(traps_command)
