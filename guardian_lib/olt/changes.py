"""Audited OLT changes: one entry point for the CLI, bulk files and the library.

:class:`OltChanges` applies one change (``authorize``, ``reboot-onu``, ``onu-disable``,
``onu-enable``, ``port-disable``, ``port-enable``, ``resync``) to one OLT of a CLI
inventory. It reads the state before, sends the profile's commands (or, with ``via:
snmp``, an SNMP SET), reads the state after, and writes both to an append-only JSON-lines
audit trail with who asked, what was sent (secrets masked) and the outcome — a
``started`` record before the first command, so a change cut short by a crash is still
on record. With ``dry_run`` it only renders the commands.

PPPoE credentials are named by a key of the secret store (``pppoe``), never given.

``resync`` re-reads one ONU from the OLT and re-applies the configuration Guardian stored
for it — the WAN (PPPoE or bridge, VLAN) of the last successful ``authorize`` of that ONU
id in the audit trail — after checking that the serial the OLT reports is still the one
authorized there. The WAN commands are idempotent ``set`` commands on every vendor; the
ONU and its service port are not added again.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from guardian_lib.olt.driver import (
    AuthorizeRequest,
    OltDriver,
    OnuLocation,
    normalize_serial,
    plan,
    serial_lower,
)
from guardian_lib.olt.inventory import CliInventory, pppoe_account
from guardian_lib.olt.session import OltCommandError, OltError
from guardian_lib.olt.snmp_set import SnmpSetter, format_varbinds, set_varbinds

__all__ = ["OPERATIONS", "SNMP_CHANGES", "Change", "ChangeResult", "OltAudit", "OltChanges"]

#: Change name → profile operation.
OPERATIONS: dict[str, str] = {
    "authorize": "authorize",
    "reboot-onu": "reboot",
    "onu-disable": "onu_disable",
    "onu-enable": "onu_enable",
    "port-disable": "port_disable",
    "port-enable": "port_enable",
    "resync": "resync",
}
_NEEDS = {
    "resync": ("slot", "port", "onu_id"),
    "authorize": ("slot", "port", "serial", "vlan"),
    "reboot-onu": ("slot", "port", "onu_id"),
    "onu-disable": ("slot", "port", "onu_id"),
    "onu-enable": ("slot", "port", "onu_id"),
    "port-disable": ("slot", "port"),
    "port-enable": ("slot", "port"),
}
_INTS = ("slot", "port", "onu_id", "vlan")
_TEXT = ("serial", "line_profile", "srv_profile", "wan", "pppoe", "desc", "onu_type", "via")
#: Changes that may go over SNMP SET (``via: snmp``) where the OLT's profile has them.
SNMP_CHANGES = ("reboot-onu", "onu-disable", "onu-enable", "port-disable", "port-enable")


@dataclass
class Change:
    """One change asked of one OLT.

    Attributes
    ----------
    olt_id : str
    operation : str
        A key of :data:`OPERATIONS`.
    params : dict
        ``slot``, ``port`` (CLI numbering), ``onu_id``, ``serial``, ``vlan``,
        ``line_profile``, ``srv_profile``, ``wan`` (pppoe / bridge / none), ``pppoe``
        (secret-store key), ``desc``, ``onu_type``, ``via`` (``cli``, the default, or
        ``snmp`` for an SNMP SET where the OLT allows it).
    """

    olt_id: str
    operation: str
    params: dict[str, Any] = field(default_factory=dict)

    def validated(self, where: str = "change") -> Change:
        """A copy with typed parameters; ValueError naming ``where`` and the field."""
        if self.operation not in OPERATIONS:
            raise ValueError(
                f"{where}: operation {self.operation!r} unknown (expected one of "
                f"{', '.join(OPERATIONS)})"
            )
        out: dict[str, Any] = {}
        for k, v in self.params.items():
            if v is None or v == "":
                continue
            if k in _INTS:
                try:
                    out[k] = int(v)
                except (TypeError, ValueError):
                    raise ValueError(f"{where}: {k} must be an integer, got {v!r}") from None
            elif k in _TEXT:
                out[k] = str(v)
            else:
                raise ValueError(f"{where}: unknown field {k!r}")
        missing = [k for k in _NEEDS[self.operation] if k not in out]
        if missing:
            raise ValueError(f"{where}: {self.operation} needs {missing}")
        if out.get("wan", "none") not in ("pppoe", "bridge", "none"):
            raise ValueError(f"{where}: wan must be pppoe, bridge or none, got {out['wan']!r}")
        if out.get("via", "cli") not in ("cli", "snmp"):
            raise ValueError(f"{where}: via must be cli or snmp, got {out['via']!r}")
        if out.get("via") == "snmp" and self.operation not in SNMP_CHANGES:
            raise ValueError(
                f"{where}: {self.operation} cannot go over SNMP SET (only "
                f"{', '.join(SNMP_CHANGES)})"
            )
        if out.get("wan") == "pppoe" and "pppoe" not in out:
            raise ValueError(f"{where}: wan pppoe needs the PPPoE account's secret key (pppoe)")
        return Change(self.olt_id, self.operation, out)


@dataclass
class ChangeResult:
    """What happened (also the audit record)."""

    change_id: str
    olt_id: str
    operation: str
    params: dict[str, Any]
    who: str
    status: str  # ok | failed | dry-run
    commands: list[str] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None
    rolled_back: bool | None = None


class OltAudit:
    """Append-only JSON-lines audit trail of OLT changes (one object per line).

    Parameters
    ----------
    path : str or Path
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and flush it to disk."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, sort_keys=True, default=str) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        """Every record, oldest first."""
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [json.loads(x) for x in lines if x.strip()]


class OltChanges:
    """Apply audited changes to the OLTs of a CLI inventory.

    Parameters
    ----------
    inventory : CliInventory
    audit : OltAudit
    who : str
        Operator (or process) asking, recorded with every change.
    """

    def __init__(self, inventory: CliInventory, audit: OltAudit, who: str) -> None:
        if not who:
            raise ValueError("OltChanges: who must name the operator")
        self.inventory = inventory
        self.audit = audit
        self.who = who
        self._snmp_engine: tuple[Any, Any] | None = None  # (event loop, engine) for SETs

    def _engine(self) -> Any:
        """One SNMP engine per event loop, shared by this object's SETs (~0.2 s to build)."""
        from guardian_lib.snmp.transport import new_engine

        loop = asyncio.get_running_loop()
        if self._snmp_engine is None or self._snmp_engine[0] is not loop:
            self.close_snmp()
            self._snmp_engine = (loop, new_engine())
        return self._snmp_engine[1]

    def close_snmp(self) -> None:
        """Release the SNMP engine of past SETs (its UDP socket); never raises."""
        if self._snmp_engine is not None:
            try:
                self._snmp_engine[1].close_dispatcher()
            except Exception:  # its event loop is already closed
                pass
            self._snmp_engine = None

    def driver(self, olt_id: str) -> OltDriver:
        """A (not yet connected) driver for one OLT of the inventory."""
        return OltDriver(self.inventory.target(olt_id), self.inventory.profile_of(olt_id))

    def _values(self, change: Change) -> dict[str, Any]:
        vals = {k: v for k, v in change.params.items() if k != "pppoe"}
        if change.params.get("wan") == "pppoe":
            user, pw = pppoe_account(change.params["pppoe"], self.inventory.secrets_path())
            vals.update(pppoe_username=user, pppoe_password=pw)
        if "serial" in vals:
            vals["serial"] = normalize_serial(vals["serial"])
        return vals

    def stored(self, olt_id: str, slot: int, port: int, onu_id: int) -> dict[str, Any] | None:
        """Parameters of the last successful ``authorize`` of one ONU id in the audit trail.

        Returns None when Guardian never authorized that ONU id (or the audit trail does
        not go back that far).
        """
        where = {"slot": slot, "port": port, "onu_id": onu_id}
        last = None
        for rec in self.audit.read():
            p = rec.get("params") or {}
            if (rec.get("olt_id"), rec.get("operation"), rec.get("status")) == (
                olt_id, "authorize", "ok"
            ) and all(p.get(k) == v for k, v in where.items()):  # fmt: skip
                last = p
        return last

    def _resync_values(self, change: Change) -> tuple[dict[str, Any] | None, str | None]:
        """Stored parameters of the ONU and the WAN operation to re-apply (or None)."""
        p = change.params
        stored = self.stored(change.olt_id, p["slot"], p["port"], p["onu_id"])
        if stored is None or stored.get("wan", "none") == "none":
            return stored, None
        vals = {**self._values(Change(change.olt_id, "authorize", stored)), **p}
        vals["serial_lower"] = serial_lower(vals["serial"])
        return vals, "wan_" + stored["wan"]

    def plan(self, change: Change) -> list[str]:
        """The commands ``change`` would send (secrets masked), without connecting.

        A ``resync`` of an ONU with no stored WAN sends nothing (it only re-reads).
        """
        change = change.validated()
        profile = self.inventory.profile_of(change.olt_id)
        if change.params.get("via") == "snmp":
            self.inventory.snmp_set_target(change.olt_id)  # opt-in and credentials first
            vbs = set_varbinds(profile, OPERATIONS[change.operation], change.params)
            return format_varbinds(vbs)
        if change.operation == "resync":
            vals, op = self._resync_values(change)
            return [] if op is None else plan(profile, op, vals or {})
        vals = self._values(change)
        if change.operation == "authorize":
            req = AuthorizeRequest(**_request_fields(vals))
            vals = {**req.values(), "wan": req.wan}
        return plan(profile, OPERATIONS[change.operation], vals)

    async def apply(
        self, change: Change, *, dry_run: bool = False, driver: OltDriver | None = None
    ) -> ChangeResult:
        """Apply one change (or only render it with ``dry_run``) and audit it.

        Parameters
        ----------
        change : Change
        dry_run : bool
            Render the commands, send nothing (audited as ``dry-run``).
        driver : OltDriver, optional
            An open driver to reuse (bulk runs); otherwise one session is opened.

        Returns
        -------
        ChangeResult
            ``status`` ``failed`` with ``error`` for OLT refusals; configuration errors
            (unknown OLT, missing secret) raise
            :class:`~guardian_lib.errors.ConfigError`.
        """
        change = change.validated()
        res = ChangeResult(
            uuid.uuid4().hex[:16], change.olt_id, change.operation, dict(change.params),
            self.who, "dry-run" if dry_run else "started",
        )  # fmt: skip
        if dry_run:
            res.commands = self.plan(change)
            self._record(res)
            return res
        if change.params.get("via") == "snmp":
            return await self._apply_snmp(change, res)
        vals = self._values(change)
        self._record(res)
        own = driver is None
        drv = driver or self.driver(change.olt_id)
        try:
            if own:
                await drv.__aenter__()
            start = len(drv.session.transcript)
            try:
                await self._run(drv, change, vals, res)
                res.status = "ok"
            finally:
                res.commands = drv.session.transcript[start:]
        except OltError as exc:
            res.status, res.error = "failed", str(exc)
            res.error_kind = getattr(exc, "kind", type(exc).__name__)
            res.rolled_back = exc.rolled_back
        finally:
            if own:
                await drv.__aexit__(None, None, None)
        self._record(res)
        return res

    async def _run(self, drv: OltDriver, ch: Change, vals: dict[str, Any], res: ChangeResult):
        p = ch.params
        if ch.operation == "authorize":
            req = AuthorizeRequest(**_request_fields(vals))
            waiting = await drv.autofind(req.slot, req.port)
            res.before = {"waiting": [asdict(a) for a in waiting if a.serial == vals["serial"]]}
            done = await drv.authorize(req)
            res.params["onu_id"] = done.onu_id
            res.after = await drv.onu_status(OnuLocation(req.slot, req.port, done.onu_id))
        elif ch.operation == "resync":
            await self._resync(drv, ch, res)
        elif ch.operation.startswith("port-"):
            res.before = await drv.port_status(p["slot"], p["port"])
            await drv.set_port_enabled(p["slot"], p["port"], ch.operation == "port-enable")
            res.after = await drv.port_status(p["slot"], p["port"])
        else:
            loc = OnuLocation(p["slot"], p["port"], p["onu_id"])
            res.before = await drv.onu_status(loc)
            if ch.operation == "reboot-onu":
                await drv.reboot_onu(loc)
            else:
                await drv.set_onu_enabled(loc, ch.operation == "onu-enable")
            res.after = await drv.onu_status(loc)

    async def _apply_snmp(self, change: Change, res: ChangeResult) -> ChangeResult:
        """One change as an SNMP SET: read the objects, set them, read them again."""
        from guardian_lib.snmp.errors import SnmpError

        host, port, creds, ss = self.inventory.snmp_set_target(change.olt_id)
        profile = self.inventory.profile_of(change.olt_id)
        vbs = set_varbinds(profile, OPERATIONS[change.operation], change.params)
        res.commands = format_varbinds(vbs)
        self._record(res)
        try:
            async with SnmpSetter(change.olt_id, host, port, creds, ss.timeout_s,
                                  ss.retries, engine=self._engine()) as agent:  # fmt: skip
                res.before = await agent.read(vbs)
                await agent.set(vbs)
                res.after = await agent.read(vbs)
            res.status = "ok"
        except SnmpError as exc:
            res.status, res.error, res.error_kind = "failed", str(exc), type(exc).__name__
        self._record(res)
        return res

    async def _resync(self, drv: OltDriver, ch: Change, res: ChangeResult) -> None:
        p = ch.params
        loc = OnuLocation(p["slot"], p["port"], p["onu_id"])
        res.before = await drv.onu_status(loc)
        vals, op = self._resync_values(ch)
        if vals is not None:
            found = normalize_serial(res.before.get("serial") or res.before.get("serial_hex", ""))
            if found != normalize_serial(vals["serial"]):
                raise OltCommandError(
                    drv.olt_id, "not_found", f"resync {loc.label()}",
                    f"the OLT reports serial {found} at {loc.label()}, Guardian's stored "
                    f"configuration is for {normalize_serial(vals['serial'])}: not re-applied",
                )  # fmt: skip
        if op is not None:
            await drv.run_operation(op, vals or {})
        res.after = await drv.onu_status(loc)
        res.after["reapplied"] = op or "nothing stored"

    def _record(self, res: ChangeResult) -> None:
        rec = asdict(res)
        rec["ts"] = pd.Timestamp.now(tz="UTC").isoformat()
        self.audit.write(rec)


def _request_fields(vals: dict[str, Any]) -> dict[str, Any]:
    keys = AuthorizeRequest.__dataclass_fields__
    return {k: v for k, v in vals.items() if k in keys}
