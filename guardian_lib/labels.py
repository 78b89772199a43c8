"""Training and evaluation labels built from ground truth (``faults_truth``).

Ground truth exists only for simulated runs; it is read here to build labels for
training and evaluation, never by features, models at prediction time or policies.

Definitions
-----------
cause
    For a row (tick t, ONU) that shows a symptom, the cause class of the fault that
    explains it: among the recorded faults listing the ONU in ``affected_onus`` that are
    active at t or ended less than an hour before (the symptom windows reach back one
    hour: ``start_at ≤ t < end_at + 1 h``), the one of highest precedence
    MASSIVE_OUTAGE > EXTERNAL_NETWORK > EQUIPMENT_FAIL > INTERMITTENT > CUSTOMER_PREMISES
    (a cut fibre explains an outage even if the CPE is also hung). A fault explains only
    symptoms it can produce: an EXTERNAL_NETWORK fault (upstream of the OLT, e.g. a BNG)
    takes sessions down, never the light, so it does not explain a row whose ONU is
    offline: a dead laser or a cut drop fibre during a BNG failure keeps its own cause
    and needs its visit. A hardware failure that strikes an ONU already dark from a power
    cut (the customer's own or an area's) is EQUIPMENT_FAIL from its impact on, while the
    power is still off (the precedence) and after it returns, when the dead ONU stays dark
    with no new alarm and is all that hurts the customer (docs/models.md, "A dead ONU
    that had no power"). A symptomatic row that no fault explains is UNKNOWN. A row *shows a symptom* when the ONU is offline, online
    without PPPoE, has loss > 2 %, latency > 80 ms, RX < −27 dBm, or logged LOS, dying
    gasp, PPPoE down, high BER or low RX in the last hour.
massive
    cause ∈ {MASSIVE_OUTAGE, EXTERNAL_NETWORK}: many customers at once, no visit helps.
risk_H
    For a row where no service-affecting fault hurts the customer at t: 1 when an
    *individual* service-affecting fault's impact starts for that ONU in (t, t + H];
    rows where any service-affecting fault already hurts (``impact_start_at ≤ t <
    end_at``, massive ones included) are not labelled (NaN). Service-affecting: every
    recorded kind except ``customer_power_off`` (the customer's own choice).
    Individual: not massive (MASSIVE_OUTAGE, EXTERNAL_NETWORK). Massive outages are left
    out of the risk because nothing in one ONU's data announces a fibre cut, a power or a
    BNG failure, and no action on one customer prevents it; counting them made each
    week's prevalence swing tenfold with its storms (0.02–0.24 on unseen variants) and
    no forecast could beat a constant. They are the cause classifier's and the incident
    logic's business. ``impact_start_at`` is when the customer is first hurt: at the start for
    most kinds, but when a drifting laser dies, when a leaking CPE hangs and when a
    degrading fibre takes RX below −27.5 dBm. Rows in between (a fault has started but
    does not hurt yet) are exactly the ones a risk model can get right; a fault fixed
    before it hurt (empty ``impact_start_at``) never makes a positive. Rows whose
    horizon reaches past the end of the data (``t + H`` after the last tick) are not
    labelled either: what happens after the run is unknown, not "no fault".
fault_active
    1 when any recorded fault affects the ONU at t (used for the anomaly PR-AUC).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from guardian_lib.features import symptomatic
from guardian_lib.schema import CAUSE_CLASSES

__all__ = [
    "CAUSE_CLASSES",
    "MASSIVE_CLASSES",
    "NOT_SERVICE_AFFECTING_KINDS",
    "RISK_HORIZONS_H",
    "symptomatic",
    "build_labels",
]

MASSIVE_CLASSES = ("MASSIVE_OUTAGE", "EXTERNAL_NETWORK")
RISK_HORIZONS_H = (2, 6, 24)
_PRECEDENCE = ("MASSIVE_OUTAGE", "EXTERNAL_NETWORK", "EQUIPMENT_FAIL", "INTERMITTENT",
               "CUSTOMER_PREMISES")  # fmt: skip
#: Fault kinds that do not count as service-affecting (the customer's own choice); the
#: second is what the ticket label map gives its intervals marked ``service_affecting: false``.
NOT_SERVICE_AFFECTING_KINDS = ("customer_power_off", "not_service_affecting")
_SYMPTOM_WINDOW_US = 3600 * 1_000_000


def _explode(truth: pd.DataFrame) -> pd.DataFrame:
    t = truth.explode("affected_onus").rename(columns={"affected_onus": "onu_id"})
    t = t.dropna(subset=["onu_id"])
    t["onu_id"] = t["onu_id"].astype(str)
    return t


def build_labels(
    features: pd.DataFrame,
    faults_truth: pd.DataFrame,
    observed_until: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Labels aligned with ``features`` rows.

    Parameters
    ----------
    features : pandas.DataFrame
        Must have ``ts``, ``onu_id`` and the feature columns used by :func:`symptomatic`.
    faults_truth : pandas.DataFrame
        The simulator's ground truth (``kind``, ``cause_class``, ``start_at``,
        ``impact_start_at``, ``end_at``, ``affected_onus``).
    observed_until : pandas.Timestamp, optional
        End of the simulated period (default: the last ``ts`` of ``features``); risk
        labels whose horizon reaches past it are NaN.

    Returns
    -------
    pandas.DataFrame
        Same index as ``features``: ``symptomatic`` (bool), ``cause`` (str or None for
        rows without symptoms), ``massive`` (float, NaN without symptoms),
        ``fault_active`` (int) and ``risk_2h``, ``risk_6h``, ``risk_24h`` (float, NaN
        where a service-affecting fault already hurts or the horizon is not observed).
    """
    n = len(features)
    ts = features["ts"].to_numpy("datetime64[us]").astype(np.int64)
    onu = features["onu_id"].astype(str).to_numpy()
    sym = symptomatic(features)
    t = _explode(faults_truth)
    far = np.iinfo(np.int64).max // 2
    start = t["start_at"].to_numpy("datetime64[us]").astype(np.int64)
    end_raw = t["end_at"].to_numpy("datetime64[us]")
    end = np.where(np.isnat(end_raw), far, end_raw.astype(np.int64))
    imp_raw = t["impact_start_at"].to_numpy("datetime64[us]")
    impact = np.where(np.isnat(imp_raw), far, imp_raw.astype(np.int64))
    rank = {c: i for i, c in enumerate(_PRECEDENCE)}
    prec = t["cause_class"].map(rank).to_numpy()
    service = ~t["kind"].isin(NOT_SERVICE_AFFECTING_KINDS).to_numpy()
    upstream = (t["cause_class"] == "EXTERNAL_NETWORK").to_numpy()
    dark = features["online"].to_numpy() == 0
    # Risk counts individual faults only: massive ones have no precursor in the ONU's
    # own data and no per-customer action prevents them (see the module docstring).
    individual = service & ~t["cause_class"].isin(MASSIVE_CLASSES).to_numpy()
    # Group features rows by ONU (vectorised per ONU over its rows and faults).
    best = np.full(n, len(_PRECEDENCE), dtype=np.int64)
    active_any = np.zeros(n, dtype=bool)
    active_service = np.zeros(n, dtype=bool)
    next_impact = np.full(n, far, dtype=np.int64)
    row_order = np.argsort(onu, kind="stable")
    onu_sorted = onu[row_order]
    uniq, starts = np.unique(onu_sorted, return_index=True)
    bounds = dict(zip(uniq, zip(starts, [*starts[1:], len(onu_sorted)], strict=True), strict=True))
    for o, fidx in t.groupby("onu_id").indices.items():
        if o not in bounds:
            continue
        lo, hi = bounds[o]
        rows = row_order[lo:hi]
        rt = ts[rows][:, None]
        act = (start[fidx][None, :] <= rt) & (rt < end[fidx][None, :])
        # A symptom seen in the hour after a fault ended (e.g. an LOS in `los_1h`) is
        # still explained by that fault.
        explains = (start[fidx][None, :] <= rt) & (rt < end[fidx][None, :] + _SYMPTOM_WINDOW_US)
        # An upstream failure cannot make an ONU dark (see the module docstring).
        explains &= ~(upstream[fidx][None, :] & dark[rows][:, None])
        active_any[rows] = act.any(axis=1)
        hurts = (impact[fidx][None, :] <= rt) & (rt < end[fidx][None, :])
        active_service[rows] = (hurts & service[fidx][None, :]).any(axis=1)
        p = np.where(explains, prec[fidx][None, :], len(_PRECEDENCE))
        best[rows] = p.min(axis=1)
        fut = (impact[fidx][None, :] > rt) & individual[fidx][None, :]
        nxt = np.where(fut, impact[fidx][None, :], far).min(axis=1)
        next_impact[rows] = nxt
    cause = np.array([*_PRECEDENCE, "UNKNOWN"], dtype=object)[best]
    cause = np.where(sym, cause, None)
    out = pd.DataFrame(index=features.index)
    out["symptomatic"] = sym
    out["cause"] = cause
    out["massive"] = np.where(sym, np.isin(cause, MASSIVE_CLASSES).astype(float), np.nan)
    out["fault_active"] = active_any.astype(np.int8)
    end = features["ts"].max() if observed_until is None else pd.Timestamp(observed_until)
    end_us = pd.Timestamp(end).value // 1000 if n else 0
    for h in RISK_HORIZONS_H:
        h_us = h * 3600 * 1_000_000
        hit = (next_impact - ts) <= h_us
        unknown = active_service | (ts + h_us > end_us)
        out[f"risk_{h}h"] = np.where(unknown, np.nan, hit.astype(float))
    return out
