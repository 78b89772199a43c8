"""Probable cause of a symptom: LightGBM over six classes plus neighbour-cluster rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from guardian_lib.features import RX_DROP_DB
from guardian_lib.models._base import class_proba, lgbm_classifier, validated_frame

__all__ = ["CauseClassifier", "neighbour_massive_rule", "neighbour_cluster_kind"]


def neighbour_cluster_kind(
    X: pd.DataFrame, min_share: float = 0.5, min_neighbours: int = 3
) -> np.ndarray:
    """Which kind of neighbour cluster a row belongs to: 0 none, 1 optical, 2 no PPPoE.

    1 when at least ``min_share`` of the other ONUs under the same street box or PON (and
    at least ``min_neighbours`` of them) share the ONU's optical failure: all offline, all
    with RX dropped by :data:`~guardian_lib.features.RX_DROP_DB` or more against their
    week (a box fault that weakens the light without cutting it), or all with an LOS in
    the last hour (a box or feeder that just came back), or all with a dying gasp in the
    last hour (a power cut, maybe over already): the optical path or its power
    failed (MASSIVE_OUTAGE). 2 when the ONU is online without PPPoE and as many of
    the PON's other ONUs are too, or when it logged a PPPoE-down in the last hour and as
    many of the PON's other ONUs did (an upstream failure shorter than the row spacing
    is over at the next row: only that burst is left), while it is not in an optical
    cluster: the optics work and the sessions fail upstream (EXTERNAL_NETWORK). The
    optical scope wins over the upstream one: a box that went dark or dim during a
    regional BNG failure is its own outage, which the BNG failure does not explain.
    Columns missing from ``X`` make their part of the rule silent.

    Parameters
    ----------
    X : pandas.DataFrame
        Feature rows (``online``, ``pppoe_down``, ``box_share_offline``, ``box_size``,
        ``pon_share_offline``, ``pon_size``, ``pon_share_pppoe_down``, ``rx_delta_7d``,
        ``box_share_rx_drop``, ``pon_share_rx_drop``, ``los_1h``, ``box_los_share_1h``,
        ``pon_los_share_1h``, ``dying_gasp_1h``, ``box_gasp_share_1h``,
        ``pon_gasp_share_1h``, ``pppoe_down_1h``, ``pon_pppoe_down_share_1h``). [-]
    min_share : float, default 0.5
        Share of the other ONUs of the group. [-]
    min_neighbours : int, default 3
        Minimum number of other ONUs in that state. [-]

    Returns
    -------
    ndarray of int8
    """
    need = ("online", "box_share_offline", "box_size", "pon_share_offline", "pon_size")
    out = np.zeros(len(X), dtype=np.int8)
    if any(c not in X for c in need):
        return out
    off = X["online"].to_numpy() == 0
    dropped = (
        np.nan_to_num(X["rx_delta_7d"].to_numpy(dtype=float), nan=0.0) <= -RX_DROP_DB
        if "rx_delta_7d" in X
        else np.zeros(len(X), dtype=bool)
    )
    los, gasp = (
        np.nan_to_num(X[c].to_numpy(dtype=float)) > 0 if c in X else np.zeros(len(X), dtype=bool)
        for c in ("los_1h", "dying_gasp_1h")
    )
    optical_cluster = np.zeros(len(X), dtype=bool)
    for lvl in ("box", "pon"):
        others_n = np.maximum(X[f"{lvl}_size"].to_numpy() - 1, 0)
        for own, col in (
            (off, "share_offline"),
            (dropped & ~off, "share_rx_drop"),
            (los, "los_share_1h"),
            (gasp, "gasp_share_1h"),
        ):
            if f"{lvl}_{col}" not in X:
                continue
            share = X[f"{lvl}_{col}"].to_numpy()
            optical_cluster |= own & (share >= min_share) & (share * others_n >= min_neighbours)
    out[optical_cluster] = 1
    upstream = np.zeros(len(X), dtype=bool)
    pon_others = np.maximum(X["pon_size"].to_numpy() - 1, 0)
    # Sessions down now on the ONU and on the PON, or (an upstream failure shorter than
    # the row spacing, already over) a PPPoE-down logged in the last hour on both.
    for own_col, share_col in (
        ("pppoe_down", "pon_share_pppoe_down"),
        ("pppoe_down_1h", "pon_pppoe_down_share_1h"),
    ):
        if own_col not in X or share_col not in X:
            continue
        own = (np.nan_to_num(X[own_col].to_numpy(dtype=float)) >= 1) & ~off
        share = np.nan_to_num(X[share_col].to_numpy(dtype=float))
        upstream |= own & (share >= min_share) & (share * pon_others >= min_neighbours)
    out[upstream & ~optical_cluster] = 2
    return out


def neighbour_massive_rule(
    X: pd.DataFrame, min_share: float = 0.5, min_neighbours: int = 3
) -> np.ndarray:
    """Rows where many neighbours fail together with this ONU (a massive outage).

    True where :func:`neighbour_cluster_kind` finds an offline or a no-PPPoE cluster
    (parameters as there).

    Returns
    -------
    ndarray of bool
    """
    return neighbour_cluster_kind(X, min_share=min_share, min_neighbours=min_neighbours) > 0


class CauseClassifier(ClassifierMixin, BaseEstimator):
    """LightGBM multiclass cause classifier combined with neighbour-cluster rules.

    Parameters
    ----------
    n_estimators : int, default 300
    learning_rate : float, default 0.05
    num_leaves : int, default 31
    min_child_samples : int, default 100
        Fewest rows in a leaf. [-]
    reg_lambda : float, default 5.0
        L2 penalty on leaf values; it keeps a rare pattern from getting an extreme
        log-odds that then fires on another network. [-]
    class_weight : {'balanced', None}, default 'balanced'
    neighbour_rules : bool, default True
        When :func:`neighbour_cluster_kind` finds an offline cluster, the probability of
        ``massive_class`` is raised to at least ``rule_confidence`` (others rescaled); for
        a cluster of ONUs online without PPPoE it is ``external_class`` (the optics work,
        the sessions fail upstream), or ``massive_class`` if training had no such row.
    massive_class : str, default 'MASSIVE_OUTAGE'
    external_class : str, default 'EXTERNAL_NETWORK'
    rule_confidence : float, default 0.95
    booster_exclude : tuple of str, default ()
        Columns of ``X`` that only the neighbour rule reads (e.g. ``box_size``): the
        booster does not see them. Group sizes and absolute optical levels describe one
        network's layout (split ratios, feeder lengths); a booster that splits on them
        mistakes a layout for a cause on another network.
    random_state : int, Generator or None

    Attributes
    ----------
    classes_ : ndarray of str
    booster_ : lightgbm.LGBMClassifier
    feature_names_in_ : ndarray of str
    """

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 100,
        reg_lambda: float = 5.0,
        class_weight: str | None = "balanced",
        neighbour_rules: bool = True,
        massive_class: str = "MASSIVE_OUTAGE",
        external_class: str = "EXTERNAL_NETWORK",
        rule_confidence: float = 0.95,
        booster_exclude: tuple[str, ...] = (),
        random_state=None,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.class_weight = class_weight
        self.neighbour_rules = neighbour_rules
        self.massive_class = massive_class
        self.external_class = external_class
        self.rule_confidence = rule_confidence
        self.booster_exclude = booster_exclude
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X, y):
        """Fit on symptomatic rows ``X`` with cause labels ``y``."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        frame, y = validated_frame(self, X, y, reset=True)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        self.booster_ = lgbm_classifier(self, class_weight=self.class_weight)
        if len(self.classes_) == 1:
            self.constant_ = self.classes_[0]
            return self
        self.constant_ = None
        self.booster_.fit(self.booster_frame(frame), y)
        return self

    def booster_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The columns of ``frame`` the booster sees (all but ``booster_exclude``)."""
        # Models pickled before the parameter existed exclude nothing.
        drop = [c for c in getattr(self, "booster_exclude", ()) if c in frame.columns]
        return frame.drop(columns=drop) if drop else frame

    def _frame(self, X) -> pd.DataFrame:
        check_is_fitted(self, "classes_")
        return validated_frame(self, X, reset=False)

    def predict_proba(self, X) -> np.ndarray:
        """Probability of each class in ``classes_`` order, shape (n_samples, n_classes)."""
        frame = self._frame(X)
        if self.constant_ is not None:
            return np.ones((len(frame), 1))
        proba = class_proba(self.booster_, self.booster_frame(frame))
        if self.neighbour_rules:
            kind = neighbour_cluster_kind(frame)
            for code, cls in ((1, self.massive_class), (2, self.external_class)):
                if cls not in self.classes_:
                    cls = self.massive_class
                fire = kind == code
                if not fire.any() or cls not in self.classes_:
                    continue
                k = int(np.flatnonzero(self.classes_ == cls)[0])
                p = proba[fire]
                target = np.maximum(p[:, k], self.rule_confidence)
                rest = 1.0 - p[:, k]
                scale = np.where(rest > 0, (1.0 - target) / np.maximum(rest, 1e-12), 0.0)
                p = p * scale[:, None]
                p[:, k] = target
                proba[fire] = p
        return proba

    def predict(self, X) -> np.ndarray:
        """Most probable class of each row."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
