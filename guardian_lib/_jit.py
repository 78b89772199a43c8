"""Compiled kernels: the one way here to compile a NumPy loop with numba."""

from __future__ import annotations

from collections.abc import Callable

from numba import njit

__all__ = ["compiled"]


def compiled(fn: Callable) -> Callable:
    """``numba.njit`` with the machine code cached on disk (next to the module, else in
    the user's cache folder): a process then loads it in well under a second instead of
    compiling it. Where neither folder is writable numba refuses to cache; the function
    is then compiled in each process. No ``fastmath``: the kernels give bit for bit what
    the NumPy expressions they replace give."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:
        return njit(nogil=True)(fn)
