"""Start and stop the ACS (CWMP + NBI listeners) in a running event loop or a thread."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from aiohttp import web

from acs_emulator.cwmp.nbi import nbi_app
from acs_emulator.cwmp.server import Acs, AcsConfig
from acs_emulator.cwmp.store import DeviceStore

__all__ = ["AcsService"]


class AcsService:
    """The ACS with its two listeners.

    Parameters
    ----------
    db_path : str or Path, default ":memory:"
        SQLite store.
    host : str, default "127.0.0.1"
        Bind address of both listeners.
    cwmp_port, nbi_port : int, default 0
        Ports (0 = ephemeral; the bound ports are in ``cwmp_port``/``nbi_port`` after
        :meth:`start`). GenieACS uses 7547 and 7557.
    config : AcsConfig, optional
        ACS settings.
    nbi_token : str, optional
        Bearer token required by the NBI.
    nbi_options : dict, optional
        Extra keyword arguments of :func:`acs_emulator.cwmp.nbi.nbi_app`.
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
    ) -> None:
        self.host = host
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
        return f"http://{self.host}:{self.nbi_port}"

    async def start(self) -> None:
        """Bind both listeners in the running loop."""
        for app, attr in (
            (self.acs.cwmp_app(), "cwmp_port"),
            (nbi_app(self.acs, token=self.nbi_token, **self.nbi_options), "nbi_port"),
        ):
            runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
            await runner.setup()
            site = web.TCPSite(runner, self.host, getattr(self, attr), backlog=1024)
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
