"""Neighbour evidence: which ONUs share a problem with others under the same box, PON or OLT.

:func:`neighbour_stats` is vectorised over the fleet. It depends on nothing else of the
decision engine, so that :class:`~guardian_lib.decision.Snapshot` (which caches it) and
:class:`~guardian_lib.decision.RuleScorer` (which uses it) do not import each other.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from guardian_lib.schema import RX_CRITICAL_DBM

__all__ = ["neighbour_stats"]


def _codes(status: pd.DataFrame, key: str) -> np.ndarray:
    """Integer group codes of ``key`` (``box``, ``pon``, ``olt``), from the status or fresh."""
    col = f"{key}_code"
    if col in status.columns:
        return status[col].to_numpy()
    return pd.factorize(status[f"{key}_id"])[0]


def _nb_share(flag: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share and count of *other* members of each row's group with ``flag`` set."""
    size = np.bincount(codes)[codes]
    others = np.bincount(codes, weights=flag.astype(float))[codes] - flag
    return np.where(size > 1, others / np.maximum(size - 1, 1), 0.0), others


def neighbour_stats(status: pd.DataFrame) -> pd.DataFrame:
    """Neighbour evidence for every ONU (vectorised group statistics).

    Parameters
    ----------
    status : pandas.DataFrame
        :meth:`~guardian_lib.decision.observe.Observer.status` output.

    Returns
    -------
    pandas.DataFrame
        Index ``onu_id``; ``box_off_share``, ``pon_off_share``, ``olt_off_share``,
        ``box_rxdrop_share``, ``olt_nosvc_share`` [-], ``n_nb_off`` (other ONUs offline
        in the widest scope that explains the problem) [-], ``massive_share`` (the
        strongest share) [-], and ``scope_type`` / ``scope_key`` of that scope.
    """
    off = ~status["online"].to_numpy(dtype=bool)
    nosvc = status["online"].to_numpy(dtype=bool) & ~status["service_up"].to_numpy(dtype=bool)
    rxdrop = status["online"].to_numpy(dtype=bool) & (
        (status["rx_drop_db"].to_numpy() > 2.5)
        | (np.nan_to_num(status["rx_dbm"].to_numpy(), nan=0.0) < RX_CRITICAL_DBM)
    )
    box, pon, olt = (_codes(status, k) for k in ("box", "pon", "olt"))
    box_s, box_n = _nb_share(off, box)
    pon_s, pon_n = _nb_share(off, pon)
    olt_s, olt_n = _nb_share(off, olt)
    rxb_s, rxb_n = _nb_share(rxdrop, box)
    ext_s, ext_n = _nb_share(nosvc, olt)
    # Require a few neighbours, not a coincidence of two customers.
    box_s = np.where(box_n >= 2, box_s, 0.0)
    pon_s = np.where(pon_n >= 3, pon_s, 0.0)
    olt_s = np.where(olt_n >= 5, olt_s, 0.0)
    rxb_s = np.where(rxb_n >= 2, rxb_s, 0.0)
    ext_s = np.where(ext_n >= 4, ext_s, 0.0)
    stack = np.vstack([box_s, pon_s, olt_s, rxb_s, ext_s])
    counts = np.vstack([box_n, pon_n, olt_n, rxb_n, ext_n])
    # Prefer the wider scope when it explains the problem nearly as well.
    weights = np.array([1.0, 1.15, 1.3, 1.0, 1.0])[:, None]
    best = np.argmax(stack * weights, axis=0)
    cols = np.array(["box_id", "pon_id", "olt_id", "box_id", "olt_id"])
    types = np.array(["box", "pon", "olt", "box", "bng"])
    keys = np.full(len(status), None, dtype=object)
    sel = np.flatnonzero(stack.max(axis=0) > 0)
    if len(sel):
        key_cols = np.vstack([status[c].iloc[sel].to_numpy(dtype=object) for c in cols])
        keys[sel] = key_cols[best[sel], np.arange(len(sel))]
    return pd.DataFrame(
        {
            "box_off_share": box_s,
            "pon_off_share": pon_s,
            "olt_off_share": olt_s,
            "box_rxdrop_share": rxb_s,
            "olt_nosvc_share": ext_s,
            # An OLT-wide share counts only beyond a quarter of the OLT (a board is less).
            "massive_share": np.max(
                np.vstack([box_s, pon_s, np.clip((olt_s - 0.25) / 0.75, 0, 1), rxb_s]), axis=0
            ),
            "n_nb_off": counts[best, np.arange(len(status))],
            "scope_type": types[best],
            "scope_key": keys,
        },
        index=status.index,
    )
