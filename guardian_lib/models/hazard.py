"""Risk at several horizons that is coherent by construction: a discrete-time hazard model.

A fault that starts within 2 h has started within 24 h, so ``risk_2h ≤ risk_6h ≤ risk_24h``
must hold on every row. Three independent classifiers do not guarantee it (on an unseen
network 21 % of the rows broke it). :class:`HazardRiskModel` instead estimates, for the
intervals (0, 2], (2, 6] and (6, 24] hours, the conditional probability that the first
fault's impact falls in the interval given that it did not fall earlier (the *hazard*),
and composes them:

    risk_H_k = 1 − ∏_{j ≤ k} (1 − hazard_j)

Each hazard is a calibrated :class:`~guardian_lib.models.risk.RiskModel` in [0, 1], so the
products can only shrink and the cumulative risks can only grow with the horizon, exactly
(also in floating point: multiplying by a factor in [0, 1] never rounds upwards). The
composition is the chain rule P(T > 24) = P(T > 2)·P(T > 6 | T > 2)·P(T > 24 | T > 6), so
calibrated hazards give calibrated cumulative risks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from guardian_lib.models._base import as_generator, validated_frame
from guardian_lib.models.risk import RiskModel

__all__ = ["HazardRiskModel", "interval_labels", "compose_hazards"]


def interval_labels(cumulative: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rows at risk and hazard labels of each interval, from cumulative labels.

    Parameters
    ----------
    cumulative : ndarray, shape (n_samples, n_horizons)
        Column k is 1 when the first impact falls within the k-th horizon, 0 when not,
        NaN when unknown (the horizon reaches past the data, or the customer is already
        hurt). Horizons increase along the columns.

    Returns
    -------
    list of (rows, y)
        For interval k: the indices of the rows *at risk* (no impact within the previous
        horizon, the k-th one observed) and their 0/1 label (impact within interval k).

    Raises
    ------
    ValueError
        A row whose labels decrease with the horizon (1 at a short horizon, 0 at a longer
        one): the labels are not cumulative.
    """
    y = np.asarray(cumulative, dtype=float)
    if y.ndim != 2:
        raise ValueError(f"cumulative labels must be 2-D (rows × horizons), got shape {y.shape}")
    both = ~np.isnan(y[:, :-1]) & ~np.isnan(y[:, 1:])
    bad = np.flatnonzero((both & (y[:, 1:] < y[:, :-1])).any(axis=1))
    if bad.size:
        raise ValueError(
            f"risk labels are not cumulative: row {int(bad[0])} has {y[bad[0]].tolist()} "
            f"({bad.size} such rows); a fault within a short horizon is within the longer ones"
        )
    out = []
    for k in range(y.shape[1]):
        at_risk = ~np.isnan(y[:, k])
        if k:
            at_risk &= y[:, k - 1] == 0
        rows = np.flatnonzero(at_risk)
        out.append((rows, y[rows, k].astype(int)))
    return out


def compose_hazards(hazards: np.ndarray) -> np.ndarray:
    """Cumulative risk from interval hazards: ``1 − cumprod(1 − hazard)`` along axis 1.

    Non-decreasing along the horizons on every row for any hazards in [0, 1]. [-]
    """
    h = np.clip(np.asarray(hazards, dtype=float), 0.0, 1.0)
    return 1.0 - np.cumprod(1.0 - h, axis=1)


class HazardRiskModel(BaseEstimator):
    """Calibrated, monotone risk at several horizons from per-interval hazard models.

    ``X`` must be ordered by time (each interval's :class:`RiskModel` calibrates on its
    latest rows). ``Y`` holds the cumulative labels ``risk_{h}h`` (0, 1 or NaN) in the
    order of ``horizons_h``.

    Parameters
    ----------
    horizons_h : tuple of int, default (2, 6, 24)
        Increasing horizons. [h]
    n_estimators, learning_rate, num_leaves, min_child_samples, reg_lambda
        Of each interval's LightGBM booster (see :class:`RiskModel`; leaves of at least
        100 rows with an L2 penalty of 5 by default, as there).
    calibration_fraction : float, default 0.25
        Share of the latest rows each hazard calibrates on. [-]
    negative_subsample : float, default 1.0
        Share of negative rows each booster trains on (calibration sees them all). [-]
    calibration : {'isotonic', 'sigmoid'}, default 'isotonic'
    random_state : int, Generator or None

    Attributes
    ----------
    hazards_ : list of RiskModel
        One per interval (0, h_1], (h_1, h_2], …
    prevalence_ : ndarray, shape (n_horizons,)
        Share of positives of each cumulative label among its labelled training rows. [-]
    feature_names_in_, n_features_in_

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"x": rng.normal(size=3000)})
    >>> t = rng.exponential(np.exp(3 - X["x"].to_numpy()))  # hours to the fault
    >>> Y = np.column_stack([(t <= h).astype(float) for h in (2, 6, 24)])
    >>> model = HazardRiskModel(n_estimators=20, random_state=0).fit(X, Y)
    >>> risk = model.predict_risk(X)
    >>> bool((np.diff(risk, axis=1) >= 0).all())
    True
    """

    def __init__(
        self,
        horizons_h: tuple[int, ...] = (2, 6, 24),
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 100,
        reg_lambda: float = 5.0,
        calibration_fraction: float = 0.25,
        negative_subsample: float = 1.0,
        calibration: str = "isotonic",
        random_state=None,
    ):
        self.horizons_h = horizons_h
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.calibration_fraction = calibration_fraction
        self.negative_subsample = negative_subsample
        self.calibration = calibration
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, Y):
        """Fit one hazard per interval on time-ordered rows ``X``.

        Parameters
        ----------
        X : DataFrame or array_like, shape (n_samples, n_features)
        Y : array_like, shape (n_samples, n_horizons)
            Cumulative labels (0/1, NaN where unknown), columns in ``horizons_h`` order.

        Raises
        ------
        ValueError
            Horizons not increasing, ``Y`` of the wrong shape, labels not cumulative, or
            an interval without a single labelled row.
        """
        horizons = tuple(int(h) for h in self.horizons_h)
        if not horizons or horizons[0] <= 0 or any(np.diff(horizons) <= 0):
            raise ValueError(
                f"HazardRiskModel: horizons_h must be positive and increasing, got {self.horizons_h}"
            )
        frame = validated_frame(self, X, reset=True)
        Y = np.asarray(Y, dtype=float)
        if Y.ndim == 1:
            Y = Y[:, None]
        if Y.shape != (len(frame), len(horizons)):
            raise ValueError(
                f"HazardRiskModel: Y must have shape (n_samples, {len(horizons)}) for horizons "
                f"{horizons} h, got {Y.shape}"
            )
        rng = as_generator(self.random_state)
        self.hazards_ = []
        for k, (rows, y) in enumerate(interval_labels(Y)):
            lo = 0 if k == 0 else horizons[k - 1]
            if not len(rows):
                raise ValueError(
                    f"HazardRiskModel: no labelled row for the interval ({lo}, {horizons[k]}] h: "
                    f"the last {horizons[k]} h of a run are not labelled, so training needs "
                    f"runs longer than {horizons[k]} h"
                )
            model = RiskModel(
                horizon_h=horizons[k],
                n_estimators=self.n_estimators,
                learning_rate=self.learning_rate,
                num_leaves=self.num_leaves,
                min_child_samples=self.min_child_samples,
                reg_lambda=self.reg_lambda,
                calibration_fraction=self.calibration_fraction,
                negative_subsample=self.negative_subsample,
                calibration=self.calibration,
                random_state=int(rng.integers(0, 2**31 - 1)),
            )
            self.hazards_.append(model.fit(frame.iloc[rows], y))
        with np.errstate(invalid="ignore"):
            self.prevalence_ = np.array(
                [
                    np.nanmean(Y[:, k]) if (~np.isnan(Y[:, k])).any() else 0.0
                    for k in range(len(horizons))
                ]
            )
        return self

    def _frame(self, X) -> pd.DataFrame:
        check_is_fitted(self, "hazards_")
        return validated_frame(self, X, reset=False)

    def predict_hazard(self, X) -> np.ndarray:
        """Conditional probability of a first impact in each interval, (n, n_horizons). [-]"""
        return self._hazard_matrix(self._frame(X).to_numpy())

    def _hazard_matrix(self, X: np.ndarray) -> np.ndarray:
        """:meth:`predict_hazard` of a float64 matrix whose columns are
        ``feature_names_in_`` (already validated: NaN allowed, no inf). [-]"""
        cols = []
        for m in self.hazards_:
            if m.classes_.size == 2:
                cols.append(m._positive_matrix(X))
            else:
                # An interval that saw a single label in training: that label, always.
                cols.append(np.full(len(X), float(m.classes_[0] == 1)))
        return np.column_stack(cols) if cols else np.empty((len(X), 0))

    def predict_risk(self, X) -> np.ndarray:
        """Cumulative risk per horizon, shape (n, n_horizons), non-decreasing along rows. [-]"""
        return compose_hazards(self.predict_hazard(X))

    def predict(self, X) -> np.ndarray:
        """1 where the cumulative risk is at least 0.5, per horizon, shape (n, n_horizons)."""
        return (self.predict_risk(X) >= 0.5).astype(int)

    def __getitem__(self, horizon_h: int) -> RiskModel:
        """The hazard model of the interval that ends at ``horizon_h`` hours.

        ``model[24]`` is the (6, 24] h hazard: its booster explains the longest-horizon
        risk in global importance reports (as ``bundle.risk[24]`` did when each horizon
        had its own classifier).
        """
        check_is_fitted(self, "hazards_")
        horizons = [int(h) for h in self.horizons_h]
        if int(horizon_h) not in horizons:
            raise KeyError(f"no risk horizon of {horizon_h} h (horizons: {horizons})")
        return self.hazards_[horizons.index(int(horizon_h))]
