"""SNMP GET and multi-column GETBULK walks on pysnmp 7 (asyncio), with clear errors.

The walker advances every requested table column in the same GETBULK request (one
request carries one varbind per unfinished column), so a table of C columns and N rows
costs about ``N / max_repetitions`` round trips instead of ``C · N / max_repetitions``.

Datagrams are hostile input: :class:`GuardedUdpTransport` (used by the sessions here and
by the emulated agents) counts a datagram that pysnmp cannot process and logs one
warning line about it, at most once per :data:`WARN_EVERY_S`, instead of a traceback
per datagram.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyasn1.type import univ
from pysnmp.carrier.asyncio.dgram import udp
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
    set_cmd,
)
from pysnmp.hlapi.v3arch.asyncio import auth as _auth
from pysnmp.proto import errind, rfc1902, rfc1905
from pysnmp.smi import builder, view

from guardian_lib.snmp.errors import (
    SnmpAuthError,
    SnmpCredentialsError,
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
    "GuardedUdpTransport",
    "DatagramWarnings",
    "WARN_EVERY_S",
    "MIN_V3_KEY_LENGTH",
]

_log = logging.getLogger(__name__)
#: Shortest SNMPv3 pass-phrase (RFC 3414 §11.2). [characters]
MIN_V3_KEY_LENGTH = 8
#: At most one warning line about bad datagrams per transport per this period. [s]
WARN_EVERY_S = 10.0


class DatagramWarnings:
    """Counts bad datagrams; logs one line now and then, never a traceback.

    Attributes
    ----------
    count : int
        Bad datagrams seen. [-]
    logged : int
        Warning lines written. [-]
    """

    def __init__(self, where: str, every_s: float = WARN_EVERY_S) -> None:
        self.where = where
        self.every_s = every_s
        self.count = 0
        self.logged = 0
        self._last = -float("inf")
        self._since = 0

    def bad(self, peer: object, exc: BaseException) -> None:
        """Record one bad datagram from ``peer``."""
        self.count += 1
        self._since += 1
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self.logged += 1
            _log.warning(
                "%s: dropped %d malformed SNMP datagram(s) (last from %s: %s: %.120s)",
                self.where, self._since, peer, type(exc).__name__, exc,
            )  # fmt: skip
            self._last = now
            self._since = 0


class GuardedUdpTransport(udp.UdpAsyncioTransport):
    """pysnmp's UDP transport, with a datagram that pysnmp chokes on counted, not raised.

    pysnmp hands each datagram to the engine in a loop callback; an exception there
    (pyasn1 decoding a crafted packet) reaches asyncio's handler, which logs a full
    traceback per datagram.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bad_datagrams = DatagramWarnings(type(self).__name__)

    def datagram_received(self, datagram: bytes, transportAddress: Any) -> None:  # noqa: N803
        callback = self._callback_function
        if callback is None:
            return
        self.loop.call_soon(self._deliver, callback, transportAddress, datagram)

    def _deliver(self, callback: Any, address: Any, datagram: bytes) -> None:
        try:
            callback(self, address, datagram)
        except Exception as exc:  # hostile input: count it, one rate-limited line
            self.bad_datagrams.bad(address, exc)


class _GuardedTarget(UdpTransportTarget):
    PROTO_TRANSPORT = GuardedUdpTransport


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

    def __post_init__(self) -> None:
        if self.version != "3":
            return
        for what, key in (("auth", self.auth_key), ("priv", self.priv_key)):
            if key and len(key) < MIN_V3_KEY_LENGTH:
                raise SnmpCredentialsError(
                    f"SNMPv3 user {self.user!r}: {what} key is {len(key)} character(s); "
                    f"SNMPv3 pass-phrases need at least {MIN_V3_KEY_LENGTH} (RFC 3414)"
                )

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
            self._target = await _GuardedTarget.create(
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

    async def set(self, varbinds: Sequence[tuple[str, int]]) -> dict[str, Any]:
        """SET integer scalars in one request (e.g. ifAdminStatus, an ONU reset column).

        Parameters
        ----------
        varbinds : sequence of (str, int)
            Dotted OID and INTEGER value.

        Returns
        -------
        values : dict
            OID → value the agent answered.

        Raises
        ------
        SnmpProtocolError
            The agent refused (``notWritable``, ``wrongValue``, ``noAccess``, …); it
            names the error-status and the varbind.
        SnmpTimeoutError
            No answer: a wrong write community or v3 key is dropped silently.
        """
        target = await self._target_()
        self.requests += 1
        err, status, index, var_binds = await set_cmd(
            self.engine,
            self._auth,
            target,
            ContextData(),
            *[ObjectType(ObjectIdentity(o), rfc1902.Integer32(int(v))) for o, v in varbinds],
            lookupMib=False,
        )
        shown = ", ".join(f"{o} = {int(v)}" for o, v in varbinds)
        self._check(f"SET {shown}", err, status, index)
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
