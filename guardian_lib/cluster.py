"""Dask clients for the scale-out commands: a LocalCluster by default, a cluster by address.

``--scheduler local`` (the default) starts a :class:`distributed.LocalCluster` on this
machine (127.0.0.1 only) and stops it afterwards; ``--scheduler tcp://HOST:8786``
connects to a running ``dask scheduler`` and leaves it running. The same command and
file run on a laptop or on a cluster by changing that one address.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

__all__ = ["open_client", "check_scheduler", "optional_client"]


def check_scheduler(scheduler: str) -> str:
    """Validate a ``--scheduler`` value: ``local`` or ``tcp://HOST:PORT`` (or ``tls://``).

    Raises
    ------
    ValueError
        Anything else, with what was expected.
    """
    if scheduler == "local":
        return scheduler
    scheme, sep, rest = scheduler.partition("://")
    host, colon, port = rest.rpartition(":")
    if not sep or scheme not in ("tcp", "tls") or not colon or not host or not port.isdigit():
        raise ValueError(
            f"--scheduler {scheduler!r}: expected 'local' or a scheduler address such as "
            "tcp://HOST:8786"
        )
    return scheduler


@contextmanager
def open_client(
    scheduler: str = "local",
    n_workers: int = 2,
    processes: bool = True,
    memory_limit: str | int = "auto",
) -> Iterator:
    """A :class:`distributed.Client` on a LocalCluster or on the scheduler at an address.

    Parameters
    ----------
    scheduler : str, default "local"
        ``local`` or ``tcp://HOST:PORT``.
    n_workers : int, default 2
        Workers of a LocalCluster (one thread each: the simulator and the features are
        numpy-bound and hold the GIL between array operations). [-]
    processes : bool, default True
        LocalCluster workers as processes (``False``: threads of this process, for tests).
    memory_limit : str or int, default "auto"
        Per LocalCluster worker (Dask's syntax, e.g. ``"2GiB"``).

    Yields
    ------
    distributed.Client
    """
    from distributed import Client, LocalCluster

    check_scheduler(scheduler)
    if scheduler != "local":
        with Client(scheduler) as client:
            yield client
        return
    # Worker processes listen on TCP: 127.0.0.1 only. Thread workers talk in-process.
    where = {"host": "127.0.0.1"} if processes else {}
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address="127.0.0.1:0",
            memory_limit=memory_limit,
            **where,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def optional_client(
    scheduler: str | None, n_workers: int | None, log: Callable[[str], None] = print
):
    """The client of a command's ``--scheduler`` / ``--workers`` options, or none.

    Neither option: a null context (the command runs in this process, as always);
    ``--workers N`` alone means ``--scheduler local``. The dashboard link is logged.

    Raises
    ------
    ValueError
        A bad ``--scheduler`` value (see :func:`check_scheduler`).
    """
    if scheduler is None and n_workers is None:
        return nullcontext(None)
    scheduler = check_scheduler(scheduler or "local")

    @contextmanager
    def session() -> Iterator:
        with open_client(scheduler, n_workers=n_workers or 2) as client:
            log(f"Dask dashboard: {client.dashboard_link}")
            yield client

    return session()
