"""The carried status of each ONU (online, offline, PPPoE down) and its features.

An offline ONU sends nothing, so its status is carried over gaps; run lengths, flaps and
the offline share follow from the carried series. They need the day before the first
requested row only. At the newest tick of a rolling window
(:class:`~guardian_lib.features.RollingCube`) the carried series are computed for the
ONUs it marked as having reported offline or lost their session in that day only
(:attr:`~guardian_lib.features.Cube.status_marks`); the values are the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from guardian_lib.features._cube import Cube
from guardian_lib.features._kernels import ffill_take
from guardian_lib.features._windows import (
    ffill,
    ffill_at,
    run_length_at,
    window_mean,
    window_sum,
)

__all__ = [
    "LOST_LOSS_PCT",
    "FeatureWindows",
    "feature_windows",
    "Status",
    "carried_status",
    "status_features",
]

#: Packet loss at or above which an online ONU has lost all traffic (PPPoE down). [%]
LOST_LOSS_PCT = 99.9


class FeatureWindows(NamedTuple):
    """Window lengths in ticks (15 min, 1 h, 24 h, 7 d, 30 d) and ticks per hour."""

    per_h: float
    w15: int
    w1h: int
    w24: int
    w7d: int
    w30d: int


class Status(NamedTuple):
    """Status series on the slice ``[lo, hi)`` of the cube; ``r`` are the rows in it.

    ``present``, ``online``, ``offline`` and ``pppoe_down`` are (slice × ONU) matrices of
    the ONUs ``cols`` only, or of every ONU when ``cols`` is None. An ONU left out
    reported nothing but "online" in the slice and never lost all traffic: it is not
    offline and its session is not down at any tick of the slice. The ``*_at`` methods
    give every ONU's value at slice rows.
    """

    r: np.ndarray
    s: dict[str, np.ndarray]
    present: np.ndarray
    online: np.ndarray
    offline: np.ndarray
    pppoe_down: np.ndarray
    #: Columns of the fleet the matrices hold (None: all).
    cols: np.ndarray | None = None
    #: Carried online status of every ONU at the rows ``r`` (1, 0 or NaN).
    online_r: np.ndarray | None = None
    #: Whether each ONU's carried status is known at some tick of the day ending at each
    #: row ``r`` (with ``cols`` only; None: read from ``online``).
    known_24h: np.ndarray | None = None

    def _full(self, part: np.ndarray, fill: float | bool) -> np.ndarray:
        """``part`` (rows × ``cols``) as rows × every ONU, ``fill`` elsewhere."""
        if self.cols is None:
            return part
        out = np.full((part.shape[0], len(self.online_r[0])), fill, dtype=part.dtype)
        out[:, self.cols] = part
        return out

    def offline_at(self, k: np.ndarray) -> np.ndarray:
        """Offline (carried) at slice rows ``k``, every ONU (bool)."""
        return self._full(self.offline[k], False)

    def pppoe_down_at(self, k: np.ndarray) -> np.ndarray:
        """Online without a session at slice rows ``k``, every ONU (bool)."""
        return self._full(self.pppoe_down[k], False)


def feature_windows(tick_s: float) -> FeatureWindows:
    """The feature windows for a tick of ``tick_s`` [s]."""
    per_h = 3600 / tick_s
    return FeatureWindows(per_h, *(max(1, round(per_h * h)) for h in (0.25, 1, 24, 168, 720)))


def carried_status(cube: Cube, rows: np.ndarray, w24: int) -> Status:
    """Carried status series on the day before the first requested row onwards."""
    # Status series (carried values, run lengths, flaps) only need the day before the
    # first requested row: computing them on that slice keeps online scoring cheap.
    lo = max(int(rows.min()) - w24 - 13, 0)
    hi = int(rows.max()) + 1
    s = {c: m[lo:hi] for c, m in cube.values.items()}
    marks = cube.status_marks
    if marks and len(rows) == 1 and int(rows[0]) == cube.n_ticks - 1:
        return _status_marked(s, rows - lo, lo, w24, marks)
    present = ~np.isnan(s["online"])
    # Status: carry the last report over gaps. An offline ONU sends nothing, so a gap
    # after an offline report means still offline (up to a day); a gap after an online
    # report is a missed poll.
    online = ffill(s["online"], limit=w24)
    offline = online == 0
    # PPPoE down (online, all traffic lost): only an ONU that reported such a loss in the
    # slice can be (the carried loss is its own readings), so the others skip the fill.
    loss = s["loss_pct"]
    lost = np.flatnonzero((loss >= LOST_LOSS_PCT).any(axis=0))
    pppoe_down = np.zeros(loss.shape, dtype=bool)
    if len(lost):
        pppoe_down[:, lost] = (online[:, lost] == 1) & (
            ffill_take(loss, lost, 1)[0] >= LOST_LOSS_PCT
        )
    r = rows - lo
    return Status(r, s, present, online, offline, pppoe_down, online_r=online[r])


def _status_marked(
    s: dict[str, np.ndarray], r: np.ndarray, lo: int, w24: int, marks: Mapping[str, np.ndarray]
) -> Status:
    """:func:`carried_status` at the newest tick, from the status marks of a rolling window.

    Only the ONUs that reported offline or lost all traffic within the slice (their
    marks at or after ``lo``) get the carried series, computed as :func:`carried_status` does
    on their columns (every formula there works column by column). The others reported
    "online" whenever they reported: their carried status is online at every tick that
    has a report at most ``w24`` ticks back within the slice, and unknown (NaN) at the
    others. So at the row it is known exactly when their last report is at most ``w24``
    ticks old, and at some tick of the day ending at the row exactly when their last
    report is at most ``2 w24 - 1`` ticks old (both within the slice). This holds for
    every ONU, which is how ``known_24h`` is set.
    """
    row = int(r[0])
    cols = np.flatnonzero((marks["offline"] >= lo) | (marks["lost"] >= lo))
    # ffill(s[...][:, cols], …) and the columns' reports, each in one pass.
    online, present = ffill_take(s["online"], cols, w24, present=True)
    offline = online == 0
    pppoe_down = (online == 1) & (ffill_take(s["loss_pct"], cols, 1)[0] >= LOST_LOSS_PCT)
    reported = marks["reported"] - lo  # slice tick of each ONU's last report
    online_r = np.where(reported >= max(row - w24, 0), 1.0, np.nan)[None, :]
    online_r[:, cols] = online[r]
    known = (reported >= max(row - 2 * w24 + 1, 0))[None, :]
    return Status(r, s, present, online, offline, pppoe_down, cols, online_r, known)


def status_features(cube: Cube, st: Status, w: FeatureWindows) -> dict[str, np.ndarray]:
    """Online, staleness, offline / PPPoE-down run lengths, uptime and flaps."""
    r, w24 = st.r, w.w24

    def run_min(flag: np.ndarray) -> np.ndarray:
        """Minutes a condition has lasted at each row, capped at 24 h. [min]"""
        return np.minimum(run_length_at(flag, r, cap=w24), w24) * cube.tick_s / 60

    f: dict[str, np.ndarray] = {}
    f["online"] = np.where(np.isnan(st.online_r), 1.0, st.online_r)
    if st.cols is None:
        f["stale_min"] = run_min(~st.present)
    else:  # only the ONUs without a report at the row have a stale run (per column)
        stale = np.zeros((len(r), st.online_r.shape[1]))
        (gone,) = np.nonzero(np.isnan(st.s["online"][r[0]]))
        if len(gone):
            stale[:, gone] = run_min(np.isnan(st.s["online"][:, gone]))
        f["stale_min"] = stale
    f["offline_for_min"] = st._full(run_min(st.offline), 0.0)
    f["pppoe_down"] = st.pppoe_down_at(r).astype(float)
    f["pppoe_down_for_min"] = st._full(run_min(st.pppoe_down), 0.0)
    f["uptime_h"] = np.minimum(ffill_at(st.s["uptime_s"], 12, r), 30 * 86400) / 3600
    # Flaps and offline ticks are counts: only the ONUs that reported offline in the slice
    # (few of a fleet) can have any, and integer sums are the same on any set of columns.
    # The others have none: 0 flaps, and an offline share of 0 where their carried status
    # is known at some tick of the day (NaN where it is not).
    n_rows, n_onus = len(r), st.online_r.shape[1]
    raw = st.s["online"] if st.cols is None else st.s["online"][:, st.cols]
    flapped = np.flatnonzero((raw == 0).any(axis=0))  # columns of st.online
    fleet_cols = flapped if st.cols is None else st.cols[flapped]
    f["flaps_1h"], f["flaps_24h"] = np.zeros((n_rows, n_onus)), np.zeros((n_rows, n_onus))
    if st.known_24h is not None:
        known = st.known_24h
    elif n_rows <= 4:  # online: one row, one pass over its day
        known = np.stack(
            [~np.isnan(st.online[max(row - w24 + 1, 0) : row + 1]).all(axis=0) for row in r]
        )
    else:
        known = window_sum(np.where(np.isnan(st.online), np.nan, 0.0), w24, r)[1] > 0
    f["offline_share_24h"] = np.where(known, 0.0, np.nan)
    if len(flapped):
        online = st.online[:, flapped]
        on = np.where(np.isnan(online), 1.0, online)
        drops = np.zeros_like(on)
        drops[1:] = (on[:-1] == 1) & (on[1:] == 0)
        f["flaps_1h"][:, fleet_cols] = window_sum(drops, w.w1h, r)[0]
        f["flaps_24h"][:, fleet_cols] = window_sum(drops, w24, r)[0]
        f["offline_share_24h"][:, fleet_cols] = window_mean(
            np.where(np.isnan(online), np.nan, st.offline[:, flapped]), w24, r
        )
    return f
