"""SNMP agents (v2c and v3 authPriv SHA/AES) on loopback UDP ports, one per OLT.

Each :class:`OltAgent` is a pysnmp command responder (GET, GETNEXT, GETBULK, and SET for
a write community / v3 user when the spec has a ``set_fn``) whose MIB is
an :class:`~acs_emulator.olt.mib.OidTable` returned by a callable: a captured walk
(:func:`~acs_emulator.olt.mib.load_snmprec`) or a live simulated OLT
(:class:`~acs_emulator.olt.vendors.LiveOltTable`). :class:`AgentPool` runs many agents on
one event loop, in the foreground (``guardian olt serve``) or in a background thread
(tests, notebooks).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.proto import rfc1902

from acs_emulator.olt.mib import OidTable, TableMibInstrum
from guardian_lib._threaded import ThreadedServer
from guardian_lib.snmp.ber import (
    END_OF_MIB_VIEW,
    GET,
    GETBULK,
    GETNEXT,
    NO_SUCH_INSTANCE,
    RESPONSE,
    BerError,
    Message,
    decode_message,
    encode_message,
)
from guardian_lib.snmp.transport import MIN_V3_KEY_LENGTH, GuardedUdpTransport

__all__ = ["V3User", "AgentSpec", "OltAgent", "AgentPool", "answer_v2c"]

_MAX_DATAGRAM = 60_000
#: Security name of the v2c write community (the read community's is "olt-area").
_WRITE_NAME = "olt-write"
_log = logging.getLogger(__name__)

_AUTH = {"SHA": config.USM_AUTH_HMAC96_SHA, "MD5": config.USM_AUTH_HMAC96_MD5}
_PRIV = {"AES": config.USM_PRIV_CFB128_AES, "DES": config.USM_PRIV_CBC56_DES}


@dataclass(frozen=True)
class V3User:
    """An SNMPv3 USM user with authPriv (SHA / AES by default)."""

    user: str
    auth_key: str = field(repr=False)
    priv_key: str = field(repr=False)
    auth_protocol: str = "SHA"
    priv_protocol: str = "AES"

    def __post_init__(self) -> None:
        for what, key in (("auth", self.auth_key), ("priv", self.priv_key)):
            if len(key) < MIN_V3_KEY_LENGTH:
                raise ValueError(
                    f"SNMPv3 user {self.user!r}: {what} key is {len(key)} character(s); "
                    f"SNMPv3 pass-phrases need at least {MIN_V3_KEY_LENGTH} (RFC 3414)"
                )


@dataclass
class AgentSpec:
    """One agent to run.

    Attributes
    ----------
    name : str
        OLT id (also seeds the SNMP engine id).
    table_fn : callable
        Returns the :class:`OidTable` to serve; called per request batch.
    port : int
        UDP port on ``host``; 0 picks a free one (read it back from ``OltAgent.port``).
    community : str or None
        v2c community; None disables v2c.
    v3_users : list of V3User
    host : str
    max_varbinds : int
        Cap on var-binds in one GETBULK answer. [-]
    fast_v2c : bool
        Answer v2c requests with the small BER codec (``guardian_lib.snmp.ber``, ~20×
        cheaper than pysnmp); SNMPv3 and anything unusual always go through pysnmp.
    set_fn : callable, optional
        Answers SETs: ``set_fn(oid, value, check=bool) -> None | error-status name``
        (:class:`~acs_emulator.olt.snmp_set.OltSetHandler`); None: read-only agent.
    write_community : str or None
        v2c community allowed to SET (the read community is not).
    write_users : list of str
        Names of ``v3_users`` allowed to SET.
    """

    name: str
    table_fn: Callable[[], OidTable]
    port: int = 0
    community: str | None = "public"
    v3_users: list[V3User] = field(default_factory=list)
    host: str = "127.0.0.1"
    max_varbinds: int = 256
    fast_v2c: bool = True
    set_fn: Callable[..., str | None] | None = None
    write_community: str | None = None
    write_users: list[str] = field(default_factory=list)


class _BulkResponder(cmdrsp.BulkCommandResponder):
    max_varbinds = 256


def answer_v2c(msg: Message, table: OidTable, max_varbinds: int = 256) -> Message:
    """Answer a v2c GET / GETNEXT / GETBULK from ``table`` (RFC 3416 §4.2.1–4.2.3).

    Parameters
    ----------
    msg : Message
        The decoded request (community already checked).
    table : OidTable
    max_varbinds : int
        Cap on var-binds in a GETBULK answer. [-]
    """
    out: list = []
    if msg.pdu_type == GET:
        for oid, _ in msg.varbinds:
            hit = table.get(oid)
            out.append((oid, (NO_SUCH_INSTANCE, None) if hit is None else hit))
    elif msg.pdu_type == GETNEXT:
        for oid, _ in msg.varbinds:
            nxt = table.next(oid)
            out.append((oid, (END_OF_MIB_VIEW, None)) if nxt is None else nxt)
    else:  # GETBULK
        n = min(max(msg.error_status, 0), len(msg.varbinds))
        reps = max(msg.error_index, 0)
        for oid, _ in msg.varbinds[:n]:
            nxt = table.next(oid)
            out.append((oid, (END_OF_MIB_VIEW, None)) if nxt is None else nxt)
        cursor = [oid for oid, _ in msg.varbinds[n:]]
        if cursor:
            reps = min(reps, max(1, (max_varbinds - n) // len(cursor)))
        for _ in range(reps if cursor else 0):
            ended = True
            for i, oid in enumerate(cursor):
                nxt = table.next(oid)
                if nxt is None:
                    out.append((oid, (END_OF_MIB_VIEW, None)))
                else:
                    out.append(nxt)
                    cursor[i] = nxt[0]
                    ended = False
            if ended:
                break
    return Message(msg.version, msg.community, RESPONSE, msg.request_id, 0, 0, out)


class _FastPathTransport(GuardedUdpTransport):
    """Answers v2c GET / GETNEXT / GETBULK itself; hands everything else to pysnmp."""

    def __init__(self, spec: AgentSpec, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._spec = spec
        self._community = spec.community.encode() if spec.community is not None else None
        self._write = spec.write_community.encode() if spec.write_community else None
        self.fast_answers = 0

    def datagram_received(self, datagram: bytes, transportAddress: Any) -> None:  # noqa: N803
        try:
            msg = decode_message(datagram)
        except BerError:  # SNMPv3, v1 oddities, garbage: pysnmp decides
            return super().datagram_received(datagram, transportAddress)
        if msg.version != 1 or msg.pdu_type not in (GET, GETNEXT, GETBULK):
            return super().datagram_received(datagram, transportAddress)
        if self._community is None or msg.community != self._community:
            if self._write is not None and msg.community == self._write:
                return super().datagram_received(datagram, transportAddress)  # reads too
            return None  # like any agent: silently drop a wrong community
        limit = self._spec.max_varbinds
        try:
            while True:
                data = encode_message(answer_v2c(msg, self._spec.table_fn(), limit))
                if len(data) <= _MAX_DATAGRAM or limit <= 1:
                    break
                limit //= 2
        except Exception:  # a broken MIB source: no answer, as from a stalled agent
            _log.exception("agent %s: cannot answer request %s", self._spec.name, msg.request_id)
            return None
        self.fast_answers += 1
        if self.transport is not None:
            self.transport.sendto(data, transportAddress)
        return None


class OltAgent:
    """A running SNMP agent (create with :meth:`start` inside an event loop)."""

    def __init__(self, spec: AgentSpec) -> None:
        self.spec = spec
        self.engine: engine.SnmpEngine | None = None
        self.port: int = spec.port
        self._transport: Any = None

    @property
    def engine_id(self) -> bytes:
        """SNMP engine id, stable per agent name (enterprise 8072, text format)."""
        digest = hashlib.sha1(self.spec.name.encode()).hexdigest()[:16]
        return bytes.fromhex("80001f8804") + digest.encode()

    async def start(self) -> OltAgent:
        """Bind the UDP port and register the responders."""
        spec = self.spec
        snmp_engine = engine.SnmpEngine(snmpEngineID=rfc1902.OctetString(self.engine_id))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind((spec.host, spec.port))
        self.port = sock.getsockname()[1]
        transport_cls = _FastPathTransport if spec.fast_v2c else GuardedUdpTransport
        args = (spec,) if spec.fast_v2c else ()
        self._transport = transport_cls(*args).open_server_mode(sock=sock)
        config.add_transport(snmp_engine, udp.DOMAIN_NAME, self._transport)
        if spec.community is not None:
            config.add_v1_system(snmp_engine, "olt-area", spec.community)
        writers = set(spec.write_users)
        if spec.write_community is not None:
            config.add_v1_system(snmp_engine, _WRITE_NAME, spec.write_community)
            writers.add(_WRITE_NAME)
        for u in spec.v3_users:
            config.add_v3_user(
                snmp_engine,
                u.user,
                _AUTH[u.auth_protocol.upper()],
                u.auth_key,
                _PRIV[u.priv_protocol.upper()],
                u.priv_key,
            )
        snmp_context = context.SnmpContext(snmp_engine)
        snmp_context.unregister_context_name(b"")
        snmp_context.register_context_name(
            b"", TableMibInstrum(spec.table_fn, spec.set_fn, frozenset(writers))
        )
        cmdrsp.GetCommandResponder(snmp_engine, snmp_context)
        cmdrsp.NextCommandResponder(snmp_engine, snmp_context)
        bulk = _BulkResponder(snmp_engine, snmp_context)
        bulk.max_varbinds = spec.max_varbinds
        cmdrsp.SetCommandResponder(snmp_engine, snmp_context)
        self.engine = snmp_engine
        # let the endpoint come up before anyone sends to it
        await asyncio.sleep(0)
        return self

    def close(self) -> None:
        """Close the UDP port."""
        if self.engine is not None:
            self.engine.close_dispatcher()
            self.engine = None


class AgentPool(ThreadedServer):
    """Many agents on one event loop.

    Parameters
    ----------
    specs : list of AgentSpec
    """

    _thread_name = "olt-agents"
    _server_label = "SNMP agents"

    def __init__(self, specs: list[AgentSpec]) -> None:
        self.specs = specs
        self.agents: list[OltAgent] = []

    @property
    def ports(self) -> dict[str, int]:
        """Agent name → bound UDP port."""
        return {a.spec.name: a.port for a in self.agents}

    async def start(self) -> None:
        """Start every agent on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for spec in self.specs:
            self.agents.append(await OltAgent(spec).start())

    async def _shutdown(self) -> None:
        """Release the ports (end of :meth:`serve`)."""
        for a in self.agents:
            a.close()
