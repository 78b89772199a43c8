"""Start and stop the ACS (CWMP + NBI listeners) in a running event loop or a thread.

The two listeners bind separately: CWMP on ``host`` (where CPEs reach it), the NBI on
``nbi_host`` (loopback by default). An NBI without a bearer token is refused on any
address but loopback. Both cut clients that do not deliver a request within
``read_timeout_s`` (aiohttp's keep-alive timer also runs from connection start).
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from aiohttp import web

from acs_emulator.cwmp.nbi import nbi_app
from acs_emulator.cwmp.server import Acs, AcsConfig
from acs_emulator.cwmp.store import DeviceStore
from guardian_lib.errors import GuardianError

__all__ = ["AcsService", "NbiExposureError", "is_loopback"]


class NbiExposureError(GuardianError, ValueError):
    """An NBI without a token was asked to listen on a non-loopback address."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``127.0.0.0/8``, ``::1``, ``localhost``).

    Examples
    --------
    >>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0"), is_loopback("localhost")
    (True, False, True)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AcsService:
    """The ACS with its two listeners.

    Parameters
    ----------
    db_path : str or Path, default ":memory:"
        SQLite store.
    host : str, default "127.0.0.1"
        Bind address of the CWMP listener.
    cwmp_port, nbi_port : int, default 0
        Ports (0 = ephemeral; the bound ports are in ``cwmp_port``/``nbi_port`` after
        :meth:`start`). GenieACS uses 7547 and 7557.
    config : AcsConfig, optional
        ACS settings.
    nbi_token : str, optional
        Bearer token required by the NBI. Without one the NBI may only listen on
        loopback (:class:`NbiExposureError` otherwise).
    nbi_options : dict, optional
        Extra keyword arguments of :func:`acs_emulator.cwmp.nbi.nbi_app`.
    nbi_host : str, default "127.0.0.1"
        Bind address of the NBI listener.
    """

    def __init__(
        self,
        db_path: str | Path = ":memory:",
        host: str = "127.0.0.1",
        cwmp_port: int = 0,
        nbi_port: int = 0,
        config: AcsConfig | None = None,
        nbi_token: str | None = None,
        nbi_options: dict[str, Any] | None = None,
        nbi_host: str = "127.0.0.1",
    ) -> None:
        if not nbi_token and not is_loopback(nbi_host):
            raise NbiExposureError(
                f"NBI on {nbi_host}: a bearer token is required on any address but "
                "loopback (set --nbi-token-file or $GUARDIAN_NBI_TOKEN, or bind the NBI "
                "to 127.0.0.1 with --nbi-host)"
            )
        self.host = host
        self.nbi_host = nbi_host
        self.cwmp_port = cwmp_port
        self.nbi_port = nbi_port
        self.acs = Acs(DeviceStore(db_path), config)
        self.nbi_token = nbi_token
        self.nbi_options = nbi_options or {}
        self._runners: list[web.AppRunner] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def cwmp_url(self) -> str:
        """URL CPEs inform to."""
        return f"http://{self.host}:{self.cwmp_port}/"

    @property
    def nbi_url(self) -> str:
        """Base URL of the NBI."""
        return f"http://{self.nbi_host}:{self.nbi_port}"

    async def start(self) -> None:
        """Bind both listeners in the running loop."""
        nbi_opts = {"read_timeout_s": self.acs.config.read_timeout_s, **self.nbi_options}
        for app, host, attr in (
            (self.acs.cwmp_app(), self.host, "cwmp_port"),
            (nbi_app(self.acs, token=self.nbi_token, **nbi_opts), self.nbi_host, "nbi_port"),
        ):
            runner = web.AppRunner(
                app,
                access_log=None,
                handle_signals=False,
                shutdown_timeout=2.0,
                # Also armed at connection start: a client that has not sent a whole
                # request (headers) within this time is disconnected.
                keepalive_timeout=self.acs.config.read_timeout_s,
                # Unread body of a refused request (413, 408): drained for at most
                # this long, then the connection is closed.
                lingering_time=min(2.0, self.acs.config.read_timeout_s),
            )
            await runner.setup()
            site = web.TCPSite(runner, host, getattr(self, attr), backlog=1024)
            await site.start()
            self._runners.append(runner)
            sock = site._server.sockets[0]  # type: ignore[union-attr]
            setattr(self, attr, sock.getsockname()[1])

    async def stop(self) -> None:
        """Close listeners and the store."""
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        self.acs.store.close()

    async def serve_forever(self) -> None:
        """Start, then wait until :meth:`stop_thread` (or cancellation)."""
        await self.start()
        self._stop = asyncio.Event()
        try:
            await self._stop.wait()
        finally:
            await self.stop()

    def start_in_thread(self, timeout_s: float = 10.0) -> AcsService:
        """Run the service in a background thread with its own event loop.

        Parameters
        ----------
        timeout_s : float, default 10
            How long to wait for the listeners to be bound. [s]
        """
        ready: Future[None] = Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)

            async def main() -> None:
                try:
                    await self.start()
                except Exception as exc:  # report bind errors to the caller
                    ready.set_exception(exc)
                    return
                self._stop = asyncio.Event()
                ready.set_result(None)
                await self._stop.wait()
                await self.stop()

            loop.run_until_complete(main())
            loop.close()

        self._thread = threading.Thread(target=run, name="acs-service", daemon=True)
        self._thread.start()
        ready.result(timeout=timeout_s)
        return self

    def stop_thread(self, timeout_s: float = 10.0) -> None:
        """Stop a service started with :meth:`start_in_thread`. [s]"""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout_s)
