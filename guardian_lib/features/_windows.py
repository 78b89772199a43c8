"""Causal window statistics over (time, ONU) matrices and event lists.

Every function returns values *at* the requested rows (tick indices) using data at
those ticks and before only (point-in-time). Matrices have shape ``(n_ticks, n_onus)``
with NaN for "no reading". When few rows are requested the windows are summed
directly; otherwise through cumulative sums — the same arithmetic either way.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "window_sum",
    "window_mean",
    "window_min",
    "window_slope",
    "ffill",
    "ffill_at",
    "run_length",
    "event_counts",
]


def _cumsum0(x: np.ndarray) -> np.ndarray:
    out = np.zeros((x.shape[0] + 1, *x.shape[1:]), dtype=np.float64)
    np.cumsum(x, axis=0, out=out[1:])
    return out


def _direct(n_rows: int, w: int, n_ticks: int) -> bool:
    """Sum windows directly when that touches fewer ticks than one cumulative sum."""
    return n_rows * min(w, n_ticks) <= n_ticks


def window_sum(x: np.ndarray, w: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum and count of valid values over the ``w`` ticks ending at each row.

    Parameters
    ----------
    x : ndarray, shape (n_ticks, n_onus)
        Values; NaN is "missing" and does not count.
    w : int
        Window length. [ticks]
    rows : ndarray of int
        Tick indices to evaluate at.

    Returns
    -------
    total, count : ndarray, shape (len(rows), n_onus)
    """
    rows = np.asarray(rows)
    if _direct(len(rows), w, x.shape[0]):
        total = np.empty((len(rows), x.shape[1]))
        count = np.empty((len(rows), x.shape[1]))
        for i, r in enumerate(rows.tolist()):
            block = x[max(r - w + 1, 0) : r + 1]
            valid = ~np.isnan(block)
            total[i] = np.where(valid, block, 0.0).sum(axis=0, dtype=np.float64)
            count[i] = valid.sum(axis=0)
        return total, count
    valid = ~np.isnan(x)
    filled = np.where(valid, x, 0.0)
    cs = _cumsum0(filled)
    cc = _cumsum0(valid.astype(np.float64))
    lo = np.maximum(rows - w + 1, 0)
    return cs[rows + 1] - cs[lo], cc[rows + 1] - cc[lo]


def window_mean(x: np.ndarray, w: int, rows: np.ndarray) -> np.ndarray:
    """Mean of valid values over the last ``w`` ticks (NaN when none)."""
    total, count = window_sum(x, w, rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def window_min(x: np.ndarray, w: int, rows: np.ndarray) -> np.ndarray:
    """Minimum of valid values over the last ``w`` ticks (NaN when none)."""
    out = np.full((len(rows), x.shape[1]), np.nan)
    filled = np.where(np.isnan(x), np.inf, x)
    for i, r in enumerate(np.asarray(rows).tolist()):
        m = filled[max(r - w + 1, 0) : r + 1].min(axis=0)
        out[i] = np.where(np.isinf(m), np.nan, m)
    return out


def window_slope(x: np.ndarray, w: int, rows: np.ndarray) -> np.ndarray:
    """Least-squares slope of the valid values over the last ``w`` ticks. [unit/tick]

    Uses time measured from each window's start so that the result does not depend on
    where the matrix begins (incremental and full computations agree).
    """
    rows = np.asarray(rows)
    out = np.full((len(rows), x.shape[1]), np.nan)
    if _direct(len(rows), w, x.shape[0]):
        for i, r in enumerate(rows.tolist()):
            lo = max(r - w + 1, 0)
            block = x[lo : r + 1]
            v = ~np.isnan(block)
            xb = np.where(v, block, 0.0)
            t = np.arange(r + 1 - lo, dtype=np.float64)[:, None]
            n = v.sum(axis=0)
            st = (t * v).sum(axis=0)
            sx = xb.sum(axis=0)
            stt = (t * t * v).sum(axis=0)
            stx = (t * xb).sum(axis=0)
            den = n * stt - st**2
            with np.errstate(invalid="ignore", divide="ignore"):
                out[i] = np.where((n >= 3) & (den > 0), (n * stx - st * sx) / den, np.nan)
        return out
    valid = ~np.isnan(x)
    filled = np.where(valid, x, 0.0)
    tau = np.arange(x.shape[0], dtype=np.float64)[:, None]
    vf = valid.astype(np.float64)
    cn, cx = _cumsum0(vf), _cumsum0(filled)
    ct, ctx = _cumsum0(tau * vf), _cumsum0(tau * filled)
    ctt = _cumsum0(tau * tau * vf)
    lo = np.maximum(rows - w + 1, 0)
    n = cn[rows + 1] - cn[lo]
    sx = cx[rows + 1] - cx[lo]
    # Shift time to the window start: t' = t - lo.
    lo_c = lo[:, None].astype(np.float64)
    st = ct[rows + 1] - ct[lo] - lo_c * n
    stx = ctx[rows + 1] - ctx[lo] - lo_c * sx
    stt_raw = ctt[rows + 1] - ctt[lo]
    st_raw = ct[rows + 1] - ct[lo]
    stt = stt_raw - 2 * lo_c * st_raw + lo_c**2 * n
    den = n * stt - st**2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n >= 3) & (den > 1e-9), (n * stx - st * sx) / den, np.nan)


def ffill(x: np.ndarray, limit: int) -> np.ndarray:
    """Carry the last valid value forward along time for at most ``limit`` ticks."""
    out = x.copy()
    age = np.zeros(x.shape[1], dtype=np.int64)
    last = np.full(x.shape[1], np.nan)
    for t in range(x.shape[0]):
        row = out[t]
        miss = np.isnan(row)
        age = np.where(miss, age + 1, 0)
        last = np.where(miss, last, row)
        out[t] = np.where(miss & (age <= limit), last, row)
    return out


def ffill_at(x: np.ndarray, limit: int, rows: np.ndarray) -> np.ndarray:
    """``ffill(x, limit)[rows]`` without filling the whole matrix.

    Looks back at most ``limit`` ticks from each row for the last valid value.
    """
    rows = np.asarray(rows)
    out = x[rows].copy()
    for back in range(1, limit + 1):
        miss = np.isnan(out)
        if not miss.any():
            break
        src = rows - back
        ok = src >= 0
        if not ok.any():
            break
        prev = np.full_like(out, np.nan)
        prev[ok] = x[src[ok]]
        out = np.where(miss, prev, out)
    return out


def run_length(flag: np.ndarray) -> np.ndarray:
    """How many consecutive ticks ``flag`` has been true, ending at each tick. [ticks]"""
    out = np.zeros(flag.shape, dtype=np.int32)
    run = np.zeros(flag.shape[1], dtype=np.int32)
    for t in range(flag.shape[0]):
        run = np.where(flag[t], run + 1, 0)
        out[t] = run
    return out


def event_counts(
    ev_onu: np.ndarray, ev_tick: np.ndarray, n_onus: int, rows: np.ndarray, w: int
) -> np.ndarray:
    """Events per ONU in the ``w`` ticks ending at each row (inclusive).

    Parameters
    ----------
    ev_onu, ev_tick : ndarray of int
        ONU index and tick index of each event (an event at tick k is known at tick k).
    n_onus : int
    rows : ndarray of int
        Tick indices to evaluate at.
    w : int
        Window. [ticks]

    Returns
    -------
    counts : ndarray, shape (len(rows), n_onus)
    """
    rows = np.asarray(rows, dtype=np.int64)
    if len(ev_onu) == 0:
        return np.zeros((len(rows), n_onus))
    span = int(max(rows.max(initial=0), ev_tick.max()) + w + 2)
    keys = np.sort(ev_onu.astype(np.int64) * span + ev_tick.astype(np.int64))
    onus = np.arange(n_onus, dtype=np.int64)[None, :] * span
    hi = onus + rows[:, None]
    lo = hi - w
    return (np.searchsorted(keys, hi, "right") - np.searchsorted(keys, lo, "right")).astype(float)
