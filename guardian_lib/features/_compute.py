"""Point-in-time features per ONU at chosen ticks (docs/models.md).

A row at tick k uses telemetry and events with timestamps ≤ k only. Windows: 15 min,
1 h, 24 h, 7 d (telemetry baselines, calls) and 30 d (tickets, visits); levels, deltas
against the ONU's own baseline, minima, slopes, flap and event counts; neighbour shares
under the same street box, PON, OLT and H3 geo cell; customer history.
"""

from __future__ import annotations

from collections.abc import Mapping

import h3
import numpy as np
import pandas as pd

from guardian_lib._numeric import group_others, nan_to_num
from guardian_lib.features._cube import Cube
from guardian_lib.features._kernels import ffill_take
from guardian_lib.features._status import LOST_LOSS_PCT
from guardian_lib.features._status import FeatureWindows as _Windows
from guardian_lib.features._status import Status as _Status
from guardian_lib.features._status import carried_status as _status
from guardian_lib.features._status import feature_windows as _windows
from guardian_lib.features._status import status_features as _status_features
from guardian_lib.features._windows import (
    event_counts,
    ffill_at,
    last_event_at,
    last_valid_at,
    window_mean,
    window_min,
    window_slope,
    window_sum,
)
from guardian_lib.schema import RX_CRITICAL_DBM, RX_IMPACT_DBM

try:  # pandas >= 3.0: a frame from its blocks as they are (online feature rows)
    from pandas.api.internals import create_dataframe_from_blocks
except ImportError:  # pragma: no cover - older pandas builds the frame the usual way
    create_dataframe_from_blocks = None

__all__ = [
    "compute_features",
    "features_with_block",
    "symptomatic",
    "FEATURE_COLUMNS",
    "NEIGHBOUR_LEVELS",
    "H3_RESOLUTION",
    "hours_to_critical",
    "group_index",
    "RX_DROP_DB",
    "LOST_LOSS_PCT",
]

NEIGHBOUR_LEVELS = ("box", "pon", "olt", "geo")
#: H3 resolution of the geo cells (~0.7 km² hexagons). [-]
H3_RESOLUTION = 8
#: Fall of an ONU's 1 h mean RX below its 7-day mean that counts as an optical drop
#: (a box fault's step is 4-9 dB; the reading noise is a few tenths). [dB]
RX_DROP_DB = 3.0
_EVENTS_1H_24H = ("LOS", "DYING_GASP", "PPPOE_DOWN", "HIGH_BER", "LOW_RX", "DHCP_FAIL")

FEATURE_COLUMNS: tuple[str, ...] = (
    "rx_dbm", "tx_dbm", "olt_rx_dbm", "snr_db", "latency_ms", "loss_pct", "log10_ber",
    "crc_errors_1h", "online", "stale_min", "offline_for_min", "pppoe_down",
    "pppoe_down_for_min", "uptime_h",
    "rx_mean_15m", "rx_mean_1h", "rx_min_1h", "rx_mean_24h", "rx_base_7d", "rx_delta_7d",
    "rx_slope_1h", "rx_slope_24h", "rx_hours_to_critical", "olt_rx_delta_7d",
    "olt_rx_slope_24h", "tx_delta_7d", "tx_slope_24h", "latency_mean_1h", "loss_mean_1h", "latency_delta_24h", "latency_delta_7d",
    "flaps_1h", "flaps_24h", "offline_share_24h",
    *[f"{e.lower()}_{w}" for e in _EVENTS_1H_24H for w in ("1h", "24h")],
    "reboot_24h", "calls_24h", "calls_7d", "tickets_30d", "visits_30d", "open_order",
    *[f"{lvl}_{what}" for lvl in NEIGHBOUR_LEVELS
      for what in ("share_offline", "share_new_offline", "share_pppoe_down", "share_degraded")],
    # Group sizes of the street box and PON (split ratios; the neighbour rule needs them).
    # OLT and geo-cell sizes are left out: they describe one network's layout and made
    # models trained on one fleet mistake it for a cause on another.
    "box_size", "pon_size",
    "box_dg_share_1h", "pon_dg_share_1h", "olt_los_share_6h", "olt_los_share_24h",
    "geo_dg_share_6h", "olt_alarm_1h", "distance_km",
    # The last reading sent (up to a week back, so also after the ONU went dark) against
    # the week's mean: a dying laser loses TX and OLT RX with RX unchanged, a degrading
    # fibre loses RX (and less OLT RX) with TX unchanged, a hung CPE loses neither.
    "tx_last_delta_7d", "rx_last_delta_7d", "olt_rx_last_delta_7d",
    # How the ONU last went down (1 LOS, 0 dying gasp, NaN none in 7 days) and flaps over
    # 6 h and 7 d: a dead laser or fibre stays dark after an LOS for days, a customer's
    # power cut is a dying gasp; a fibre near sensitivity flaps for days.
    "last_down_los", "flaps_6h", "flaps_7d",
    # Share of the other ONUs of the box / PON whose RX dropped >= RX_DROP_DB against their
    # week: a box or feeder fault that weakens the light without cutting it.
    "box_share_rx_drop", "pon_share_rx_drop",
    # Share of the other ONUs of the box / PON that logged an LOS in the last hour: a box
    # or feeder that just went dark (or just came back) while the sessions fail upstream.
    "box_los_share_1h", "pon_los_share_1h",
    # Share of the other ONUs of the box / PON that logged a PPPoE-down in the last hour:
    # an upstream (BNG) failure shorter than the row spacing is over at the next row, and
    # only the burst of PPPoE-downs it left across the PON tells it from a CPE of its own.
    "box_pppoe_down_share_1h", "pon_pppoe_down_share_1h",
    # The same for dying gasps: a power cut shorter than the row spacing is over at the
    # next row, with the ONUs back online and only their gasps in the last hour.
    "box_gasp_share_1h", "pon_gasp_share_1h",
    # Share of the other ONUs of the box / PON that are offline and went down (last LOS or
    # dying gasp) within 15 min of this ONU: an outage takes a group down at once, while
    # two customers of a box of four who switched off days apart are each a third of the
    # other's box offline, which a share alone cannot tell from a small box's outage.
    "box_share_down_together", "pon_share_down_together",
)  # fmt: skip


#: Most groups :func:`_share_down_together` finds one at a time (a scan of the fleet
#: each) instead of sorting the fleet by group. [-]
_FEW_GROUPS = 16
#: The dtype of ``Series.astype(str)`` (pandas' string dtype).
_STR_DTYPE = pd.Series(["x"], dtype=object).astype(str).dtype
#: The feature columns as an index (a frame's columns from a list are inferred anew).
_FEATURE_INDEX = pd.Index(FEATURE_COLUMNS)
#: The columns of :func:`compute_features`' frame, and where each block goes in it.
_FRAME_INDEX = pd.Index(["ts", "onu_id", *FEATURE_COLUMNS])
_PLACE_TS, _PLACE_ID = np.array([0]), np.array([1])
_PLACE_FEATURES = np.arange(2, len(FEATURE_COLUMNS) + 2)


def hours_to_critical(
    rx_dbm: np.ndarray, slope_db_per_h: np.ndarray, horizon_h: float = 720.0
) -> np.ndarray:
    """Hours until RX reaches :data:`~guardian_lib.schema.RX_IMPACT_DBM` (where service suffers) at its current trend.

    Parameters
    ----------
    rx_dbm : ndarray
        Current (1 h mean) RX. [dBm]
    slope_db_per_h : ndarray
        RX trend (24 h slope). [dB/h]
    horizon_h : float, default 720
        Value when RX is not falling (or falls slower than 0.005 dB/h), and the cap. [h]

    Returns
    -------
    ndarray
        0 when RX is already below the critical level; NaN where ``rx_dbm`` is NaN. [h]
    """
    margin = np.asarray(rx_dbm, dtype=float) - RX_IMPACT_DBM
    slope = nan_to_num(np.asarray(slope_db_per_h, dtype=float), nan=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(slope < -0.005, margin / -slope, horizon_h)
    return np.where(np.isnan(margin), np.nan, np.clip(h, 0.0, horizon_h))


def group_index(onus: pd.DataFrame, level: str) -> np.ndarray:
    """Integer group of every ONU at a neighbour ``level`` (one of :data:`NEIGHBOUR_LEVELS`).

    An ONU whose inventory lacks the level's key (no street box, no coordinates: an
    operator's own inventory may not have them) is a group of its own: it has no
    neighbours at that level rather than every such ONU being one another's neighbour.
    """
    own = "\x00" + onus["onu_id"].astype(str)
    if level == "box":
        keys = onus["splitter_id"].astype(object).where(onus["splitter_id"].notna(), own)
    elif level == "pon":
        keys = onus["pon_id"].astype(object).where(onus["pon_id"].notna(), own)
    elif level == "olt":
        keys = (
            onus["olt_id"].astype(object).where(onus["olt_id"].notna(), own)
            if "olt_id" in onus
            else onus["pon_id"].astype(str).str.rsplit("/", n=2).str[0]
        )
    else:
        lat = pd.to_numeric(onus["lat"], errors="coerce").to_numpy(dtype=float)
        lon = pd.to_numeric(onus["lon"], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(lat) & np.isfinite(lon)
        keys = pd.Series(
            [
                h3.latlng_to_cell(float(a), float(b), H3_RESOLUTION) if good else o
                for a, b, good, o in zip(lat, lon, ok, own, strict=True)
            ]
        )
    return pd.factorize(keys.astype(str).to_numpy(), sort=True)[0]


def _neighbour_share(flag: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of *other* ONUs of the same group with ``flag`` (rows × ONUs), and group size.

    ``flag`` holds 0/1 flags or counts: integers, whose float64 sums are exact in any
    order (:func:`~guardian_lib._numeric.group_others`).
    """
    f = np.asarray(flag, dtype=np.float64)
    out, size = group_others(f.reshape(-1, len(group)), group[None, :])
    out /= np.maximum(size - 1, 1)  # in place: the shares of the others' counts
    return out.reshape(f.shape), np.broadcast_to(size[0], f.shape)


def _signal_features(
    cube: Cube, st: _Status, rows: np.ndarray, w: _Windows
) -> dict[str, np.ndarray]:
    """Last optical / quality values and their window means, deltas and slopes."""
    per_h, w15, w1h, w24, w7d = w.per_h, w.w15, w.w1h, w.w24, w.w7d
    v, r, s = cube.values, st.r, st.s
    rx = v["rx_dbm"]
    f: dict[str, np.ndarray] = {}
    for c in ("rx_dbm", "tx_dbm", "olt_rx_dbm", "snr_db", "latency_ms", "loss_pct"):
        f[c] = ffill_at(s[c], 6, r)
    with np.errstate(divide="ignore"):
        f["log10_ber"] = np.log10(np.maximum(ffill_at(s["ber"], 6, r), 1e-15))
    run = cube.running  # window sums a RollingCube keeps tick by tick (online scoring)
    f["crc_errors_1h"] = window_sum(v["crc_errors"], w1h, rows, run.get("crc_errors"))[0]
    f["rx_mean_15m"] = window_mean(rx, w15, rows, run.get("rx_dbm"))
    f["rx_mean_1h"] = window_mean(rx, w1h, rows, run.get("rx_dbm"))
    f["rx_min_1h"] = window_min(rx, w1h, rows)
    f["rx_mean_24h"] = window_mean(rx, w24, rows, run.get("rx_dbm"))
    f["rx_base_7d"] = window_mean(rx, w7d, rows, run.get("rx_dbm"))
    f["rx_delta_7d"] = f["rx_mean_1h"] - f["rx_base_7d"]
    f["rx_slope_1h"] = window_slope(rx, w1h, rows, run.get("rx_dbm")) * per_h
    f["rx_slope_24h"] = window_slope(rx, w24, rows, run.get("rx_dbm")) * per_h
    f["rx_hours_to_critical"] = hours_to_critical(f["rx_mean_1h"], f["rx_slope_24h"])
    olt_rx_run, tx_run, lat_run = (run.get(m) for m in ("olt_rx_dbm", "tx_dbm", "latency_ms"))
    # 7-day means; the underscored keys are not features (compute_features drops them).
    f["_olt_rx_dbm_7d"] = window_mean(v["olt_rx_dbm"], w7d, rows, olt_rx_run)
    f["_tx_dbm_7d"] = window_mean(v["tx_dbm"], w7d, rows, tx_run)
    f["olt_rx_delta_7d"] = window_mean(v["olt_rx_dbm"], w1h, rows, olt_rx_run) - f["_olt_rx_dbm_7d"]
    f["olt_rx_slope_24h"] = window_slope(v["olt_rx_dbm"], w24, rows, olt_rx_run) * per_h
    f["tx_delta_7d"] = window_mean(v["tx_dbm"], w1h, rows, tx_run) - f["_tx_dbm_7d"]
    f["tx_slope_24h"] = window_slope(v["tx_dbm"], w24, rows, tx_run) * per_h
    f["latency_mean_1h"] = window_mean(v["latency_ms"], w1h, rows, lat_run)
    f["loss_mean_1h"] = window_mean(v["loss_pct"], w1h, rows, run.get("loss_pct"))
    f["latency_delta_24h"] = f["latency_mean_1h"] - window_mean(v["latency_ms"], w24, rows, lat_run)
    # Against the week, a slowdown that has lasted hours (a leaking CPE) still shows.
    f["latency_delta_7d"] = f["latency_mean_1h"] - window_mean(v["latency_ms"], w7d, rows, lat_run)
    return f


def _history_features(
    cube: Cube,
    rows: np.ndarray,
    w: _Windows,
    week_means: dict[str, np.ndarray],
    by_type: dict[str, tuple[np.ndarray, np.ndarray]],
) -> dict[str, np.ndarray]:
    """Last readings against the week, how the ONU last went down, flaps over 6 h and 7 d.

    ``week_means`` are the 7-day means of ``tx_dbm``, ``rx_dbm`` and ``olt_rx_dbm`` at the
    rows (from :func:`_signal_features`).
    """
    v, w7d, N = cube.values, w.w7d, cube.n_onus
    f: dict[str, np.ndarray] = {}
    for c, name in (
        ("tx_dbm", "tx_last_delta_7d"),
        ("rx_dbm", "rx_last_delta_7d"),
        ("olt_rx_dbm", "olt_rx_last_delta_7d"),
    ):
        f[name] = last_valid_at(v[c], rows, w7d) - week_means[c]
    none = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    (dg_onu, dg_tick), (los_onu, los_tick) = (by_type.get(t, none) for t in ("DYING_GASP", "LOS"))
    f["last_down_los"] = last_event_at(  # 1 LOS, 0 dying gasp; an LOS wins a tie
        np.concatenate([dg_onu, los_onu]).astype(np.int64),
        np.concatenate([dg_tick, los_tick]).astype(np.int64),
        np.r_[np.zeros(len(dg_onu)), np.ones(len(los_onu))],
        N,
        rows,
        w7d,
    )
    # Flaps (online -> offline transitions) over 6 h and 7 d, from the carried status. The
    # status is carried from a day before the oldest window so that a row's counts depend
    # on its own history only (the same for one online row as in a batch).
    lo, hi = max(int(rows.min()) - w7d - w.w24, 0), int(rows.max()) + 1
    seg = v["online"][lo:hi]
    # Only an ONU that reported offline in the slice can have flapped (few of a fleet);
    # a rolling window marks them as the ticks arrive (the formula gives 0 flaps to an
    # ONU it marked for another report than online or offline).
    marks = cube.status_marks
    if marks and len(rows) == 1 and int(rows[0]) == cube.n_ticks - 1:
        flapped = np.flatnonzero(marks["offline"] >= lo)
    else:
        flapped = np.flatnonzero((seg == 0).any(axis=0))
    f["flaps_6h"], f["flaps_7d"] = np.zeros((len(rows), N)), np.zeros((len(rows), N))
    if len(flapped):
        online = ffill_take(seg, flapped, w.w24)[0]  # ffill(seg[:, flapped], …)
        on = np.where(np.isnan(online), 1.0, online)
        drops = np.zeros_like(on)
        drops[1:] = (on[:-1] == 1) & (on[1:] == 0)
        f["flaps_6h"][:, flapped] = window_sum(drops, 6 * w.w1h, rows - lo)[0]
        f["flaps_7d"][:, flapped] = window_sum(drops, w7d, rows - lo)[0]
    return f


def _events_by_type(events: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``(onu, tick)`` index arrays of the cube's events per type, in event order.

    The columns are read once: selecting rows of a frame per type (string comparisons on
    a column per selection) cost more than the counts themselves on an online tick.
    """
    types = events["type"].to_numpy(dtype=object)
    onu, tick = events["onu"].to_numpy(), events["tick"].to_numpy()
    out = {}
    for etype in pd.unique(types):
        sel = types == etype
        out[str(etype)] = (onu[sel], tick[sel])
    return out


def _event_features(
    cube: Cube, rows: np.ndarray, w: _Windows, by_type: dict[str, tuple[np.ndarray, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Event counts per window, tickets and visits in 30 days, open service orders."""
    N = cube.n_onus
    none = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    f: dict[str, np.ndarray] = {}
    for etype in _EVENTS_1H_24H:
        onu, tick = by_type.get(etype, none)
        for name, wn in (("1h", w.w1h), ("24h", w.w24)):
            f[f"{etype.lower()}_{name}"] = event_counts(onu, tick, N, rows, wn)
    for col, etype, wn in (
        ("reboot_24h", "REBOOT", w.w24),
        ("calls_24h", "CUSTOMER_CALL", w.w24),
        ("calls_7d", "CUSTOMER_CALL", w.w7d),
    ):
        f[col] = event_counts(*by_type.get(etype, none), N, rows, wn)
    so = cube.orders
    f["open_order"] = np.zeros((len(rows), N))
    if len(so) == 0:  # online scoring holds no orders: skip the frame selections
        f["tickets_30d"], f["visits_30d"] = np.zeros((len(rows), N)), np.zeros((len(rows), N))
        return f
    f["tickets_30d"] = event_counts(
        so["onu"].to_numpy(), so["opened_tick"].to_numpy(), N, rows, w.w30d
    )
    done = so[so["completed"].astype(bool)]
    f["visits_30d"] = event_counts(
        done["onu"].to_numpy(), np.minimum(done["closed_tick"].to_numpy(), 2**40), N, rows, w.w30d
    )
    for onu, o, c in so[["onu", "opened_tick", "closed_tick"]].itertuples(index=False):
        f["open_order"][(rows >= o) & (rows < c), onu] = 1.0
    return f


def _neighbour_features(
    cube: Cube,
    st: _Status,
    rows: np.ndarray,
    w: _Windows,
    by_type: dict[str, tuple[np.ndarray, np.ndarray]],
) -> dict[str, np.ndarray]:
    """Shares of offline / degraded neighbours and recent LOS / dying gasps per level."""
    N, r, s = cube.n_onus, st.r, st.s
    off_rows = st.offline_at(r)
    new_off = off_rows & ~st.offline_at(np.maximum(r - w.w15, 0))
    ppp_rows = st.pppoe_down_at(r)
    # Degraded service, needed only at the requested rows.
    deg_rows = (st.online_r == 1) & (
        (ffill_at(s["rx_dbm"], 6, r) < RX_CRITICAL_DBM)
        | (ffill_at(s["loss_pct"], 1, r) > 2)
        | (ffill_at(s["latency_ms"], 1, r) > 80)
    )
    none = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    dg, los = by_type.get("DYING_GASP", none), by_type.get("LOS", none)
    ppp_ev = by_type.get("PPPOE_DOWN", none)

    def counts(e: tuple[np.ndarray, np.ndarray], wn: int) -> np.ndarray:
        return event_counts(*e, N, rows, wn)

    dg_1h, los_1h = counts(dg, w.w1h), counts(los, w.w1h)
    ppp_1h = counts(ppp_ev, w.w1h) > 0
    # Recent trouble around the ONU (storms bring fibre cuts and power outages in waves).
    w6h = 6 * w.w1h
    los_6h, los_24h, dg_6h = counts(los, w6h) > 0, counts(los, w.w24) > 0, counts(dg, w6h) > 0
    f: dict[str, np.ndarray] = {}
    n = len(rows)
    for level in NEIGHBOUR_LEVELS:
        g = cube.groups[level] if level in cube.groups else group_index(cube.onus, level)
        # Every flag of the level in one call: stacked flags are rows of one bincount,
        # each (row, group) cell summed in the same ONU order as a call of its own.
        flags = {
            f"{level}_share_offline": off_rows,
            f"{level}_share_new_offline": new_off,
            f"{level}_share_pppoe_down": ppp_rows,
            f"{level}_share_degraded": deg_rows,
        }
        if level == "olt":
            flags["olt_los_share_6h"], flags["olt_los_share_24h"] = los_6h, los_24h
        if level == "geo":
            flags["geo_dg_share_6h"] = dg_6h
        if level in ("box", "pon"):
            flags[f"{level}_los_share_1h"] = los_1h > 0
            flags[f"{level}_pppoe_down_share_1h"] = ppp_1h
            flags[f"{level}_gasp_share_1h"] = dg_1h > 0
            flags["_dg_1h"], flags["_los_1h"] = dg_1h + 0.0, los_1h + 0.0
        stacked = np.concatenate([np.asarray(v, dtype=np.float64) for v in flags.values()])
        shares, size = _neighbour_share(stacked, g)
        for k, name in enumerate(flags):
            f[name] = shares[k * n : (k + 1) * n]
        f[f"{level}_size"] = np.asarray(size[:n], dtype=float)
        if level in ("box", "pon"):
            dg_n, los_n = f.pop("_dg_1h"), f.pop("_los_1h")
            with np.errstate(invalid="ignore", divide="ignore"):
                f[f"{level}_dg_share_1h"] = np.where(
                    dg_n + los_n > 0, dg_n / np.maximum(dg_n + los_n, 1e-12), np.nan
                )
    return f


def _share_down_together(
    down_tick: np.ndarray, offline: np.ndarray, group: np.ndarray, tol: int
) -> np.ndarray:
    """Share of the *other* ONUs of the group that are offline and went down within ``tol``
    ticks of this (offline) ONU; 0 for an online ONU or one without a known down time.

    ``down_tick`` (rows × ONUs) is the tick of each ONU's last LOS / dying gasp (NaN
    none), ``offline`` the status at the rows.
    """
    down = offline & np.isfinite(down_tick)
    out = np.zeros(down_tick.shape, dtype=np.float64)
    # Only the groups with a dark ONU (a handful of a fleet's boxes and PONs), each
    # group's members in fleet order: found one group at a time while they are few,
    # else as ranges of the group-sorted ONUs.
    hit = np.unique(group[np.flatnonzero(down.any(axis=0))])
    if len(hit) <= _FEW_GROUPS:
        groups = [np.flatnonzero(group == g) for g in hit.tolist()]
    else:
        order = np.argsort(group, kind="stable")
        starts = np.searchsorted(group[order], hit, "left")
        ends = np.searchsorted(group[order], hit, "right")
        groups = [order[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    for members in groups:
        if len(members) < 2:
            continue
        d = np.where(down[:, members], down_tick[:, members], np.nan)
        # Pairs within the group, a bounded number of rows at a time (a PON of 128).
        step = max(1, 4_000_000 // len(members) ** 2)
        for lo in range(0, len(d), step):
            part = d[lo : lo + step]
            close = np.abs(part[:, :, None] - part[:, None, :]) <= tol  # NaN is never close
            own = down[lo : lo + step, members]
            out[lo : lo + step, members] = (close.sum(axis=2) - own) / (len(members) - 1)
    return out


def _site_features(cube: Cube, rows: np.ndarray, w1h: int) -> dict[str, np.ndarray]:
    """OLT alarm in the last hour and the ONU's distance [km]."""
    N = cube.n_onus
    f: dict[str, np.ndarray] = {"olt_alarm_1h": np.zeros((len(rows), N))}
    if len(cube.olt_alarms):  # none online: skip reading the inventory's OLT names
        olt_ids = (
            cube.onus["olt_id"].astype(str).to_numpy()
            if "olt_id" in cube.onus
            else cube.onus["pon_id"].astype(str).str.rsplit("/", n=2).str[0].to_numpy()
        )
        for olt, tick in cube.olt_alarms[["olt_id", "tick"]].itertuples(index=False):
            hit = (rows >= tick) & (rows < tick + w1h)
            f["olt_alarm_1h"][np.ix_(hit, olt_ids == olt)] = 1.0
    f["distance_km"] = np.broadcast_to(
        cube.onus["distance_m"].to_numpy(dtype=float) / 1000, (len(rows), N)
    )
    return f


def compute_features(cube: Cube, rows: np.ndarray | None = None) -> pd.DataFrame:
    """Features of every ONU at each requested tick.

    Parameters
    ----------
    cube : Cube
        Telemetry and events; it must reach back far enough for the longest window
        (30 days for tickets and visits, 7 days for baselines) for exact values.
    rows : ndarray of int, optional
        Tick indices of the cube to compute at (default: all ticks).

    Returns
    -------
    pandas.DataFrame
        ``ts`` (UTC), ``onu_id`` and :data:`FEATURE_COLUMNS` (float32), one row per
        (tick, ONU), ordered by tick then ONU.
    """
    return features_with_block(cube, rows)[0]


def features_with_block(
    cube: Cube, rows: np.ndarray | None = None
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """:func:`compute_features`, and the float32 block its feature columns are read from.

    Returns
    -------
    features : pandas.DataFrame
        As :func:`compute_features`.
    block : ndarray of float32 or None
        Shape ``(len(FEATURE_COLUMNS), len(features))``: row ``c`` holds the values of
        ``features[FEATURE_COLUMNS[c]]`` (a scorer reads its matrix and the symptom
        flags from it without a pandas selection per round); None without rows. Shared
        with the frame: do not write to it.
    """
    T, N = cube.n_ticks, cube.n_onus
    rows = np.arange(T) if rows is None else np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return pd.DataFrame(columns=["ts", "onu_id", *FEATURE_COLUMNS]), None
    w = _windows(cube.tick_s)
    st = _status(cube, rows, w.w24)
    sig = _signal_features(cube, st, rows, w)
    week_means = {"tx_dbm": sig["_tx_dbm_7d"], "rx_dbm": sig["rx_base_7d"]}
    week_means["olt_rx_dbm"] = sig["_olt_rx_dbm_7d"]
    by_type = cube.events_by_type or _events_by_type(cube.events)
    f = {
        **sig,
        **_status_features(cube, st, w),
        **_event_features(cube, rows, w, by_type),
        **_neighbour_features(cube, st, rows, w, by_type),
        **_site_features(cube, rows, w.w1h),
        **_history_features(cube, rows, w, week_means, by_type),
    }
    rx_drop = f["rx_delta_7d"] <= -RX_DROP_DB  # NaN (no reading in the hour) is no drop
    # Tick of each ONU's last LOS or dying gasp in 24 h (how long a status run is followed).
    none = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    downs = [by_type.get(t, none) for t in ("LOS", "DYING_GASP")]
    down_onu = np.concatenate([d[0] for d in downs]).astype(np.int64)
    down_tick = np.concatenate([d[1] for d in downs]).astype(np.int64)
    last_down = last_event_at(down_onu, down_tick, down_tick, N, rows, w.w24)
    for level in ("box", "pon"):
        g = cube.groups[level] if level in cube.groups else group_index(cube.onus, level)
        f[f"{level}_share_rx_drop"], _ = _neighbour_share(rx_drop, g)
        f[f"{level}_share_down_together"] = _share_down_together(
            last_down, st.offline_at(st.r), g, w.w15
        )
    ids = cube.onus["onu_id"]
    if ids.dtype != _STR_DTYPE:  # already strings (an inventory read by pandas): as they are
        ids = ids.astype(str)
    # The features as one float32 block (a frame built from ~100 separate columns costs
    # pandas ~1 ms per call to check and stack them), ts and onu_id in front.
    # Each feature is (rows × ONUs); stacked and cast to float32 in one call, feature c's
    # row of the block is its values row after row, as ``reshape(-1)`` reads them.
    block = np.concatenate(
        [f[c] for c in FEATURE_COLUMNS], axis=0, dtype=np.float32, casting="unsafe"
    ).reshape(len(FEATURE_COLUMNS), len(rows) * N)
    ts = cube.tick_times(rows).repeat(N)
    if len(rows) == 1 and ids.dtype == _STR_DTYPE and create_dataframe_from_blocks is not None:
        # Online (one row per ONU): the frame from its three blocks as they are — the
        # timestamps, the ids' string array and the features — without the checks and
        # column inserts of the constructor (they cost more than half the frame).
        frame = create_dataframe_from_blocks(
            [(ts.array, _PLACE_TS), (ids.array, _PLACE_ID), (block, _PLACE_FEATURES)],
            index=pd.RangeIndex(N),
            columns=_FRAME_INDEX,
        )
        return frame, block
    out = pd.DataFrame(block.T, columns=_FEATURE_INDEX, copy=False)  # a view of the block
    out.insert(0, "onu_id", ids.array if len(rows) == 1 else np.tile(ids.to_numpy(), len(rows)))
    out.insert(0, "ts", ts)
    return out, block


def symptomatic(features: pd.DataFrame | Mapping[str, np.ndarray]) -> np.ndarray:
    """Rows that show a symptom an operator can see.

    The ONU is offline, online without PPPoE, has loss > 2 %, latency > 80 ms or
    RX < −27 dBm, or logged LOS, dying gasp, PPPoE down, high BER or low RX in the last
    hour. These are the rows whose cause the cause classifier explains.

    Parameters
    ----------
    features : pandas.DataFrame or mapping of str to ndarray
        Feature rows (:func:`compute_features`), or their columns as arrays (e.g. the
        rows of :func:`features_with_block`'s block by ``FEATURE_COLUMNS``): the same
        flags either way.
    """
    f = features

    def col(c: str) -> np.ndarray:
        v = f[c]
        return v.to_numpy() if isinstance(v, pd.Series) else np.asarray(v)

    ev = col("los_1h") + col("dying_gasp_1h") + col("pppoe_down_1h") + col("high_ber_1h")
    ev = ev + col("low_rx_1h")
    # A missing reading is no symptom: NaN compares False, as the 0 it once became
    # (np.nan_to_num) did; ±inf compare as the largest finite values it became.
    return (
        (col("online") == 0)
        | (col("pppoe_down") == 1)
        | (col("loss_pct") > 2)
        | (col("latency_ms") > 80)
        | (col("rx_dbm") < RX_CRITICAL_DBM)
        | (ev > 0)
    )
