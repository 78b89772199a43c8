"""Run an asyncio server on a daemon thread: one start/stop protocol for every server.

The SNMP trap receiver, the emulated SNMP agents and the emulated OLT command lines are all
asyncio servers with ``serve(ready=...)`` that return when an :class:`asyncio.Event` is set.
Tests and the twin need them in the background of synchronous code, so they share this
mixin instead of each carrying its own copy of the thread dance.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Self

__all__ = ["ThreadedServer"]


class ThreadedServer:
    """Mixin: ``stop``, ``start_in_thread``, ``stop_thread`` and the context manager.

    The class that mixes it in provides ``start()``, a coroutine that binds its ports and
    sets ``self._loop`` (the running loop) and ``self._stop`` (an :class:`asyncio.Event`),
    and ``_shutdown()``, a coroutine that releases them. It names its thread with
    ``_thread_name`` and itself, for the start-up timeout message, with ``_server_label``.
    """

    _thread_name: str = "server"
    _server_label: str = "server"
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None
    _thread: threading.Thread | None = None

    start: Callable[[], Coroutine[Any, Any, Any]]
    _shutdown: Callable[[], Coroutine[Any, Any, None]]

    async def serve(self, ready: Callable[[Self], None] | None = None) -> None:
        """Start, call ``ready(self)`` once listening, serve until :meth:`stop`."""
        await self.start()
        if ready is not None:
            ready(self)
        assert self._stop is not None
        try:
            await self._stop.wait()
        finally:
            await self._shutdown()

    def stop(self) -> None:
        """Ask :meth:`serve` to return (thread-safe)."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    def start_in_thread(self, timeout_s: float = 10.0) -> Self:
        """Serve on a daemon thread; returns once every port is bound.

        Parameters
        ----------
        timeout_s : float
            Give up if the server is not up by then. [s]
        """
        started = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self.serve(ready=lambda _: started.set()))
            except BaseException as exc:  # reported to the starting thread
                errors.append(exc)
                started.set()

        self._thread = threading.Thread(target=run, name=self._thread_name, daemon=True)
        self._thread.start()
        if not started.wait(timeout_s):
            raise TimeoutError(f"{self._server_label} did not start within {timeout_s} s")
        if errors:
            raise errors[0]
        return self

    def stop_thread(self, timeout_s: float = 10.0) -> None:
        """Stop a server started with :meth:`start_in_thread` and wait for it. [s]"""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start_in_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop_thread()
