"""Transparent rule baselines, so that every report shows what the ML adds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from guardian_lib.models.cause import neighbour_cluster_kind, neighbour_massive_rule
from guardian_lib.schema import RX_CRITICAL_DBM

__all__ = ["rule_cause", "rule_massive", "rule_risk", "rule_anomaly", "LOW_RX_DBM"]

#: Critical RX level used by the rules. [dBm]
LOW_RX_DBM = RX_CRITICAL_DBM


def rule_massive(X: pd.DataFrame, min_share: float = 0.3) -> np.ndarray:
    """Massive when a share of the PON or box neighbours is down with this ONU. [0/1]"""
    # An NOC's rule of thumb: two neighbours down with it, whatever the signal.
    together = neighbour_massive_rule(X, min_share=min_share, min_neighbours=2, min_box_together=2)
    return together.astype(float)


def rule_cause(X: pd.DataFrame) -> np.ndarray:
    """Cause by rules of thumb an NOC applies (six classes).

    Neighbours down with it → MASSIVE_OUTAGE; PPPoE down on many (now, or logged in
    the last hour) → EXTERNAL_NETWORK;
    RX critically low or falling → INTERMITTENT; alone with a dying gasp or without
    PPPoE / with bad Wi-Fi → CUSTOMER_PREMISES; alone with LOS → EQUIPMENT_FAIL; else
    UNKNOWN.
    """
    n = len(X)
    out = np.full(n, "UNKNOWN", dtype=object)
    off = X["online"].to_numpy() == 0
    ppp = X["pppoe_down"].to_numpy() == 1
    rx = np.nan_to_num(X["rx_mean_1h"].to_numpy(), nan=0.0)
    dg = X["dying_gasp_1h"].to_numpy() > 0
    loss = np.nan_to_num(X["loss_pct"].to_numpy()) > 2
    out[loss] = "CUSTOMER_PREMISES"
    out[ppp] = "CUSTOMER_PREMISES"
    out[(rx < LOW_RX_DBM) | (np.nan_to_num(X["rx_delta_7d"].to_numpy()) < -2)] = "INTERMITTENT"
    out[off & ~dg] = "EQUIPMENT_FAIL"
    out[off & dg] = "CUSTOMER_PREMISES"
    many_ppp = ppp & (X["pon_share_pppoe_down"].to_numpy() >= 0.3)
    kind = neighbour_cluster_kind(X, min_share=0.3, min_neighbours=2, min_box_together=2)
    # Also a burst of PPPoE-downs across the PON in the last hour (a short BNG failure).
    out[many_ppp | (kind == 2)] = "EXTERNAL_NETWORK"
    out[kind == 1] = "MASSIVE_OUTAGE"
    return out


def rule_risk(X: pd.DataFrame) -> np.ndarray:
    """Risk score from RX: 1 below −27 dBm, 0.5 after a 1 dB drop from baseline, else 0."""
    rx = np.nan_to_num(X["rx_mean_1h"].to_numpy(), nan=0.0)
    delta = np.nan_to_num(X["rx_delta_7d"].to_numpy())
    return np.where(rx < LOW_RX_DBM, 1.0, np.where(delta < -1.0, 0.5, 0.0))


def rule_anomaly(X: pd.DataFrame) -> np.ndarray:
    """Anomaly flag: RX below −27 dBm or loss above 5 % or offline. [0/1]"""
    rx = np.nan_to_num(X["rx_dbm"].to_numpy(), nan=0.0)
    loss = np.nan_to_num(X["loss_pct"].to_numpy())
    return ((rx < LOW_RX_DBM) | (loss > 5) | (X["online"].to_numpy() == 0)).astype(float)
