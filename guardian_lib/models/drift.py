"""Population stability index (PSI) per feature between a reference and a new sample."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["psi", "drift_report", "PSI_ALERT"]

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
    edges = (
        np.unique(np.nanquantile(ref, np.linspace(0, 1, bins + 1)))
        if np.isfinite(ref).any()
        else np.array([0.0])
    )
    inner = edges[1:-1]

    def shares(x: np.ndarray) -> np.ndarray:
        nan = np.isnan(x)
        idx = np.searchsorted(inner, x[~nan], side="right")
        counts = np.bincount(idx, minlength=len(inner) + 1).astype(float)
        counts = np.append(counts, nan.sum())
        return np.maximum(counts / max(len(x), 1), 1e-4)

    p, q = shares(ref), shares(cur)
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
