"""Compiled feature kernels: the step of a running window sum (``RollingCube``) and the
forward fill of gaps (carried status).

Each gives bit for bit what the NumPy expressions it replaced gave (no ``fastmath``)."""

from __future__ import annotations

import numpy as np

from guardian_lib._jit import compiled

__all__ = ["slide_sums", "ffill_into", "ffill_take"]


@compiled
def _slide(new, k_new, old, k_old, has_old, slope, n, sx, st, stt, stx):  # pragma: no cover
    for i in range(new.shape[0]):
        # The tick entering the window: valid flag 0/1, value 0 where missing (float32
        # readings widened to float64), added as the NumPy expressions add them.
        v = new[i]
        ok = 0.0 if v != v else 1.0
        x = 0.0 if v != v else np.float64(v)
        n[i] += ok
        sx[i] += x
        if slope:
            st[i] += k_new * ok
            stt[i] += (k_new * k_new) * ok
            stx[i] += k_new * x
        if has_old:  # the tick leaving it, taken out after the new one is added
            v = old[i]
            ok = 0.0 if v != v else 1.0
            x = 0.0 if v != v else np.float64(v)
            n[i] -= ok
            sx[i] -= x
            if slope:
                st[i] -= k_old * ok
                stt[i] -= (k_old * k_old) * ok
                stx[i] -= k_old * x


def slide_sums(
    sums: tuple[np.ndarray, ...],
    new: np.ndarray,
    k_new: float,
    old: np.ndarray | None,
    k_old: float,
) -> None:
    """Move running sums one tick on, in place.

    Parameters
    ----------
    sums : tuple of ndarray of float64, shape (n_onus,)
        ``(n, Σx)`` or ``(n, Σx, Σt, Σt², Σt·x)``: valid ticks, values and, with five
        arrays, the time moments (t counted from the sums' origin). [-]
    new : ndarray, shape (n_onus,)
        Readings of the tick entering the window (NaN missing). [measure's unit]
    k_new : float
        Its time from the origin. [ticks]
    old : ndarray or None
        Readings of the tick leaving the window, if one does. [measure's unit]
    k_old : float
        Its time from the origin. [ticks]
    """
    slope = len(sums) == 5
    n, sx = sums[0], sums[1]
    st, stt, stx = sums[2:] if slope else (n, n, n)
    _slide(new, float(k_new), new if old is None else old, float(k_old), old is not None,
           slope, n, sx, st, stt, stx)  # fmt: skip


@compiled
def _ffill(x, limit, out):  # pragma: no cover
    n_ticks, n_cols = x.shape
    last = np.full(n_cols, -1, dtype=np.int64)  # tick of each column's last valid value
    for t in range(n_ticks):  # tick by tick: rows of a C-ordered window in memory order
        for j in range(n_cols):
            v = x[t, j]
            if v == v:
                last[j] = t
            elif last[j] >= 0 and t - last[j] <= limit:
                out[t, j] = x[last[j], j]


def ffill_into(x: np.ndarray, limit: int, out: np.ndarray) -> None:
    """Write into ``out`` (a copy of ``x``) each NaN's last valid value of its column
    at most ``limit`` ticks before it, in place.

    Parameters
    ----------
    x : ndarray, shape (ticks, columns)
        Values over time, NaN missing. [any unit]
    limit : int
        Longest gap filled from one value. [ticks]
    out : ndarray
        ``x.copy()``; its NaN cells within ``limit`` of a valid value are filled.
    """
    _ffill(x, limit, out)


@compiled
def _ffill_take(x, cols, limit, out, present):  # pragma: no cover
    n_ticks = x.shape[0]
    n_cols = cols.shape[0]
    keep_present = present.shape[0] > 0
    # Per column: the tick of its last valid value (far back before any) and the value.
    last = np.full(n_cols, -(limit + 1), dtype=np.int64)
    carried = np.empty(n_cols, dtype=x.dtype)
    for t in range(n_ticks):  # tick by tick: rows of a C-ordered window in memory order
        for j in range(n_cols):
            v = x[t, cols[j]]
            valid = v == v
            # Without a branch per value: a vector loop over the columns.
            last[j] = t if valid else last[j]
            carried[j] = v if valid else carried[j]
            out[t, j] = v if valid or t - last[j] > limit else carried[j]
            if keep_present:
                present[t, j] = valid


def ffill_take(
    x: np.ndarray, cols: np.ndarray, limit: int, present: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """``ffill(x[:, cols], limit)`` in one pass over ``x``'s columns ``cols`` (the same
    values, without taking the columns, copying and scanning them first: a round of the
    rolling window fills the columns of the ONUs that reported offline, up to half the
    fleet after an outage).

    Parameters
    ----------
    x : ndarray, shape (ticks, columns)
        Values over time, NaN missing. [any unit]
    cols : ndarray of int
        Columns to fill. [-]
    limit : int
        Longest gap filled from one value. [ticks]
    present : bool, default False
        Also return ``~np.isnan(x[:, cols])``.

    Returns
    -------
    filled : ndarray, shape (ticks, len(cols))
        Of ``x``'s dtype.
    present : ndarray of bool or None
    """
    cols = np.asarray(cols, dtype=np.int64)
    out = np.empty((x.shape[0], len(cols)), dtype=x.dtype)
    seen = np.empty(out.shape if present else (0, 0), dtype=np.bool_)
    _ffill_take(x, cols, limit, out, seen)
    return out, (seen if present else None)
