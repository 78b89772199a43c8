"""Helpers shared by the estimators: input validation and random state."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.utils.validation import validate_data

from guardian_lib.models.treewalk import booster_walker

__all__ = [
    "validated_frame",
    "as_generator",
    "seed_from",
    "lgbm_classifier",
    "predict_threads",
    "positive_proba",
    "positive_proba_matrix",
    "class_proba",
    "class_proba_matrix",
]

#: Below this many rows LightGBM predicts on one thread: a fleet's tick (a few thousand
#: rows) takes milliseconds, and on busy cores OpenMP's thread start-up and spinning
#: cost more than they save (measured: 9.7 ms on one thread vs 13.4 ms on all cores for
#: 2,148 rows × 150 trees on the shared 2-core machine). [rows]
SINGLE_THREAD_ROWS = 20_000


def validated_frame(estimator, X, y=None, reset: bool = True):
    """Validate ``X`` (and ``y``) the scikit-learn way and return a float DataFrame.

    Parameters
    ----------
    estimator : BaseEstimator
        Receives ``n_features_in_`` (and ``feature_names_in_`` for DataFrames) when
        ``reset``; is checked against them otherwise.
    X : DataFrame or array_like, shape (n_samples, n_features)
        NaN is allowed (the models handle missing readings); inf, sparse, complex and
        non-numeric input are refused.
    y : array_like, optional
    reset : bool
        True in ``fit``.

    Returns
    -------
    frame : pandas.DataFrame
        Columns named as at fit time (``x0, x1, …`` for arrays).
    y : ndarray
        Only when ``y`` was given.

    Raises
    ------
    ValueError
        A DataFrame lacks columns seen at fit time (named in the message), or the data
        is empty, non-numeric or infinite.
    """
    if not reset and hasattr(X, "columns") and hasattr(estimator, "feature_names_in_"):
        names = list(estimator.feature_names_in_)
        if list(X.columns) != names:
            missing = [c for c in names if c not in X.columns]
            if missing:
                raise ValueError(
                    f"X is missing feature column(s) {missing[:5]} (of {len(missing)}) that "
                    f"{type(estimator).__name__} was fitted with"
                )
            X = X.loc[:, names]
        # Fast path for what the estimators pass each other (already validated frames):
        # the same checks as scikit-learn's, without its per-call copies (about 8 ms per
        # call on a fleet's tick, six calls per prediction).
        if (
            y is None
            and len(X)
            and all(dt == np.float64 for dt in X.dtypes)
            and not np.isinf(X.to_numpy()).any()
        ):
            # The frame's own column index: building one from ``names`` converts every
            # name again (pandas' string dtype), on each of a prediction's six calls.
            return pd.DataFrame(X.to_numpy(), columns=X.columns)
    kw = {"reset": reset, "ensure_all_finite": "allow-nan", "dtype": np.float64}
    if y is None:
        arr = validate_data(estimator, X, **kw)
    else:
        arr, y = validate_data(estimator, X, y, **kw, y_numeric=False)
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        names = [f"x{i}" for i in range(arr.shape[1])]
    frame = pd.DataFrame(arr, columns=list(names))
    return frame if y is None else (frame, np.asarray(y))


def predict_threads(n_rows: int) -> int:
    """LightGBM ``num_threads`` for predicting ``n_rows`` rows: 1 for small batches
    (:data:`SINGLE_THREAD_ROWS`), else 0 (every core). The output does not depend on it."""
    return 1 if n_rows < SINGLE_THREAD_ROWS else 0


def _walker(model: lgb.LGBMClassifier, frame: pd.DataFrame):
    """The compiled predictor of a fitted classifier's booster, or None where it would
    not give the wrapper's output (custom objective, non-float64 columns, a model the
    walker does not reproduce)."""
    if callable(model.objective) or not all(dt == np.float64 for dt in frame.dtypes):
        return None
    return booster_walker(model.booster_)


def positive_proba(model: lgb.LGBMClassifier, frame: pd.DataFrame) -> np.ndarray:
    """``model.predict_proba(frame)[:, 1]`` of a fitted binary LightGBM classifier.

    Float64 frames go to :func:`positive_proba_matrix`; others through the wrapper.
    """
    plain = model.n_classes_ == 2 and not callable(model.objective)
    if not plain or not all(dt == np.float64 for dt in frame.dtypes):
        return model.predict_proba(frame, num_threads=predict_threads(len(frame)))[:, 1]
    return positive_proba_matrix(model, frame.to_numpy(dtype=np.float64))


def positive_proba_matrix(model: lgb.LGBMClassifier, X: np.ndarray) -> np.ndarray:
    """``model.predict_proba(X)[:, 1]`` of a fitted binary LightGBM classifier (no
    custom objective) on a float64 matrix whose columns are the fitted features.

    Batches LightGBM would predict on one thread (:data:`SINGLE_THREAD_ROWS`) are
    computed by :func:`guardian_lib.models.treewalk.booster_walker` (LightGBM's output
    bit for bit, 4-6x faster on a fleet's round, on one thread too); larger batches, and
    models the walker does not reproduce, by the Booster on every core (no scikit-learn
    wrapper: the same call, less overhead).
    """
    threads = predict_threads(len(X))
    walker = booster_walker(model.booster_) if threads == 1 else None
    if walker is not None:
        return walker.predict(X)
    return model.booster_.predict(X, num_threads=threads)


def class_proba(model: lgb.LGBMClassifier, frame: pd.DataFrame) -> np.ndarray:
    """``model.predict_proba(frame)`` of a fitted LightGBM classifier, shape (n, classes).

    By the compiled walker where it applies (see :func:`positive_proba_matrix`), else by
    the wrapper; the same values either way.
    """
    small = 0 < len(frame) and predict_threads(len(frame)) == 1
    walker = _walker(model, frame) if small else None
    if walker is None:
        return model.predict_proba(frame, num_threads=predict_threads(len(frame)))
    p = walker.predict(frame.to_numpy(dtype=np.float64))
    return p if p.ndim == 2 else np.vstack((1.0 - p, p)).transpose()


def class_proba_matrix(model: lgb.LGBMClassifier, X: np.ndarray) -> np.ndarray:
    """:func:`class_proba` of a float64 matrix whose columns are the fitted features
    (NaN allowed, no inf): the walker or the Booster, without a frame. [-]"""
    if callable(model.objective) or not len(X):
        names = model.booster_.feature_name()
        return class_proba(model, pd.DataFrame(X, columns=names))
    threads = predict_threads(len(X))
    walker = booster_walker(model.booster_) if threads == 1 else None
    p = walker.predict(X) if walker is not None else model.booster_.predict(X, num_threads=threads)
    return p if p.ndim == 2 else np.vstack((1.0 - p, p)).transpose()


def as_generator(random_state) -> np.random.Generator:
    """``numpy.random.Generator`` from an int, a Generator or None."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def seed_from(random_state) -> int:
    """An int seed for libraries that take one (LightGBM, scikit-learn)."""
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    return int(as_generator(random_state).integers(0, 2**31 - 1))


def lgbm_classifier(estimator, **extra) -> lgb.LGBMClassifier:
    """The LightGBM booster of one of our estimators, from its parameters.

    Reads ``n_estimators``, ``learning_rate``, ``num_leaves``, ``min_child_samples``,
    ``reg_lambda`` and ``random_state`` from ``estimator``; ``extra`` adds booster
    parameters (e.g. ``class_weight``). Training runs on one thread and deterministic:
    with several threads on a shared 2-core machine training slowed by 50x, and the same
    seed must give the same model.
    """
    return lgb.LGBMClassifier(
        n_estimators=estimator.n_estimators,
        learning_rate=estimator.learning_rate,
        num_leaves=estimator.num_leaves,
        min_child_samples=estimator.min_child_samples,
        reg_lambda=estimator.reg_lambda,
        random_state=seed_from(estimator.random_state),
        n_jobs=1,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
        **extra,
    )
