"""SNMP GET and multi-column GETBULK walks on pysnmp 7 (asyncio), with clear errors.

The walker advances every requested table column in the same GETBULK request (one
request carries one varbind per unfinished column), so a table of C columns and N rows
costs about ``N / max_repetitions`` round trips instead of ``C · N / max_repetitions``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyasn1.type import univ
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
)
from pysnmp.hlapi.v3arch.asyncio import auth as _auth
from pysnmp.proto import errind, rfc1905
from pysnmp.smi import builder, view

from guardian_lib.snmp.errors import (
    SnmpAuthError,
    SnmpError,
    SnmpProtocolError,
    SnmpTimeoutError,
)

__all__ = [
    "SnmpCredentials",
    "SnmpSession",
    "new_engine",
    "Oid",
    "oid_tuple",
    "oid_str",
    "python_value",
]

Oid = tuple[int, ...]

_AUTH = {
    "SHA": _auth.USM_AUTH_HMAC96_SHA,
    "SHA224": _auth.USM_AUTH_HMAC128_SHA224,
    "SHA256": _auth.USM_AUTH_HMAC192_SHA256,
    "SHA512": _auth.USM_AUTH_HMAC384_SHA512,
    "MD5": _auth.USM_AUTH_HMAC96_MD5,
}
_PRIV = {
    "AES": _auth.USM_PRIV_CFB128_AES,
    "AES128": _auth.USM_PRIV_CFB128_AES,
    "AES192": _auth.USM_PRIV_CFB192_AES,
    "AES256": _auth.USM_PRIV_CFB256_AES,
    "DES": _auth.USM_PRIV_CBC56_DES,
}
_AUTH_FAILURES = (
    errind.WrongDigest,
    errind.UnknownUserName,
    errind.DecryptionError,
    errind.UnsupportedSecurityLevel,
    errind.AuthenticationError,
    errind.AuthenticationFailure,
    errind.UnknownSecurityName,
    errind.UnknownEngineID,
)
_NO_VALUE = (rfc1905.EndOfMibView, rfc1905.NoSuchInstance, rfc1905.NoSuchObject)


class _NoMibCompiler:
    """Stands in for pysmi's ASN.1 compiler: the poller only sends numeric OIDs."""


def new_engine() -> SnmpEngine:
    """An :class:`SnmpEngine` for numeric-OID polling (one per event loop).

    pysnmp otherwise builds pysmi's MIB compiler (a LALR parser, ~1.3 s of CPU) the first
    time an engine resolves an OID, even a numeric one with ``lookupMib=False``.
    """
    engine = SnmpEngine()
    mib_view = view.MibViewController(builder.MibBuilder())
    mib_view.mibBuilder.set_mib_compiler(
        _NoMibCompiler(), str(Path(__file__).with_name("profiles"))
    )
    engine.cache["mibViewController"] = mib_view
    return engine


def oid_tuple(oid: str) -> Oid:
    """``"1.3.6.1"`` → ``(1, 3, 6, 1)``."""
    return tuple(int(p) for p in oid.strip(".").split("."))


def oid_str(oid: Sequence[int]) -> str:
    """``(1, 3, 6, 1)`` → ``"1.3.6.1"``."""
    return ".".join(str(p) for p in oid)


def python_value(val: Any) -> Any:
    """A pysnmp value as int, bytes or str (OID); None for noSuchInstance / endOfMibView."""
    if isinstance(val, _NO_VALUE):
        return None
    if isinstance(val, univ.OctetString):
        return val.asOctets()
    if isinstance(val, univ.ObjectIdentifier):
        return oid_str(tuple(val))
    if isinstance(val, univ.Null):
        return None
    try:
        return int(val)
    except (TypeError, ValueError):
        return str(val)


@dataclass(frozen=True)
class SnmpCredentials:
    """SNMP credentials (v2c community, or v3 USM user with SHA/AES keys).

    Attributes
    ----------
    version : {'2c', '3'}
    community : str
        v2c only.
    user, auth_key, priv_key : str
        v3 only; keys are pass-phrases (≥ 8 characters).
    auth_protocol : {'SHA', 'SHA224', 'SHA256', 'SHA512', 'MD5'}
    priv_protocol : {'AES', 'AES192', 'AES256', 'DES'}
    """

    version: str = "2c"
    community: str = "public"
    user: str = ""
    auth_key: str = field(default="", repr=False)
    priv_key: str = field(default="", repr=False)
    auth_protocol: str = "SHA"
    priv_protocol: str = "AES"

    def auth_data(self) -> CommunityData | UsmUserData:
        """The pysnmp authentication object."""
        if self.version == "2c":
            return CommunityData(self.community, mpModel=1)
        if self.version == "3":
            try:
                auth_proto = _AUTH[self.auth_protocol.upper()]
                priv_proto = _PRIV[self.priv_protocol.upper()]
            except KeyError as exc:
                raise SnmpAuthError(
                    f"SNMPv3 user {self.user!r}: unknown protocol {exc.args[0]!r}; expected "
                    f"auth one of {sorted(_AUTH)} and priv one of {sorted(_PRIV)}"
                ) from None
            return UsmUserData(
                self.user,
                authKey=self.auth_key or None,
                privKey=self.priv_key or None,
                authProtocol=auth_proto if self.auth_key else _auth.USM_AUTH_NONE,
                privProtocol=priv_proto if self.priv_key else _auth.USM_PRIV_NONE,
            )
        raise SnmpAuthError(f"SNMP version must be '2c' or '3', got {self.version!r}")


class SnmpSession:
    """Requests to one OLT through a shared :class:`SnmpEngine`.

    Parameters
    ----------
    engine : SnmpEngine
        One per event loop, shared by every session of the loop.
    olt_id : str
        Named in every error.
    host : str
    port : int
    credentials : SnmpCredentials
    timeout_s : float
        Wait for one answer. [s]
    retries : int
        Resends before giving up. [-]
    """

    def __init__(
        self,
        engine: SnmpEngine,
        olt_id: str,
        host: str,
        port: int,
        credentials: SnmpCredentials,
        timeout_s: float = 2.0,
        retries: int = 2,
    ) -> None:
        self.engine = engine
        self.olt_id = olt_id
        self.host = host
        self.port = port
        self.credentials = credentials
        self.timeout_s = timeout_s
        self.retries = retries
        self._auth = credentials.auth_data()
        self._target: UdpTransportTarget | None = None
        self.requests = 0

    @property
    def where(self) -> str:
        """``OLT <id> (<host>:<port>, SNMPv<version>)`` for messages."""
        return f"OLT {self.olt_id} ({self.host}:{self.port}, SNMPv{self.credentials.version})"

    async def _target_(self) -> UdpTransportTarget:
        if self._target is None:
            self._target = await UdpTransportTarget.create(
                (self.host, self.port), timeout=self.timeout_s, retries=self.retries
            )
        return self._target

    def _check(self, what: str, error_indication: Any, error_status: Any, error_index: Any) -> None:
        if error_indication:
            text = str(error_indication)
            if isinstance(error_indication, errind.RequestTimedOut):
                raise SnmpTimeoutError(
                    f"{self.where}: no answer to {what} within {self.timeout_s:g} s after "
                    f"{self.retries} retries (agent down, wrong port, or wrong community / "
                    f"credentials: SNMP agents drop requests they cannot authenticate)"
                )
            if isinstance(error_indication, _AUTH_FAILURES):
                raise SnmpAuthError(
                    f"{self.where}: SNMPv3 authentication failed for user "
                    f"{self.credentials.user!r} on {what}: {text} (expected the OLT's "
                    f"{self.credentials.auth_protocol}/{self.credentials.priv_protocol} keys)"
                )
            raise SnmpError(f"{self.where}: {what} failed: {text}")
        if error_status and int(error_status) != 0:
            raise SnmpProtocolError(
                f"{self.where}: {what} answered error-status {error_status.prettyPrint()} "
                f"at varbind {int(error_index)}"
            )

    async def get(self, oids: Sequence[str]) -> dict[str, Any]:
        """GET scalars.

        Parameters
        ----------
        oids : sequence of str
            Dotted OIDs, e.g. ``1.3.6.1.2.1.1.2.0``.

        Returns
        -------
        values : dict
            OID → Python value (None for noSuchObject / noSuchInstance).
        """
        target = await self._target_()
        self.requests += 1
        err, status, index, var_binds = await get_cmd(
            self.engine,
            self._auth,
            target,
            ContextData(),
            *[ObjectType(ObjectIdentity(o)) for o in oids],
            lookupMib=False,
        )
        self._check(f"GET {', '.join(oids)}", err, status, index)
        return {oid_str(tuple(vb[0])): python_value(vb[1]) for vb in var_binds}

    async def walk_columns(
        self,
        columns: Sequence[str],
        max_repetitions: int = 25,
        rows: dict[str, list[tuple[Oid, Any]]] | None = None,
    ) -> dict[str, list[tuple[Oid, Any]]]:
        """Walk table columns together with GETBULK until each leaves its subtree.

        Parameters
        ----------
        columns : sequence of str
            Column OIDs (distinct).
        max_repetitions : int
            Rows asked per column per request. [-]
        rows : dict, optional
            Filled in place (so a caller keeps what arrived if a later request fails).

        Returns
        -------
        rows : dict
            Column OID → list of ``(index sub-ids, Python value)`` in walk order.

        Raises
        ------
        SnmpTimeoutError, SnmpAuthError, SnmpProtocolError
            Rows received before the failure stay in ``rows``.
        """
        rows = {c: [] for c in columns} if rows is None else rows
        for c in columns:
            rows.setdefault(c, [])
        prefix = {c: oid_tuple(c) for c in columns}
        last = dict(prefix)
        pending = list(columns)
        while pending:
            self.requests += 1
            answer = await self._bulk([last[c] for c in pending], max_repetitions)
            if not answer:
                raise SnmpProtocolError(f"{self.where}: empty GETBULK answer for {pending}")
            width = len(pending)
            done: set[str] = set()
            for i, (name, val, end) in enumerate(answer):
                col = pending[i % width]
                if col in done:
                    continue
                p = prefix[col]
                if end or name[: len(p)] != p:
                    done.add(col)
                    continue
                if name <= last[col]:
                    raise SnmpProtocolError(
                        f"{self.where}: OID {oid_str(name)} does not increase after "
                        f"{oid_str(last[col])} (broken agent)"
                    )
                last[col] = name
                rows[col].append((name[len(p) :], val))
            pending = [c for c in pending if c not in done]
        return rows

    async def _bulk(self, oids: list[Oid], max_repetitions: int) -> list[tuple[Oid, Any, bool]]:
        """One GETBULK: ``(oid, Python value, end of MIB view)`` in wire order."""
        target = await self._target_()
        err, status, index, var_binds = await bulk_cmd(
            self.engine,
            self._auth,
            target,
            ContextData(),
            0,
            max_repetitions,
            *[ObjectType(ObjectIdentity(o)) for o in oids],
            lookupMib=False,
        )
        self._check(f"GETBULK {oid_str(oids[0])}…", err, status, index)
        return [
            (tuple(vb[0]), python_value(vb[1]), isinstance(vb[1], rfc1905.EndOfMibView))
            for vb in var_binds
        ]
