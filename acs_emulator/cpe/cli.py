"""``guardian cpe …``: run emulated CWMP CPEs (registered through ``guardian.commands``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register", "run_command"]


def run_command(
    acs_url: Annotated[str, typer.Option(help="ACS CWMP URL.")] = "http://127.0.0.1:7547/",
    count: Annotated[int, typer.Option(help="Number of CPEs.")] = 10,
    scenario: Annotated[
        str | None,
        typer.Option(help="Take devices and live values from this simulator scenario."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed (static values or the simulation).")] = 0,
    speed: Annotated[
        float, typer.Option(help="With --scenario: simulated seconds per wall-clock second.")
    ] = 60.0,
    host: Annotated[
        str, typer.Option(help="Bind address of the connection-request listener.")
    ] = "127.0.0.1",
    cr_port: Annotated[int, typer.Option(help="Connection-request port (0 = any).")] = 7548,
    cr_auth: Annotated[str, typer.Option(help="digest, basic or none.")] = "digest",
    periodic_interval: Annotated[float, typer.Option(help="Periodic inform interval [s].")] = 300.0,
    flavour: Annotated[str, typer.Option(help="tr181 or tr098.")] = "tr181",
    spread: Annotated[float, typer.Option(help="Spread first informs over this time [s].")] = 5.0,
    bootstrap: Annotated[
        bool,
        typer.Option(help="First Inform says '0 BOOTSTRAP' (factory-new CPEs)."),
    ] = True,
    duration: Annotated[float, typer.Option(help="Stop after this time [s]; 0 = never.")] = 0.0,
    allow_dev_password: Annotated[
        bool,
        typer.Option(help="Accept the documented development connection-request password."),
    ] = False,
    ca_file: Annotated[
        Path | None,
        typer.Option(help="PEM CA that signed the ACS certificate (https:// ACS URLs)."),
    ] = None,
) -> None:
    """Run CWMP CPE agents against an ACS until interrupted."""
    import asyncio

    from rich.console import Console

    from acs_emulator.cpe.fleet import CpeFleet, run_fleet
    from acs_emulator.cpe.state import SimulationStateSource, make_identities

    if cr_auth not in ("none", "basic", "digest"):
        raise typer.BadParameter(f"--cr-auth: expected none, basic or digest, got {cr_auth!r}")
    if flavour not in ("tr181", "tr098"):
        raise typer.BadParameter(f"--flavour: expected tr181 or tr098, got {flavour!r}")
    console = Console(stderr=True)
    sim = None
    if scenario:
        from simulator.engine import Simulation
        from simulator.scenario import load_scenario

        sim = Simulation(load_scenario(scenario), seed=seed)
        sim.step()
        source = SimulationStateSource(sim)
        identities = source.identities(count)
    else:
        source = None
        identities = make_identities(count, seed=seed)
    fleet = CpeFleet(
        identities,
        acs_url,
        state=source,
        host=host,
        cr_port=cr_port,
        cr_auth=cr_auth,  # type: ignore[arg-type]
        agent_options={"periodic_interval_s": periodic_interval, "bootstrap": bootstrap},
        flavour=flavour,  # type: ignore[arg-type]
        seed=seed,
        allow_dev_password=allow_dev_password,
        ca_file=ca_file,
    )
    if allow_dev_password:
        console.print("[yellow]warning:[/] the documented connection-request password is allowed")
    console.print(f"[green]CPEs[/] {len(identities)} → {acs_url} (Ctrl-C stops)")
    try:
        stats = asyncio.run(
            run_fleet(fleet, duration_s=duration, sim=sim, speed=speed, spread_s=spread)
        )
    except KeyboardInterrupt:
        return
    console.print(f"sessions ok {stats['sessions_ok']}, failed {stats['sessions_failed']}")


def register(app: typer.Typer) -> None:
    """Add the ``cpe`` command group to the ``guardian`` CLI."""
    cpe = typer.Typer(help="Emulated CWMP CPEs.", no_args_is_help=True)
    cpe.command("run")(run_command)
    app.add_typer(cpe, name="cpe")
