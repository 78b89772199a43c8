"""Neighbour evidence: which ONUs share a problem with others under the same box, PON or OLT.

Two views, both vectorised over the fleet:

* :func:`neighbour_stats` — how many neighbours are affected now, whenever they failed
  (the policies' candidate rows and the scorer-word path to an incident);
* :func:`coincident_outages` — topology evidence that does not depend on any scorer:
  ONUs of one box / PON / OLT that went dark (LOS, dying gasp, offline), lost light (an
  RX step) or lost service behind the BNG *within a few minutes of each other*, counted as a share of the scope's
  ONUs and as a number (:class:`OutageEvidence`). The policies open a shared incident
  on it whatever each ONU's per-row cause prediction says.

The module depends on nothing else of the decision engine, so that
:class:`~guardian_lib.decision.Snapshot` (which caches it) and
:class:`~guardian_lib.decision.RuleScorer` (which uses it) do not import each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from guardian_lib._numeric import group_others, nan_to_num
from guardian_lib.schema import RX_CRITICAL_DBM

__all__ = [
    "OutageEvidence",
    "coincident_outages",
    "neighbour_stats",
    "rx_step",
    "failure_onset_min",
    "OUTAGE_COLUMNS",
    "RX_STEP_DB",
    "ColumnReader",
    "frame_reader",
    "neighbour_arrays",
    "outage_arrays",
]

#: ``read(name)``: a status column as a numpy array (what ``status[name].to_numpy()``
#: gives), or None when the status has no such column.
ColumnReader = Callable[[str], "np.ndarray | None"]


def frame_reader(status: pd.DataFrame) -> ColumnReader:
    """A :data:`ColumnReader` over a status frame."""
    columns = status.columns
    return lambda name: status[name].to_numpy() if name in columns else None


#: Columns of :func:`coincident_outages`.
OUTAGE_COLUMNS = ("outage_scope_type", "outage_scope_key", "outage_n", "outage_share",
                  "outage_onset_min")  # fmt: skip
#: An online ONU whose RX is this far below its own baseline has lost light on its path
#: (a damaged splitter or feeder when its neighbours lost it too). [dB]
RX_STEP_DB = 2.5


def failure_onset_min(status: pd.DataFrame) -> np.ndarray:
    """How long ago each ONU's current failure began, as the outage evidence times it. [min]

    Without service (dark, or online without PPPoE): since service was lost
    (``down_min``), so an ONU already degraded when an outage took it down is timed
    with the outage; online with an RX step (:func:`rx_step`): since RX fell
    (``rx_low_min``); otherwise since the problem began (``impacted_min``). A status
    without ``down_min`` / ``rx_low_min`` (hand-made, older) uses ``impacted_min``.
    """
    return _onset_min(frame_reader(status))


def _onset_min(read: ColumnReader) -> np.ndarray:
    """:func:`failure_onset_min` over a column reader."""
    imp = np.asarray(read("impacted_min"), dtype=float)
    online = np.asarray(read("online"), dtype=bool)
    nosvc = ~np.asarray(read("service_up"), dtype=bool) | ~online
    out = imp.copy()
    down = read("down_min")
    if down is not None:
        out = np.where(nosvc, np.asarray(down, dtype=float), out)
    rx_low = read("rx_low_min")
    if rx_low is not None:
        out = np.where(~nosvc & _rx_step(read), np.asarray(rx_low, dtype=float), out)
    return out


def rx_step(status: pd.DataFrame) -> np.ndarray:
    """Online ONUs whose RX fell at least :data:`RX_STEP_DB` below their baseline, or
    below the critical level :data:`~guardian_lib.schema.RX_CRITICAL_DBM` (none when the
    status has no RX columns). [-]"""
    return _rx_step(frame_reader(status))


def _rx_step(read: ColumnReader) -> np.ndarray:
    """:func:`rx_step` over a column reader."""
    online = np.asarray(read("online"), dtype=bool)
    rx, drop = read("rx_dbm"), read("rx_drop_db")
    if rx is None or drop is None:
        return np.zeros(len(online), dtype=bool)
    rx = nan_to_num(np.asarray(rx, dtype=float), nan=0.0)
    return online & ((np.asarray(drop, dtype=float) > RX_STEP_DB) | (rx < RX_CRITICAL_DBM))


def _codes(read: ColumnReader, key: str) -> np.ndarray:
    """Integer group codes of ``key`` (``box``, ``pon``, ``olt``), from the status or fresh."""
    codes = read(f"{key}_code")
    if codes is not None:
        return codes
    return pd.factorize(read(f"{key}_id"))[0]


#: The grouping (box 0, PON 1, OLT 2) of each of neighbour_arrays' five flags.
_NB_GROUPING = np.array([0, 1, 2, 0, 2])


def _nb_shares(
    flags: np.ndarray, codes: np.ndarray, code_row: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Share and count of *other* members of each row's group with the flag set, for
    several (flag, grouping) pairs at once (``code_row``: each flag row's grouping). [-]"""
    others, size = group_others(flags, codes, code_row)
    size = size[code_row]
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
    return pd.DataFrame(neighbour_arrays(frame_reader(status)), index=status.index)


def neighbour_arrays(read: ColumnReader) -> dict[str, np.ndarray]:
    """The columns of :func:`neighbour_stats` as numpy arrays, from a column reader
    (``scope_type`` and ``scope_key`` as object arrays, ``None`` where no scope)."""
    online = np.asarray(read("online"), dtype=bool)
    off = ~online
    nosvc = online & ~np.asarray(read("service_up"), dtype=bool)
    rxdrop = _rx_step(read)
    box, pon, olt = (_codes(read, k) for k in ("box", "pon", "olt"))
    # Box, PON and OLT offline; box RX drop; OLT without service: one pass for the five.
    shares, counts = _nb_shares(
        np.vstack([off, off, off, rxdrop, nosvc]), np.vstack([box, pon, olt]), _NB_GROUPING
    )
    # Require a few neighbours, not a coincidence of two customers.
    stack = np.where(counts >= np.array([2, 3, 5, 2, 4])[:, None], shares, 0.0)
    box_s, pon_s, olt_s, rxb_s, ext_s = stack
    # Prefer the wider scope when it explains the problem nearly as well.
    weights = np.array([1.0, 1.15, 1.3, 1.0, 1.0])[:, None]
    best = np.argmax(stack * weights, axis=0)
    cols = ("box_id", "pon_id", "olt_id", "box_id", "olt_id")
    types = np.array(["box", "pon", "olt", "box", "bng"], dtype=object)
    n = len(online)
    keys = np.full(n, None, dtype=object)
    sel = np.flatnonzero(stack.max(axis=0) > 0)
    if len(sel):
        key_cols = np.vstack([np.asarray(read(c), dtype=object)[sel] for c in cols])
        keys[sel] = key_cols[best[sel], np.arange(len(sel))]
    return {
        "box_off_share": box_s,
        "pon_off_share": pon_s,
        "olt_off_share": olt_s,
        "box_rxdrop_share": rxb_s,
        "olt_nosvc_share": ext_s,
        # An OLT-wide share counts only beyond a quarter of the OLT (a board is less).
        "massive_share": np.max(
            np.vstack([box_s, pon_s, np.clip((olt_s - 0.25) / 0.75, 0, 1), rxb_s]), axis=0
        ),
        "n_nb_off": counts[best, np.arange(n)],
        "scope_type": types[best],
        "scope_key": keys,
    }


@dataclass(frozen=True)
class OutageEvidence:
    """When ONUs that failed together count as one outage of their box, PON or OLT.

    A scope qualifies when at least ``<scope>_min_count`` of its ONUs **and** at least
    ``<scope>_min_share`` of them failed together (one after another, at most
    ``coincidence_min`` apart): the
    share carries the rule over to other splitter layouts and PON sizes (4 ONUs of a 1:4
    street box, 8 of a 1:8 box, 16 of a PON of 64), the count keeps one or two customers
    of a small scope from making an outage on their own.

    Parameters
    ----------
    coincidence_min : float, default 15
        Largest gap between the starts of two consecutive failures of one outage (three
        polling rounds of 5 min). [min]
    box_min_share, box_min_count : float, int, default 0.3, 2
        Street box (second-stage splitter). [-]
    pon_min_share, pon_min_count : float, int, default 0.2, 3
        PON port (feeder cut, board). [-]
    olt_min_share, olt_min_count : float, int, default 0.2, 5
        OLT; ONUs online without service count at this scope as an upstream (BNG)
        failure. [-]
    """

    coincidence_min: float = 15.0
    box_min_share: float = 0.3
    box_min_count: int = 2
    pon_min_share: float = 0.2
    pon_min_count: int = 3
    olt_min_share: float = 0.2
    olt_min_count: int = 5

    def __post_init__(self) -> None:
        for scope in ("box", "pon", "olt"):
            share = getattr(self, f"{scope}_min_share")
            count = getattr(self, f"{scope}_min_count")
            if not 0.0 < share <= 1.0 or not np.isfinite(share):
                raise ValueError(f"OutageEvidence.{scope}_min_share must be in (0, 1], got {share}")
            if int(count) != count or count < 2:
                raise ValueError(
                    f"OutageEvidence.{scope}_min_count must be an integer >= 2 (one ONU is "
                    f"never an outage of its scope), got {count}"
                )
        if not 0.0 <= self.coincidence_min < np.inf:
            raise ValueError(
                f"OutageEvidence.coincidence_min must be finite and >= 0 [min], "
                f"got {self.coincidence_min}"
            )


def _coincident_counts(
    codes: np.ndarray, start_min: np.ndarray, window_min: float
) -> tuple[np.ndarray, np.ndarray]:
    """For each of a set of failed rows (their group ``codes`` and start times), the size
    of its cluster and the cluster's id: rows of its group whose starts form a chain with
    gaps of at most ``window_min`` (single linkage: every member of a cluster gets the
    same count, and a narrower scope's cluster lies within its wider scope's)."""
    order = np.lexsort((start_min, codes))
    c, t = codes[order], start_min[order]
    new = np.ones(len(codes), dtype=bool)
    new[1:] = (c[1:] != c[:-1]) | (np.diff(t) > window_min)
    cluster = np.cumsum(new) - 1
    count = np.empty(len(codes), dtype=np.int64)
    ids = np.empty(len(codes), dtype=np.int64)
    count[order] = np.bincount(cluster)[cluster]
    ids[order] = cluster
    return count, ids


def _largest_inner(ids: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """For each row of a cluster (``ids``), the largest ``inner`` among its members."""
    best = np.zeros(int(ids.max()) + 1, dtype=np.int64)
    np.maximum.at(best, ids, inner)
    return best[ids]


def coincident_outages(
    status: pd.DataFrame, evidence: OutageEvidence, eligible: np.ndarray | None = None
) -> pd.DataFrame:
    """Topology evidence of a shared outage for every ONU, whatever a scorer says.

    An ONU *dark* (offline: LOS, dying gasp or silent) belongs to an outage of its box,
    PON or OLT when enough ONUs of that scope went dark together: their problems started
    in a chain with gaps of at most ``evidence.coincidence_min`` (see
    :class:`OutageEvidence`); an ONU online
    without service belongs to an upstream (``bng``) outage of its OLT on the same terms;
    an ONU online with service whose light fell (:func:`rx_step`: a damaged street box or
    feeder) to an outage of its box or PON. Each failure is timed from when it began
    (:func:`failure_onset_min`: an ONU already degraded when it went dark, from when it
    went dark), so it counts with the ONUs that went dark with it.
    The narrowest qualifying scope is named unless a wider one holds at least two more
    of the ONUs that failed together than its largest narrower outage (a feeder cut fills
    each of its boxes and the PON: the PON; a box fault is a box incident even on a PON
    small enough for it to qualify too, and stays one when a single unrelated ONU of the
    OLT goes dark in the same minutes).
    A lone dark ONU — a customer who switched the power off, a dead CPE — never
    qualifies: the minimum count is at least 2.

    Parameters
    ----------
    status : pandas.DataFrame
        :meth:`~guardian_lib.decision.observe.Observer.status` output (``online``,
        ``service_up``, ``impacted_min``, ``box_id``, ``pon_id``, ``olt_id``).
    evidence : OutageEvidence
    eligible : ndarray of bool, optional
        Rows that may count toward an outage (default all). The policies leave out ONUs
        already judged on their own: still down after their incident ended.

    Returns
    -------
    pandas.DataFrame
        Index ``onu_id``; ``outage_scope_type`` (``box``, ``pon``, ``olt``, ``bng``;
        missing for an ONU of no outage), ``outage_scope_key`` (the scope's id),
        ``outage_n`` (ONUs of the scope that failed together with this one, itself
        included) [-], ``outage_share`` (``outage_n`` over the scope's ONUs) [-] and
        ``outage_onset_min`` (when this ONU's failure began, every row) [min].
    """
    out = outage_arrays(frame_reader(status), evidence, eligible)
    return pd.DataFrame(out, index=status.index)


def outage_arrays(
    read: ColumnReader, evidence: OutageEvidence, eligible: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The columns of :func:`coincident_outages` as numpy arrays, from a column reader
    (``outage_scope_type`` and ``outage_scope_key`` as object arrays, ``None`` for an
    ONU of no outage)."""
    online = np.asarray(read("online"), dtype=bool)
    n = len(online)
    ok_rows = np.ones(n, dtype=bool) if eligible is None else np.asarray(eligible, bool)
    dark = ~online & ok_rows
    nosvc = online & ~np.asarray(read("service_up"), dtype=bool) & ok_rows
    # Online with service but light lost on the path (an RX step under a damaged box):
    # the same evidence, timed from when RX fell.
    rxlow = online & ~nosvc & _rx_step(read) & ok_rows
    start = _onset_min(read)
    stype = np.full(n, None, dtype=object)
    skey = np.full(n, None, dtype=object)
    count = np.zeros(n, dtype=np.int64)
    share = np.zeros(n)
    w = evidence.coincidence_min
    # Narrow to wide.
    levels = (("box", "box", dark), ("pon", "pon", dark), ("olt", "olt", dark),
              ("bng", "olt", nosvc), ("box", "box", rxlow), ("pon", "pon", rxlow))  # fmt: skip
    sizes: dict[str, np.ndarray] = {}  # ONUs per group of each level
    for scope, level, flag in levels:
        # Only the failed rows: a row that did not fail has no cluster (count 0, never
        # an outage), and a round sees a few dozen of the fleet's thousands.
        rows = np.flatnonzero(flag)
        if len(rows) == 0:
            continue
        codes = _codes(read, level)
        if level not in sizes:
            sizes[level] = np.bincount(codes)
        k, ids = _coincident_counts(codes[rows], start[rows], w)
        s = k / np.maximum(sizes[level][codes[rows]], 1)
        ok = (k >= getattr(evidence, f"{level}_min_count")) & (
            s >= getattr(evidence, f"{level}_min_share")
        )
        # The wider scope only when at least two of its failed ONUs lie beyond its largest
        # narrower outage (a box fault stays a box incident even when it is a fifth of its
        # PON, and one unrelated dark ONU elsewhere on the OLT — one customer's fault —
        # does not turn it into an OLT incident: a lone dark ONU is never evidence), or
        # when it is the same ONUs (an inventory without street boxes, a PON of one box).
        inner = count[rows]
        ok &= (k - _largest_inner(ids, inner) >= 2) | ((k == inner) & (s >= share[rows]))
        if ok.any():
            sel = rows[ok]
            stype[sel] = scope
            skey[sel] = np.asarray(read(f"{level}_id"), dtype=object)[sel]
            count[sel], share[sel] = k[ok], s[ok]
    return {"outage_scope_type": stype, "outage_scope_key": skey, "outage_n": count,
            "outage_share": share, "outage_onset_min": start}  # fmt: skip
