"""Population stability index (PSI) per feature between a reference and a new sample."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["psi", "drift_report", "PSI_ALERT", "psi_edges", "bin_counts", "psi_from_counts"]

#: PSI above which a feature is reported as drifted (common rule of thumb). [-]
PSI_ALERT = 0.2


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of one feature.

    Bins are the reference's quantiles (ties merged); NaN forms its own bin; shares are
    floored at 1e-4 so that empty bins do not give infinities.

    Parameters
    ----------
    reference, current : array_like
    bins : int, default 10

    Returns
    -------
    float
        PSI ≥ 0: < 0.1 stable, 0.1–0.2 moderate, > 0.2 shifted. [-]

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(0, 1, 5000)
    >>> round(psi(a, rng.normal(0, 1, 5000)), 2) < 0.05, psi(a, rng.normal(1, 1, 5000)) > 0.2
    (True, True)
    """
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    inner = psi_edges(ref, bins)
    return psi_from_counts(bin_counts(ref, inner), bin_counts(cur, inner))


def psi_edges(reference: np.ndarray, bins: int = 10) -> np.ndarray:
    """Inner bin edges of :func:`psi`: the reference's quantiles, ties merged."""
    ref = np.asarray(reference, dtype=float)
    edges = (
        np.unique(np.nanquantile(ref, np.linspace(0, 1, bins + 1)))
        if np.isfinite(ref).any()
        else np.array([0.0])
    )
    return edges[1:-1]


def bin_counts(x: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Values per bin of ``inner`` edges, NaN last (counts add up over partitions). [-]"""
    x = np.asarray(x, dtype=float)
    nan = np.isnan(x)
    idx = np.searchsorted(inner, x[~nan], side="right")
    counts = np.bincount(idx, minlength=len(inner) + 1).astype(float)
    return np.append(counts, nan.sum())


def psi_from_counts(reference: np.ndarray, current: np.ndarray) -> float:
    """:func:`psi` from the bin counts of the reference and of the current sample."""

    def shares(counts: np.ndarray) -> np.ndarray:
        return np.maximum(counts / max(counts.sum(), 1), 1e-4)

    p, q = shares(np.asarray(reference, float)), shares(np.asarray(current, float))
    return float(np.sum((q - p) * np.log(q / p)))


def drift_report(
    reference: pd.DataFrame, current: pd.DataFrame, columns=None, bins: int = 10
) -> pd.DataFrame:
    """PSI of each feature, largest first, with a ``drifted`` flag (PSI > 0.2)."""
    cols = list(columns) if columns is not None else [c for c in reference if c in current]
    rows = [
        {"feature": c, "psi": psi(reference[c].to_numpy(), current[c].to_numpy(), bins)}
        for c in cols
    ]
    out = pd.DataFrame(rows).sort_values("psi", ascending=False).reset_index(drop=True)
    out["drifted"] = out["psi"] > PSI_ALERT
    return out
