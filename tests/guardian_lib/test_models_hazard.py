"""The hazard risk model: risk_2h ≤ risk_6h ≤ risk_24h on every row, and calibrated."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from guardian_lib.models import HazardRiskModel
from guardian_lib.models.hazard import compose_hazards, interval_labels
from guardian_lib.models.training import monotonicity_violations

HORIZONS = (2, 6, 24)


def _survival_data(rng, n):
    """Rows with a feature that sets the rate of an exponential time to the first fault."""
    x = rng.normal(size=n)
    hours_to_fault = rng.exponential(np.exp(4.0 - 1.5 * x))
    X = pd.DataFrame({"x": x, "noise": rng.normal(size=n)})
    Y = np.column_stack([(hours_to_fault <= h).astype(float) for h in HORIZONS])
    return X, Y


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(7)
    X, Y = _survival_data(rng, 30000)
    # The last rows' horizons run past the data: unknown, as build_labels leaves them.
    Y[-300:, 2] = np.nan
    Y[-60:, 1:] = np.nan
    model = HazardRiskModel(n_estimators=40, random_state=0).fit(X, Y)
    return model, rng


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 30), st.just(3)), elements=st.floats(0, 1)))
def test_composed_hazards_never_decrease_with_the_horizon(hazards):
    risk = compose_hazards(hazards)
    assert (np.diff(risk, axis=1) >= 0).all()
    assert ((risk >= 0) & (risk <= 1)).all()
    np.testing.assert_allclose(risk[:, 0], hazards[:, 0], atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 50), st.just(2)),
        elements=st.one_of(
            st.floats(-1e6, 1e6), st.just(np.nan), st.sampled_from([-40.0, 0.0, 1e3])
        ),
    )
)
def test_fitted_model_is_monotone_on_random_inputs(fitted, values):
    model, _ = fitted
    risk = model.predict_risk(pd.DataFrame(values, columns=["x", "noise"]))
    assert monotonicity_violations(risk) == 0
    assert ((risk >= 0) & (risk <= 1)).all()


def test_hazard_risk_is_calibrated_and_beats_the_prevalence(fitted):
    model, rng = fitted
    X, Y = _survival_data(rng, 20000)
    risk = model.predict_risk(X)
    for k in range(len(HORIZONS)):
        y = Y[:, k]
        p = risk[:, k]
        assert np.mean((p - y) ** 2) < np.mean((model.prevalence_[k] - y) ** 2)
        # Reliability: in bins of predicted risk the observed rate matches.
        bins = np.digitize(p, [0.05, 0.2, 0.5])
        for b in np.unique(bins):
            m = bins == b
            if m.sum() > 500:
                assert abs(p[m].mean() - y[m].mean()) < 0.05, (HORIZONS[k], b)
    assert model[24] is model.hazards_[2]
    with pytest.raises(KeyError, match="no risk horizon of 12 h"):
        model[12]


def test_interval_labels_keep_the_rows_at_risk():
    Y = np.array([[1, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 0], [0, np.nan, np.nan]])
    (r0, y0), (r1, y1), (r2, y2) = interval_labels(Y)
    assert r0.tolist() == [0, 1, 2, 3, 4] and y0.tolist() == [1, 0, 0, 0, 0]
    assert r1.tolist() == [1, 2, 3] and y1.tolist() == [1, 0, 0]
    assert r2.tolist() == [2, 3] and y2.tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"not cumulative: row 0 has \[1.0, 0.0, 1.0\]"):
        interval_labels(np.array([[1, 0, 1]]))


def test_hazard_model_refuses_bad_horizons_and_labels(rng):
    X = pd.DataFrame({"x": rng.normal(size=50)})
    Y = np.zeros((50, 3))
    with pytest.raises(ValueError, match="increasing"):
        HazardRiskModel(horizons_h=(6, 2, 24)).fit(X, Y)
    with pytest.raises(ValueError, match=r"Y must have shape \(n_samples, 3\)"):
        HazardRiskModel().fit(X, Y[:, :2])
    Y[:, 2] = np.nan
    with pytest.raises(ValueError, match=r"interval \(6, 24\] h.*longer than 24 h"):
        HazardRiskModel(n_estimators=5).fit(X, Y)
