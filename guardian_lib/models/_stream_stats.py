"""Statistics of one stream used by :class:`~guardian_lib.models.temporal.TemporalAnomalyScorer`.

:func:`seasonal_period` finds a stream's fundamental period from its autocorrelation;
:func:`tail_surprise` turns a member's scores into calibrated surprises against its own
reference. Both are pure functions of numpy arrays.
"""

from __future__ import annotations

import numpy as np

__all__ = ["seasonal_period", "tail_surprise"]


def seasonal_period(values: np.ndarray, max_period: int, min_period: int = 2) -> int:
    """The seasonal period of a series from its autocorrelation, or 0 for none. [rows]

    The period is the lag of the highest autocorrelation peak after the autocorrelation
    first falls below zero (a smooth series is similar to itself at small lags without
    being seasonal), in [min_period, max_period], or the shortest peak within 10 % of it
    (multiples of the period are peaks too); 0 when the highest peak is below 0.3, the
    autocorrelation never falls below zero, or the series is shorter than two periods.
    A straight-line trend is removed first. NaN values are left out.
    """
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    top = min(int(max_period), len(x) // 2)
    if top < min_period or len(x) < 8 or np.std(x) == 0:
        return 0
    t = np.arange(len(x))
    x = x - np.polyval(np.polyfit(t, x, 1), t)
    x = (x - x.mean()) / (x.std() + 1e-12)
    acf = np.array([np.mean(x[:-lag] * x[lag:]) for lag in range(1, top + 1)])
    below = np.flatnonzero(acf < 0)
    if not below.size:
        return 0
    lags = np.arange(1, top + 1)
    ok = (lags > below[0] + 1) & (lags >= min_period)
    if not ok.any():
        return 0
    best = int(np.argmax(np.where(ok, acf, -np.inf)))
    if acf[best] < 0.3:
        return 0
    # Every multiple of the period is a peak as well, some a hair higher by chance: the
    # shortest peak within 10 % of the highest is the period.
    inner = np.r_[-np.inf, acf, -np.inf]
    peak = ok & (acf >= inner[:-2]) & (acf >= inner[2:]) & (acf >= 0.9 * acf[best])
    return int(lags[np.flatnonzero(peak)[0]]) if peak.any() else int(lags[best])


#: Reference values a member needs before its scores are calibrated. [-]
_MIN_REFERENCE = 10
#: Most reference values the exponential tail of a member's distribution is fitted to. [-]
_TAIL_POINTS = 10


def tail_surprise(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``-log10`` of each value's upper tail probability among its reference. [-]

    The tail probability is empirical, ``(#{reference ≥ v} + ½) / (n + 1)``, except among
    the few largest reference values, where an exponential tail fitted to them (a
    generalised Pareto tail of shape 0, as in peaks-over-threshold) carries on: a value
    beyond everything seen still ranks above a smaller one, where a plain empirical CDF
    would give both 1.

    Parameters
    ----------
    reference : ndarray, shape (n_members, n_reference, n_columns)
        Past values of each member and column; NaN for none. [member units]
    values : ndarray, shape (n_members, n_columns)
        Values to judge; NaN gives NaN. [member units]

    Returns
    -------
    ndarray, shape (n_members, n_columns)
        Surprise in decades (2.0: one in a hundred); NaN where the value is NaN or the
        reference holds fewer than 10 values. [-]
    """
    ok = ~np.isnan(reference)
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore"):
        ge = (reference >= values[:, None, :]).sum(axis=1)
    p = (ge + 0.5) / (n + 1.0)
    usable = (n >= _MIN_REFERENCE) & ~np.isnan(values)
    tail = np.minimum(_TAIL_POINTS, n // 5)
    for m, j in zip(*np.nonzero(usable & (ge < tail)), strict=True):
        ref = reference[m, ok[m, :, j], j].astype(float)
        t = int(tail[m, j])
        top = np.partition(ref, len(ref) - t - 1)[len(ref) - t - 1 :]
        u = top[0]
        beta = (top[1:].sum() - t * u) / t
        excess = values[m, j] - u
        p[m, j] = t / (n[m, j] + 1.0) * (np.exp(-excess / beta) if beta > 0 else 0.5 / t)
    return np.where(usable, -np.log10(np.maximum(p, 1e-300)), np.nan)
