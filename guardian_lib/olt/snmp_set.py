"""OLT changes over SNMP SET (v2c or v3), where the vendor supports them.

A CLI profile's ``snmp_set`` section (``guardian_lib/olt/profiles/*.yaml``) says which
operations an OLT family accepts over SNMP and as which INTEGER var-binds (e.g. IF-MIB
``ifAdminStatus.<ifIndex> = 2`` to shut a PON port, Huawei
``hwGponDeviceOntControlReset.<ifIndex>.<ontId> = 1`` to reboot an ONT), and how a CLI
slot / port maps to the PON ifIndex. SET is opt-in per OLT: only an inventory entry with
``snmp_set: {credentials: REF}`` is written to, with a write community or v3 user of its
own (never the poller's read credentials).

:func:`set_varbinds` renders the var-binds (dry-run prints them); :class:`SnmpSetter`
sends them in one SET request and reads the same objects before and after (the audit's
before / after).
"""

from __future__ import annotations

from typing import Any

from guardian_lib.olt.profiles import CliProfile

__all__ = ["set_varbinds", "format_varbinds", "SnmpSetter"]


def set_varbinds(
    profile: CliProfile, operation: str, values: dict[str, Any]
) -> list[tuple[str, int]]:
    """The ``(oid, value)`` var-binds of ``operation`` for the ONU / port in ``values``.

    Parameters
    ----------
    profile : CliProfile
    operation : str
        ``reboot``, ``onu_disable``, ``onu_enable``, ``port_disable`` or ``port_enable``.
    values : dict
        ``slot`` and ``port`` (CLI numbering), ``onu_id`` for ONU operations.

    Raises
    ------
    ValueError
        The family has no SNMP SET for that operation (naming those it has), or a value
        is missing or not an integer.
    """
    ss = profile.snmp_set
    have = sorted(ss.operations) if ss is not None else []
    if ss is None or operation not in ss.operations:
        raise ValueError(
            f"profile {profile.name}: no SNMP SET for {operation} (over SNMP it supports "
            f"{', '.join(have) or 'nothing'}; use the CLI)"
        )
    try:
        slot, port = int(values["slot"]), int(values["port"])
        onu = int(values["onu_id"]) if values.get("onu_id") is not None else None
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"SNMP SET {operation}: slot, port (and onu_id) must be integers: {exc}"
        ) from None
    fields = {"if_index": ss.if_index.of(slot, port), "onu_id": onu}
    out = []
    for vb in ss.operations[operation]:
        if "{onu_id}" in vb.oid and onu is None:
            raise ValueError(f"SNMP SET {operation} needs onu_id")
        out.append((vb.oid.format_map(fields), vb.value))
    return out


def format_varbinds(varbinds: list[tuple[str, int]]) -> list[str]:
    """``SET <oid> = INTEGER <value>`` lines (dry-run, audit)."""
    return [f"SET {oid} = INTEGER {value}" for oid, value in varbinds]


class SnmpSetter:
    """One OLT's SNMP agent, for SETs (``async with SnmpSetter(...) as s``).

    Parameters
    ----------
    olt_id, host : str
    port : int
        UDP port of the agent. [-]
    credentials : guardian_lib.snmp.transport.SnmpCredentials
        The write community or v3 user.
    timeout_s : float
        Wait for one answer. [s]
    retries : int
        Resends. [-]
    engine : pysnmp SnmpEngine, optional
        An engine of the running event loop to share (building one costs ~0.2 s); the
        setter then leaves it open.
    """

    def __init__(
        self, olt_id: str, host: str, port: int, credentials: Any, timeout_s: float = 2.0,
        retries: int = 1, engine: Any = None,
    ) -> None:  # fmt: skip
        self.olt_id, self.host, self.port = olt_id, host, port
        self.credentials = credentials
        self.timeout_s, self.retries = timeout_s, retries
        self._shared = engine
        self._engine: Any = None
        self.session: Any = None

    async def __aenter__(self) -> SnmpSetter:
        from guardian_lib.snmp.transport import SnmpSession, new_engine

        self._engine = self._shared or new_engine()
        self.session = SnmpSession(
            self._engine, self.olt_id, self.host, self.port, self.credentials,
            timeout_s=self.timeout_s, retries=self.retries,
        )  # fmt: skip
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._engine is not None and self._shared is None:
            self._engine.close_dispatcher()
        self._engine = None

    async def read(self, varbinds: list[tuple[str, int]]) -> dict[str, Any]:
        """Current values of the var-binds' objects (None where the agent has none)."""
        return await self.session.get([oid for oid, _ in varbinds])

    async def set(self, varbinds: list[tuple[str, int]]) -> dict[str, Any]:
        """Send the var-binds in one SET (all or nothing at the agent)."""
        return await self.session.set(varbinds)
