"""``guardian olt``: find, authorize, reboot, enable and disable ONUs and PON ports.

Every change is audited (who, what, before/after) in a JSON-lines file; ``--dry-run``
prints the vendor commands that would be sent and sends nothing. The emulator's
``guardian olt serve`` joins the same group when ``acs_emulator`` is installed.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from guardian_lib.errors import GuardianError

__all__ = ["register", "olt_group", "OltChangeFailed"]

Inventory = Annotated[
    Path, typer.Option("--inventory", "-i", help="OLT CLI inventory YAML (docs/olt.md).")
]
OltId = Annotated[str, typer.Option("--olt", help="OLT id in the inventory.")]
Who = Annotated[
    str | None, typer.Option(help="Operator recorded in the audit (default: login name).")
]
Audit = Annotated[
    Path | None,
    typer.Option(help="Audit trail (JSON lines; default olt-audit.jsonl beside the inventory)."),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the vendor commands; send nothing.")]
Slot = Annotated[int, typer.Option(help="Board slot, as the OLT's CLI numbers it.")]
Port = Annotated[int, typer.Option(help="PON port, as the OLT's CLI numbers it.")]
OnuId = Annotated[int, typer.Option("--onu-id", help="ONU id on the port.")]
Via = Annotated[
    str,
    typer.Option(
        help="cli, or snmp: an SNMP SET (the OLT's inventory entry must enable snmp_set)."
    ),
]


class OltChangeFailed(GuardianError):
    """A change the OLT refused (the message names the OLT, command and answer)."""


def olt_group(app: typer.Typer) -> typer.Typer:
    """The ``olt`` group of ``app``, created on first use (shared with the emulator)."""
    for info in app.registered_groups:
        if info.name == "olt" and info.typer_instance is not None:
            return info.typer_instance
    group = typer.Typer(help="OLTs: provisioning over their CLI, and emulated OLTs.")
    app.add_typer(group, name="olt")
    return group


def _changes(inventory: Path, who: str | None, audit: Path | None) -> Any:
    from guardian_lib.olt.changes import OltAudit, OltChanges
    from guardian_lib.olt.inventory import load_cli_inventory

    inv = load_cli_inventory(inventory)
    audit = audit or inventory.with_name("olt-audit.jsonl")
    return OltChanges(inv, OltAudit(audit), who or getpass.getuser())


def _report(res: Any) -> None:
    from rich.console import Console

    if res.status == "dry-run":
        for cmd in res.commands:
            typer.echo(cmd)
        if not res.commands and res.operation == "resync":
            Console(stderr=True).print("nothing stored to re-apply: resync only re-reads the ONU")
        return
    console = Console(stderr=True)
    if res.status != "ok":
        extra = "" if res.rolled_back is None else f" (rolled back: {res.rolled_back})"
        raise OltChangeFailed(f"{res.operation} on {res.olt_id} failed: {res.error}{extra}")
    console.print(f"[green]{res.operation}[/] on {res.olt_id}: ok (change {res.change_id})")
    typer.echo(json.dumps({"params": res.params, "before": res.before, "after": res.after}))


def _apply(inventory: Path, who: str | None, audit: Path | None, dry_run: bool, change: Any):
    changes = _changes(inventory, who, audit)
    try:
        res = asyncio.run(changes.apply(change, dry_run=dry_run))
    finally:
        changes.close_snmp()
    _report(res)


def autofind_command(inventory: Inventory, olt: OltId) -> None:
    """List the ONUs waiting for authorization (CSV: slot,port,serial,model)."""
    from guardian_lib.olt.inventory import load_cli_inventory

    inv = load_cli_inventory(inventory)

    async def run() -> list[Any]:
        from guardian_lib.olt.driver import OltDriver

        async with OltDriver(inv.target(olt), inv.profile_of(olt)) as drv:
            return await drv.autofind()

    typer.echo("slot,port,serial,model")
    for a in asyncio.run(run()):
        typer.echo(f"{a.slot},{a.port},{a.serial},{a.model}")


def status_command(
    inventory: Inventory,
    olt: OltId,
    slot: Slot,
    port: Port,
    onu_id: Annotated[
        int | None, typer.Option("--onu-id", help="ONU id (else the port's ONUs).")
    ] = None,
) -> None:
    """Read state (nothing changes): one ONU's admin / run state, or a port's ONUs."""
    from guardian_lib.olt.driver import OltDriver, OnuLocation
    from guardian_lib.olt.inventory import load_cli_inventory

    inv = load_cli_inventory(inventory)

    async def run() -> Any:
        async with OltDriver(inv.target(olt), inv.profile_of(olt)) as drv:
            if onu_id is not None:
                return await drv.onu_status(OnuLocation(slot, port, onu_id))
            return {
                "port": await drv.port_status(slot, port),
                "onus": {str(k): v for k, v in (await drv.configured(slot, port)).items()},
            }

    typer.echo(json.dumps(asyncio.run(run())))


def authorize_command(
    inventory: Inventory,
    olt: OltId,
    slot: Slot,
    port: Port,
    serial: Annotated[str, typer.Option(help="ONU serial (HWTC1A2B3C4D or hex).")],
    vlan: Annotated[int, typer.Option(help="Service VLAN.")],
    line_profile: Annotated[str | None, typer.Option(help="Line / T-CONT profile.")] = None,
    srv_profile: Annotated[str | None, typer.Option(help="Service profile.")] = None,
    wan: Annotated[str, typer.Option(help="pppoe, bridge or none.")] = "none",
    pppoe: Annotated[
        str | None, typer.Option(help="Key of the PPPoE account in the secret store.")
    ] = None,
    desc: Annotated[str | None, typer.Option(help="Description (customer id).")] = None,
    onu_type: Annotated[str | None, typer.Option(help="ONU type (ZTE).")] = None,
    onu_id: Annotated[int | None, typer.Option("--onu-id", help="Requested ONU id.")] = None,
    who: Who = None,
    audit: Audit = None,
    dry_run: DryRun = False,
) -> None:
    """Authorize an ONU from the autofind list with its service port and WAN."""
    from guardian_lib.olt.changes import Change

    params = dict(slot=slot, port=port, serial=serial, vlan=vlan, line_profile=line_profile,
                  srv_profile=srv_profile, wan=wan, pppoe=pppoe, desc=desc, onu_type=onu_type,
                  onu_id=onu_id)  # fmt: skip
    _apply(inventory, who, audit, dry_run, Change(olt, "authorize", params))


def reboot_onu_command(
    inventory: Inventory, olt: OltId, slot: Slot, port: Port, onu_id: OnuId,
    who: Who = None, audit: Audit = None, dry_run: DryRun = False, via: Via = "cli",
) -> None:  # fmt: skip
    """Reboot one ONU."""
    from guardian_lib.olt.changes import Change

    params = {"slot": slot, "port": port, "onu_id": onu_id, "via": via}
    change = Change(olt, "reboot-onu", params)
    _apply(inventory, who, audit, dry_run, change)


def resync_command(
    inventory: Inventory, olt: OltId, slot: Slot, port: Port, onu_id: OnuId,
    who: Who = None, audit: Audit = None, dry_run: DryRun = False,
) -> None:  # fmt: skip
    """Re-read one ONU from the OLT and re-apply the WAN Guardian stored for it."""
    from guardian_lib.olt.changes import Change

    change = Change(olt, "resync", {"slot": slot, "port": port, "onu_id": onu_id})
    _apply(inventory, who, audit, dry_run, change)


def _switch(kind: str, enabled: bool) -> Any:
    op = f"{kind}-{'enable' if enabled else 'disable'}"

    def command(
        inventory: Inventory, olt: OltId, slot: Slot, port: Port,
        onu_id: Annotated[int | None, typer.Option("--onu-id", help="ONU id (onu only).")] = None,
        who: Who = None, audit: Audit = None, dry_run: DryRun = False, via: Via = "cli",
    ) -> None:  # fmt: skip
        from guardian_lib.olt.changes import Change

        params: dict[str, Any] = {"slot": slot, "port": port, "via": via}
        if kind == "onu":
            params["onu_id"] = onu_id
        _apply(inventory, who, audit, dry_run, Change(olt, op, params))

    what = "a PON port (its ONUs go offline)" if kind == "port" else "one ONU"
    command.__doc__ = f"{'Enable' if enabled else 'Disable'} {what}."
    return command


def bulk_command(
    inventory: Inventory,
    csv_file: Annotated[Path, typer.Argument(help="CSV: olt_id,operation,slot,port,...")],
    per_minute: Annotated[float, typer.Option(help="Changes started per minute.")] = 30.0,
    who: Who = None,
    audit: Audit = None,
    dry_run: DryRun = False,
) -> None:
    """Apply the changes of a CSV file in order, rate limited, each audited."""
    from guardian_lib.olt.bulk import load_bulk_csv, run_bulk

    rows = load_bulk_csv(csv_file)
    changes = _changes(inventory, who, audit)
    try:
        results = asyncio.run(run_bulk(changes, rows, per_minute=per_minute, dry_run=dry_run))
    finally:
        changes.close_snmp()
    failed = 0
    for n, res in enumerate(results, start=2):
        if res.status == "dry-run":
            typer.echo(f"# row {n}: {res.operation} on {res.olt_id}")
            for cmd in res.commands:
                typer.echo(cmd)
        else:
            failed += res.status != "ok"
            typer.echo(f"row {n}: {res.operation} {res.olt_id} {res.status}"
                       + (f": {res.error}" if res.error else ""))  # fmt: skip
    if failed:
        raise OltChangeFailed(f"{failed} of {len(results)} change(s) failed (see above)")


def register(app: typer.Typer) -> None:
    """Add the ``olt`` provisioning commands to the ``guardian`` CLI."""
    group = olt_group(app)
    group.command("autofind")(autofind_command)
    group.command("status")(status_command)
    group.command("authorize")(authorize_command)
    group.command("reboot-onu")(reboot_onu_command)
    group.command("resync")(resync_command)
    group.command("bulk")(bulk_command)
    for kind in ("port", "onu"):
        sub = typer.Typer(help=f"Enable or disable {'a PON port' if kind == 'port' else 'an ONU'}.")
        sub.command("disable")(_switch(kind, False))
        sub.command("enable")(_switch(kind, True))
        group.add_typer(sub, name=kind)
