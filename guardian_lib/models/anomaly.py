"""Unsupervised anomaly score in [0, 1] for any numeric time-series frame."""

from __future__ import annotations

import weakref

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length
from sklearn.utils.validation import check_is_fitted

from guardian_lib.models._base import as_generator, seed_from, validated_frame
from guardian_lib.models.treewalk import forest_walker

__all__ = ["AnomalyScorer", "forest_score_samples"]


def forest_score_samples(forest: IsolationForest, X: np.ndarray) -> np.ndarray:
    """``forest.score_samples(X)`` for dense finite ``X``, without the per-call overhead.

    scikit-learn validates the input and starts one joblib task per tree on every call
    (about 15 ms for 2,000 rows and 100 trees, most of it overhead), then walks each
    tree with a branch per level. This walks the trees with
    :func:`guardian_lib.models.treewalk.forest_walker` (branch-free, a block of rows at
    a time). The value is scikit-learn's bit for bit: the same float32 rows, the same
    leaves, the per-tree path lengths added in tree order.

    Parameters
    ----------
    forest : sklearn.ensemble.IsolationForest
        Fitted.
    X : numpy.ndarray, shape (n_samples, n_features)

    Returns
    -------
    numpy.ndarray
        Opposite of the anomaly score (lower is more abnormal), as scikit-learn. [-]
    """
    X32 = np.asarray(X, dtype=np.float32)
    if X32.ndim != 2 or not X32.size or not np.isfinite(X32).all():
        return forest.score_samples(X)
    depths = forest_walker(forest).path_lengths(X32)
    denominator = _denominator(forest)
    scores = 2 ** (
        -np.divide(depths, denominator, out=np.ones_like(depths), where=denominator != 0)
    )
    return -scores


#: Per fitted forest: (its ``estimators_``, ``_max_samples``, the score's denominator).
_DENOMINATORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _denominator(forest: IsolationForest) -> float:
    """``len(estimators_) × c(max_samples)``, scikit-learn's normaliser of the summed path
    lengths, computed once per fit (scikit-learn validates its input on every call,
    about 1 ms). [nodes]"""
    entry = _DENOMINATORS.get(forest)
    if entry is None or entry[0] is not forest.estimators_ or entry[1] != forest._max_samples:
        value = len(forest.estimators_) * _average_path_length([forest._max_samples])
        entry = _DENOMINATORS[forest] = (forest.estimators_, forest._max_samples, value)
    return entry[2]


class AnomalyScorer(OutlierMixin, BaseEstimator):
    """Isolation-forest anomaly score, calibrated to the reference data's distribution.

    The raw isolation score is mapped through the empirical CDF of the training scores,
    so ``anomaly_score = 0.99`` means "more anomalous than 99 % of the reference rows" on
    any fleet: the scale does not depend on the fleet's size or the number of features.
    Higher means more anomalous. Missing values are imputed with the training median and
    flagged by an extra indicator per column that had any.

    Parameters
    ----------
    n_estimators : int, default 100
        Trees in the forest. [-]
    max_samples : int, default 512
        Rows per tree. [-]
    max_fit_rows : int, default 200_000
        Rows sampled from X to fit (the whole frame if smaller). [-]
    threshold : float, default 0.99
        Score at or above which :meth:`predict` says "anomaly" (-1). [-]
    random_state : int, Generator or None

    Attributes
    ----------
    feature_names_in_ : ndarray of str
    medians_ : ndarray
        Imputation values. [units of each column]
    quantiles_ : ndarray, shape (1001,)
        Training raw-score quantiles used for calibration.
    offset_ : float
        ``−threshold``, so that ``decision_function = score_samples − offset_``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"rx_dbm": rng.normal(-21, 0.5, 500), "loss_pct": rng.gamma(1, 0.1, 500)})
    >>> model = AnomalyScorer(n_estimators=50, random_state=0).fit(X)
    >>> scores = model.anomaly_score(pd.DataFrame({"rx_dbm": [-21.0, -29.5], "loss_pct": [0.1, 30]}))
    >>> bool(scores[1] > 0.99 > scores[0])
    True
    """

    def __init__(
        self,
        n_estimators: int = 100,
        max_samples: int = 512,
        max_fit_rows: int = 200_000,
        threshold: float = 0.99,
        random_state=None,
    ):
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_fit_rows = max_fit_rows
        self.threshold = threshold
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def _prepare(self, X, fitting: bool = False) -> np.ndarray:
        if fitting:
            arr = validated_frame(self, X, reset=True).to_numpy()
            self.medians_ = (
                np.nan_to_num(np.nanmedian(arr, axis=0))
                if np.isnan(arr).any()
                else np.median(arr, axis=0)
            )
            self.nan_columns_ = np.flatnonzero(np.isnan(arr).any(axis=0))
        else:
            check_is_fitted(self, "quantiles_")
            arr = validated_frame(self, X, reset=False).to_numpy()
        return self._imputed(arr)

    def _imputed(self, arr: np.ndarray) -> np.ndarray:
        """The forest's input: NaN replaced by the medians, plus the NaN indicators."""
        nan = np.isnan(arr)
        arr = np.where(nan, self.medians_, arr)
        return np.hstack([arr, nan[:, self.nan_columns_].astype(float)])

    def fit(self, X, y=None):
        """Learn the reference distribution from X (labels are ignored)."""
        if not (0 < self.threshold < 1):
            raise ValueError(f"AnomalyScorer: threshold must be in (0, 1), got {self.threshold}")
        arr = self._prepare(X, fitting=True)
        rng = as_generator(self.random_state)
        if len(arr) > self.max_fit_rows:
            arr = arr[np.sort(rng.choice(len(arr), self.max_fit_rows, replace=False))]
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(arr)),
            random_state=seed_from(rng),
        ).fit(arr)
        raw = -self.forest_.score_samples(arr)
        self.quantiles_ = np.quantile(raw, np.linspace(0, 1, 1001))
        self.offset_ = -self.threshold
        return self

    def raw_score(self, X) -> np.ndarray:
        """Uncalibrated isolation score (higher = more anomalous). [-]"""
        check_is_fitted(self, "quantiles_")
        return -forest_score_samples(self.forest_, self._prepare(X))

    def anomaly_score(self, X) -> np.ndarray:
        """Calibrated anomaly score in [0, 1] (higher = more anomalous). [-]"""
        return self._calibrated(self.raw_score(X))

    def _anomaly_matrix(self, X: np.ndarray) -> np.ndarray:
        """:meth:`anomaly_score` of a float64 matrix whose columns are
        ``feature_names_in_`` (already validated: NaN allowed, no inf). [-]"""
        check_is_fitted(self, "quantiles_")
        return self._calibrated(-forest_score_samples(self.forest_, self._imputed(X)))

    def _calibrated(self, raw: np.ndarray) -> np.ndarray:
        q = self.quantiles_
        # Fraction of reference rows with a lower raw score (ties split evenly).
        lo = np.searchsorted(q, raw, side="left")
        hi = np.searchsorted(q, raw, side="right")
        return np.clip((lo + hi) / 2 / (len(q) - 1), 0.0, 1.0)

    def score_samples(self, X) -> np.ndarray:
        """``−anomaly_score``: lower is more abnormal (scikit-learn's convention). [-]"""
        return -self.anomaly_score(X)

    def decision_function(self, X) -> np.ndarray:
        """``score_samples − offset_``: negative for anomalies (scikit-learn convention)."""
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """-1 for anomalies, 1 for normal rows (scikit-learn outlier convention)."""
        return np.where(self.decision_function(X) <= 0, -1, 1)
