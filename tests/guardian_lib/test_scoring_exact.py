"""The closed loop's fast scoring paths give exactly what the plain computations give.

Online scoring (features at the newest tick, then the model bundle) skips pandas and
scikit-learn overhead: neighbour shares by one ``bincount``, event columns read once
per tick, the status of the ONUs a rolling window marked only, one-row look-backs and
counts, the risk boosters called on the float64 matrix. Each test recomputes the same
values the plain way (sparse group sums, per-type frame selections, every ONU's status,
whole-matrix carries and many-row searches, the estimators' scikit-learn wrappers) and
asserts bit-for-bit equality, on random data and at every decision of a small
closed-loop run.
"""

from dataclasses import replace

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import guardian_lib.features._compute as compute
import guardian_lib.features._status as status
from guardian_lib.features import symptomatic
from guardian_lib.features._windows import event_counts, ffill, last_event_at
from guardian_lib.models._base import positive_proba
from guardian_lib.models.bundle import ANOMALY_COLUMNS
from guardian_lib.models.hazard import compose_hazards
from guardian_lib.models.online import ModelScorer, OnlineScorer
from guardian_lib.schema import CLASS_COLUMNS


def _sparse_share(flag: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference: group sums as a (rows × ONUs) @ (ONUs × groups) sparse product."""
    n_groups = int(group.max()) + 1
    onehot = sparse.csr_matrix(
        (np.ones(len(group)), (np.arange(len(group)), group)), shape=(len(group), n_groups)
    )
    f = flag.astype(np.float64)
    sums = np.asarray((sparse.csr_matrix(f) @ onehot).todense())[:, group] - f
    size = np.bincount(group, minlength=n_groups)[group].astype(np.float64)
    return sums / np.maximum(size - 1, 1), np.broadcast_to(size, flag.shape)


def _events_by_frame(events: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Reference: one frame selection per event type."""
    out = {}
    for etype in events["type"].unique():
        sel = events[events["type"] == etype]
        out[str(etype)] = (sel["onu"].to_numpy(), sel["tick"].to_numpy())
    return out


def _many_rows(fn, rows_arg: int):
    """``fn`` asked for its rows five times over, which takes its many-row path (one
    row is answered by a shortcut), and cut back to the rows asked for."""

    def call(*args):
        args = list(args)
        rows = np.asarray(args[rows_arg])
        args[rows_arg] = np.tile(rows, 5)
        return fn(*args)[: len(rows)]

    return call


#: Reference look-backs and counts for the feature code: the whole matrix carried
#: forward, the many-row searches.
_PLAIN_LOOKBACKS = {
    "ffill_at": lambda x, limit, rows: ffill(x, limit)[rows],
    "last_valid_at": lambda x, rows, limit: ffill(x, limit)[rows].astype(float),
    "event_counts": _many_rows(event_counts, 3),
    "last_event_at": _many_rows(last_event_at, 4),
}


def _plain_predict(bundle, features: pd.DataFrame) -> pd.DataFrame:
    """Reference: every estimator through its scikit-learn API, on the float32 features."""
    X = features.loc[:, list(bundle.feature_columns)]
    out = pd.DataFrame({"ts": features["ts"].array, "onu_id": features["onu_id"].to_numpy()})
    out["anomaly_score"] = bundle.anomaly.anomaly_score(features.loc[:, list(ANOMALY_COLUMNS)])
    sym = symptomatic(features)
    classes = list(bundle.cause.classes_)
    proba = np.full((len(out), len(classes)), np.nan)
    if sym.any():
        proba[sym] = bundle.cause.predict_proba(X[sym])
    for cls, col in CLASS_COLUMNS.items():
        out[col] = proba[:, classes.index(cls)] if cls in classes else np.where(sym, 0.0, np.nan)
    X_risk = X.loc[:, list(bundle.risk_columns)].astype(np.float64)
    hazards = []
    for m in bundle.risk.hazards_:
        if m.booster_ is None:
            hazards.append(m.predict_proba(X_risk)[:, 1])
        else:
            hazards.append(m._calibrated(m.booster_.predict_proba(X_risk)[:, 1]))
    risk = compose_hazards(np.column_stack(hazards))
    for k, h in enumerate(bundle.risk.horizons_h):
        out[f"risk_{h}h"] = risk[:, k]
    return out


@pytest.mark.parametrize("rows", [1, 5])
def test_neighbour_shares_equal_the_sparse_group_sums(rng, rows):
    n = 400
    group = rng.integers(0, 37, n)
    group[::50] = 37 + np.arange(8)  # groups of one ONU: no neighbours
    flags = rng.random((rows, n)) < 0.2
    counts = rng.integers(0, 4, (rows, n)).astype(float)
    for flag in (flags, counts):
        got, size = compute._neighbour_share(flag, group)
        want, want_size = _sparse_share(flag, group)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(size, want_size)


def test_positive_proba_is_the_wrappers_value_bit_for_bit(rng):
    n = 600
    X = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(5)})
    X.loc[rng.random(n) < 0.1, "x1"] = np.nan
    X.loc[rng.random(n) < 0.1, "x2"] = 0.0
    y = ((X["x0"] + np.nan_to_num(X["x1"])) > 0.3).astype(int)
    model = lgb.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1).fit(X, y)
    np.testing.assert_array_equal(positive_proba(model, X), model.predict_proba(X)[:, 1])
    # Not all float64: through the wrapper, same values as float64.
    X32 = X.astype(np.float32)
    np.testing.assert_array_equal(positive_proba(model, X32), model.predict_proba(X32)[:, 1])


@pytest.fixture(scope="module")
def small_bundle(tiny_run):
    """A bundle with a booster per risk interval: the tiny run's risk labels are
    replaced by ones that follow the latency (a quiet run has too few positives)."""
    from guardian_lib.models.training import fit_bundle, labelled_frame

    features, labels = labelled_frame(tiny_run, every_minutes=60)
    score = features["latency_ms"].rank(pct=True).fillna(0.0).to_numpy()
    labels = labels.assign(
        risk_2h=(score > 0.9).astype(float),
        risk_6h=(score > 0.8).astype(float),
        risk_24h=(score > 0.7).astype(float),
    )
    bundle = fit_bundle(features, labels, n_estimators=10)
    assert all(m.booster_ is not None for m in bundle.risk.hazards_)
    bundle.model_version = "exact/1"
    return bundle


def test_every_decision_round_scores_as_the_plain_computation(
    small_bundle, only_fault, monkeypatch
):
    """A closed-loop run with the ML scorer: at each decision the online features equal
    the plain computation over the same window, and the predictions equal the
    estimators' own APIs on those features."""
    from simulator.backtest import run_policy

    checked = []
    fast_call = OnlineScorer.__call__

    def checked_call(self, snapshot=None):
        out = fast_call(self, snapshot)
        with monkeypatch.context() as m:
            m.setattr(compute, "_neighbour_share", _sparse_share)
            m.setattr(compute, "_events_by_type", _events_by_frame)
            for name, plain_fn in _PLAIN_LOOKBACKS.items():
                for module in (compute, status):
                    if hasattr(module, name):
                        m.setattr(module, name, plain_fn)
            # Without the window's status marks and events per type: the status of every
            # ONU over the slice, the events selected from the frame.
            cube = replace(self.cube.cube(), status_marks={}, events_by_type={})
            plain = compute.compute_features(cube, np.array([cube.n_ticks - 1]))
        pd.testing.assert_frame_equal(self.last_features, plain, check_exact=True)
        want = _plain_predict(self.bundle, plain)
        pd.testing.assert_frame_equal(
            out.loc[:, list(want.columns)], want, check_exact=True, check_dtype=False
        )
        checked.append((int(symptomatic(plain).sum()), len(self.cube._events)))
        return out

    monkeypatch.setattr(OnlineScorer, "__call__", checked_call)
    sc = only_fault("cpe_hang", 3000.0, days=0.25)
    faults = sc.faults.model_dump()
    faults["feeder_cut"]["rate_per_year"] = 3000.0
    kpis = run_policy(
        sc.with_overrides(faults=faults),
        "autopilot",
        seed=3,
        scorer=ModelScorer(small_bundle, window_ticks=72, full_every=1),
    )
    # One check per decision round (a round every 3 ticks of 5 min over 6 h) ...
    assert len(checked) == 24 and kpis["safety_violations"] == 0
    # ... on rows with symptoms and with events in the window.
    assert any(s > 0 for s, _ in checked) and any(e > 0 for _, e in checked)


def test_rounds_between_full_predictions_score_their_rows_as_from_the_frame(
    small_bundle, only_fault, monkeypatch
):
    """With ``full_every > 1`` every prediction — of the whole fleet or of the rows
    predicted afresh between — reads its matrix and symptom flags from the features'
    float32 block: the arrays equal the frame's selection and ``predict_columns`` of
    the frame alone, bit for bit."""
    from simulator.backtest import run_policy

    fast_predict = OnlineScorer._predict
    seen = []

    def checked_predict(self, features, sym, block, rows=None):
        out = fast_predict(self, features, sym, block, rows)
        # Between full predictions the round's frame comes with the rows to predict:
        # the same arrays as predicting those rows' own frame.
        own = features if rows is None else features.iloc[rows]
        want_x = own.loc[:, list(self.bundle.feature_columns)].to_numpy(dtype=np.float64)
        np.testing.assert_array_equal(self.bundle.block_matrix(block, rows), want_x)
        np.testing.assert_array_equal(sym, symptomatic(own))
        plain = self.bundle.predict_columns(own, explain=self.explain)
        assert list(out) == list(plain)
        for c in plain:
            np.testing.assert_array_equal(np.asarray(out[c]), np.asarray(plain[c]))
        seen.append(len(own))
        return out

    monkeypatch.setattr(OnlineScorer, "_predict", checked_predict)
    sc = only_fault("cpe_hang", 3000.0, days=0.25)
    run_policy(sc, "autopilot", seed=3, scorer=ModelScorer(small_bundle, window_ticks=72))
    # Whole-fleet rounds and rounds of a few rows afresh were both checked.
    assert max(seen) > min(seen) and len(seen) >= 12


def test_isotonic_calibration_without_checks_is_predict_bit_for_bit(rng):
    """The risk calibration's isotonic step equals ``IsotonicRegression.predict`` on
    values inside, outside and on the fitted thresholds, and still refuses NaN."""
    from sklearn.isotonic import IsotonicRegression

    from guardian_lib.models.risk import _isotonic

    x = rng.random(400)
    y = (rng.random(400) < x).astype(float)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(x, y)
    raw = np.concatenate([rng.random(300), iso.X_thresholds_, [0.0, 1.0, -0.5, 2.0]])
    np.testing.assert_array_equal(_isotonic(iso, raw), iso.predict(raw))
    assert _isotonic(iso, raw).dtype == iso.predict(raw).dtype
    with pytest.raises(ValueError):
        _isotonic(iso, np.array([0.5, np.nan]))


def test_tick_times_are_pandas_epoch_conversion(rng):
    """A cube's tick times equal ``pd.to_datetime(us, unit="us", utc=True)``: values,
    dtype, name and frequency."""
    from guardian_lib.features import Cube

    cube = Cube.__new__(Cube)
    cube.t0_us, cube.tick_s = 1_767_225_600_123_456, 300
    for rows in (np.array([0]), np.array([5]), rng.integers(0, 10**6, 50), np.arange(7)):
        us = cube.t0_us + rows.astype(np.int64) * cube.tick_s * 1_000_000
        want = pd.to_datetime(us, unit="us", utc=True)
        got = cube.tick_times(rows)
        pd.testing.assert_index_equal(got, want, exact=True)
        assert got.freq == want.freq and got.name == want.name


def _plain_symptomatic(f):
    """``symptomatic`` as first written: missing readings made 0 by ``np.nan_to_num``."""
    ev = f["los_1h"] + f["dying_gasp_1h"] + f["pppoe_down_1h"] + f["high_ber_1h"] + f["low_rx_1h"]
    return (
        (f["online"] == 0)
        | (f["pppoe_down"] == 1)
        | (np.nan_to_num(f["loss_pct"]) > 2)
        | (np.nan_to_num(f["latency_ms"]) > 80)
        | (np.nan_to_num(f["rx_dbm"], nan=0.0) < -27.0)
        | (ev > 0)
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_symptom_flags_equal_those_of_readings_made_finite(rng, dtype):
    n = 4000
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 2.0, 80.0, -27.0, 1e30, -1e30])

    def reading(scale, shift):
        x = (rng.normal(size=n) * scale + shift).astype(dtype)
        at = rng.random(n) < 0.3
        x[at] = rng.choice(special, at.sum())
        return x

    f = {c: (rng.random(n) < 0.02).astype(dtype) for c in
         ("los_1h", "dying_gasp_1h", "pppoe_down_1h", "high_ber_1h", "low_rx_1h", "pppoe_down")}  # fmt: skip
    f["online"] = np.where(rng.random(n) < 0.05, 0.0, 1.0).astype(dtype)
    f["loss_pct"], f["latency_ms"], f["rx_dbm"] = reading(2, 1), reading(40, 60), reading(3, -24)
    for c in ("los_1h", "pppoe_down"):
        f[c][rng.random(n) < 0.05] = np.nan
    want = _plain_symptomatic(f)
    np.testing.assert_array_equal(symptomatic(f), want)
    np.testing.assert_array_equal(symptomatic(pd.DataFrame(f)), want)
    assert 0 < want.sum() < n
