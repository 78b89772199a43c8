"""SNMPv2c sessions on a bare asyncio UDP endpoint and the BER codec of :mod:`.ber`.

Same interface and errors as :class:`~guardian_lib.snmp.transport.SnmpSession` (``get``,
``walk_columns``), at a few µs of CPU per OID instead of ~200 µs. SNMPv3 stays on pysnmp.
Answers that do not parse, are not a Response PDU, come from another request or carry
another community are ignored (and counted in ``ignored_datagrams``); the request then
times out and is resent.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Sequence
from typing import Any

from guardian_lib.snmp.ber import (
    END_OF_MIB_VIEW,
    GET,
    GETBULK,
    NO_SUCH_INSTANCE,
    NO_SUCH_OBJECT,
    RESPONSE,
    BerError,
    Message,
    decode_message,
    encode_message,
)
from guardian_lib.snmp.errors import SnmpProtocolError, SnmpTimeoutError
from guardian_lib.snmp.transport import Oid, SnmpCredentials, SnmpSession, oid_str, oid_tuple

__all__ = ["FastV2cSession"]

_NONE_TAGS = (NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW, 5)
_ERROR_STATUS = {1: "tooBig", 2: "noSuchName", 3: "badValue", 5: "genErr", 6: "noAccess"}


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, community: bytes) -> None:
        self.community = community
        self.pending: dict[int, asyncio.Future[Message]] = {}
        self.ignored = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            msg = decode_message(data)
        except BerError:
            self.ignored += 1
            return
        if msg.pdu_type != RESPONSE or msg.community != self.community:
            # Only a Response answers a request: a GET / SET / trap carrying a pending
            # request id is somebody's crafted packet, not our agent's answer.
            self.ignored += 1
            return
        fut = self.pending.get(msg.request_id)
        if fut is None or fut.done():
            self.ignored += 1
            return
        del self.pending[msg.request_id]
        fut.set_result(msg)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable etc.
        pass


def _python(tag: int, value: Any) -> Any:
    return None if tag in _NONE_TAGS else value


class FastV2cSession(SnmpSession):
    """SNMPv2c requests to one OLT without pysnmp (see module docstring).

    Parameters
    ----------
    olt_id : str
    host : str
    port : int
    credentials : SnmpCredentials
        ``version`` must be ``"2c"``.
    timeout_s : float
        Wait for one answer. [s]
    retries : int
        Resends before giving up. [-]
    """

    def __init__(
        self,
        olt_id: str,
        host: str,
        port: int,
        credentials: SnmpCredentials,
        timeout_s: float = 2.0,
        retries: int = 2,
    ) -> None:
        if credentials.version != "2c":
            raise ValueError(f"FastV2cSession speaks SNMPv2c only, got v{credentials.version}")
        self.olt_id = olt_id
        self.host = host
        self.port = port
        self.credentials = credentials
        self.timeout_s = timeout_s
        self.retries = retries
        self.requests = 0
        self._endpoint: _Endpoint | None = None
        self._ids = itertools.count(1 + secrets.randbelow(1 << 30))

    @property
    def ignored_datagrams(self) -> int:
        """Answers dropped as malformed, unexpected or with another community. [-]"""
        return self._endpoint.ignored if self._endpoint else 0

    async def _open(self) -> _Endpoint:
        if self._endpoint is None:
            loop = asyncio.get_running_loop()
            community = self.credentials.community.encode()
            _, proto = await loop.create_datagram_endpoint(
                lambda: _Endpoint(community), remote_addr=(self.host, self.port)
            )
            self._endpoint = proto
        return self._endpoint

    def close(self) -> None:
        """Close the UDP socket."""
        if self._endpoint is not None and self._endpoint.transport is not None:
            self._endpoint.transport.close()
        self._endpoint = None

    async def _request(
        self, pdu_type: int, oids: Sequence[Oid], a: int, b: int, what: str
    ) -> Message:
        ep = await self._open()
        loop = asyncio.get_running_loop()
        varbinds = [(o, (5, None)) for o in oids]
        for _ in range(self.retries + 1):
            rid = next(self._ids) & 0x7FFFFFFF
            msg = Message(1, ep.community, pdu_type, rid, a, b, varbinds)
            fut: asyncio.Future[Message] = loop.create_future()
            ep.pending[rid] = fut
            assert ep.transport is not None
            ep.transport.sendto(encode_message(msg))
            try:
                answer = await asyncio.wait_for(fut, self.timeout_s)
            except TimeoutError:
                ep.pending.pop(rid, None)
                continue
            if answer.error_status:
                name = _ERROR_STATUS.get(answer.error_status, str(answer.error_status))
                raise SnmpProtocolError(
                    f"{self.where}: {what} answered error-status {name} "
                    f"at varbind {answer.error_index}"
                )
            return answer
        junk = (
            f"; {ep.ignored} datagram(s) arrived that were not a valid answer (garbage, "
            "another community or a stale request id)"
            if ep.ignored
            else ""
        )
        raise SnmpTimeoutError(
            f"{self.where}: no answer to {what} within {self.timeout_s:g} s after "
            f"{self.retries} retries (agent down, wrong port, or wrong community / "
            f"credentials: SNMP agents drop requests they cannot authenticate){junk}"
        )

    async def get(self, oids: Sequence[str]) -> dict[str, Any]:
        """GET scalars; OID → Python value (None for noSuchObject / noSuchInstance)."""
        self.requests += 1
        answer = await self._request(
            GET, [oid_tuple(o) for o in oids], 0, 0, f"GET {', '.join(oids)}"
        )
        return {oid_str(o): _python(*v) for o, v in answer.varbinds}

    async def _bulk(self, oids: list[Oid], max_repetitions: int) -> list[tuple[Oid, Any, bool]]:
        answer = await self._request(
            GETBULK, oids, 0, max_repetitions, f"GETBULK {oid_str(oids[0])}…"
        )
        return [(o, _python(t, v), t == END_OF_MIB_VIEW) for o, (t, v) in answer.varbinds]
