"""``frame_from_columns`` builds the frame the pandas constructor builds, bit for bit."""

import numpy as np
import pandas as pd
import pytest

from guardian_lib._frames import frame_from_columns


def _plain(cols, index=None):
    return pd.DataFrame(cols, index=index, copy=False)


def _check(cols, index=None):
    got, want = frame_from_columns(cols, index), _plain(cols, index)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert list(got.dtypes) == list(want.dtypes)
    assert got.columns.dtype == want.columns.dtype and got.index.equals(want.index)
    for c in cols:  # missing values stay where they were, of the same kind
        a, b = got[c].to_numpy(), want[c].to_numpy()
        assert a.dtype == b.dtype and (pd.isna(a) == pd.isna(b)).all()
    return got


def _mixed(rng, n):
    x = rng.normal(size=n)
    x[rng.random(n) < 0.2] = np.nan
    x[rng.random(n) < 0.05] = np.inf
    return {
        "ts": pd.array(pd.date_range("2026-03-01", periods=n, freq="5min", tz="UTC")),
        "onu_id": pd.array([f"ONU{i:05d}" for i in range(n)], dtype="str"),
        "risk": x,
        "online": rng.random(n) < 0.9,
        "code": rng.integers(-5, 5, n),
        "f32": rng.normal(size=n).astype(np.float32),
        "down_type": pd.Categorical.from_codes(
            rng.integers(0, 3, n), categories=["none", "LOS", "DYING_GASP"]
        ),
        "count": rng.poisson(2.0, n).astype(np.uint16),
        "neg_zero": np.where(rng.random(n) < 0.5, -0.0, 0.0),
        "flag": rng.random(n) < 0.1,
    }


@pytest.mark.parametrize("n", [0, 1, 257])
def test_mixed_columns_equal_the_constructors_frame(rng, n):
    cols = _mixed(rng, n)
    frame = _check(cols)
    assert (
        np.signbit(frame["neg_zero"].to_numpy()).tolist() == np.signbit(cols["neg_zero"]).tolist()
    )
    _check(cols, pd.Index([f"ONU{i:05d}" for i in range(n)], name="onu_id"))


@pytest.mark.parametrize(
    "other",
    [
        lambda n: np.array([f"s{i}" for i in range(n)], dtype=object),  # inferred as str
        lambda n: [1.5] * n,  # a list
        lambda n: np.arange(n).astype("datetime64[s]"),  # a datetime64 ndarray
        lambda n: pd.array(np.arange(n, dtype=float)),  # a NumpyExtensionArray-like array
    ],
)
def test_other_columns_take_the_constructor(rng, other):
    cols = _mixed(rng, 20)
    cols["other"] = other(20)
    _check(cols)


def test_a_column_the_constructor_refuses_is_refused(rng):
    cols = _mixed(rng, 20)
    cols["other"] = np.zeros((20, 1))
    with pytest.raises(ValueError, match="1-dimensional"):
        frame_from_columns(cols)


def test_the_frame_does_not_change_with_its_columns(rng):
    cols = _mixed(rng, 30)
    frame = frame_from_columns(cols)
    before = frame.copy()
    cols["risk"][:] = 7.0
    cols["online"][:] = False
    pd.testing.assert_frame_equal(frame, before, check_exact=True)
