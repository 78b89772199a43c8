"""Hand a CWMP request to the sibling ACS process that holds its session (``--workers``).

With several ACS processes on one port the kernel picks a process per TCP connection.
A CPE keeps one connection for a whole session as a rule, but it may open another
mid-session and present its session cookie there (TR-069 §3.4.1 allows it; CPEs
sharing an HTTP connection pool, as emulated fleets do, switch connections at every
request). The cookie's first two hex digits name the process that issued it; the
request is forwarded to that process over its Unix socket and its answer relayed.
"""

from __future__ import annotations

import logging

import aiohttp
from aiohttp import web

__all__ = ["FORWARDED", "SiblingProxy"]

log = logging.getLogger(__name__)

#: Header marking a forwarded request (the receiving process never forwards it again).
FORWARDED = "Guardian-Forwarded"
#: Request headers a CWMP session needs at the owning process.
_FORWARD = ("Content-Type", "SOAPAction", "Cookie", "Authorization")
#: Answer headers relayed back to the CPE.
_RELAY = ("Content-Type", "Set-Cookie", "Retry-After", "WWW-Authenticate", "Connection")


class SiblingProxy:
    """Forwarder to sibling processes by session-token prefix.

    Parameters
    ----------
    sockets : dict of str to str
        ``{token prefix: Unix socket path}`` of every process but this one.
    timeout_s : float
        Time budget of one forwarded request. [s]
    """

    def __init__(self, sockets: dict[str, str], timeout_s: float) -> None:
        self.sockets = dict(sockets)
        self.timeout_s = timeout_s
        self._clients: dict[str, aiohttp.ClientSession] = {}
        self.forwarded = 0

    def owner(self, tokens: list[str]) -> str | None:
        """Prefix of the sibling holding one of ``tokens`` (the last cookie wins)."""
        for t in reversed(tokens):
            if t[:2] in self.sockets:
                return t[:2]
        return None

    async def forward(self, prefix: str, request: web.Request, body: bytes) -> web.Response:
        """Forward ``request`` (with its ``body``) to process ``prefix``; relay the answer.

        An unreachable sibling (it died or is restarting) is answered 503 so the CPE
        starts again with a new session.
        """
        client = self._clients.get(prefix)
        if client is None or client.closed:
            client = self._clients[prefix] = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=self.sockets[prefix], limit=64),
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                auto_decompress=False,
            )
        headers = {h: request.headers[h] for h in _FORWARD if h in request.headers}
        headers[FORWARDED] = "1"
        try:
            async with client.post(
                f"http://acs{request.raw_path}", data=body, headers=headers
            ) as r:
                data = await r.read()
                relayed = {h: r.headers[h] for h in _RELAY if h in r.headers}
                status = r.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.info("CWMP: sibling ACS process %s unreachable (%s); answering 503", prefix, exc)
            return web.Response(status=503, headers={"Retry-After": "5"})
        self.forwarded += 1
        return web.Response(status=status, body=data, headers=relayed)

    async def close(self) -> None:
        """Close the connections to the siblings."""
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
