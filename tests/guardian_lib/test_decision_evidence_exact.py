"""Neighbour and outage evidence on arrays equal the whole-fleet frame computation.

The policies and the rule scorer compute the evidence once per snapshot on the status
arrays, and the outage evidence looks only at the rows that failed. The reference below
is the computation they replaced, on the status frame over every row of the fleet
(kept here as it was); random fleets with gaps, dark boxes, lost PPPoE, RX steps and
ineligible rows must give the same values bit for bit.
"""

import numpy as np
import pandas as pd
import pytest

from guardian_lib.decision import Snapshot
from guardian_lib.decision.neighbours import (
    RX_STEP_DB,
    OutageEvidence,
    coincident_outages,
    neighbour_stats,
)
from guardian_lib.schema import RX_CRITICAL_DBM

# --- the reference: the whole-fleet frame computation ---------------------------------


def plain_failure_onset_min(status: pd.DataFrame) -> np.ndarray:
    """How long ago each ONU's current failure began, as the outage evidence times it. [min]

    Without service (dark, or online without PPPoE): since service was lost
    (``down_min``), so an ONU already degraded when an outage took it down is timed
    with the outage; online with an RX step (:func:`rx_step`): since RX fell
    (``rx_low_min``); otherwise since the problem began (``impacted_min``). A status
    without ``down_min`` / ``rx_low_min`` (hand-made, older) uses ``impacted_min``.
    """
    imp = status["impacted_min"].to_numpy(dtype=float)
    nosvc = ~status["service_up"].to_numpy(dtype=bool) | ~status["online"].to_numpy(dtype=bool)
    out = imp.copy()
    if "down_min" in status:
        out = np.where(nosvc, status["down_min"].to_numpy(dtype=float), out)
    if "rx_low_min" in status:
        out = np.where(
            ~nosvc & plain_rx_step(status), status["rx_low_min"].to_numpy(dtype=float), out
        )
    return out


def plain_rx_step(status: pd.DataFrame) -> np.ndarray:
    online = status["online"].to_numpy(dtype=bool)
    if "rx_dbm" not in status or "rx_drop_db" not in status:
        return np.zeros(len(status), dtype=bool)
    rx = np.nan_to_num(status["rx_dbm"].to_numpy(dtype=float), nan=0.0)
    return online & ((status["rx_drop_db"].to_numpy(dtype=float) > RX_STEP_DB)
                     | (rx < RX_CRITICAL_DBM))  # fmt: skip


def plain_codes(status: pd.DataFrame, key: str) -> np.ndarray:
    """Integer group codes of ``key`` (``box``, ``pon``, ``olt``), from the status or fresh."""
    col = f"{key}_code"
    if col in status.columns:
        return status[col].to_numpy()
    return pd.factorize(status[f"{key}_id"])[0]


def plain_nb_share(flag: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    size = np.bincount(codes)[codes]
    others = np.bincount(codes, weights=flag.astype(float))[codes] - flag
    return np.where(size > 1, others / np.maximum(size - 1, 1), 0.0), others


def plain_neighbour_stats(status: pd.DataFrame) -> pd.DataFrame:
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
    rxdrop = plain_rx_step(status)
    box, pon, olt = (plain_codes(status, k) for k in ("box", "pon", "olt"))
    box_s, box_n = plain_nb_share(off, box)
    pon_s, pon_n = plain_nb_share(off, pon)
    olt_s, olt_n = plain_nb_share(off, olt)
    rxb_s, rxb_n = plain_nb_share(rxdrop, box)
    ext_s, ext_n = plain_nb_share(nosvc, olt)
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


def plain_coincident_counts(
    flag: np.ndarray, codes: np.ndarray, start_min: np.ndarray, window_min: float
) -> tuple[np.ndarray, np.ndarray]:
    out = np.zeros(len(flag), dtype=np.int64)
    ids = np.full(len(flag), -1, dtype=np.int64)
    rows = np.flatnonzero(flag)
    if len(rows) == 0:
        return out, ids
    order = np.lexsort((start_min[rows], codes[rows]))
    c, t = codes[rows][order], start_min[rows][order]
    new = np.ones(len(rows), dtype=bool)
    new[1:] = (c[1:] != c[:-1]) | (np.diff(t) > window_min)
    cluster = np.cumsum(new) - 1
    out[rows[order]] = np.bincount(cluster)[cluster]
    ids[rows[order]] = cluster
    return out, ids


def plain_largest_inner(ids: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """For each row of a cluster (``ids`` ≥ 0), the largest ``inner`` among its members."""
    out = np.zeros(len(ids), dtype=np.int64)
    rows = ids >= 0
    if rows.any():
        best = np.zeros(int(ids.max()) + 1, dtype=np.int64)
        np.maximum.at(best, ids[rows], inner[rows])
        out[rows] = best[ids[rows]]
    return out


def plain_coincident_outages(
    status: pd.DataFrame, evidence: OutageEvidence, eligible: np.ndarray | None = None
) -> pd.DataFrame:
    online = status["online"].to_numpy(dtype=bool)
    ok_rows = np.ones(len(status), dtype=bool) if eligible is None else np.asarray(eligible, bool)
    dark = ~online & ok_rows
    nosvc = online & ~status["service_up"].to_numpy(dtype=bool) & ok_rows
    # Online with service but light lost on the path (an RX step under a damaged box):
    # the same evidence, timed from when RX fell.
    rxlow = online & ~nosvc & plain_rx_step(status) & ok_rows
    start = plain_failure_onset_min(status)
    n = len(status)
    stype = np.full(n, None, dtype=object)
    skey = np.full(n, None, dtype=object)
    count = np.zeros(n, dtype=np.int64)
    share = np.zeros(n)
    w = evidence.coincidence_min
    # Narrow to wide.
    levels = (("box", "box", dark), ("pon", "pon", dark), ("olt", "olt", dark),
              ("bng", "olt", nosvc), ("box", "box", rxlow), ("pon", "pon", rxlow))  # fmt: skip
    for scope, level, flag in levels:
        if not flag.any():
            continue
        codes = plain_codes(status, level)
        size = np.bincount(codes)[codes]
        k, ids = plain_coincident_counts(flag, codes, start, w)
        s = k / np.maximum(size, 1)
        ok = (k >= getattr(evidence, f"{level}_min_count")) & (
            s >= getattr(evidence, f"{level}_min_share")
        )
        # The wider scope only when at least two of its failed ONUs lie beyond its largest
        # narrower outage (a box fault stays a box incident even when it is a fifth of its
        # PON, and one unrelated dark ONU elsewhere on the OLT — one customer's fault —
        # does not turn it into an OLT incident: a lone dark ONU is never evidence), or
        # when it is the same ONUs (an inventory without street boxes, a PON of one box).
        ok &= (k - plain_largest_inner(ids, count) >= 2) | ((k == count) & (s >= share))
        if ok.any():
            stype[ok] = scope
            skey[ok] = status[f"{level}_id"].to_numpy(dtype=object)[ok]
            count[ok], share[ok] = k[ok], s[ok]
    return pd.DataFrame(
        {"outage_scope_type": stype, "outage_scope_key": skey, "outage_n": count,
         "outage_share": share, "outage_onset_min": start},
        index=status.index,
    )  # fmt: skip


# --- the comparison -------------------------------------------------------------------


def _status(rng: np.random.Generator, n: int, with_codes: bool) -> pd.DataFrame:
    """A random fleet: boxes of 2-8 ONUs, PONs of 1-4 boxes, OLTs of 1-3 PONs; about a
    fifth dark (clustered in a few boxes), some online without PPPoE, some RX steps."""
    box = np.repeat(np.arange(n), rng.integers(2, 9, n))[:n]
    pon = box // rng.integers(1, 5)
    olt = pon // rng.integers(1, 4)
    bad_box = rng.random(box.max() + 1) < 0.15
    online = ~(bad_box[box] & (rng.random(n) < 0.8)) & (rng.random(n) > 0.03)
    service = online & (rng.random(n) > 0.05)
    rx = rng.normal(-20, 4, n)
    rx[~online] = np.nan
    drop = np.where(rng.random(n) < 0.1, rng.uniform(0, 6, n), rng.uniform(0, 1, n))
    onset = rng.choice([0.0, 5.0, 10.0, 15.0, 20.0, 40.0, 300.0], n)
    st = pd.DataFrame(
        {
            "online": online,
            "service_up": service,
            "rx_dbm": rx,
            "rx_drop_db": drop,
            "impacted_min": np.where(~service, onset + rng.choice([0.0, 30.0], n), 0.0),
            "down_min": np.where(~service, onset, 0.0),
            "rx_low_min": np.where(drop > 2.5, onset, 0.0),
            "box_id": [f"B{k}" for k in box],
            "pon_id": [f"P{k}" for k in pon],
            "olt_id": [f"L{k}" for k in olt],
        },
        index=pd.Index([f"O{i}" for i in range(n)], name="onu_id"),
    )
    if with_codes:
        for k in ("box", "pon", "olt"):
            st[f"{k}_code"] = pd.factorize(st[f"{k}_id"])[0]
    return st


def _same_column(got: np.ndarray, want: np.ndarray, name: str) -> None:
    if want.dtype.kind in "biuf":
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name, strict=True)
    else:  # scope names and keys: the same string, or missing in both
        assert all(
            (pd.isna(a) and pd.isna(b)) if pd.isna(b) else a == b
            for a, b in zip(got, want, strict=True)
        ), name


@pytest.mark.parametrize("seed", range(6))
def test_evidence_equals_the_whole_fleet_frame_computation(seed):
    rng = np.random.default_rng(seed)
    st = _status(rng, int(rng.integers(30, 400)), with_codes=seed % 2 == 0)
    snap = Snapshot(ts=pd.Timestamp("2026-03-01", tz="UTC"), status=st)
    for c, want in plain_neighbour_stats(st).items():
        _same_column(snap.neighbours()[c], want.to_numpy(), c)
        _same_column(neighbour_stats(st)[c].to_numpy(), want.to_numpy(), c)
    evidences = (OutageEvidence(), OutageEvidence(coincidence_min=5.0, box_min_share=0.5),
                 OutageEvidence(pon_min_count=2, pon_min_share=0.1, olt_min_count=2))  # fmt: skip
    for ev in evidences:
        eligible = rng.random(len(st)) > 0.1
        for elig in (None, eligible):
            want = plain_coincident_outages(st, ev, elig)
            assert want["outage_scope_type"].notna().any() or seed > 3  # outages exist
            got = snap.outages(ev, elig)
            frame = coincident_outages(st, ev, elig)
            for c in want.columns:
                _same_column(got[c], want[c].to_numpy(), c)
                _same_column(frame[c].to_numpy(), want[c].to_numpy(), c)
