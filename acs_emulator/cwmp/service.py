"""Start and stop the ACS (CWMP + NBI listeners) in a running event loop or a thread.

The three listeners bind separately: CWMP and the file server on ``host`` (where CPEs
reach them; GenieACS's ports 7547 and 7567), the NBI on ``nbi_host`` (loopback by
default). An NBI without a bearer token is refused on any address but loopback. All
cut clients that do not deliver a request within ``read_timeout_s`` (aiohttp's
keep-alive timer also runs from connection start).

TLS: with ``ssl_context`` (e.g. :func:`server_tls_context` from a certificate and key
in PEM files) CWMP and the file server speak HTTPS only; the NBI stays plain HTTP on
its management address.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import ssl
from pathlib import Path
from typing import Any

from aiohttp import web

from acs_emulator.cwmp.files import file_server_app
from acs_emulator.cwmp.nbi import nbi_app
from acs_emulator.cwmp.server import Acs, AcsConfig
from acs_emulator.cwmp.store import DeviceStore
from guardian_lib._threaded import ThreadedServer
from guardian_lib.errors import GuardianError

__all__ = [
    "AcsService",
    "NbiExposureError",
    "freeze_startup_heap",
    "is_loopback",
    "server_tls_context",
]


def server_tls_context(cert_file: str | Path, key_file: str | Path) -> ssl.SSLContext:
    """Server-side TLS (1.2 or later) from a PEM certificate chain and its key.

    Raises
    ------
    ssl.SSLError, OSError
        If the files cannot be read or do not match.
    """
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert_file), str(key_file))
    return ctx


def freeze_startup_heap() -> None:
    """Exempt what the process holds once started from cyclic garbage collection.

    For a process that is an ACS and nothing else (``guardian acs serve``, each of its
    workers), called once its listeners are bound: the imported modules and the
    devices loaded from the store (hundreds of thousands of objects, none of them
    garbage) are moved out of the collector's generations, so its periodic full
    collections scan only what was allocated since (sessions, new devices). Reference
    counting still frees everything as usual.

    No collection first: in a forked worker it would run the finalizers of garbage
    inherited from the supervisor, whose resources are the supervisor's (it broke the
    supervisor's shutdown). What garbage there is at start-up stays, once.
    """
    gc.freeze()


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


class AcsService(ThreadedServer):
    """The ACS with its listeners (CWMP, NBI, files).

    In a running event loop: ``await start()`` … ``await close()``, or ``await serve()``
    until :meth:`stop`. From synchronous code: :meth:`start_in_thread` /
    :meth:`stop_thread`, or ``with AcsService(...) as svc:`` (the shared
    :class:`~guardian_lib._threaded.ThreadedServer` protocol).

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
    file_port : int, default 0
        Port of the file server CPEs download from (0 = ephemeral).
    ssl_context : ssl.SSLContext, optional
        Serve CWMP and files over HTTPS with this context.
    store_shared : bool, default False
        Other ACS processes use the same store file (see
        :class:`~acs_emulator.cwmp.store.DeviceStore`); set by
        :class:`~acs_emulator.cwmp.workers.AcsWorkers`.
    secret_key : bytes, optional
        Key sealing task secrets between those processes.
    cwmp_reuse_port : bool, default False
        Bind CWMP with ``SO_REUSEPORT`` (several processes on one port; Linux spreads
        new connections across them).
    serve_nbi : bool, default True
        Also run the NBI and the file server (one process of several does).
    """

    _thread_name = "acs-service"
    _server_label = "ACS"

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
        file_port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        *,
        store_shared: bool = False,
        secret_key: bytes | None = None,
        cwmp_reuse_port: bool = False,
        serve_nbi: bool = True,
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
        self.file_port = file_port
        self.ssl_context = ssl_context
        self.acs = Acs(DeviceStore(db_path, shared=store_shared, secret_key=secret_key), config)
        self.cwmp_reuse_port = cwmp_reuse_port
        self.serve_nbi = serve_nbi
        self._own_file_url = not self.acs.config.file_server_url
        self.nbi_token = nbi_token
        self.nbi_options = nbi_options or {}
        self._runners: list[web.AppRunner] = []

    @property
    def scheme(self) -> str:
        """``https`` with TLS, else ``http``."""
        return "https" if self.ssl_context is not None else "http"

    @property
    def cwmp_url(self) -> str:
        """URL CPEs inform to."""
        return f"{self.scheme}://{self.host}:{self.cwmp_port}/"

    @property
    def file_url(self) -> str:
        """Base URL of the file server."""
        return f"{self.scheme}://{self.host}:{self.file_port}/"

    @property
    def nbi_url(self) -> str:
        """Base URL of the NBI."""
        return f"http://{self.nbi_host}:{self.nbi_port}"

    async def start(self) -> None:
        """Bind the listeners in the running loop (:meth:`close` releases them)."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        nbi_opts = {"read_timeout_s": self.acs.config.read_timeout_s, **self.nbi_options}
        apps: list[tuple[web.Application, str, str, ssl.SSLContext | None]] = [
            (self.acs.cwmp_app(), self.host, "cwmp_port", self.ssl_context)
        ]
        if self.serve_nbi:
            apps += [
                (
                    nbi_app(self.acs, token=self.nbi_token, **nbi_opts),
                    self.nbi_host,
                    "nbi_port",
                    None,
                ),
                (file_server_app(self.acs.files), self.host, "file_port", self.ssl_context),
            ]
        for app, host, attr, tls in apps:
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
            site = web.TCPSite(
                runner,
                host,
                getattr(self, attr),
                backlog=1024,
                ssl_context=tls,
                reuse_port=self.cwmp_reuse_port if attr == "cwmp_port" else None,
            )
            await site.start()
            if attr == "cwmp_port" and self.acs.config.cwmp_unix_socket:
                # Where sibling ACS processes forward the requests of our sessions.
                await web.UnixSite(runner, self.acs.config.cwmp_unix_socket).start()
            self._runners.append(runner)
            sock = site._server.sockets[0]  # type: ignore[union-attr]
            setattr(self, attr, sock.getsockname()[1])
        if self._own_file_url:
            self.acs.config.file_server_url = self.file_url

    async def close(self) -> None:
        """Close the listeners and the store (flushing its queued writes)."""
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        self.acs.store.close()

    async def _shutdown(self) -> None:
        """End of :meth:`serve` (and so of :meth:`stop_thread`): :meth:`close`."""
        await self.close()
