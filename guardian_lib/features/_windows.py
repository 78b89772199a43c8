"""Causal window statistics over (time, ONU) matrices and event lists.

Every function returns values *at* the requested rows (tick indices) using data at
those ticks and before only (point-in-time). Matrices have shape ``(n_ticks, n_onus)``
with NaN for "no reading". When few rows are requested the windows are summed
directly; otherwise through cumulative sums — the same arithmetic either way.

Online scoring asks for the newest tick only, again and again: a caller that keeps
sums over the newest ticks up to date (:class:`~guardian_lib.features.RollingCube`)
passes them as ``running`` to :func:`window_sum`, :func:`window_mean` and
:func:`window_slope`, which then cost O(n_onus) instead of O(n_onus × window).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from guardian_lib.features._kernels import ffill_into

__all__ = [
    "RunningSums",
    "window_sum",
    "window_mean",
    "window_min",
    "window_slope",
    "ffill",
    "ffill_at",
    "last_valid_at",
    "last_event_at",
    "run_length",
    "run_length_at",
    "event_counts",
]


class RunningSums(Protocol):
    """Sums over the newest ticks of one measure, kept up to date as ticks arrive.

    Both methods describe the window of ``w`` ticks ending at the newest tick of the
    matrix they were made for (fewer ticks when fewer are held), with time ``t``
    counted in ticks from the window's first tick. They return None when they cannot
    answer (e.g. ticks arrived since), and the caller then sums the matrix itself.
    """

    def sums(self, w: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(Σx, n)`` over the valid values, each shape (n_onus,)."""

    def slope_sums(self, w: int) -> tuple[np.ndarray, ...] | None:
        """``(n, Σt, Σx, Σt², Σt·x)`` over the valid values, each shape (n_onus,)."""


def _newest_only(x: np.ndarray, rows: np.ndarray, running: RunningSums | None) -> bool:
    """Whether ``running`` can answer: it exists and only the newest tick is asked for."""
    return running is not None and len(rows) == 1 and int(rows[0]) == x.shape[0] - 1


def _cumsum0(x: np.ndarray) -> np.ndarray:
    out = np.zeros((x.shape[0] + 1, *x.shape[1:]), dtype=np.float64)
    np.cumsum(x, axis=0, out=out[1:])
    return out


def _direct(n_rows: int, w: int, n_ticks: int) -> bool:
    """Sum windows directly when that touches fewer ticks than one cumulative sum."""
    return n_rows * min(w, n_ticks) <= n_ticks


def window_sum(
    x: np.ndarray, w: int, rows: np.ndarray, running: RunningSums | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Sum and count of valid values over the ``w`` ticks ending at each row.

    Parameters
    ----------
    x : ndarray, shape (n_ticks, n_onus)
        Values; NaN is "missing" and does not count.
    w : int
        Window length. [ticks]
    rows : ndarray of int
        Tick indices to evaluate at.
    running : RunningSums, optional
        Sums kept for ``x``; used when ``rows`` is the newest tick only.

    Returns
    -------
    total, count : ndarray, shape (len(rows), n_onus)
    """
    rows = np.asarray(rows)
    if _newest_only(x, rows, running) and (got := running.sums(w)) is not None:
        return got[0][None, :], got[1][None, :]
    if _direct(len(rows), w, x.shape[0]):
        total = np.empty((len(rows), x.shape[1]))
        count = np.empty((len(rows), x.shape[1]))
        for i, r in enumerate(rows.tolist()):
            block = x[max(r - w + 1, 0) : r + 1]
            miss = np.isnan(block)
            if block.flags.c_contiguous and not miss.any():
                # Nothing to zero out: the same sum, without the masked copy.
                total[i] = block.sum(axis=0, dtype=np.float64)
                count[i] = block.shape[0]
                continue
            total[i] = np.where(miss, 0.0, block).sum(axis=0, dtype=np.float64)
            count[i] = block.shape[0] - miss.sum(axis=0)
        return total, count
    valid = ~np.isnan(x)
    filled = np.where(valid, x, 0.0)
    cs = _cumsum0(filled)
    cc = _cumsum0(valid.astype(np.float64))
    lo = np.maximum(rows - w + 1, 0)
    return cs[rows + 1] - cs[lo], cc[rows + 1] - cc[lo]


def window_mean(
    x: np.ndarray, w: int, rows: np.ndarray, running: RunningSums | None = None
) -> np.ndarray:
    """Mean of valid values over the last ``w`` ticks (NaN when none).

    ``running`` as in :func:`window_sum`.
    """
    total, count = window_sum(x, w, rows, running)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def window_min(x: np.ndarray, w: int, rows: np.ndarray) -> np.ndarray:
    """Minimum of valid values over the last ``w`` ticks (NaN when none)."""
    rows = np.asarray(rows)
    out = np.full((len(rows), x.shape[1]), np.nan)
    if len(rows) == 0:
        return out
    # Only the ticks some window covers (online: the last w, not the whole matrix).
    lo = max(int(rows.min()) - w + 1, 0)
    span = x[lo : int(rows.max()) + 1]
    filled = np.where(np.isnan(span), np.inf, span)
    for i, r in enumerate(rows.tolist()):
        m = filled[max(r - w + 1, 0) - lo : r + 1 - lo].min(axis=0)
        out[i] = np.where(np.isinf(m), np.nan, m)
    return out


def _slope(n, st, sx, stt, stx, den_min: float) -> np.ndarray:
    """Least-squares slope from the window sums (NaN below 3 points or for no spread)."""
    den = n * stt - st**2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n >= 3) & (den > den_min), (n * stx - st * sx) / den, np.nan)


def window_slope(
    x: np.ndarray, w: int, rows: np.ndarray, running: RunningSums | None = None
) -> np.ndarray:
    """Least-squares slope of the valid values over the last ``w`` ticks. [unit/tick]

    Uses time measured from each window's start so that the result does not depend on
    where the matrix begins (incremental and full computations agree). ``running`` as
    in :func:`window_sum`.
    """
    rows = np.asarray(rows)
    if _newest_only(x, rows, running) and (got := running.slope_sums(w)) is not None:
        return _slope(*got, den_min=0.0)[None, :]
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
            sx = xb.sum(axis=0, dtype=np.float64)  # float32 readings: sum in float64
            stt = (t * t * v).sum(axis=0)
            stx = (t * xb).sum(axis=0)
            out[i] = _slope(n, st, sx, stt, stx, den_min=0.0)
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
    return _slope(n, st, sx, stt, stx, den_min=1e-9)


def ffill(x: np.ndarray, limit: int) -> np.ndarray:
    """Carry the last valid value forward along time for at most ``limit`` ticks."""
    out = x.copy()
    miss = np.isnan(x)
    if limit < 1 or not miss.any():
        return out
    if limit == 1:
        np.copyto(out[1:], x[:-1], where=miss[1:])
        return out
    # Each gap (missing ticks in a row, per ONU) takes the value just before it: one
    # compiled pass per column (values are copied, so the result is the same as any
    # vectorised fill's).
    ffill_into(x, limit, out)
    return out


def ffill_at(x: np.ndarray, limit: int, rows: np.ndarray) -> np.ndarray:
    """``ffill(x, limit)[rows]`` without filling the whole matrix.

    Looks back at most ``limit`` ticks from each row for the last valid value.
    """
    rows = np.asarray(rows)
    out = x[rows].copy()
    if len(rows) == 1:
        _fill_back(x, int(rows[0]), limit, out[0])
        return out
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


def _fill_back(x: np.ndarray, row: int, limit: int, out: np.ndarray) -> None:
    """Fill the NaN cells of ``out`` (row ``row`` of ``x``, a copy) with each column's
    last valid value at most ``limit`` ticks before ``row``, in place.

    One row (online scoring): only the columns missing at the row are read, each as one
    block of its last ``limit`` ticks, newest first.
    """
    (cols,) = np.nonzero(np.isnan(out))
    lo = max(row - limit, 0)
    if len(cols) == 0 or lo == row:
        return
    back = x[lo:row, cols][::-1]  # newest first
    valid = ~np.isnan(back)
    has = valid.any(axis=0)
    first = valid.argmax(axis=0)
    out[cols[has]] = back[first[has], np.flatnonzero(has)]


def _last_at_or_before(
    group: np.ndarray, tick: np.ndarray, q_group: np.ndarray, q_tick: np.ndarray, limit: int
) -> np.ndarray:
    """Index into ``(group, tick)`` (sorted by group, then tick) of the last entry of each
    query's group at or before its tick and at most ``limit`` ticks back; −1 when none."""
    if len(group) == 0:
        return np.full(len(q_group), -1, dtype=np.int64)
    base = int(min(tick.min(), q_tick.min()))
    span = int(max(tick.max(), q_tick.max())) - base + 1
    keys = group.astype(np.int64) * span + (tick.astype(np.int64) - base)
    idx = np.searchsorted(keys, q_group.astype(np.int64) * span + (q_tick - base), "right") - 1
    ok = idx >= 0
    safe = np.maximum(idx, 0)
    ok &= (group[safe] == q_group) & (tick[safe] >= q_tick - limit)
    return np.where(ok, idx, -1)


def last_valid_at(x: np.ndarray, rows: np.ndarray, limit: int) -> np.ndarray:
    """``ffill(x, limit)[rows]``: the last valid value at or before each row, ≤ ``limit`` back.

    Only the (row, ONU) cells that are missing look back, and only through the columns
    they are in, so a long ``limit`` (a week) stays cheap for one row of a large fleet:
    it carries the last reading an ONU sent before it went dark.

    Parameters
    ----------
    x : ndarray, shape (n_ticks, n_onus)
        Values with NaN where nothing was reported.
    rows : ndarray of int
        Tick indices to answer at.
    limit : int
        Oldest tick looked at, in ticks before the row. [ticks]

    Returns
    -------
    ndarray, shape (len(rows), n_onus)
        NaN where no valid value lies within ``limit`` ticks.
    """
    rows = np.asarray(rows, dtype=np.int64)
    out = np.array(x[rows], dtype=float)
    if len(rows) == 1:
        _fill_back(x, int(rows[0]), limit, out[0])
        return out
    r_i, col = np.nonzero(np.isnan(out))
    if len(r_i) == 0:
        return out
    lo, hi = max(int(rows.min()) - limit, 0), int(rows.max()) + 1
    cols, pos = np.unique(col, return_inverse=True)
    c_idx, t_idx = np.nonzero(~np.isnan(x[lo:hi, cols].T))  # by column, then tick
    found = _last_at_or_before(c_idx, t_idx + lo, pos, rows[r_i], limit)
    hit = found >= 0
    out[r_i[hit], col[hit]] = x[t_idx[found[hit]] + lo, col[hit]]
    return out


def last_event_at(
    ev_onu: np.ndarray,
    ev_tick: np.ndarray,
    ev_value: np.ndarray,
    n_onus: int,
    rows: np.ndarray,
    limit: int,
) -> np.ndarray:
    """Value of each ONU's last event at or before each row, at most ``limit`` ticks back.

    Among events at the same tick the one with the largest value wins.

    Returns
    -------
    ndarray, shape (len(rows), n_onus)
        NaN where the ONU had no event in the window.
    """
    rows = np.asarray(rows, dtype=np.int64)
    out = np.full((len(rows), n_onus), np.nan)
    if len(ev_onu) == 0 or len(rows) == 0:
        return out
    if len(rows) == 1:
        # One row (online scoring): the events of its window only, sorted the same way;
        # each ONU's last one is the latest tick and, within it, the largest value.
        r = int(rows[0])
        ev_tick = np.asarray(ev_tick, dtype=np.int64)
        inside = (ev_tick <= r) & (ev_tick >= r - limit)
        onu, tick = np.asarray(ev_onu, dtype=np.int64)[inside], ev_tick[inside]
        value = np.asarray(ev_value, dtype=float)[inside]
        order = np.lexsort((value, tick, onu))
        onu, value = onu[order], value[order]
        last = np.ones(len(onu), dtype=bool)
        last[:-1] = onu[1:] != onu[:-1]
        out[0, onu[last]] = value[last]
        return out
    order = np.lexsort((ev_value, ev_tick, ev_onu))
    onu, tick, value = ev_onu[order], ev_tick[order], np.asarray(ev_value, dtype=float)[order]
    q_onu = np.tile(np.arange(n_onus, dtype=np.int64), len(rows))
    q_tick = np.repeat(rows, n_onus)
    found = _last_at_or_before(onu.astype(np.int64), tick.astype(np.int64), q_onu, q_tick, limit)
    flat = out.reshape(-1)
    flat[found >= 0] = value[found[found >= 0]]
    return out


#: Most rows for which :func:`event_counts` counts each row's events directly. [-]
_COUNT_DIRECT_ROWS = 4
#: Most rows for which :func:`run_length_at` reads each running column as one block
#: (a block per row costs O(longest × columns); many rows step back tick by tick). [-]
_RUN_BLOCK_ROWS = 4


def run_length(flag: np.ndarray) -> np.ndarray:
    """How many consecutive ticks ``flag`` has been true, ending at each tick. [ticks]"""
    out = np.zeros(flag.shape, dtype=np.int32)
    run = np.zeros(flag.shape[1], dtype=np.int32)
    for t in range(flag.shape[0]):
        run = np.where(flag[t], run + 1, 0)
        out[t] = run
    return out


def run_length_at(flag: np.ndarray, rows: np.ndarray, cap: int | None = None) -> np.ndarray:
    """``run_length(flag)[rows]``, looking back from the rows only. [ticks]

    With ``cap``, runs are followed back at most ``cap`` ticks, so the result is
    ``np.minimum(run_length(flag)[rows], cap)`` wherever a run is that long.

    Parameters
    ----------
    flag : ndarray of bool, shape (n_ticks, n_onus)
    rows : ndarray of int
        Tick indices to evaluate at.
    cap : int, optional
        Longest run followed (at least 1). [ticks]

    Returns
    -------
    ndarray of int32, shape (len(rows), n_onus)
    """
    rows = np.asarray(rows, dtype=np.int64)
    out = flag[rows].astype(np.int32)
    longest = int(rows.max(initial=0)) + 1 if cap is None else cap
    if len(rows) <= _RUN_BLOCK_ROWS:
        # Online scoring asks for one row: read each running column's last ``longest``
        # ticks as one block, newest first; the run is the position of its first False
        # (one pass, not one fancy-indexed step per tick back for an ONU down all day).
        for k, r in enumerate(rows.tolist()):
            (cols,) = np.nonzero(out[k])
            if len(cols) == 0:
                continue
            seg = flag[max(r - longest + 1, 0) : r + 1, cols][::-1]
            ended = seg == 0  # works for bool, int and float flags alike
            out[k, cols] = np.where(ended.any(axis=0), ended.argmax(axis=0), len(seg))
        return out
    # (row, ONU) pairs whose run is still going at this distance back: few in a
    # healthy fleet, so the loop ends after a few ticks.
    i, j = np.nonzero(out)
    for back in range(1, longest):
        src = rows[i] - back
        go = src >= 0
        go[go] = flag[src[go], j[go]]
        i, j = i[go], j[go]
        if len(i) == 0:
            break
        out[i, j] += 1
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
    if len(rows) <= _COUNT_DIRECT_ROWS:
        # Online scoring (one row): count each row's events directly (O(events + ONUs)
        # per row instead of two searches per ONU).
        onu, tick = np.asarray(ev_onu, dtype=np.int64), np.asarray(ev_tick, dtype=np.int64)
        out = np.empty((len(rows), n_onus))
        for i, r in enumerate(rows.tolist()):
            inside = (tick > r - w) & (tick <= r)
            out[i] = np.bincount(onu[inside], minlength=n_onus)
        return out
    span = int(max(rows.max(initial=0), ev_tick.max()) + w + 2)
    keys = np.sort(ev_onu.astype(np.int64) * span + ev_tick.astype(np.int64))
    onus = np.arange(n_onus, dtype=np.int64)[None, :] * span
    hi = onus + rows[:, None]
    lo = hi - w
    return (np.searchsorted(keys, hi, "right") - np.searchsorted(keys, lo, "right")).astype(float)
