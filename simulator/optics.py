"""GPON optics: link budgets and the signal-quality curves derived from RX power.

Pure functions over numpy arrays (no I/O, no randomness). Class B+ GPON figures (ITU-T
G.984.2): budget 13–28 dB, fibre ~0.35 dB/km at 1310 nm (upstream) and ~0.25 dB/km
at 1490 nm (downstream), ~0.5 dB per connector or splice, ONU sensitivity about −28 dBm.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from guardian_lib.schema import RX_IMPACT_DBM

__all__ = [
    "ATTENUATION_DB_PER_KM",
    "CONNECTOR_LOSS_DB",
    "SPLITTER_LOSS_DB",
    "BUDGET_B_PLUS_DB",
    "SENSITIVITY_DBM",
    "LOS_DBM",
    "IMPACT_RX_DBM",
    "splitter_loss_db",
    "link_loss_db",
    "ber_from_rx",
    "snr_from_rx",
]

#: Fibre attenuation per wavelength. [dB/km]
ATTENUATION_DB_PER_KM = {1310: 0.35, 1490: 0.25}
#: Loss of one connector or fusion splice. [dB]
CONNECTOR_LOSS_DB = 0.5
#: Typical insertion loss of a 1:N splitter. [dB]
SPLITTER_LOSS_DB = {2: 3.5, 4: 7.0, 8: 10.5, 16: 13.8, 32: 17.0, 64: 20.5}
#: Class B+ optical budget (min, max). [dB]
BUDGET_B_PLUS_DB = (13.0, 28.0)
#: ONU receiver sensitivity: below this BER and CRC errors explode. [dBm]
SENSITIVITY_DBM = -28.0
#: Below this RX power the ONU loses the signal (LOS). [dBm]
LOS_DBM = -30.0
#: Below this RX the customer is hurt: BER passes 1e-6 (loss, CRC bursts) and the link
#: starts to flap (see :func:`ber_from_rx`). [dBm]
IMPACT_RX_DBM = RX_IMPACT_DBM


def splitter_loss_db(ratio: ArrayLike) -> NDArray[np.float64]:
    """Insertion loss of 1:N splitters.

    Parameters
    ----------
    ratio : array_like of int
        Split ratio N (2, 4, 8, 16, 32 or 64). [-]

    Returns
    -------
    loss_db : ndarray
        Insertion loss. [dB]

    Examples
    --------
    >>> splitter_loss_db([4, 16]).tolist()
    [7.0, 13.8]
    """
    ratio = np.asarray(ratio)
    unknown = ~np.isin(ratio, list(SPLITTER_LOSS_DB))
    if unknown.any():
        raise ValueError(
            f"splitter ratio must be one of {sorted(SPLITTER_LOSS_DB)}, got {ratio[unknown][0]}"
        )
    keys = np.array(sorted(SPLITTER_LOSS_DB))
    values = np.array([SPLITTER_LOSS_DB[k] for k in keys])
    return values[np.searchsorted(keys, ratio)]


def link_loss_db(
    fibre_km: ArrayLike,
    splitter_loss: ArrayLike,
    n_connectors: ArrayLike = 4,
    wavelength_nm: int = 1490,
) -> NDArray[np.float64]:
    """Total optical loss between OLT and ONU.

    Parameters
    ----------
    fibre_km : array_like
        Fibre length along the path. [km]
    splitter_loss : array_like
        Sum of splitter insertion losses on the path. [dB]
    n_connectors : array_like, default 4
        Connectors and splices on the path. [-]
    wavelength_nm : {1310, 1490}, default 1490
        Wavelength; sets the attenuation per km (1490 nm downstream, 1310 nm up). [nm]

    Returns
    -------
    loss_db : ndarray
        Path loss. [dB]

    Examples
    --------
    >>> float(link_loss_db(10.0, 20.8, 4, 1490))
    25.3
    """
    if wavelength_nm not in ATTENUATION_DB_PER_KM:
        raise ValueError(f"wavelength_nm must be 1310 or 1490, got {wavelength_nm}")
    km = np.asarray(fibre_km, dtype=float)
    return (
        km * ATTENUATION_DB_PER_KM[wavelength_nm]
        + np.asarray(splitter_loss, dtype=float)
        + np.asarray(n_connectors, dtype=float) * CONNECTOR_LOSS_DB
    )


def ber_from_rx(rx_dbm: ArrayLike) -> NDArray[np.float64]:
    """Pre-FEC bit error ratio as RX power approaches the receiver's sensitivity.

    A steep, monotonic curve: ~1e-12 with 3 dB or more of margin above −25 dBm, 1e-6
    near −27.5 dBm and saturating at 1e-3 at the LOS threshold.

    Parameters
    ----------
    rx_dbm : array_like
        ONU received optical power; NaN where there is no reading. [dBm]

    Returns
    -------
    ber : ndarray
        Bit error ratio, NaN where ``rx_dbm`` is NaN. [-]
    """
    rx = np.asarray(rx_dbm, dtype=float)
    shortfall_db = np.clip(-25.0 - rx, 0.0, None)
    log_ber = np.minimum(-12.0 + 2.4 * shortfall_db, -3.0)
    return np.power(10.0, log_ber)


def snr_from_rx(rx_dbm: ArrayLike) -> NDArray[np.float64]:
    """Electrical SNR of the ONU receiver, linear in the optical margin.

    Parameters
    ----------
    rx_dbm : array_like
        ONU received optical power. [dBm]

    Returns
    -------
    snr_db : ndarray
        Signal-to-noise ratio, floored at 0. [dB]
    """
    rx = np.asarray(rx_dbm, dtype=float)
    return np.clip(24.0 + 0.9 * (rx - SENSITIVITY_DBM) - 0.03 * (rx + 20.0) ** 2, 0.0, None)
