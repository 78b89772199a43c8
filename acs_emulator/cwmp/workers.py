"""Several ACS processes on one CWMP port over one shared store (``--workers N``).

One asyncio process tops out well below a 2-core machine (parsing SOAP is CPU work
and the GIL keeps it on one core), so :class:`AcsWorkers` forks ``N`` processes:

* each binds the CWMP port with ``SO_REUSEPORT`` (Linux): the kernel spreads new
  TCP connections across them by a hash of the addresses. A CWMP session is one
  TCP connection (HTTP keep-alive, as the emulated CPEs and TR-069 CPEs do), so all
  its requests reach the process that holds it. The session cookie also names that
  process (its first two hex digits): a request that arrives elsewhere with it (a
  CPE that reconnected mid-session, or CPEs sharing a connection pool) is forwarded
  to the owner over its Unix socket (:class:`~acs_emulator.cwmp.siblings.SiblingProxy`)
  in a private folder of the supervisor;
* they share the SQLite file (WAL, each with its own 50 ms group commit and a busy
  timeout) through :class:`~acs_emulator.cwmp.store.DeviceStore` ``shared=True``:
  every commit logs the ids it wrote, every process applies the others' changes at
  each new session, so a task queued through the NBI reaches the CPE whichever
  process serves its next Inform;
* process 0 also serves the NBI and the file server;
* admission control (``max_sessions``, ``max_new_sessions_per_s``) is per process:
  each gets ``1/N`` of the configured figures, so the whole ACS admits what was
  asked for (give or take the kernel's spreading);
* the supervisor (the parent, which does no CWMP work) restarts a process that dies
  (``kill -9`` included) and, on SIGTERM or SIGINT, stops them all (each flushes its
  queued writes).

The parent holds a bound, non-listening ``SO_REUSEPORT`` socket on the CWMP port so
an ephemeral port (0) stays the group's while processes come and go. Secrets of
queued tasks travel between the processes sealed under a key made by the parent at
start and inherited by ``fork``, never written anywhere.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import shutil
import signal
import socket
import ssl
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from acs_emulator.cwmp.config import AcsConfig
from guardian_lib.errors import GuardianError

__all__ = ["AcsWorkers", "WorkerStartError"]

log = logging.getLogger(__name__)


class WorkerStartError(GuardianError, RuntimeError):
    """An ACS worker process did not start (its error is in the message)."""


class AcsWorkers:
    """Supervise ``workers`` ACS processes sharing one port and one store.

    Parameters
    ----------
    workers : int
        Number of ACS processes (>= 1).
    db_path : str or Path
        SQLite store shared by the processes (a file, not ``:memory:``).
    config_factory : callable
        ``config_factory() -> AcsConfig``, called in each process (settings may hold
        callables that do not cross a fork well, e.g. open files).
    host, cwmp_port, nbi_port, nbi_host, file_port, nbi_token, ssl_context
        As :class:`~acs_emulator.cwmp.service.AcsService` (ports 0 = ephemeral).
    start_timeout_s : float, default 20
        How long a process may take to bind its listeners. [s]
    """

    def __init__(
        self,
        workers: int,
        db_path: str | Path,
        config_factory: Callable[[], AcsConfig],
        host: str = "127.0.0.1",
        cwmp_port: int = 0,
        nbi_port: int = 0,
        nbi_host: str = "127.0.0.1",
        file_port: int = 0,
        nbi_token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        start_timeout_s: float = 20.0,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers: expected at least 1, got {workers}")
        if str(db_path) == ":memory:":
            raise ValueError("db_path: several ACS processes need a store file, not :memory:")
        if not hasattr(socket, "SO_REUSEPORT"):
            raise WorkerStartError("--workers needs SO_REUSEPORT (Linux, BSD)")
        self.workers = workers
        self.db_path = Path(db_path)
        self.config_factory = config_factory
        self.host = host
        self.nbi_host = nbi_host
        self.cwmp_port = cwmp_port
        self.nbi_port = nbi_port
        self.file_port = file_port
        self.nbi_token = nbi_token
        self.ssl_context = ssl_context
        self.start_timeout_s = start_timeout_s
        self.file_url = ""
        self.restarts = 0
        self._key = os.urandom(32)
        self._rundir = tempfile.mkdtemp(prefix="acs-workers-")  # 0700: the Unix sockets
        self._ctx = mp.get_context("fork")
        self._procs: list[Any] = [None] * workers
        self._holder: socket.socket | None = None
        self._stopping = False

    # -- life cycle ------------------------------------------------------------------
    def start(self) -> AcsWorkers:
        """Reserve the port, start process 0 (CWMP + NBI + files), then the others."""
        holder = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((self.host, self.cwmp_port))
        self._holder = holder  # bound, never listening: receives no connection
        self.cwmp_port = holder.getsockname()[1]
        for index in range(self.workers):
            self._spawn(index)
        return self

    def _spawn(self, index: int) -> None:
        parent_end, child_end = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(
            target=_worker_main,
            args=(self, index, child_end),
            name=f"acs-worker-{index}",
            daemon=False,
        )
        proc.start()
        child_end.close()
        if not parent_end.poll(self.start_timeout_s):
            proc.kill()
            raise WorkerStartError(f"ACS worker {index} did not start in {self.start_timeout_s} s")
        msg = parent_end.recv()
        parent_end.close()
        if "error" in msg:
            proc.join(5)
            raise WorkerStartError(f"ACS worker {index}: {msg['error']}")
        if index == 0:
            self.nbi_port, self.file_port, self.file_url = (
                msg["nbi_port"],
                msg["file_port"],
                msg["file_url"],
            )
        self._procs[index] = proc

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers (0 for one not running)."""
        return [p.pid if p is not None and p.is_alive() else 0 for p in self._procs]

    def check(self) -> int:
        """Restart every worker that died; how many were restarted."""
        restarted = 0
        for index, proc in enumerate(self._procs):
            if self._stopping or (proc is not None and proc.is_alive()):
                continue
            code = proc.exitcode if proc is not None else None
            log.warning("ACS worker %d exited (%s); restarting it", index, code)
            if proc is not None:
                proc.join(0)
            try:
                self._spawn(index)
                restarted += 1
            except WorkerStartError:
                log.exception("ACS worker %d could not be restarted; will retry", index)
        self.restarts += restarted
        return restarted

    def serve_forever(self, poll_s: float = 0.5) -> None:
        """Supervise until SIGTERM or SIGINT, then stop every worker. [s]"""
        stop = False

        def on_signal(_signum: int, _frame: Any) -> None:
            nonlocal stop
            stop = True

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            while not stop:
                time.sleep(poll_s)
                if not stop:
                    self.check()
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
            self.stop()

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM every worker (each flushes its store) and wait for them. [s]"""
        self._stopping = True
        for proc in self._procs:
            if proc is not None and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for proc in self._procs:
            if proc is not None:
                proc.join(max(0.0, deadline - time.monotonic()))
                if proc.is_alive():
                    log.error("ACS worker %s did not stop in time; killing it", proc.pid)
                    proc.kill()
                    proc.join(2)
        if self._holder is not None:
            self._holder.close()
            self._holder = None
        shutil.rmtree(self._rundir, ignore_errors=True)

    def socket_path(self, index: int) -> str:
        """Unix socket where worker ``index`` takes forwarded CWMP requests."""
        return os.path.join(self._rundir, f"w{index:02x}.sock")


def _worker_config(pool: AcsWorkers, index: int) -> AcsConfig:
    """Process ``index``'s settings: its share of admission, the shared file URL."""
    config = pool.config_factory()
    n = pool.workers
    # Per-process admission: each gets its share (rounded up, so a small figure
    # stays > 0). Sessions are spread by the kernel, so the total is close to the ask.
    config.max_sessions = max(1, -(-config.max_sessions // n))
    if config.max_new_sessions_per_s > 0:
        config.max_new_sessions_per_s = config.max_new_sessions_per_s / n
    if index > 0 and not config.file_server_url:
        config.file_server_url = pool.file_url
    config.session_token_prefix = f"{index:02x}"
    config.cwmp_unix_socket = pool.socket_path(index)
    config.sibling_sockets = {
        f"{i:02x}": pool.socket_path(i) for i in range(pool.workers) if i != index
    }
    return config


def _worker_main(pool: AcsWorkers, index: int, ready: Connection) -> None:
    """Body of worker ``index``: serve until SIGTERM, flushing the store on the way out."""
    import asyncio

    from acs_emulator.cwmp.service import AcsService, freeze_startup_heap

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor stops us with SIGTERM
    if pool._holder is not None:
        pool._holder.close()  # the supervisor's; this process binds its own
    with contextlib.suppress(FileNotFoundError):
        os.unlink(pool.socket_path(index))  # left by a killed predecessor
    try:
        svc = AcsService(
            pool.db_path,
            pool.host,
            pool.cwmp_port,
            pool.nbi_port if index == 0 else 0,
            config=_worker_config(pool, index),
            nbi_token=pool.nbi_token,
            nbi_host=pool.nbi_host,
            file_port=pool.file_port if index == 0 else 0,
            ssl_context=pool.ssl_context,
            store_shared=True,
            secret_key=pool._key,
            cwmp_reuse_port=True,
            serve_nbi=index == 0,
        )
    except Exception as exc:  # report to the supervisor, which names the worker
        ready.send({"error": f"{type(exc).__name__}: {exc}"})
        return

    async def main() -> None:
        try:
            await svc.start()
        except Exception as exc:
            ready.send({"error": f"{type(exc).__name__}: {exc}"})
            svc.acs.store.close()
            return
        freeze_startup_heap()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        ready.send({"nbi_port": svc.nbi_port, "file_port": svc.file_port, "file_url": svc.file_url})
        ready.close()
        try:
            await stop.wait()
        finally:
            await svc.close()  # flushes the store

    asyncio.run(main())
