"""``guardian olt serve``: SNMP agents and SSH command lines for the simulated OLTs.

It writes the poller's inventory and, with ``--cli-inventory``, the inventory of the
OLTs' emulated command lines for ``guardian olt autofind / authorize / …``.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register", "serve_command"]


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
    cli_inventory: Annotated[
        Path | None,
        typer.Option(help="Also serve each OLT's CLI over SSH; write its inventory."),
    ] = None,
    unauthorized: Annotated[
        int, typer.Option(help="ONUs per OLT left unauthorized (in autofind) at start.")
    ] = 0,
    traps_to: Annotated[
        str | None,
        typer.Option(help="Send the OLTs' traps (SNMP --version) to HOST:PORT at each tick."),
    ] = None,
    cli_telnet: Annotated[
        bool,
        typer.Option(
            "--cli-telnet", help="Serve the CLIs over telnet (Login: / Password:) instead of SSH."
        ),
    ] = False,
    snmp_set: Annotated[
        bool,
        typer.Option(
            "--snmp-set",
            help="Agents answer SNMP SET (own write community / v3 user); the "
            "--cli-inventory enables it for each OLT.",
        ),
    ] = False,
) -> None:
    """Start one SNMP agent (and SSH CLI) per simulated OLT and write the inventories."""
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
    if snmp_set and (cli_inventory is None or not base_port):
        raise ConfigError("--snmp-set needs --cli-inventory and a fixed --base-port")
    backends = _backends(sim, ids, lock) if snmp_set else None
    pool = simulated_pool(sim, creds, base_port=base_port, host=host, olt_ids=ids, lock=lock,
                          set_backends=backends)  # fmt: skip
    snmp = None
    if snmp_set:
        snmp = {"ports": {o: base_port + i for i, o in enumerate(ids)}, "credentials": creds,
                "version": version}  # fmt: skip
    cli_server = _start_cli(sim, ids, lock, host, cli_inventory, unauthorized, console,
                            backends=backends, snmp=snmp, telnet=cli_telnet)  # fmt: skip
    sender = _start_traps(sim, ids, creds, version, traps_to, inventory, console)

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
    finally:
        if cli_server is not None:
            cli_server.stop_thread()
        if sender is not None:
            sender.close()


def _start_traps(sim, ids, creds, version, traps_to, inventory, console):
    """Send the OLTs' traps to ``traps_to``; write the ``traps:`` section a site needs."""
    if traps_to is None:
        return None
    import yaml

    from acs_emulator.olt.traps import OltTrapSender
    from guardian_lib.errors import ConfigError

    host, _, port = traps_to.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--traps-to must be HOST:PORT, got {traps_to!r}")
    sender = OltTrapSender(
        sim, (host, int(port)), olt_ids=ids,
        community=creds.community if version == "2c" else None,
        v3_user=creds.v3_user if version == "3" else None,
    )  # fmt: skip
    section = {"traps": {"host": host, "port": int(port), "version": version,
                         "credentials": "emulator",
                         "engine_ids": {o: OltTrapSender.engine_id(o) for o in ids}}}  # fmt: skip
    out = inventory.with_name(inventory.stem + ".traps.yaml")
    out.write_text(yaml.safe_dump(section, sort_keys=False), encoding="utf-8")
    console.print(f"[green]traps[/] to {host}:{port} (SNMPv{version}); site section {out}")
    return sender


def _backends(sim, ids, lock) -> dict:
    """The configuration state of each OLT with an emulated CLI (shared by CLI and SET)."""
    from acs_emulator.olt.provisioning import OltConfigBackend

    olts = sim.topology.olts.set_index("olt_id")
    cli_ids = [i for i in ids if olts.loc[i, "vendor"] in ("huawei", "zte", "fiberhome")]
    return {i: OltConfigBackend(sim, i, lock) for i in cli_ids}


def _start_cli(sim, ids, lock, host, cli_inventory, unauthorized, console, *, backends=None,
               snmp=None, telnet=False):  # fmt: skip
    """Serve the OLTs' command lines over SSH (None without an inventory).

    ``snmp``: ``{ports, credentials, version}`` of agents that answer SET, enabled in the
    written inventory.
    """
    if cli_inventory is None:
        return None
    import numpy as np

    from acs_emulator.olt.provisioning import unprovision_onus
    from acs_emulator.olt.ssh import OltCliServer, write_cli_inventory

    backends = backends if backends is not None else _backends(sim, ids, lock)
    rng = np.random.default_rng(int(sim.scenario.seed))
    with lock:
        for olt_id in backends:
            if unauthorized:
                unprovision_onus(sim, olt_id, unauthorized, rng)
    server = OltCliServer(list(backends.values()), host=host, telnet=telnet).start_in_thread()
    inv, sec = write_cli_inventory(cli_inventory, server, snmp=snmp)
    console.print(f"[green]CLI[/] {len(backends)} OLTs over SSH; inventory {inv}, secrets {sec}"
                  + (" (SNMP SET enabled)" if snmp else ""))  # fmt: skip
    return server


def register(app: typer.Typer) -> None:
    """Add ``olt serve`` to the ``guardian`` CLI's ``olt`` group."""
    from guardian_lib.olt.cli import olt_group

    olt_group(app).command("serve")(serve_command)
