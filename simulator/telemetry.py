"""One telemetry tick for the whole fleet, as numpy arrays.

:func:`compute_tick` turns the static optics of the topology and the current fault
effects into readings for every ONU at once; :func:`detect_events` compares two ticks
and returns the events a management system would have logged between them. No Python
loop runs per ONU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from guardian_lib.schema import RX_CRITICAL_DBM
from simulator import optics
from simulator.faults import Effects
from simulator.topology import Topology

__all__ = [
    "TickState",
    "compute_tick",
    "detect_events",
    "traffic_load",
    "nan_to_zero",
    "optical_levels_dbm",
    "upstream_lost",
    "DOWN_NONE",
    "DOWN_LOS",
    "DOWN_DYING_GASP",
    "DOWN_ADMIN",
    "LOW_RX_DBM",
    "HIGH_BER",
]

DOWN_NONE, DOWN_LOS, DOWN_DYING_GASP = 0, 1, 2
#: Down cause of an ONU the OLT keeps offline: not authorized, deactivated, or on a shut
#: PON port (see :mod:`simulator.admin`); no LOS / dying gasp event is logged for it.
DOWN_ADMIN = 3
#: RX below this is logged as LOW_RX (warning band −25…−27, critical below). [dBm]
LOW_RX_DBM = RX_CRITICAL_DBM
#: BER above this is logged as HIGH_BER. [-]
HIGH_BER = 1e-6
#: Local time offset of the simulated ISP (Brazil, UTC−3). [h]
LOCAL_UTC_OFFSET_H = -3.0


@dataclass
class TickState:
    """Readings of every ONU at one tick; arrays are aligned with ``topology.onus``.

    Attributes
    ----------
    ts : pandas.Timestamp
        Tick time (UTC).
    now_s : float
        Seconds since scenario start. [s]
    rx_dbm, tx_dbm, olt_rx_dbm : ndarray
        ONU RX, ONU TX and OLT-side RX of the ONU; NaN when offline. [dBm]
    snr_db : ndarray
        [dB]
    ber : ndarray
        [-]
    crc_errors : ndarray of int64
        CRC errors during the tick. [-]
    latency_ms, loss_pct : ndarray
        Round-trip latency [ms] and packet loss [%]; NaN without a PPPoE session.
    online, pppoe_up, cpe_hung : ndarray of bool
    uptime_s : ndarray of int64
        Time since the ONU last booted. [s]
    down_cause : ndarray of int8
        0 none, 1 LOS, 2 dying gasp (power loss or reboot), 3 administratively down.
    cpe_leaking : ndarray of bool or None
        The CPE is slowing down before a hang (latency, failed DHCP renewals).
    """

    ts: pd.Timestamp
    now_s: float
    rx_dbm: np.ndarray
    tx_dbm: np.ndarray
    olt_rx_dbm: np.ndarray
    snr_db: np.ndarray
    ber: np.ndarray
    crc_errors: np.ndarray
    latency_ms: np.ndarray
    loss_pct: np.ndarray
    online: np.ndarray
    pppoe_up: np.ndarray
    cpe_hung: np.ndarray
    uptime_s: np.ndarray
    down_cause: np.ndarray
    cpe_leaking: np.ndarray | None = None


def nan_to_zero(x: np.ndarray) -> np.ndarray:
    """``x`` with NaN as 0 (compared with thresholds: an offline ONU's reading).

    ``np.nan_to_num`` gives the same comparisons with any finite threshold but costs
    several times more per call (it also replaces infinities, which readings never are).
    """
    return np.where(np.isnan(x), 0.0, x)


def optical_levels_dbm(
    topo: Topology, effects: Effects, now_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True (noise-free) optical levels of every ONU at ``now_s``.

    Returns
    -------
    rx_dbm, olt_rx_dbm, tx_dbm : ndarray, shape (n_onus,)
        Downstream power at the ONU, upstream power at the OLT and the ONU's laser
        power. [dBm]
    """
    offset = effects.rx_offset_db(now_s)
    drift = effects.tx_drift_db(now_s)
    rx = topo.base_rx_dbm - offset
    # Macrobends hurt 1490 nm (down) more than 1310 nm (up).
    olt_rx = topo.base_olt_rx_dbm - 0.6 * offset - drift
    return rx, olt_rx, topo.base_tx_dbm - drift


def upstream_lost(olt_rx_dbm: np.ndarray) -> np.ndarray:
    """Whether the OLT loses an ONU (LOS) at this upstream power. [bool]"""
    return olt_rx_dbm < optics.LOS_DBM - 2


def traffic_load(now_s: float, start: pd.Timestamp) -> float:
    """Relative traffic load of a residential network, peaking around 21 h local. [-]"""
    hour = ((start.hour + start.minute / 60 + now_s / 3600 + LOCAL_UTC_OFFSET_H) % 24 + 24) % 24
    return 0.25 + 0.75 * np.exp(-0.5 * (((hour - 21.0 + 12) % 24 - 12) / 3.5) ** 2)


def compute_tick(
    topo: Topology,
    effects: Effects,
    now_s: float,
    ts: pd.Timestamp,
    load: float,
    boot_s: np.ndarray,
    rebooting_until_s: np.ndarray,
    base_latency_ms: np.ndarray,
    rng: np.random.Generator,
    admin_down: np.ndarray | None = None,
) -> TickState:
    """Readings for every ONU at ``now_s``.

    Parameters
    ----------
    topo : Topology
    effects : Effects
        Active fault effects.
    now_s : float
        Seconds since scenario start. [s]
    ts : pandas.Timestamp
        The same instant in UTC.
    load : float
        Relative traffic load, from :func:`traffic_load`. [-]
    boot_s : ndarray
        Time each ONU last booted. [s]
    rebooting_until_s : ndarray
        The CPE is down for a reboot until this time. [s]
    base_latency_ms : ndarray
        Healthy latency of each customer's path. [ms]
    rng : numpy.random.Generator
    admin_down : ndarray of bool, optional
        ONUs the OLT keeps offline (not authorized, deactivated, PON port shut); they
        draw the same random numbers as the others, so the rest of the fleet is unchanged.

    Returns
    -------
    TickState
    """
    n = topo.n_onus
    noise = rng.normal(0.0, 0.2, size=(3, n))
    rx_true, olt_rx_true, tx_true = optical_levels_dbm(topo, effects, now_s)
    rx = rx_true + noise[0]
    tx = tx_true + noise[1]
    olt_rx = olt_rx_true + noise[2]
    # Near sensitivity the link flaps: LOS for some ticks, back for others.
    u = rng.random(n)
    flap_p = np.clip((optics.SENSITIVITY_DBM + 0.5 - rx) / 2.5, 0.0, 1.0) * 0.6
    optical_los = (rx < optics.LOS_DBM) | (u < flap_p) | upstream_lost(olt_rx)
    power_off = effects.power_n > 0
    rebooting = rebooting_until_s > now_s
    los = (effects.los_n > 0) | optical_los
    online = ~(los | power_off | rebooting)
    down_cause = np.where(
        online, DOWN_NONE, np.where(power_off | rebooting, DOWN_DYING_GASP, DOWN_LOS)
    ).astype(np.int8)
    if admin_down is not None:
        online = online & ~admin_down
        down_cause[admin_down] = DOWN_ADMIN
    cpe_hung = effects.hang_n > 0
    pppoe_up = online & (effects.pppoe_n == 0) & ~cpe_hung
    ber = optics.ber_from_rx(rx)
    snr = optics.snr_from_rx(rx) + rng.normal(0.0, 0.3, n)
    crc = rng.poisson(np.minimum(ber * 2e9 * load, 1e7))
    wifi = effects.wifi_n > 0
    leaking = effects.leak_n > 0
    symptom = effects.symptom_n > 0
    degraded = ber > HIGH_BER
    latency = (
        base_latency_ms * (1 + 0.6 * load)
        + rng.exponential(2.0, n)
        + wifi * rng.uniform(40, 160, n)
        + symptom * rng.uniform(80, 300, n)
        + degraded * rng.uniform(10, 60, n)
        + leaking * rng.uniform(15, 45, n)
    )
    loss = (
        0.02
        + 0.3 * load * rng.random(n)
        + wifi * rng.uniform(2, 9, n)
        + symptom * rng.uniform(5, 30, n)
        + np.minimum(ber * 1e6, 20.0)
    )
    nan = np.nan
    return TickState(
        ts=ts,
        now_s=now_s,
        rx_dbm=np.where(online, rx, nan),
        tx_dbm=np.where(online, tx, nan),
        olt_rx_dbm=np.where(online, olt_rx, nan),
        snr_db=np.where(online, snr, nan),
        ber=np.where(online, ber, nan),
        crc_errors=np.where(online, crc, 0).astype(np.int64),
        latency_ms=np.where(pppoe_up, latency, nan),
        loss_pct=np.where(pppoe_up, np.minimum(loss, 100.0), np.where(online, 100.0, nan)),
        online=online,
        pppoe_up=pppoe_up,
        cpe_hung=cpe_hung,
        uptime_s=np.maximum(now_s - boot_s, 0).astype(np.int64),
        down_cause=down_cause,
        cpe_leaking=leaking & pppoe_up,
    )


def detect_events(
    prev: TickState, cur: TickState, rng: np.random.Generator
) -> list[tuple[np.ndarray, str, str]]:
    """Events logged between two ticks.

    Parameters
    ----------
    prev, cur : TickState
    rng : numpy.random.Generator
        For events that are logged only sometimes (DHCP retries of a hung CPE).

    Returns
    -------
    list of (onu_rows, type, severity)
        One entry per event type; ``onu_rows`` are indices into ``topology.onus``.
    """
    went_down = prev.online & ~cur.online
    came_up = ~prev.online & cur.online
    both_on = prev.online & cur.online
    rx_prev, rx_cur = nan_to_zero(prev.rx_dbm), nan_to_zero(cur.rx_dbm)
    ber_prev, ber_cur = nan_to_zero(prev.ber), nan_to_zero(cur.ber)
    hung = cur.cpe_hung & cur.online
    # A hung CPE retries DHCP often; a leaking one now and then fails a renewal.
    u = rng.random(len(hung))
    leaking = np.zeros_like(hung) if cur.cpe_leaking is None else cur.cpe_leaking
    dhcp_fail = (hung & (u < 0.08)) | (leaking & (u < 0.03))
    return [
        (np.flatnonzero(went_down & (cur.down_cause == DOWN_LOS)), "LOS", "critical"),
        (np.flatnonzero(went_down & (cur.down_cause == DOWN_DYING_GASP)), "DYING_GASP", "major"),
        (np.flatnonzero(came_up), "LINK_UP", "info"),
        (np.flatnonzero(came_up & (prev.down_cause == DOWN_DYING_GASP)), "BOOT", "info"),
        (np.flatnonzero(both_on & prev.pppoe_up & ~cur.pppoe_up), "PPPOE_DOWN", "major"),
        (np.flatnonzero(~prev.pppoe_up & cur.pppoe_up), "PPPOE_UP", "info"),
        (np.flatnonzero(dhcp_fail), "DHCP_FAIL", "minor"),
        (
            np.flatnonzero(both_on & (ber_prev <= HIGH_BER) & (ber_cur > HIGH_BER)),
            "HIGH_BER",
            "minor",
        ),
        (
            np.flatnonzero(both_on & (rx_prev >= LOW_RX_DBM) & (rx_cur < LOW_RX_DBM)),
            "LOW_RX",
            "minor",
        ),
    ]
