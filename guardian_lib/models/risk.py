"""Calibrated probability that a service-affecting fault starts within a horizon."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted

from guardian_lib.models._base import (
    as_generator,
    lgbm_classifier,
    positive_proba_matrix,
    validated_frame,
)

__all__ = ["RiskModel"]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


class RiskModel(ClassifierMixin, BaseEstimator):
    """LightGBM risk model calibrated on a time-ordered holdout.

    ``X`` must be ordered by time: the last ``calibration_fraction`` of the rows is kept
    out of the booster's training and used to fit the isotonic calibration, so the
    calibration is measured on data later than what the booster saw.

    Parameters
    ----------
    horizon_h : int, default 24
        Horizon of the label (metadata; the label defines it). [h]
    n_estimators : int, default 300
    learning_rate : float, default 0.05
    num_leaves : int, default 31
    min_child_samples : int, default 100
        Fewest rows in a leaf. [-]
    reg_lambda : float, default 5.0
        L2 penalty on leaf values. [-] These two are the cause classifier's limits, for
        the same reason: one fault labels up to 48 rows of one ONU (24 h of rows every
        30 min) whose steady RX, TX and latency set them apart, so leaves of 20 rows
        without a penalty held single faults with log-odds up to +80, and on other
        networks steady ONUs whose levels fell in them got isolated 24 h risks of
        0.3-0.8 (docs/models.md, "Risk boosters with the cause classifier's leaf
        limits": Brier below the training-prevalence forecast on 26 / 35 / 38 of 42
        unseen weeks at 2 / 6 / 24 h before, 40 / 40 / 41 after).
    calibration_fraction : float, default 0.25
        Share of (the latest) rows used for calibration. [-]
    negative_subsample : float, default 1.0
        Share of negative rows kept to train the booster (all positives are kept). The
        calibration holdout is never subsampled, so probabilities stay calibrated to
        the true prevalence. [-]
    calibration : {'isotonic', 'sigmoid'}, default 'isotonic'
        'isotonic' fits a monotone step function; with rare positives its steps are wide
        and would tie many customers at the same risk, so ties are ordered by the
        booster's score (a nudge below 1e-6): risk ranks customers exactly as the
        booster does. 'sigmoid' fits a logistic curve to the booster's log-odds (Platt
        scaling); if the holdout gives it a non-positive slope it falls back to
        isotonic.
    random_state : int, Generator or None

    Attributes
    ----------
    booster_ : lightgbm.LGBMClassifier
    calibrator_ : sklearn.linear_model.LogisticRegression or sklearn.isotonic.IsotonicRegression
    classes_ : ndarray, shape (2,)
        The two labels; the second is the positive one ("a fault starts").
    prevalence_ : float
        Share of positives in the training rows. [-]
    """

    def __init__(
        self,
        horizon_h: int = 24,
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
        self.horizon_h = horizon_h
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.calibration_fraction = calibration_fraction
        self.negative_subsample = negative_subsample
        self.calibration = calibration
        self.random_state = random_state

    def fit(self, X, y):
        """Fit on time-ordered rows ``X`` with binary labels ``y``."""
        if not 0 < self.negative_subsample <= 1:
            raise ValueError(
                f"RiskModel: negative_subsample must be in (0, 1], got {self.negative_subsample}"
            )
        if not 0 < self.calibration_fraction < 1:
            raise ValueError(
                f"RiskModel: calibration_fraction must be in (0, 1), got {self.calibration_fraction}"
            )
        if self.calibration not in ("sigmoid", "isotonic"):
            raise ValueError(
                f"RiskModel: calibration must be 'sigmoid' or 'isotonic', got {self.calibration!r}"
            )
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        frame, y = validated_frame(self, X, y, reset=True)
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type != "binary":
            raise ValueError(
                f"Only binary classification is supported. The type of the target is {y_type}."
            )
        # The larger label is "a fault starts" (1 for the usual 0/1 labels).
        self.classes_, y = np.unique(y, return_inverse=True)
        self.prevalence_ = float(y.mean())
        cut = int(len(frame) * (1 - self.calibration_fraction))
        cut = min(max(cut, 1), len(frame) - 1) if len(frame) > 1 else len(frame)
        self.booster_ = lgbm_classifier(self)
        if len(np.unique(y[:cut])) < 2:
            self.booster_ = None
            self.calibrator_ = None
            return self
        train = np.arange(cut)
        if self.negative_subsample < 1.0:
            rng = as_generator(self.random_state)
            keep = (y[:cut] == 1) | (rng.random(cut) < self.negative_subsample)
            train = train[keep]
        self.booster_.fit(frame.iloc[train], y[train])
        raw = self.booster_.predict_proba(frame.iloc[cut:])[:, 1]
        self.calibrator_ = None
        if self.calibration == "sigmoid" and len(np.unique(y[cut:])) == 2:
            platt = LogisticRegression(C=1e6).fit(_logit(raw)[:, None], y[cut:])
            if platt.coef_[0, 0] > 0:
                self.calibrator_ = platt
        if self.calibrator_ is None:
            self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)
            self.calibrator_.fit(raw, y[cut:])
        return self

    def _calibrated(self, raw: np.ndarray) -> np.ndarray:
        if isinstance(self.calibrator_, LogisticRegression):
            return self.calibrator_.predict_proba(_logit(raw)[:, None])[:, 1]
        # Order the isotonic steps' ties by the booster's score (raw ∈ [0, 1]).
        return np.clip(_isotonic(self.calibrator_, raw) + 1e-7 * raw, 0.0, 1.0)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags

    def _frame(self, X):
        check_is_fitted(self, "classes_")
        return validated_frame(self, X, reset=False)

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated probabilities, shape (n_samples, 2): [no fault, fault]. [-]"""
        p = self._positive_matrix(self._frame(X).to_numpy())
        return np.column_stack([1 - p, p])

    def _positive_matrix(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probability of a fault from a float64 matrix whose columns are
        ``feature_names_in_`` (already validated: NaN allowed, no inf). [-]"""
        if self.booster_ is None:
            return np.full(len(X), self.prevalence_)
        # LightGBM's output does not depend on the number of threads.
        return self._calibrated(positive_proba_matrix(self.booster_, X))

    def predict(self, X) -> np.ndarray:
        """The positive class where the calibrated risk is at least 0.5."""
        proba = self.predict_proba(X)
        return self.classes_[(proba[:, 1] >= 0.5).astype(int)]


def _isotonic(iso: IsotonicRegression, raw: np.ndarray) -> np.ndarray:
    """``iso.predict(raw)`` of a clipping isotonic fit: a finite float64 vector is
    clipped and interpolated as ``predict`` does, without its input checks (they cost
    more than the interpolation on a decision round's few rows); anything else goes
    through ``predict``. The same values. [-]"""
    f = getattr(iso, "f_", None)
    thresholds = getattr(iso, "X_thresholds_", None)
    if (
        f is None
        or iso.out_of_bounds != "clip"
        or thresholds is None
        or thresholds.dtype != np.float64
        or not isinstance(raw, np.ndarray)
        or raw.dtype != np.float64
        or raw.ndim != 1
        or not raw.size
        or not np.isfinite(raw).all()
    ):
        return iso.predict(raw)
    return f(np.clip(raw, iso.X_min_, iso.X_max_)).astype(np.float64)
