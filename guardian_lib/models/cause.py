"""Probable cause of a symptom: LightGBM over six classes plus neighbour-cluster rules and
the prior of a dark ONU alone on its street box."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from guardian_lib._numeric import nan_to_num
from guardian_lib.features import RX_DROP_DB
from guardian_lib.models._base import (
    class_proba,
    class_proba_matrix,
    lgbm_classifier,
    validated_frame,
)

__all__ = ["CauseClassifier", "lone_box_los", "neighbour_massive_rule", "neighbour_cluster_kind"]


def neighbour_cluster_kind(
    X: pd.DataFrame | Mapping[str, np.ndarray],
    min_share: float = 0.5,
    min_neighbours: int = 3,
    min_box_together: int = 1,
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
    Under the street box, an LOS in the last hour or an RX drop needs only
    ``min_box_together`` other ONUs (still ``min_share`` of them): two ONUs of one box
    that lose their light within the same hour are a fault of the box (a massive outage
    is two or more ONUs of one box or PON down together), while independent failures of
    two drops in one hour are rare; on boxes of two to four ONUs ``min_neighbours`` others
    cannot be found. Offline and dying-gasp shares keep ``min_neighbours``: two customers
    of a small box who switched off hours apart are not an outage.
    Columns missing from ``X`` make their part of the rule silent.

    Parameters
    ----------
    X : pandas.DataFrame or mapping of str to ndarray
        Feature rows, or their columns by name (``online``, ``pppoe_down``, ``box_share_offline``, ``box_size``,
        ``pon_share_offline``, ``pon_size``, ``pon_share_pppoe_down``, ``rx_delta_7d``,
        ``box_share_rx_drop``, ``pon_share_rx_drop``, ``los_1h``, ``box_los_share_1h``,
        ``pon_los_share_1h``, ``dying_gasp_1h``, ``box_gasp_share_1h``,
        ``pon_gasp_share_1h``, ``pppoe_down_1h``, ``pon_pppoe_down_share_1h``). [-]
    min_share : float, default 0.5
        Share of the other ONUs of the group. [-]
    min_neighbours : int, default 3
        Minimum number of other ONUs in that state. [-]
    min_box_together : int, default 1
        Minimum number of other ONUs of the box with an LOS in the last hour or an RX
        drop. [-]

    Returns
    -------
    ndarray of int8
    """
    need = ("online", "box_share_offline", "box_size", "pon_share_offline", "pon_size")
    n = _n_rows(X)
    out = np.zeros(n, dtype=np.int8)
    if any(c not in X for c in need):
        return out

    def col(name: str) -> np.ndarray:
        return np.asarray(X[name], dtype=float)

    off = col("online") == 0
    dropped = (
        nan_to_num(col("rx_delta_7d"), nan=0.0) <= -RX_DROP_DB
        if "rx_delta_7d" in X
        else np.zeros(n, dtype=bool)
    )
    los, gasp = (
        nan_to_num(col(c)) > 0 if c in X else np.zeros(n, dtype=bool)
        for c in ("los_1h", "dying_gasp_1h")
    )
    optical_cluster = np.zeros(n, dtype=bool)
    for lvl in ("box", "pon"):
        others_n = np.maximum(col(f"{lvl}_size") - 1, 0)
        for own, name in (
            (off, "share_offline"),
            (dropped & ~off, "share_rx_drop"),
            (los, "los_share_1h"),
            (gasp, "gasp_share_1h"),
        ):
            if f"{lvl}_{name}" not in X:
                continue
            share = col(f"{lvl}_{name}")
            need = min_box_together if lvl == "box" and name in _TOGETHER else min_neighbours
            # share × others is a count, up to the rounding of a float32 share.
            optical_cluster |= own & (share >= min_share) & (share * others_n >= need - 0.01)
    out[optical_cluster] = 1
    upstream = np.zeros(n, dtype=bool)
    pon_others = np.maximum(col("pon_size") - 1, 0)
    # Sessions down now on the ONU and on the PON, or (an upstream failure shorter than
    # the row spacing, already over) a PPPoE-down logged in the last hour on both.
    for own_col, share_col in (
        ("pppoe_down", "pon_share_pppoe_down"),
        ("pppoe_down_1h", "pon_pppoe_down_share_1h"),
    ):
        if own_col not in X or share_col not in X:
            continue
        own = (nan_to_num(col(own_col)) >= 1) & ~off
        share = nan_to_num(col(share_col))
        upstream |= own & (share >= min_share) & (share * pon_others >= min_neighbours - 0.01)
    out[upstream & ~optical_cluster] = 2
    return out


def lone_box_los(X: pd.DataFrame | Mapping[str, np.ndarray]) -> np.ndarray:
    """Rows of an ONU that is alone on its street box and went dark with an LOS, its light
    steady before.

    Such a dark ONU looks the same whether the ONU died or its box (splitter port,
    connector, drop) failed: on a box of two or more ONUs the box-mates tell the two
    apart (a box fault darkens them all), on a box of one nothing in the data does. A
    laser that drifted before it died is the ONU's own: its last TX (or the OLT's RX of
    it) had fallen by :data:`~guardian_lib.features.RX_DROP_DB` or more against its week.
    Columns missing from ``X`` (``box_size``, ``online``, ``last_down_los``) make the rule
    silent.

    Parameters
    ----------
    X : pandas.DataFrame or mapping of str to ndarray
        Feature rows, or their columns by name (``box_size``, ``online``,
        ``last_down_los``, optionally ``tx_last_delta_7d``, ``olt_rx_last_delta_7d``).

    Returns
    -------
    ndarray of bool
    """
    n = _n_rows(X)
    if any(c not in X for c in ("box_size", "online", "last_down_los")):
        return np.zeros(n, dtype=bool)

    def col(name: str) -> np.ndarray:
        return np.asarray(X[name], dtype=float)

    drifted = np.zeros(n, dtype=bool)
    for c in ("tx_last_delta_7d", "olt_rx_last_delta_7d"):
        if c in X:
            drifted |= nan_to_num(col(c), nan=0.0) <= -RX_DROP_DB
    # NaN compares False: an ONU without a box or without a recorded LOS is not a match.
    return (col("box_size") == 1) & (col("online") == 0) & (col("last_down_los") == 1) & ~drifted


#: Neighbour shares that mark a simultaneous optical failure (within the hour).
_TOGETHER = ("share_rx_drop", "los_share_1h")


def _n_rows(X: pd.DataFrame | Mapping[str, np.ndarray]) -> int:
    """Rows of a frame, or of a mapping of equally long columns (0 when it has none)."""
    if isinstance(X, pd.DataFrame):
        return len(X)
    return len(next(iter(X.values()))) if len(X) else 0


def neighbour_massive_rule(
    X: pd.DataFrame, min_share: float = 0.5, min_neighbours: int = 3, min_box_together: int = 1
) -> np.ndarray:
    """Rows where many neighbours fail together with this ONU (a massive outage).

    True where :func:`neighbour_cluster_kind` finds an optical or a no-PPPoE cluster
    (parameters as there).

    Returns
    -------
    ndarray of bool
    """
    kind = neighbour_cluster_kind(
        X, min_share=min_share, min_neighbours=min_neighbours, min_box_together=min_box_together
    )
    return kind > 0


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
        False also turns off the split of ``box_fault_rate`` (the booster's output as is).
    massive_class : str, default 'MASSIVE_OUTAGE'
    external_class : str, default 'EXTERNAL_NETWORK'
    rule_confidence : float, default 0.95
    box_fault_rate : float, default 0.3
        Faults of a street box (splitter port, connector, drop) per box-year. On a row of
        :func:`lone_box_los` (an ONU alone on its box, dark after an LOS) the
        ``equipment_class`` probability is split between that class and ``drop_class`` in
        the proportion ``onu_failure_rate : box_fault_rate``: the prior of the two faults
        that look the same there. Training networks rarely have a box of one ONU (and a
        fault of one in a training week is rarer still), so the booster cannot learn
        this prior; it comes from these two stated rates. Set them from your own
        tickets (drop and connector repairs per box-year, ONU replacements per
        ONU-year); 0 turns the split off. The defaults are the fault catalogue's. [1/year]
    onu_failure_rate : float, default 0.06
        ONU hardware failures per ONU-year. [1/year]
    equipment_class : str, default 'EQUIPMENT_FAIL'
    drop_class : str, default 'INTERMITTENT'
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
        box_fault_rate: float = 0.3,
        onu_failure_rate: float = 0.06,
        equipment_class: str = "EQUIPMENT_FAIL",
        drop_class: str = "INTERMITTENT",
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
        self.box_fault_rate = box_fault_rate
        self.onu_failure_rate = onu_failure_rate
        self.equipment_class = equipment_class
        self.drop_class = drop_class
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
        for name in ("box_fault_rate", "onu_failure_rate"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite rate >= 0 per year, got {value!r}")
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
            self._apply_lone_box(proba, lone_box_los(frame))
            self._apply_rules(proba, neighbour_cluster_kind(frame))
        return proba

    def _proba_matrix(self, X: np.ndarray) -> np.ndarray:
        """:meth:`predict_proba` of a float64 matrix whose columns are
        ``feature_names_in_`` (already validated: NaN allowed, no inf); the same values,
        without a frame per call."""
        check_is_fitted(self, "classes_")
        if self.constant_ is not None:
            return np.ones((len(X), 1))
        names = list(self.feature_names_in_)
        exclude = set(getattr(self, "booster_exclude", ()))
        keep = [i for i, c in enumerate(names) if c not in exclude]
        proba = class_proba_matrix(self.booster_, X[:, keep] if len(keep) < len(names) else X)
        if self.neighbour_rules:
            columns = {c: X[:, i] for i, c in enumerate(names)}
            self._apply_lone_box(proba, lone_box_los(columns))
            self._apply_rules(proba, neighbour_cluster_kind(columns))
        return proba

    def lone_box_items(self, X, proba: np.ndarray) -> dict[int, dict]:
        """The reason to show first on rows the lone-box split made ``drop_class``.

        Parameters
        ----------
        X : pandas.DataFrame
            The rows (columns as in :meth:`predict_proba`).
        proba : ndarray
            Their :meth:`predict_proba`, shape (n_rows, n_classes).

        Returns
        -------
        dict of int to dict
            Row position → ``{"feature": "box_size", "value": 1.0, "contribution", "model":
            "cause prior"}``, for the rows where the split applied and ``drop_class`` is the
            most probable class (``contribution``: the change the split made to its
            log-odds); other rows are absent.
        """
        out: dict[int, dict] = {}
        split = self._lone_box_split()
        # With no ONU failures the split moves everything and leaves nothing to undo.
        if split is None or split[3] <= 0 or not (self.neighbour_rules and len(proba)):
            return out
        i, j, box, onu = split
        shown = lone_box_los(X) & (np.argmax(proba, axis=1) == j)
        # What the split moved, from what it left: p_equipment = before × onu / (box + onu).
        after = np.clip(proba[:, j], 1e-12, 1 - 1e-12)
        before = np.clip(after - proba[:, i] * box / onu, 1e-12, 1 - 1e-12)
        shift = np.log(after / (1 - after)) - np.log(before / (1 - before))
        for r in np.flatnonzero(shown).tolist():
            out[r] = {"feature": "box_size", "value": 1.0,
                      "contribution": round(float(shift[r]), 4), "model": "cause prior"}  # fmt: skip
        return out

    def _lone_box_split(self) -> tuple[int, int, float, float] | None:
        """Columns of ``equipment_class`` and ``drop_class`` and the two rates, or None
        when the lone-box split does not apply (box rate 0, a class absent)."""
        # Models pickled before the parameters existed do not split.
        box = getattr(self, "box_fault_rate", 0.0)
        onu = getattr(self, "onu_failure_rate", 0.0)
        equipment, drop = (getattr(self, a, None) for a in ("equipment_class", "drop_class"))
        if box <= 0 or not {equipment, drop} <= set(self.classes_):
            return None
        i = int(np.flatnonzero(self.classes_ == equipment)[0])
        j = int(np.flatnonzero(self.classes_ == drop)[0])
        return i, j, box, onu

    def _apply_lone_box(self, proba: np.ndarray, alone: np.ndarray) -> None:
        """Split the equipment probability of the rows ``alone`` (:func:`lone_box_los`)
        between ``equipment_class`` and ``drop_class`` by the two rates, in place."""
        split = self._lone_box_split()
        if split is None or not alone.any():
            return
        i, j, box, onu = split
        moved = proba[alone, i] * (box / (box + onu))
        proba[alone, i] -= moved
        proba[alone, j] += moved

    def _apply_rules(self, proba: np.ndarray, kind: np.ndarray) -> None:
        """Raise the massive (kind 1) or external (kind 2) class of the rows of a
        neighbour cluster to ``rule_confidence`` (others rescaled), in place."""
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

    def predict(self, X) -> np.ndarray:
        """Most probable class of each row."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
