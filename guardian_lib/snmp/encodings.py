"""Vendor encodings of ONU optical levels and identifiers, decoded to SI-style units.

One function per encoding. Each takes the raw values as the OLT sent them (a sequence of
ints or strings, or ``None`` where the OLT sent nothing) and returns float64 dBm with NaN
wherever the OLT gave no reading: vendor sentinels (e.g. Huawei 2147483647, ZTE -80000 /
65535000), non-positive linear powers, unparsable strings and absent values. Profiles name
the encoding and its parameters (:mod:`guardian_lib.snmp.profiles`); no vendor branch lives
in code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "ENCODINGS",
    "decode_dbm",
    "scaled_dbm",
    "linear_mw_dbm",
    "dbm_in_string",
    "decimal_string_dbm",
    "decode_serial",
    "serial_from_length_prefixed_index",
]

_DBM_IN_PARENS = re.compile(r"\(\s*([-+]?\d+(?:\.\d+)?)\s*dBm\s*\)", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*(?:dBm)?\s*$", re.IGNORECASE)


def _as_float_array(raw: Iterable[Any], sentinels: Sequence[float]) -> np.ndarray:
    """Raw numbers as float64; ``None``, non-numbers and sentinels become NaN."""
    values = list(raw)
    out = np.full(len(values), np.nan)
    bad = set(float(s) for s in sentinels)
    for i, v in enumerate(values):
        if v is None or isinstance(v, (bytes, str)):
            try:
                f = float(v) if v is not None else math.nan
            except ValueError:
                f = math.nan
        else:
            f = float(v)
        if f in bad:
            f = math.nan
        out[i] = f
    return out


def scaled_dbm(
    raw: Sequence[Any],
    scale: float = 1.0,
    offset: float = 0.0,
    sentinels: Sequence[float] = (),
) -> np.ndarray:
    """Linear-coded dBm: ``raw · scale + offset``.

    Parameters
    ----------
    raw : sequence of int or None
        Integers as the OLT sent them. [vendor unit]
    scale : float, default 1.0
        dBm per raw unit, e.g. 0.01 for centi-dBm, 0.002 for ZTE 3902.1012. [dBm]
    offset : float, default 0.0
        Added after scaling, e.g. -100 for Huawei OLT RX, -30 for ZTE 3902.1012. [dBm]
    sentinels : sequence of int
        Raw values that mean "no reading"; they map to NaN. [vendor unit]

    Returns
    -------
    dbm : ndarray of float64
        Optical power, NaN where there is no reading. [dBm]

    Examples
    --------
    >>> scaled_dbm([-2150, 2147483647], scale=0.01, sentinels=[2147483647]).tolist()
    [-21.5, nan]
    """
    values = _as_float_array(raw, sentinels)
    return values * float(scale) + float(offset)


def linear_mw_dbm(
    raw: Sequence[Any], scale: float = 1.0, sentinels: Sequence[float] = ()
) -> np.ndarray:
    """Linear power coded as ``raw · scale`` milliwatts, converted to dBm.

    Parameters
    ----------
    raw : sequence of int or None
        Integers as the OLT sent them. [vendor unit]
    scale : float, default 1.0
        Milliwatts per raw unit, e.g. 1e-4 for Calix AXOS (0.1 µW). [mW]
    sentinels : sequence of int
        Raw values that mean "no reading". [vendor unit]

    Returns
    -------
    dbm : ndarray of float64
        ``10·log10(mW)``; NaN for sentinels and non-positive powers. [dBm]

    Examples
    --------
    >>> round(float(linear_mw_dbm([301], scale=1e-4)[0]), 3)
    -15.214
    """
    mw = _as_float_array(raw, sentinels) * float(scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mw > 0, 10.0 * np.log10(np.where(mw > 0, mw, 1.0)), np.nan)


def _dbm_from_text(
    raw: Sequence[Any], find: Callable[[str], re.Match | None], sentinels: Sequence[float]
) -> np.ndarray:
    """dBm figures found by ``find`` (a compiled pattern's search or match) in strings."""
    out = np.full(len(raw), np.nan)
    bad = set(float(s) for s in sentinels)
    for i, v in enumerate(raw):
        text = v.decode("latin-1") if isinstance(v, bytes) else v
        m = find(text) if isinstance(text, str) else None
        if m:
            f = float(m.group(1))
            out[i] = math.nan if f in bad else f
    return out


def dbm_in_string(raw: Sequence[Any], sentinels: Sequence[float] = ()) -> np.ndarray:
    """dBm figure in parentheses inside a string, e.g. ``"0.03 mW (-14.61 dBm)"`` (V-SOL EPON).

    Parameters
    ----------
    raw : sequence of str, bytes or None
        Strings as the OLT sent them. [-]
    sentinels : sequence of float
        Decoded dBm values that mean "no reading". [dBm]

    Returns
    -------
    dbm : ndarray of float64
        Optical power; NaN where no ``(… dBm)`` figure is present. [dBm]

    Examples
    --------
    >>> dbm_in_string(["0.03 mW (-14.61 dBm)", "N/A"]).tolist()
    [-14.61, nan]
    """
    return _dbm_from_text(raw, _DBM_IN_PARENS.search, sentinels)


def decimal_string_dbm(raw: Sequence[Any], sentinels: Sequence[float] = ()) -> np.ndarray:
    """dBm sent as a decimal string, e.g. ``"-10.47"`` (V-SOL GPON).

    Parameters
    ----------
    raw : sequence of str, bytes or None
        Strings as the OLT sent them. [-]
    sentinels : sequence of float
        Decoded values that mean "no reading". [dBm]

    Returns
    -------
    dbm : ndarray of float64
        Optical power; NaN for anything that is not a plain number. [dBm]

    Examples
    --------
    >>> decimal_string_dbm(["-10.47", "", None]).tolist()
    [-10.47, nan, nan]
    """
    return _dbm_from_text(raw, _NUMBER.match, sentinels)


#: Encoding name (as written in profiles) → decoding function to dBm.
ENCODINGS: dict[str, Callable[..., np.ndarray]] = {
    "scaled": scaled_dbm,
    "linear_mw": linear_mw_dbm,
    "dbm_in_string": dbm_in_string,
    "decimal_string": decimal_string_dbm,
}


def decode_dbm(raw: Sequence[Any], encoding: str, **params: Any) -> np.ndarray:
    """Decode raw optical values with the named encoding (see :data:`ENCODINGS`).

    Parameters
    ----------
    raw : sequence
        Values as the OLT sent them. [vendor unit]
    encoding : str
        A key of :data:`ENCODINGS`.
    **params
        The encoding's parameters (``scale``, ``offset``, ``sentinels``).

    Returns
    -------
    dbm : ndarray of float64
        Optical power with NaN where there is no reading. [dBm]
    """
    try:
        fn = ENCODINGS[encoding]
    except KeyError:
        raise ValueError(
            f"unknown optical encoding {encoding!r}: expected one of {sorted(ENCODINGS)}"
        ) from None
    return fn(raw, **params)


def decode_serial(raw: Any, encoding: str = "string") -> str | None:
    """ONU serial number from an SNMP value.

    Parameters
    ----------
    raw : bytes, str or None
        The value as sent.
    encoding : {'string', 'gpon_octets', 'hex_string'}
        ``string``: printable text as is. ``gpon_octets``: 8 octets, 4 ASCII vendor letters
        plus 4 binary bytes (Huawei ``hwGponDeviceOntSn``), shown as ``HWTC1A2B3C4D``.
        ``hex_string``: 16 hex digits (``48575443…``) of the same 8 octets.

    Returns
    -------
    serial : str or None
        None where the OLT sent nothing usable.

    Examples
    --------
    >>> decode_serial(b"HWTC\\x1a+<M", "gpon_octets")
    'HWTC1A2B3C4D'
    """
    if raw is None:
        return None
    data = raw if isinstance(raw, bytes) else str(raw).encode("latin-1")
    if encoding == "hex_string":
        text = data.decode("ascii", "replace").strip().replace(" ", "").replace(":", "")
        try:
            data = bytes.fromhex(text)
        except ValueError:
            return None
        encoding = "gpon_octets"
    if encoding == "gpon_octets":
        if len(data) == 8 and data[:4].isalpha() and data[:4].isascii():
            return data[:4].decode("ascii") + data[4:].hex().upper()
        encoding = "string"
    if encoding == "string":
        text = data.decode("utf-8", "replace").strip().strip("\x00")
        return text or None
    raise ValueError(
        f"unknown serial encoding {encoding!r}: expected string, gpon_octets or hex_string"
    )


def serial_from_length_prefixed_index(index: str) -> str | None:
    """Serial carried in a table index as ``<len>.<ASCII codes>`` (Ubiquiti UFiber).

    Parameters
    ----------
    index : str
        Dotted index, e.g. ``"12.85.66.78.84.50.48.55.51.49.56.56.56"``.

    Returns
    -------
    serial : str or None
        ``"UBNT20731888"``, or None when the index is not length-prefixed ASCII.

    Examples
    --------
    >>> serial_from_length_prefixed_index("4.85.66.78.84")
    'UBNT'
    """
    try:
        parts = [int(p) for p in index.split(".")]
    except ValueError:
        return None
    if not parts or parts[0] != len(parts) - 1 or not all(32 <= c < 127 for c in parts[1:]):
        return None
    return "".join(chr(c) for c in parts[1:])
