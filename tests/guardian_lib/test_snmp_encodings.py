"""Vendor encodings: scales, offsets, strings, serials and the 'no reading' sentinels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from guardian_lib.snmp.encodings import (
    dbm_in_string,
    decimal_string_dbm,
    decode_dbm,
    decode_serial,
    linear_mw_dbm,
    scaled_dbm,
    serial_from_length_prefixed_index,
)


@pytest.mark.parametrize(
    ("raw", "params", "expected"),
    [
        (-2150, {"scale": 0.01}, -21.5),  # Huawei ONT RX, 0.01 dBm
        (7780, {"scale": 0.01, "offset": -100.0}, -22.2),  # Huawei OLT RX (v - 10000) / 100
        (7500, {"scale": 0.002, "offset": -30.0}, -15.0),  # ZTE 3902.1012
        (-21345, {"scale": 0.001}, -21.345),  # ZTE 3902.1082, 0.001 dBm
    ],
)
def test_scaled_dbm_vendor_scales(raw, params, expected):
    assert scaled_dbm([raw], **params)[0] == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("sentinel", "params"),
    [
        (2147483647, {"scale": 0.01}),
        (2147483647, {"scale": 0.01, "offset": -100.0}),
        (-80000, {"scale": 0.001}),
        (65535000, {"scale": 0.001}),
        (65535, {"scale": 0.002, "offset": -30.0}),
    ],
)
def test_sentinels_map_to_nan(sentinel, params):
    sentinels = [2147483647, -80000, 65535000, 65535]
    out = scaled_dbm([sentinel, None, "junk"], sentinels=sentinels, **params)
    assert np.isnan(out).all()


def test_sentinels_only_where_declared():
    # -80000 is a sentinel only for profiles that say so: here it is a (silly) number
    assert scaled_dbm([-80000], scale=0.001)[0] == -80.0


def test_linear_mw_calix():
    out = linear_mw_dbm([301, 43032, 0, -5, None], scale=1e-4, sentinels=[0])
    assert out[0] == pytest.approx(-15.214, abs=1e-3)
    assert out[1] == pytest.approx(6.338, abs=1e-3)
    assert np.isnan(out[2:]).all()


def test_strings():
    assert dbm_in_string([b"2.38 mW (3.77 dBm)"])[0] == pytest.approx(3.77)
    assert np.isnan(dbm_in_string(["0.00 mW", None, ""])).all()
    out = decimal_string_dbm([b"-10.47", "2.10", "N/A", None, "-40"], sentinels=[-40])
    assert out[:2].tolist() == [-10.47, 2.1]
    assert np.isnan(out[2:]).all()


def test_decode_dbm_unknown_encoding_names_choices():
    with pytest.raises(ValueError, match="unknown optical encoding 'centi'.*scaled"):
        decode_dbm([1], "centi")


def test_serials():
    assert decode_serial(b"HWTC\x1a\x2b\x3c\x4d", "gpon_octets") == "HWTC1A2B3C4D"
    assert decode_serial(b"5A54454712345678", "hex_string") == "ZTEG12345678"
    assert decode_serial(b"FHTT00000001", "gpon_octets") == "FHTT00000001"  # text passes
    assert decode_serial(b"", "string") is None
    assert decode_serial(None) is None
    assert serial_from_length_prefixed_index("12.85.66.78.84.50.48.55.51.49.56.56.56") == (
        "UBNT20731888"
    )
    assert serial_from_length_prefixed_index("4194304000.3") is None
    assert math.isnan(scaled_dbm([None])[0])
