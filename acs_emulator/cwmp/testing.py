"""Helpers to test CWMP peers by hand: a raw CPE, an Inform builder, a running ACS.

Used by the test suite and handy in notebooks when poking at an ACS.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Iterable
from typing import Any, TypeVar

import aiohttp

from acs_emulator.cwmp import soap
from acs_emulator.cwmp.server import AcsConfig
from acs_emulator.cwmp.service import AcsService

__all__ = ["BackgroundLab", "RawCpe", "inform_xml", "running_acs", "http_client", "run"]

T = TypeVar("T")


def run(coro: Awaitable[T], timeout_s: float = 60.0) -> T:
    """Run a coroutine in a new event loop with a hard time limit. [s]"""
    return asyncio.run(asyncio.wait_for(coro, timeout_s))  # type: ignore[arg-type]


def inform_xml(
    serial: str = "SN0001",
    events: Iterable[str] = ("2 PERIODIC",),
    params: Iterable[tuple[str, str, str]] = (),
    ns: str = soap.DEFAULT_CWMP_NS,
    oui: str = "00259E",
    product_class: str = "HG8245H",
) -> bytes:
    """A complete Inform envelope (device id ``00259E-HG8245H-<serial>`` by default)."""
    ev = "".join(
        f"<EventStruct><EventCode>{e}</EventCode><CommandKey/></EventStruct>" for e in events
    )
    params = list(params)
    pl = soap.values_xml(params) if params else "<ParameterList/>"
    body = soap.rpc_xml(
        "Inform",
        raw=(
            "<DeviceId><Manufacturer>Huawei</Manufacturer>"
            f"<OUI>{oui}</OUI><ProductClass>{product_class}</ProductClass>"
            f"<SerialNumber>{serial}</SerialNumber></DeviceId><Event>{ev}</Event>"
            f"<MaxEnvelopes>1</MaxEnvelopes><RetryCount>0</RetryCount>{pl}"
        ),
    )
    return soap.envelope(body, cwmp_ns=ns, msg_id="1")


class RawCpe:
    """A CPE that posts exactly what it is given and keeps the session cookie."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url = http, url
        self.cookie: str | None = None

    async def post(
        self, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, Any]:
        """POST ``body``; returns ``(status, body, headers)``."""
        h = dict(headers or {})
        if self.cookie:
            h.setdefault("Cookie", self.cookie)
        async with self.http.post(self.url, data=body, headers=h) as r:
            data = await r.read()
            if "Set-Cookie" in r.headers:
                self.cookie = r.headers["Set-Cookie"].split(";", 1)[0]
            return r.status, data, r.headers

    async def open_session(self, inform: bytes | None = None) -> bytes:
        """Inform (default :func:`inform_xml`), then the empty POST; returns the ACS's answer.

        The answer is the first queued RPC, or ``b""`` when the ACS ends the session (204).
        """
        await self.post(inform_xml() if inform is None else inform)
        _, data, _ = await self.post(b"")
        return data


@contextlib.asynccontextmanager
async def running_acs(
    config: AcsConfig | None = None, db: str = ":memory:", **kwargs: Any
) -> AsyncIterator[AcsService]:
    """An :class:`AcsService` on ephemeral 127.0.0.1 ports for the block's duration."""
    svc = AcsService(db_path=db, config=config, **kwargs)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.close()


@contextlib.asynccontextmanager
async def http_client(limit: int = 10) -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp client without a cookie jar (cookies are handled by hand)."""
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit), cookie_jar=aiohttp.DummyCookieJar()
    ) as http:
        yield http


class BackgroundLab:
    """An ACS and a CPE fleet running in a background event loop.

    For code under test that is synchronous (``guardian_lib.acs.NbiClient``).

    Parameters
    ----------
    n : int
        Number of CPEs (identities from :func:`acs_emulator.cpe.make_identities`).
    token : str, optional
        NBI bearer token.
    seed : int
        Seed of the identities.
    agent_options : dict, optional
        Extra :class:`acs_emulator.cpe.CpeAgent` arguments.
    """

    def __init__(
        self,
        n: int = 3,
        token: str | None = None,
        seed: int = 11,
        agent_options: dict[str, Any] | None = None,
    ) -> None:
        import threading

        from acs_emulator.cpe import CpeFleet, make_identities

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.svc = AcsService(nbi_token=token)
        self.call(self.svc.start())
        opts = {"periodic_interval_s": 3600, "reboot_duration_s": 0.1}
        opts.update(agent_options or {})
        self.fleet = CpeFleet(make_identities(n, seed=seed), self.svc.cwmp_url, agent_options=opts)
        self.call(self.fleet.start())
        self.call(self._settled(n))

    async def _settled(self, n: int) -> None:
        for _ in range(750):
            if len(self.svc.acs.store.devices) == n and not self.svc.acs.sessions:
                return
            await asyncio.sleep(0.02)

    def call(self, coro: Awaitable[T], timeout_s: float = 60.0) -> T:
        """Run a coroutine in the lab's loop and wait for its result. [s]"""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)  # type: ignore[arg-type]

    def close(self) -> None:
        """Stop the fleet, the ACS and the loop."""
        self.call(self.fleet.stop())
        self.call(self.svc.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
