"""Array helpers the decision round calls many times on a fleet's columns."""

from __future__ import annotations

import numpy as np

__all__ = ["nan_to_num"]


def nan_to_num(x, nan: float = 0.0) -> np.ndarray:
    """``np.nan_to_num(x, nan=nan)``: the same array, by one ``where`` when ``x`` is a
    float array without an infinite value (``np.nan_to_num`` costs about five times
    more on a fleet's column; a decision round calls it a few dozen times).

    Parameters
    ----------
    x : array_like
    nan : float, default 0.0
        Value that replaces NaN. [x's unit]

    Returns
    -------
    ndarray
        A new array of ``x``'s dtype; ±inf become the dtype's largest finite values,
        as with ``np.nan_to_num``.
    """
    x = np.asarray(x)
    if x.dtype.kind != "f":
        return np.nan_to_num(x, nan=nan)
    out = np.where(np.isnan(x), nan, x)
    return np.nan_to_num(x, nan=nan) if np.isinf(out).any() else out
