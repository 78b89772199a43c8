"""OLT operations over the CLI: autofind, authorize (with rollback), WAN, reboot, enable /
disable an ONU or a PON port, status.

:class:`OltDriver` turns an operation of a :class:`~guardian_lib.olt.profiles.CliProfile`
into commands, runs them on a :class:`~guardian_lib.olt.session.CliSession` and reads the
answers. :func:`plan` renders the same commands without connecting (``--dry-run``).

Authorization is the one multi-step change: the ONU is added, then its service port,
then (optionally) its WAN. If a step after the first fails, the profile's ``rollback``
commands remove what was added (e.g. delete the ONT), the ONU is checked to be gone, and
the error is raised with ``rolled_back`` set — nothing is left half-configured where the
vendor allows undoing it.
"""

from __future__ import annotations

import re
import string
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from guardian_lib.olt.profiles import CliProfile, render
from guardian_lib.olt.session import CliSession, OltCommandError, OltError, SshTarget

__all__ = [
    "OnuLocation",
    "AutofindOnu",
    "AuthorizeRequest",
    "AuthorizeResult",
    "OltDriver",
    "plan",
    "normalize_serial",
    "serial_to_hex",
    "serial_lower",
    "parse_listing",
]

_SERIAL = re.compile(r"([A-Za-z0-9]{4})-?([0-9A-Fa-f]{8})")


def normalize_serial(text: str) -> str:
    """A GPON serial as ``VVVVXXXXXXXX`` (vendor id + 8 hex digits, upper case).

    Accepts ``HWTC1A2B3C4D``, ``HWTC-1A2B3C4D`` and the hex form ``485754431A2B3C4D``.

    Raises
    ------
    ValueError
        Naming the text and the expected forms.
    """
    t = text.strip()
    if re.fullmatch(r"[0-9A-Fa-f]{16}", t):
        vendor = bytes.fromhex(t[:8])
        if all(0x30 <= b < 0x7F for b in vendor):
            return vendor.decode("ascii").upper() + t[8:].upper()
    m = _SERIAL.fullmatch(t)
    if m is None:
        raise ValueError(
            f"serial {text!r}: expected a GPON serial such as HWTC1A2B3C4D, HWTC-1A2B3C4D "
            "or 485754431A2B3C4D"
        )
    return m.group(1).upper() + m.group(2).upper()


def serial_lower(serial: str) -> str:
    """``FHTT0017EED0`` → ``FHTT0017eed0`` (FiberHome shows and wants the hex in lower case)."""
    s = normalize_serial(serial)
    return s[:4] + s[4:].lower()


def serial_to_hex(serial: str) -> str:
    """``HWTC1A2B3C4D`` → ``485754431A2B3C4D`` (the vendor id as hex)."""
    s = normalize_serial(serial)
    return s[:4].encode("ascii").hex().upper() + s[4:]


@dataclass(frozen=True)
class OnuLocation:
    """Where an ONU sits, in the OLT's CLI numbering (slot and port as the CLI shows them).

    Attributes
    ----------
    slot, port : int
        Board slot and PON port. [-]
    onu_id : int or None
        ONU id on the port (None until authorized). [-]
    """

    slot: int
    port: int
    onu_id: int | None = None

    def label(self) -> str:
        """``slot/port[:onu]``."""
        return f"{self.slot}/{self.port}" + ("" if self.onu_id is None else f":{self.onu_id}")


@dataclass(frozen=True)
class AutofindOnu:
    """An ONU waiting for authorization."""

    slot: int
    port: int
    serial: str
    model: str = ""


@dataclass
class AuthorizeRequest:
    """What to authorize and how.

    Attributes
    ----------
    slot, port : int
        PON port in CLI numbering. [-]
    serial : str
    vlan : int
        Service VLAN. [-]
    line_profile, srv_profile : str, optional
        Line (T-CONT / bandwidth) and service profile; the OLT profile's defaults if None.
    wan : {'pppoe', 'bridge', 'none'}
    pppoe_username, pppoe_password : str, optional
        From the secret store, never from the command line.
    desc : str
        Description stored on the OLT (customer id).
    onu_type : str, optional
        ONU model as the OLT knows it (ZTE ``type``).
    onu_id : int, optional
        Requested ONU id (otherwise the OLT or the driver picks one). [-]
    """

    slot: int
    port: int
    serial: str
    vlan: int
    line_profile: str | None = None
    srv_profile: str | None = None
    wan: Literal["pppoe", "bridge", "none"] = "none"
    pppoe_username: str | None = None
    pppoe_password: str | None = field(default=None, repr=False)
    desc: str = "guardian"
    onu_type: str | None = None
    onu_id: int | None = None

    def values(self) -> dict[str, Any]:
        """Template fields (``None`` values left out, serial in both forms)."""
        v = {k: x for k, x in asdict(self).items() if x is not None and k != "wan"}
        v["serial"] = normalize_serial(self.serial)
        v["serial_hex"] = serial_to_hex(self.serial)
        v["serial_lower"] = serial_lower(self.serial)
        if not 1 <= self.vlan <= 4094:
            raise ValueError(f"vlan must be in 1..4094, got {self.vlan}")
        return v


@dataclass
class AuthorizeResult:
    """Outcome of an authorization (see :meth:`OltDriver.authorize`)."""

    onu_id: int
    serial: str
    commands: list[str]


#: Fields a dry run may leave open: the ONU id is picked by the OLT or by the driver, and
#: FiberHome's ONU type is read from the autofind list.
_DECIDED_LATER = frozenset({"onu_id", "onu_type"})


def parse_listing(text: str, parse: str, section: str | None = None) -> list[dict[str, str]]:
    """Records of a listing: one dict per match of ``parse``.

    With ``section``, the named groups of the last section header before a record (e.g.
    FiberHome's ``ONU Unauth Table ,SLOT=1 PON=2``) are added to it.
    """
    if section is None:
        return [m.groupdict() for m in re.finditer(parse, text)]
    heads = list(re.finditer(section, text))
    out = []
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        for m in re.finditer(parse, text[head.end() : end]):
            out.append({**head.groupdict(), **m.groupdict()})
    return out


def _values(profile: CliProfile, values: dict[str, Any]) -> dict[str, Any]:
    out = dict(profile.defaults)
    out.update({k: v for k, v in values.items() if v is not None})
    return out


def plan(profile: CliProfile, operation: str, values: dict[str, Any]) -> list[str]:
    """The commands ``operation`` would send, secrets masked, without connecting.

    Fields not known before the OLT answers (the ONU id it allocates) stay as
    ``{onu_id}``. ``authorize`` includes the WAN operation named by ``values['wan']``.
    """
    vals = _values(profile, values)
    ops = [operation]
    if operation == "authorize" and vals.get("wan") in ("pppoe", "bridge"):
        ops.append("wan_" + vals["wan"])
    out: list[str] = []
    for name in ops:
        for step in profile.operations[name].steps:
            for tmpl in step.send:
                missing = {  # only what the OLT or the driver decides may stay open
                    f: "{" + f + "}"
                    for _, f, _, _ in string.Formatter().parse(tmpl)
                    if f and f not in vals and f in _DECIDED_LATER
                }
                if missing:
                    known = render(_drop(tmpl, missing), vals, mask_secrets=True)
                    out.append(known.replace("\x00", "{").replace("\x01", "}"))
                else:
                    out.append(render(tmpl, vals, mask_secrets=True))
    return out


def _drop(tmpl: str, missing: dict[str, str]) -> str:
    """Escape unknown fields so that :func:`render` leaves them as text."""
    for f in missing:
        tmpl = tmpl.replace("{" + f + "}", "\x00" + f + "\x01")
    return tmpl


class OltDriver:
    """Operations on one OLT (``async with OltDriver(target, profile) as olt``).

    Parameters
    ----------
    target : SshTarget
    profile : CliProfile
    """

    def __init__(self, target: SshTarget, profile: CliProfile) -> None:
        self.target = target
        self.profile = profile
        self.session = CliSession(target, profile)

    async def __aenter__(self) -> OltDriver:
        await self.session.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    @property
    def olt_id(self) -> str:
        """The OLT's id."""
        return self.target.olt_id

    async def _step(self, templates: list[str], vals: dict[str, Any]) -> str:
        out = []
        for tmpl in templates:
            cmd = render(tmpl, vals)
            out.append(await self.session.run(cmd, render(tmpl, vals, mask_secrets=True)))
        return "\n".join(out)

    async def run_operation(self, name: str, values: dict[str, Any]) -> dict[str, str]:
        """Run one operation's steps; return the fields captured along the way.

        On an error the session is brought back to configuration mode before raising.
        """
        vals = _values(self.profile, values)
        try:
            return await self.run_operation_steps(self.profile.operations[name].steps, vals)
        except OltError:
            await self._recover()
            raise

    async def _recover(self) -> None:
        try:
            await self.session.leave_to_config()
        except OltError:  # the original error matters more
            pass

    async def listing(self, name: str, values: dict[str, Any]) -> list[dict[str, str]]:
        """Run a listing operation and return one dict per record its ``parse`` matches."""
        vals = _values(self.profile, values)
        op = self.profile.operations[name]
        try:
            text = "\n".join([await self._step(s.send, vals) for s in op.steps])
        except OltCommandError as exc:
            if op.empty and re.search(op.empty, exc.line):
                return []
            await self._recover()
            raise
        assert op.parse is not None, f"profile {self.profile.name}: {name} has no parse"
        return parse_listing(text, op.parse, op.section)

    async def autofind(self, slot: int | None = None, port: int | None = None) -> list[AutofindOnu]:
        """ONUs waiting for authorization on every port, or on one port.

        With ``slot`` and ``port``, the profile's ``autofind_port`` listing is used if it
        has one (a shorter answer on a large OLT), else the full list, filtered.
        """
        one = slot is not None and port is not None
        if one and "autofind_port" in self.profile.operations:
            recs = await self.listing("autofind_port", {"slot": slot, "port": port})
        else:
            recs = await self.listing("autofind", {})
        out = []
        for rec in recs:
            serial = rec.get("serial") or rec.get("serial_hex") or ""
            out.append(
                AutofindOnu(
                    int(rec["slot"]), int(rec["port"]), normalize_serial(serial),
                    rec.get("model") or "",
                )
            )  # fmt: skip
        return [a for a in out if (a.slot, a.port) == (slot, port)] if one else out

    async def configured(self, slot: int, port: int) -> dict[int, str]:
        """ONU id → serial of the ONUs configured on one port."""
        recs = await self.listing("configured", {"slot": slot, "port": port})
        return {
            int(r["onu_id"]): normalize_serial(r.get("serial") or r.get("serial_hex") or "")
            for r in recs
        }

    async def _free_onu_id(self, slot: int, port: int) -> int:
        used = set(await self.configured(slot, port))
        lo, hi = self.profile.onu_id_range
        for i in range(lo, hi + 1):
            if i not in used:
                return i
        raise OltCommandError(self.olt_id, "failure", f"port {slot}/{port}", "no free ONU id")

    async def authorize(self, req: AuthorizeRequest) -> AuthorizeResult:
        """Authorize an ONU from the autofind list, with its service port and WAN.

        Raises
        ------
        OltCommandError
            ``unknown_serial`` if the serial is not waiting on that port (nothing sent);
            any step's error otherwise, after rolling back (``rolled_back`` attribute).
        ValueError
            A value not allowed in a command (e.g. a VLAN out of range).
        """
        vals = _values(self.profile, req.values())
        if req.wan == "pppoe" and not (req.pppoe_username and req.pppoe_password):
            raise ValueError("wan 'pppoe' needs a PPPoE user name and password (secret store)")
        hit = [a for a in await self.autofind(req.slot, req.port) if a.serial == vals["serial"]]
        if not hit:
            waiting = await self.autofind()  # where does it wait, if anywhere?
            where = [f"{a.slot}/{a.port}" for a in waiting if a.serial == vals["serial"]]
            hint = f" (it waits on port {where[0]})" if where else ""
            raise OltCommandError(
                self.olt_id, "unknown_serial", f"authorize {vals['serial']}",
                f"serial not in the autofind list of port {req.slot}/{req.port}{hint}",
            )  # fmt: skip
        if "onu_type" not in vals and hit[0].model:  # FiberHome: the ONU's own type
            vals["onu_type"] = hit[0].model
        if self.profile.assign_onu_id == "olt" and req.onu_id is not None:
            raise ValueError(
                f"profile {self.profile.name}: the OLT allocates the ONU id; "
                f"leave onu_id unset (got {req.onu_id})"
            )
        if self.profile.assign_onu_id == "driver" and req.onu_id is None:
            vals["onu_id"] = await self._free_onu_id(req.slot, req.port)
        start = len(self.session.transcript)
        op = self.profile.operations["authorize"]
        added = False
        try:
            first = op.steps[0]
            captured = await self.run_operation_steps([first], vals)
            vals.update(captured)
            added = True
            await self.run_operation_steps(op.steps[1:], vals)
            if req.wan in ("pppoe", "bridge"):
                await self.run_operation_steps(
                    self.profile.operations["wan_" + req.wan].steps, vals
                )
        except OltError as exc:
            await self._recover()
            if added:
                exc.rolled_back = await self._rollback(vals)
            raise
        return AuthorizeResult(int(vals["onu_id"]), vals["serial"], self.session.transcript[start:])

    async def run_operation_steps(self, steps: list[Any], vals: dict[str, Any]) -> dict:
        """Run ``steps`` with ``vals`` (captures added to the result)."""
        captured: dict[str, str] = {}
        for step in steps:
            text = await self._step(step.send, {**vals, **captured})
            if step.capture:
                m = re.search(step.capture, text)
                if m is None:
                    raise OltCommandError(
                        self.olt_id, "failure", step.send[-1], f"no {step.name} in answer"
                    )
                captured.update({k: v for k, v in m.groupdict().items() if v is not None})
        return captured

    async def _rollback(self, vals: dict[str, Any]) -> bool:
        """Undo an authorization; True when the ONU is no longer configured."""
        for tmpl in self.profile.operations["authorize"].rollback:
            try:
                await self._step([tmpl], vals)
            except OltError:
                await self._recover()
        try:
            left = await self.configured(int(vals["slot"]), int(vals["port"]))
        except OltError:
            return False
        return int(vals["onu_id"]) not in left

    async def onu_status(self, loc: OnuLocation) -> dict[str, str]:
        """Admin and run state of a configured ONU (``admin``, ``run``, serial)."""
        return await self.run_operation("onu_status", asdict(loc))

    async def port_status(self, slot: int, port: int) -> dict[str, str]:
        """Admin state of a PON port (``admin``)."""
        return await self.run_operation("port_status", {"slot": slot, "port": port})

    async def reboot_onu(self, loc: OnuLocation) -> None:
        """Reboot a configured ONU."""
        await self.run_operation("reboot", asdict(loc))

    async def set_onu_enabled(self, loc: OnuLocation, enabled: bool) -> None:
        """Activate or deactivate a configured ONU."""
        await self.run_operation("onu_enable" if enabled else "onu_disable", asdict(loc))

    async def set_port_enabled(self, slot: int, port: int, enabled: bool) -> None:
        """Open or shut a PON port (its ONUs go offline while it is shut)."""
        op = "port_enable" if enabled else "port_disable"
        await self.run_operation(op, {"slot": slot, "port": port})
