"""``guardian twin``: the live twin (registered through ``guardian.commands``).

Imports of the simulator, the ACS and the autopilot stay inside the command so that
``guardian --help`` does not load them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register", "twin_command"]


def twin_command(
    scenario: Annotated[str, typer.Option(help="Scenario name or YAML file.")] = "tiny",
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per wall-clock second (60: 1 h per min).")
    ] = 60.0,
    seed: Annotated[int | None, typer.Option(help="Seed (default: the scenario's).")] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            help="simulate (decide and audit only) or execute (reboot through the NBI); "
            "default $AUTOPILOT_MODE, else simulate."
        ),
    ] = None,
    hours: Annotated[
        float | None, typer.Option(help="Simulated hours to run (default: whole scenario).")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many wall-clock seconds.")
    ] = None,
    every_minutes: Annotated[
        float, typer.Option(help="Autopilot period in simulated minutes.")
    ] = 15.0,
    cpes: Annotated[
        int | None, typer.Option(help="Emulate only the first N customers' CPEs.")
    ] = None,
    audit: Annotated[
        Path | None, typer.Option(help="DuckDB file for the audit trail (default: memory).")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Loopback address of the ACS, NBI and agents.")
    ] = "127.0.0.1",
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the final report as JSON.")
    ] = False,
    serve_network: Annotated[
        bool,
        typer.Option(
            "--serve-network",
            help="No autopilot inside: serve OLT SNMP agents, the ACS NBI and CPEs for "
            "guardian operate (needs --site-out).",
        ),
    ] = False,
    site_out: Annotated[
        Path | None, typer.Option(help="With --serve-network: site file to write for operate.")
    ] = None,
    truth_out: Annotated[
        Path | None, typer.Option(help="With --serve-network: ground truth JSON at exit.")
    ] = None,
    olt_cli: Annotated[
        bool, typer.Option("--olt-cli", help="With --serve-network: OLT CLIs over SSH too.")
    ] = False,
    traps: Annotated[
        bool, typer.Option("--traps", help="With --serve-network: the OLTs send SNMP traps.")
    ] = False,
    helpdesk: Annotated[
        bool,
        typer.Option(
            "--helpdesk",
            help="With --serve-network: the customers' calls as contact files in the site "
            "file's contacts: folder, as a helpdesk CRM writes them.",
        ),
    ] = False,
    periodic_inform_min: Annotated[
        float,
        typer.Option(
            help="With --serve-network: the CPEs' periodic Inform interval, "
            "simulated (the site file's nbi.inform_interval_s, scaled). [min]"
        ),
    ] = 10.0,
    alerting: Annotated[
        Path | None,
        typer.Option(
            help="Alerting YAML (the file guardian operate reads): its rules, receivers "
            "and customer notices run on the twin's cycles."
        ),
    ] = None,
    alerting_state: Annotated[
        Path, typer.Option(help="With --alerting: folder of the outbox and silences.")
    ] = Path("twin-alerts"),
) -> None:
    """Run the simulator in scaled real time with the ACS, CPE agents and the autopilot."""
    import signal
    import threading

    if helpdesk and not serve_network:
        raise typer.BadParameter(
            "--helpdesk writes contact files for guardian operate: it needs --serve-network"
        )
    if serve_network:
        if alerting is not None:
            raise typer.BadParameter(
                "--alerting runs inside the twin's autopilot; with --serve-network give the "
                "alerting file to guardian operate (site file `alerts:`)"
            )
        if site_out is None:
            raise typer.BadParameter("--serve-network needs --site-out SITE.yaml")
        _serve_network(scenario, speed, seed, hours, duration, cpes, host, site_out, truth_out,
                       olt_cli=olt_cli, traps=traps, helpdesk=helpdesk,
                       periodic_inform_min=periodic_inform_min)  # fmt: skip
        return

    from rich.console import Console

    from acs_emulator.twin.runner import Twin, TwinReport
    from guardian_lib.decision import AutopilotSettings
    from guardian_lib.errors import ConfigError
    from simulator.scenario import load_scenario

    console = Console(stderr=True)
    if mode is not None and mode not in ("simulate", "execute"):
        raise typer.BadParameter(f"--mode: expected simulate or execute, got {mode!r}")
    if not speed > 0:
        raise typer.BadParameter(f"--speed: expected > 0, got {speed!r}")
    settings = AutopilotSettings()
    if mode is not None:
        settings = settings.model_copy(update={"autopilot_mode": mode})
    sc = load_scenario(scenario)
    try:
        twin = Twin(
            sc,
            seed=seed,
            speed=speed,
            settings=settings,
            every_minutes=every_minutes,
            audit=audit,
            host=host,
            n_cpes=cpes,
            alerting=alerting,
            alerting_state=alerting_state,
        )
    except (ValueError, ConfigError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    ticks = None if hours is None else max(1, int(round(hours * 60 / sc.tick_minutes)))
    per_hour = max(1, int(round(60 / sc.tick_minutes)))

    def progress(k: int, r: TwinReport) -> None:
        if k % per_hour == 0:
            console.print(
                f"{twin.sim.ts_of(twin.sim.env.now):%Y-%m-%d %H:%M} decisions {r.decisions} "
                f"NBI reboots {len(r.nbi_reboots)} CPE reboots {len(r.cpe_reboots)} "
                f"hangs cleared {len(r.hangs_cleared_by_reboot)}"
            )

    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    previous_usr1 = signal.getsignal(signal.SIGUSR1)
    twin.autopilot.guard.install_signal(signal.SIGUSR1)  # `kill -USR1 <pid>`: kill switch on
    console.print(
        f"[green]twin[/] {sc.name}: {len(twin.identities)} CPEs, speed {speed:g}×, "
        f"autopilot {twin.mode} (Ctrl-C stops)"
    )
    try:
        report = twin.run(ticks=ticks, duration_s=duration, stop=stop, on_tick=progress)
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGUSR1, previous_usr1)
        twin.close()
    if json_out:
        typer.echo(report.to_json())
    else:
        console.print(
            f"{report.ticks} ticks ({report.sim_minutes:g} simulated min) in "
            f"{report.wall_s:.1f} s; decisions {report.decisions}; reboot actions "
            f"{report.reboot_actions}; sent to NBI {len(report.nbi_reboots)}, executed by "
            f"CPEs {len(report.cpe_reboots)}, hangs cleared by reboot "
            f"{len(report.hangs_cleared_by_reboot)}; CWMP sessions ok {report.sessions_ok}, "
            f"failed {report.sessions_failed}"
        )
        if report.alerts:
            a = report.alerts
            console.print(
                f"alerting: {a['cycles']} cycles, {a['alerts']} firing alert-evaluations, "
                f"{a['notifications']} notifications, {a['delivered']} deliveries ({a['delivery_failed']} failed tries); customer "
                f"notices {a.get('notices', {}).get('by_template', {})}"
            )


def _serve_network(
    scenario: str,
    speed: float,
    seed: int | None,
    hours: float | None,
    duration: float | None,
    cpes: int | None,
    host: str,
    site_out: Path,
    truth_out: Path | None,
    *,
    olt_cli: bool = False,
    traps: bool = False,
    helpdesk: bool = False,
    periodic_inform_min: float = 10.0,
) -> None:
    """``guardian twin --serve-network``: SIGTERM / Ctrl-C stop it and write the truth."""
    import signal
    import threading

    from rich.console import Console

    from acs_emulator.twin.network import TwinNetwork
    from simulator.scenario import load_scenario

    console = Console(stderr=True)
    if not speed > 0:
        raise typer.BadParameter(f"--speed: expected > 0, got {speed!r}")
    sc = load_scenario(scenario)
    try:
        net = TwinNetwork(sc, seed=seed, speed=speed, host=host, n_cpes=cpes,
                          olt_cli=olt_cli, traps=traps, helpdesk=helpdesk,
                          periodic_inform_min=periodic_inform_min)  # fmt: skip
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    ticks = None if hours is None else max(1, int(round(hours * 60 / sc.tick_minutes)))
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        net.start()
        net.write_site(site_out)
        console.print(
            f"[green]twin network[/] {sc.name}: {len(net.identities)} CPEs, NBI {net.nbi_url}, "
            f"speed {speed:g}×; site file {site_out} (Ctrl-C / SIGTERM stops)"
        )
        n = net.run(ticks=ticks, duration_s=duration, stop=stop)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        net.stop()
        if truth_out is not None and net.epoch is not None:
            net.write_truth(truth_out)
    console.print(f"{n} ticks served" + (f"; truth in {truth_out}" if truth_out else ""))


def register(app: typer.Typer) -> None:
    """Add the ``twin`` command to the ``guardian`` CLI."""
    app.command("twin")(twin_command)
