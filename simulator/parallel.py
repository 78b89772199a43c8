"""Independent jobs in worker processes: the runner of the backtest and of ``simulate_runs``.

Every job is seeded from its own arguments alone, so its result does not depend on the
number of workers or on the order in which the jobs finish. Workers are started with
the *spawn* method (no forked copy of the caller's threads or open files) and keep
native libraries (OpenMP in LightGBM, BLAS) to one thread each: the jobs already fill
the CPUs.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

__all__ = ["default_workers", "one_thread_per_process", "run_jobs"]


def default_workers(jobs: int) -> int:
    """Worker processes by default: one per job, at most one per CPU. [-]"""
    return max(1, min(jobs, os.cpu_count() or 1))


def one_thread_per_process() -> None:
    """Worker initializer: the jobs already fill the CPUs, so native libraries
    (OpenMP in LightGBM, BLAS) keep to one thread each instead of oversubscribing."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def run_jobs(
    fn: Callable[..., Any],
    jobs: Sequence[tuple[Hashable, tuple]],
    workers: int,
    done: Callable[[Hashable, Any], None] | None = None,
    caller: str = "run_jobs",
) -> dict[Hashable, Any]:
    """``fn(*args)`` of every ``(key, args)`` job, in ``workers`` processes.

    Parameters
    ----------
    fn : callable
        A module-level function (the workers import it by name); its arguments are
        pickled to the worker and its result back.
    jobs : sequence of (key, tuple)
        Hashable keys, unique, and the positional arguments of each call.
    workers : int
        Processes [-], at least 1; 1 runs the jobs one after the other in this process.
    done : callable, optional
        ``done(key, result)`` in this process as each job finishes.
    caller : str
        Named in the error raised when a worker process dies.

    Returns
    -------
    dict
        ``{key: result}``, in the order of ``jobs``.

    Raises
    ------
    RuntimeError
        A worker process died (for example a script without a ``__main__`` guard, which
        each spawned worker imports again).
    """
    if workers < 1:
        raise ValueError(f"{caller}: workers must be >= 1, got {workers}")
    results: dict[Hashable, Any] = {}
    if workers == 1 or len(jobs) <= 1:
        for key, args in jobs:
            results[key] = fn(*args)
            if done:
                done(key, results[key])
        return {key: results[key] for key, _ in jobs}
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx,
                             initializer=one_thread_per_process) as pool:  # fmt: skip
        futures: dict[Future, Hashable] = {pool.submit(fn, *args): key for key, args in jobs}
        try:
            for fut in as_completed(futures):
                key = futures[fut]
                results[key] = fut.result()
                if done:
                    done(key, results[key])
        except BrokenProcessPool as exc:
            pool.shutdown(wait=True, cancel_futures=True)
            raise RuntimeError(
                f"{caller}: a worker process died ({exc}). Worker processes are started "
                "with 'spawn' and import the calling script again: guard a script's code "
                'with `if __name__ == "__main__":`, or pass workers=1 to run the jobs in '
                "this process"
            ) from exc
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return {key: results[key] for key, _ in jobs}
