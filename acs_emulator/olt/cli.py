"""``guardian olt serve``: SNMP agents for the simulated OLTs, plus the poller's inventory."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register", "serve_command"]

olt_app = typer.Typer(help="Emulated OLTs (SNMP agents backed by the simulator).")


@olt_app.command("serve")
def serve_command(
    scenario: Annotated[
        str, typer.Option(help="Scenario YAML file or shipped name (tiny, small, city).")
    ],
    base_port: Annotated[int, typer.Option(help="UDP port of the first OLT; +1 per OLT.")] = 16100,
    inventory: Annotated[
        Path, typer.Option(help="Inventory file to write (secrets go beside it, mode 0600).")
    ] = Path("olts.yaml"),
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    version: Annotated[str, typer.Option(help="SNMP version in the inventory: 2c or 3.")] = "2c",
    tick_seconds: Annotated[
        float, typer.Option(help="Wall seconds between simulation ticks (0 = frozen).")
    ] = 0.0,
    max_olts: Annotated[int | None, typer.Option(help="Serve only the first N OLTs.")] = None,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = (
        "127.0.0.1"
    ),
) -> None:
    """Start one SNMP agent per simulated OLT and write the matching inventory file."""
    from rich.console import Console

    from acs_emulator.olt.serve import (
        EmulatorCredentials,
        run_with_ticks,
        simulated_pool,
        write_inventory,
    )
    from guardian_lib.errors import ConfigError
    from simulator.engine import Simulation
    from simulator.scenario import load_scenario

    if version not in ("2c", "3"):
        raise ConfigError(f"--version must be '2c' or '3', got {version!r}")
    console = Console(stderr=True)
    sim = Simulation(load_scenario(scenario), seed=seed)
    sim.step()
    ids = [str(o) for o in sim.topology.olts["olt_id"]][: max_olts or None]
    creds = EmulatorCredentials()
    lock = threading.Lock()
    pool = simulated_pool(sim, creds, base_port=base_port, host=host, olt_ids=ids, lock=lock)

    def ready(p) -> None:
        inv, sec = write_inventory(inventory, p, creds, version=version, host=host)
        console.print(
            f"[green]serving[/] {len(p.agents)} OLTs on {host}:{min(p.ports.values())}-"
            f"{max(p.ports.values())} ({sim.topology.n_onus:,} ONUs); inventory {inv}, "
            f"secrets {sec}. Ctrl-C to stop."
        )

    try:
        asyncio.run(run_with_ticks(pool, sim.step, tick_seconds, lock, ready=ready))
    except KeyboardInterrupt:
        console.print("stopped")


def register(app: typer.Typer) -> None:
    """Add the ``olt`` command group to the ``guardian`` CLI."""
    app.add_typer(olt_app, name="olt")
