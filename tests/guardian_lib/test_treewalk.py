"""The compiled tree walks give the libraries' predictions bit for bit.

``guardian_lib.models.treewalk`` re-implements LightGBM's and scikit-learn's tree
decisions; each test builds a model that exercises one of them (NaN with and without
missing-value training, default directions, values at and next to the thresholds,
values LightGBM reads as zero, wide trees, one-leaf trees, early stopping, several
classes) and compares with ``Booster.predict`` / ``IsolationForest.score_samples`` using
exact equality. The closed loop's real rows are covered by
``test_scoring_exact.py``, whose reference calls LightGBM's own wrapper.
"""

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from guardian_lib.models._base import class_proba, positive_proba_matrix
from guardian_lib.models.anomaly import forest_score_samples
from guardian_lib.models.treewalk import booster_walker, forest_walker


def _data(rng, n=3000, f=8):
    X = rng.normal(size=(n, f))
    # Counts and flags: many exact zeros, as the fleet's features.
    X[:, 2] = rng.poisson(0.3, n)
    X[:, 3] = (rng.random(n) < 0.1).astype(float)
    y = X[:, 0] + 0.8 * X[:, 2] - 0.5 * X[:, 1] * X[:, 3] + rng.normal(0, 0.7, n) > 0.8
    return X, y.astype(int)


def _probe_rows(rng, walker, n_features, n=1500):
    """Random rows plus every threshold, its neighbours, NaN, ±0 and values LightGBM
    reads as zero, in every feature."""
    X = rng.normal(size=(n, n_features))
    X[rng.random(X.shape) < 0.15] = np.nan
    X[rng.random(X.shape) < 0.15] = 0.0
    X[rng.random(X.shape) < 0.05] = -0.0
    X[rng.random(X.shape) < 0.05] = rng.choice([1e-36, -1e-36, 1e-35, -1e-35, 2e-35])
    edge = []
    for f, t in zip(walker.node_feat, walker.node_thr, strict=True):
        for v in (t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf)):
            row = rng.normal(size=n_features)
            row[f] = v
            edge.append(row)
    return np.vstack([X, np.array(edge)])


def _assert_same(model: lgb.LGBMClassifier, X: np.ndarray) -> None:
    walker = booster_walker(model.booster_)
    assert walker is not None
    np.testing.assert_array_equal(
        walker.raw_score(X)[:, 0] if walker.n_class == 1 else walker.raw_score(X),
        model.booster_.predict(X, raw_score=True),
    )
    np.testing.assert_array_equal(class_proba(model, _frame(X)), model.predict_proba(X))
    if walker.n_class == 1:
        np.testing.assert_array_equal(positive_proba_matrix(model, X), model.predict_proba(X)[:, 1])


def _frame(X):
    import pandas as pd

    return pd.DataFrame(X, columns=[f"Column_{i}" for i in range(X.shape[1])])


@pytest.mark.parametrize("trained_nan", [False, True])
def test_binary_booster_equals_lightgbm_on_edge_values(rng, trained_nan):
    X, y = _data(rng)
    if trained_nan:
        # Missing values that mean something both ways: LightGBM learns a default
        # direction per node (left for some, right for others).
        X[(y == 1) & (rng.random(len(y)) < 0.3), 1] = np.nan
        X[(y == 0) & (rng.random(len(y)) < 0.3), 4] = np.nan
    model = lgb.LGBMClassifier(
        n_estimators=40, num_leaves=15, min_child_samples=5, verbose=-1, n_jobs=1, random_state=0
    ).fit(X, y)
    walker = booster_walker(model.booster_)
    if trained_nan:
        assert walker.node_nan_right.any() and not walker.node_nan_right.all()
    _assert_same(model, _probe_rows(rng, walker, X.shape[1]))


def test_wide_trees_one_leaf_trees_and_early_stopping(rng):
    X, y = _data(rng, n=4000)
    # 60 leaves: 64-bit masks.
    wide = lgb.LGBMClassifier(
        n_estimators=25, num_leaves=60, min_child_samples=3, verbose=-1, n_jobs=1, random_state=1
    ).fit(X, y)
    walker = booster_walker(wide.booster_)
    assert walker.node_mask.dtype == np.uint64
    _assert_same(wide, _probe_rows(rng, walker, X.shape[1]))
    # A tree that found no split worth making has a single leaf (its value is the
    # initial score).
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1},
                        lgb.Dataset(np.zeros_like(X), y), 5)  # fmt: skip
    assert [t["num_leaves"] for t in booster.dump_model()["tree_info"]] == [1]
    np.testing.assert_array_equal(booster_walker(booster).predict(X), booster.predict(X))
    # Early stopping: predict() uses the best iteration, and so does the walker.
    params = {"objective": "binary", "learning_rate": 0.3, "verbose": -1, "num_threads": 1}
    stopped = lgb.train(
        params, lgb.Dataset(X[:3000], y[:3000]), 400,
        valid_sets=[lgb.Dataset(X[3000:], y[3000:])],
        callbacks=[lgb.early_stopping(5, verbose=False)], keep_training_booster=True,
    )  # fmt: skip
    assert 0 < stopped.best_iteration < stopped.current_iteration()
    assert len(booster_walker(stopped).leaf_start) == stopped.best_iteration
    np.testing.assert_array_equal(booster_walker(stopped).predict(X), stopped.predict(X))


def test_multiclass_booster_equals_lightgbm(rng):
    X, y = _data(rng)
    y = y + (X[:, 1] > 0.5) * 2  # four classes
    model = lgb.LGBMClassifier(
        n_estimators=20, num_leaves=12, verbose=-1, n_jobs=1, random_state=2
    ).fit(X, y)
    walker = booster_walker(model.booster_)
    assert walker.n_class == 4
    _assert_same(model, _probe_rows(rng, walker, X.shape[1]))


def test_models_the_walker_does_not_reproduce_keep_lightgbms_prediction(rng):
    X, y = _data(rng)
    cat = X.copy()
    cat[:, 5] = rng.integers(0, 6, len(y))
    y_cat = (y | (cat[:, 5] == 3)).astype(int)
    unsupported = {
        "categorical": (dict(categorical_feature=[5]), cat, y_cat),
        "zero_as_missing": (dict(zero_as_missing=True), X, y),
        "linear_tree": (dict(linear_tree=True), X, y),
        "regression": (dict(objective="regression"), X, y),
    }
    for name, (params, data, target) in unsupported.items():
        fit_params = {"categorical_feature": params.pop("categorical_feature")} if (
            "categorical_feature" in params
        ) else {}  # fmt: skip
        ds = lgb.Dataset(data, target, **fit_params)
        booster = lgb.train(
            {"objective": "binary", "verbose": -1, "num_threads": 1, "num_leaves": 8, **params},
            ds,
            10,
        )
        assert booster_walker(booster) is None, name
    # Through the classifier helpers the prediction is LightGBM's.
    model = lgb.LGBMClassifier(n_estimators=10, verbose=-1, n_jobs=1, zero_as_missing=True).fit(
        X, y
    )
    np.testing.assert_array_equal(positive_proba_matrix(model, X), model.predict_proba(X)[:, 1])


def test_a_refit_booster_gets_a_new_walker(rng):
    X, y = _data(rng)
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1, n_jobs=1).fit(X, y)
    first = booster_walker(model.booster_)
    model.set_params(n_estimators=8).fit(X, 1 - y)
    assert booster_walker(model.booster_) is not first
    _assert_same(model, X)


def test_walker_refuses_a_matrix_of_the_wrong_width(rng):
    X, y = _data(rng)
    model = lgb.LGBMClassifier(n_estimators=3, verbose=-1, n_jobs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"shape \(n, 8\)"):
        booster_walker(model.booster_).predict(X[:, :5])


@pytest.mark.parametrize("max_features", [1.0, 0.6])
def test_forest_walk_equals_scikit_learn(rng, max_features):
    X = rng.normal(size=(2000, 6)).astype(np.float32)
    X[:, 2] = rng.poisson(0.2, len(X))  # ties at 0
    forest = IsolationForest(
        n_estimators=40, max_samples=256, max_features=max_features, random_state=3
    ).fit(X)
    Y = np.vstack([rng.normal(size=(700, 6)), rng.normal(3, 2, size=(100, 6)), X[:200]])
    # Trees of more leaves than a mask word has bits: a subtree spans several words.
    walker = forest_walker(forest)
    assert (np.diff(walker.word_start) > 1).any()
    # Thresholds and their neighbours as float32 values.
    splits = [
        (int(cols[tree.feature[k]]), tree.threshold[k])
        for est, cols in zip(forest.estimators_, forest.estimators_features_, strict=True)
        for tree in [est.tree_]
        for k in np.flatnonzero(tree.children_left >= 0)
    ]
    for f, t in splits[::3]:
        row = rng.normal(size=6)
        row[f] = np.float32(t)
        Y = np.vstack([Y, row, row, row])
        Y[-2, f] = np.nextafter(np.float32(t), np.float32(np.inf))
        Y[-1, f] = np.nextafter(np.float32(t), np.float32(-np.inf))
    np.testing.assert_array_equal(forest_score_samples(forest, Y), forest.score_samples(Y))
    # A refit forest is walked with its new trees (and normalised by its new size).
    forest.set_params(random_state=4).fit(X)
    np.testing.assert_array_equal(forest_score_samples(forest, Y), forest.score_samples(Y))
    forest.set_params(max_samples=37).fit(X)
    np.testing.assert_array_equal(forest_score_samples(forest, Y), forest.score_samples(Y))


def test_large_batches_are_predicted_by_lightgbm_on_every_core(rng):
    from guardian_lib.models._base import SINGLE_THREAD_ROWS

    X, y = _data(rng)
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1, n_jobs=1).fit(X, y)
    big = np.tile(X, (SINGLE_THREAD_ROWS // len(X) + 1, 1))
    np.testing.assert_array_equal(positive_proba_matrix(model, big), model.predict_proba(big)[:, 1])
    np.testing.assert_array_equal(class_proba(model, _frame(big)), model.predict_proba(big))


def test_float32_rows_are_compared_as_float32_with_the_same_leaves(rng):
    """The features are float32 widened to float64: the walker compares them as float32
    against thresholds rounded down to float32. Rows at every threshold's float32
    neighbours (and NaN, ±0, values read as zero) give LightGBM's values; one value that
    is not a float32 sends the whole batch through the float64 walk, with the same
    result."""
    from guardian_lib.models.treewalk import _round_down32

    X, y = _data(rng)
    X[(y == 1) & (rng.random(len(y)) < 0.3), 1] = np.nan
    X = X.astype(np.float32).astype(np.float64)
    model = lgb.LGBMClassifier(
        n_estimators=30, num_leaves=15, min_child_samples=5, verbose=-1, n_jobs=1, random_state=5
    ).fit(X, y)
    walker = booster_walker(model.booster_)
    assert (walker.node_thr32.astype(np.float64) != walker.node_thr).any()
    rows = [np.where(rng.random(X.shape) < 0.1, np.nan, X)]
    rows[0][rng.random(X.shape) < 0.05] = np.float32(1e-36)
    for f, t in zip(walker.node_feat, walker.node_thr, strict=True):
        t32 = np.float32(t)
        for v in (
            t32,
            np.nextafter(t32, np.float32(np.inf)),
            np.nextafter(t32, np.float32(-np.inf)),
        ):
            row = rng.normal(size=X.shape[1]).astype(np.float32).astype(np.float64)
            row[f] = v
            rows.append(row[None, :])
    Y = np.vstack(rows)
    assert np.array_equal(Y.astype(np.float32).astype(np.float64), Y, equal_nan=True)
    _assert_same(model, Y)
    Y[7, 0] = 0.1  # not a float32
    _assert_same(model, Y)
    # Rounding down keeps "x > threshold" for every float32 x, at and beyond float32's range.
    thr = np.array([0.1, -0.1, 1.0, 1e300, -1e300, 3.5e38, np.inf, -np.inf])
    down = _round_down32(thr)
    assert (down.astype(np.float64) <= thr).all()
    for x in (
        np.float32(0.1),
        np.nextafter(np.float32(0.1), np.float32(np.inf)),
        np.float32(3.4e38),
    ):
        np.testing.assert_array_equal(x > thr, x > down)


def test_batches_of_any_size_are_walked_to_the_same_values(rng):
    """Fewer rows than a block are walked in a narrower block (a round between two full
    predictions re-predicts a few rows); every batch size, at and around the block
    widths, gives each row the libraries' value, for one-word boosters, several classes
    and forests whose trees span several mask words."""
    from guardian_lib.models.treewalk import _BLOCK, _MIN_BLOCK, _block_rows

    assert [_block_rows(n) for n in (0, 1, 16, 17, 127, 128, 129, 5000)] == [
        _MIN_BLOCK, _MIN_BLOCK, 16, 32, _BLOCK, _BLOCK, _BLOCK, _BLOCK
    ]  # fmt: skip
    X, y = _data(rng)
    y3 = y + (X[:, 1] > 0.5)
    binary = lgb.LGBMClassifier(n_estimators=20, verbose=-1, n_jobs=1).fit(X, y)
    multi = lgb.LGBMClassifier(n_estimators=10, verbose=-1, n_jobs=1).fit(X, y3)
    Xf = X.astype(np.float32)
    forest = IsolationForest(n_estimators=20, max_samples=256, random_state=1).fit(Xf)
    assert (np.diff(forest_walker(forest).word_start) > 1).any()
    probe = _probe_rows(rng, booster_walker(binary.booster_), X.shape[1], n=300)
    for n in (1, 2, 15, 16, 17, 31, 33, 127, 128, 129, 300):
        rows = probe[rng.choice(len(probe), n, replace=False)]
        for model in (binary, multi):
            np.testing.assert_array_equal(
                booster_walker(model.booster_).raw_score(rows).squeeze(1)
                if model is binary
                else booster_walker(model.booster_).raw_score(rows),
                model.booster_.predict(rows, raw_score=True),
            )
        finite = np.nan_to_num(rows[:, : Xf.shape[1]]).astype(np.float32)
        np.testing.assert_array_equal(
            forest_score_samples(forest, finite), forest.score_samples(finite)
        )
