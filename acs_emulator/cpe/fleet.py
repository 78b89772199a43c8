"""Many CPE agents in one process: one HTTP client pool, one connection-request listener.

The listener serves ``GET /cr/<device id>``: each agent's ``ConnectionRequestURL``.
It authenticates the ACS with Digest by default (username = device id, password from
``GUARDIAN_CPE_CR_PASSWORD``), or Basic / none per device, like field CPEs. A device
that is rebooting or offline answers 503.

Credentials are bound to the device of the path (a header computed for device A is
refused on ``/cr/B``), each Digest nonce/nc is accepted once (no replay), and the
documented development password is refused unless ``allow_dev_password`` is given
(then logged as a warning). Without any configured password the listener uses this
process's random one (:func:`acs_emulator.cwmp.auth.resolve_cr_password`), which an
ACS in the same process also uses. A client that does not send a whole request
within ``read_timeout_s`` is disconnected.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from acs_emulator.cpe.agent import CpeAgent, Misbehaviour
from acs_emulator.cpe.datamodel import Flavour
from acs_emulator.cpe.state import DeviceIdentity, StateSource, StaticStateSource
from acs_emulator.cwmp.auth import Authenticator, AuthMode, AuthPolicy, resolve_cr_password

__all__ = ["CpeFleet", "client_tls_context", "run_fleet"]


def client_tls_context(ca_file: str | Path) -> ssl.SSLContext:
    """TLS client context trusting only the CA(s) in ``ca_file`` (PEM), TLS ≥ 1.2.

    Certificates and host names are verified (an emulated CPE must refuse an ACS
    it cannot authenticate, as TR-069 §3.3 asks of real ones).
    """
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


log = logging.getLogger(__name__)


class CpeFleet:
    """A set of CPE agents sharing a client pool and a connection-request listener.

    Parameters
    ----------
    identities : iterable of DeviceIdentity
        Devices to emulate.
    acs_url : str
        ACS CWMP URL.
    state : StateSource, optional
        Live values (static from ``seed`` by default).
    host : str, default "127.0.0.1"
        Bind address of the connection-request listener (and host in its URLs).
    cr_port : int, default 0
        Its port (0 = ephemeral).
    cr_auth : {"digest", "basic", "none"}, default "digest"
        How the listener authenticates the ACS.
    cr_password : str, optional
        Connection-request password; default ``$GUARDIAN_CPE_CR_PASSWORD``, else this
        process's random password.
    allow_dev_password : bool, default False
        Accept the documented development password (a warning is logged).
    read_timeout_s : float, default 15
        Time a client has to send a whole request to the listener. [s]
    acs_password : str, optional
        Password for ACS auth; default ``$GUARDIAN_ACS_CPE_PASSWORD`` (may be unset).
    agent_options : dict, optional
        Extra :class:`CpeAgent` arguments (``periodic_interval_s``,
        ``reboot_duration_s``, ``misbehaviour`` …).
    flavour : {"tr181", "tr098"}
        Data model of every agent.
    seed : int, default 0
        Seed (state source and per-agent draws).
    ca_file : str or Path, optional
        PEM file of the CA(s) that signed the ACS's certificate: an ``https://`` ACS
        (and file server) is verified against it instead of the system store. The
        host name (or IP address) in the URL must match the certificate.
    """

    def __init__(
        self,
        identities: Iterable[DeviceIdentity],
        acs_url: str,
        *,
        state: StateSource | None = None,
        host: str = "127.0.0.1",
        cr_port: int = 0,
        cr_auth: AuthMode = "digest",
        cr_password: str | None = None,
        acs_password: str | None = None,
        agent_options: dict[str, Any] | None = None,
        flavour: Flavour = "tr181",
        seed: int = 0,
        max_connections: int = 200,
        allow_dev_password: bool = False,
        read_timeout_s: float = 15.0,
        ca_file: str | Path | None = None,
    ) -> None:
        self.acs_url = acs_url
        self.tls = client_tls_context(ca_file) if ca_file is not None else None
        self.state = state or StaticStateSource(seed)
        self.host = host
        self.cr_port = cr_port
        self.max_connections = max_connections
        self.read_timeout_s = read_timeout_s
        pw = resolve_cr_password(cr_password, allow_dev_password=allow_dev_password)
        self._cr_auth = Authenticator(AuthPolicy(mode=cr_auth, passwords=lambda _u: pw))
        acs_pw = acs_password or os.environ.get("GUARDIAN_ACS_CPE_PASSWORD")
        opts = dict(agent_options or {})
        self.agents: dict[str, CpeAgent] = {}
        for i, ident in enumerate(identities):
            agent = CpeAgent(
                ident,
                acs_url,
                state=self.state,
                flavour=flavour,
                acs_password=acs_pw,
                seed=seed + i,
                **opts,
            )
            self.agents[agent.device_id] = agent
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.http: aiohttp.ClientSession | None = None
        self.stop_event = asyncio.Event()
        self.sessions_ok = 0
        self.sessions_failed = 0

    def set_misbehaviour(self, device_id: str, misbehaviour: Misbehaviour) -> None:
        """Give one agent its own misbehaviour."""
        self.agents[device_id].misbehaviour = misbehaviour

    def set_cr_auth(self, device_id: str, mode: AuthMode) -> None:
        """Per-device connection-request auth mode (field CPEs vary)."""
        self._cr_auth.policy.per_device[device_id] = mode

    async def _handle_cr(self, request: web.Request) -> web.Response:
        device_id = request.match_info["device_id"]
        agent = self.agents.get(device_id)
        if agent is None:
            return web.Response(status=404)
        if not self._cr_auth.check(
            request.headers.get("Authorization"), "GET", identity=device_id, uri=request.raw_path
        ):
            return web.Response(
                status=401, headers={"WWW-Authenticate": self._cr_auth.challenge(device_id)}
            )
        if not agent.online:
            return web.Response(status=503)
        agent.request_connection()
        return web.Response(status=200)

    async def start(self, *, run_agents: bool = True, spread_s: float = 0.0) -> None:
        """Bind the listener, open the client pool and start the agents' loops.

        Parameters
        ----------
        run_agents : bool, default True
            Start each agent's inform loop (``False``: drive sessions yourself).
        spread_s : float, default 0
            Spread the first Informs uniformly over this time. [s]
        """
        app = web.Application()
        app.router.add_get("/cr/{device_id}", self._handle_cr)
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=2.0,
            keepalive_timeout=self.read_timeout_s,  # also cuts slow request headers
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.cr_port)
        await site.start()
        self.cr_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        for did, agent in self.agents.items():
            agent.set_cr_url(f"http://{self.host}:{self.cr_port}/cr/{did}")
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self.max_connections, ssl=self.tls if self.tls is not None else True
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=60),
        )
        if run_agents:
            n = max(len(self.agents), 1)
            for i, agent in enumerate(self.agents.values()):
                self._tasks.append(
                    asyncio.create_task(
                        agent.run(
                            self.http,
                            stop=self.stop_event,
                            first_delay_s=spread_s * i / n,
                            on_session=self._count,
                        )
                    )
                )

    def _count(self, ok: bool) -> None:
        if ok:
            self.sessions_ok += 1
        else:
            self.sessions_failed += 1

    async def stop(self) -> None:
        """Stop agents, listener and client pool."""
        self.stop_event.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
            for t in self._tasks:
                t.cancel()
        self._tasks.clear()
        if self.http is not None:
            await self.http.close()
            self.http = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> CpeFleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def run_fleet(
    fleet: CpeFleet,
    *,
    duration_s: float = 0.0,
    sim: Any = None,
    speed: float = 60.0,
    spread_s: float = 0.0,
) -> dict[str, int]:
    """Run a fleet (and step a simulation in scaled real time) for ``duration_s``.

    Parameters
    ----------
    duration_s : float
        Wall-clock run time; 0 runs until cancelled. [s]
    sim : Simulation, optional
        Stepped every ``tick_s / speed`` seconds so agents see its state move.
    speed : float
        Simulated seconds per wall-clock second. [-]
    spread_s : float
        Spread of the first Informs. [s]

    Returns
    -------
    dict
        ``sessions_ok`` and ``sessions_failed``.
    """
    await fleet.start(spread_s=spread_s)
    loop = asyncio.get_running_loop()
    end = loop.time() + duration_s if duration_s > 0 else None
    try:
        while end is None or loop.time() < end:
            step_s = sim.tick_s / speed if sim is not None else 1.0
            await asyncio.sleep(step_s if end is None else min(step_s, end - loop.time()))
            if sim is not None:
                try:
                    sim.step()
                except StopIteration:
                    sim = None
    finally:
        await fleet.stop()
    return {"sessions_ok": fleet.sessions_ok, "sessions_failed": fleet.sessions_failed}
