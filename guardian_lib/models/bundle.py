"""The set of models that scoring loads: anomaly, cause, risk at 2 h / 6 h / 24 h."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from guardian_lib._frames import frame_from_columns
from guardian_lib.features import FEATURE_COLUMNS, symptomatic
from guardian_lib.models.anomaly import AnomalyScorer
from guardian_lib.models.cause import CauseClassifier
from guardian_lib.models.explain import shap_values, top_reasons
from guardian_lib.models.hazard import HazardRiskModel, compose_hazards
from guardian_lib.schema import CLASS_COLUMNS, PREDICTION_COLUMNS

__all__ = [
    "ModelBundle",
    "ANOMALY_COLUMNS",
    "RISK_COLUMNS",
    "CAUSE_LAYOUT_COLUMNS",
    "PREDICTION_COLUMNS",
    "CLASS_COLUMNS",
    "prediction_frame",
]

#: Features the anomaly scorer sees: deviations from the ONU's own past and rates,
#: which mean the same on any fleet (absolute levels depend on the plant).
ANOMALY_COLUMNS = (
    "rx_delta_7d", "rx_slope_1h", "rx_slope_24h", "olt_rx_delta_7d", "olt_rx_slope_24h",
    "tx_delta_7d", "tx_slope_24h", "log10_ber", "crc_errors_1h", "latency_delta_24h",
    "loss_mean_1h", "flaps_24h", "offline_share_24h", "high_ber_24h", "low_rx_24h",
    "dhcp_fail_24h", "pppoe_down_24h",
)  # fmt: skip
#: Features the risk models see: the ONU's own telemetry, events and customer history.
#: Neighbour shares, group sizes and the feeder distance are left out on purpose: the
#: faults they would announce (cuts, power and BNG outages) have no precursor, and in a
#: few weeks of training data these columns mostly identify *which* PON or OLT was hit
#: *when*, so the boosters memorised the training weeks' outages instead of learning
#: precursors (on an unseen fleet PR-AUC fell from 5.4x to 1.4x prevalence with them).
RISK_COLUMNS = tuple(
    c
    for c in FEATURE_COLUMNS
    if not c.startswith(("box_", "pon_", "olt_", "geo_")) and c != "distance_km"
)
#: Features the cause classifier receives but only its neighbour rule reads: group sizes
#: (split ratios), the feeder distance and absolute optical levels (set by splitter loss
#: and feeder length) describe a network's layout, not a fault. The booster sees the
#: layout-free versions instead: deltas and slopes against the ONU's own baseline, hours
#: to the critical level, neighbour shares.
#: The shares of offline neighbours under the same box and PON are left to the rule too:
#: one other customer of a box of four who is off is a third of the box, which boosters
#: trained on boxes of 8-32 took for an outage (two power cuts two days apart on
#: ``unseen_8x4``); the booster sees who went down *together* instead.
CAUSE_LAYOUT_COLUMNS = (
    "box_size", "pon_size", "distance_km", "rx_dbm", "tx_dbm", "olt_rx_dbm", "rx_mean_15m",
    "rx_mean_1h", "rx_min_1h", "rx_mean_24h", "rx_base_7d",
    "box_share_offline", "pon_share_offline",
)  # fmt: skip


def _columns(names) -> pd.Index:
    """``pd.Index(names)``, built once per set of names: selecting with a list converts
    it to an index (every name to pandas' string dtype) on every call."""
    return _index_of(tuple(names))


@functools.lru_cache(maxsize=64)
def _index_of(names: tuple[str, ...]) -> pd.Index:
    return pd.Index(list(names))


@functools.lru_cache(maxsize=64)
def _positions_of(columns: tuple[str, ...], wanted: tuple[str, ...]) -> np.ndarray | None:
    at = {c: i for i, c in enumerate(columns)}
    if not all(c in at for c in wanted):
        return None
    return np.array([at[c] for c in wanted], dtype=np.intp)


def _float64(X: pd.DataFrame) -> pd.DataFrame:
    """``X`` with float64 columns when all are floats (features are float32): the
    estimators then share one validated copy instead of converting it once each."""
    if all(dt == np.float64 for dt in X.dtypes) or not all(
        np.issubdtype(dt, np.floating) for dt in X.dtypes
    ):
        return X
    return pd.DataFrame(X.to_numpy(dtype=np.float64), index=X.index, columns=X.columns)


#: :data:`FEATURE_COLUMNS` as a set (membership tests).
_FEATURE_SET = frozenset(FEATURE_COLUMNS)


def prediction_frame(cols: dict[str, Any]) -> pd.DataFrame:
    """The ``ml_predictions`` frame of :meth:`ModelBundle.predict_columns`' arrays (the
    string columns get the dtype pandas infers for them; string columns already in a
    pandas array are kept as they are)."""
    return frame_from_columns({c: cols[c] for c in PREDICTION_COLUMNS})


def _explaining_interval(hazards: np.ndarray) -> np.ndarray:
    """Per row, the interval k maximising ``survival_{k−1} · hazard_k``."""
    survival = np.cumprod(np.hstack([np.ones((len(hazards), 1)), 1 - hazards[:, :-1]]), axis=1)
    return np.argmax(survival * hazards, axis=1)


@dataclass
class ModelBundle:
    """Fitted models plus what scoring needs to use them.

    Attributes
    ----------
    anomaly : AnomalyScorer
    cause : CauseClassifier
    risk : HazardRiskModel
        Interval hazards composed into ``risk_2h ≤ risk_6h ≤ risk_24h`` (horizons in
        ``risk.horizons_h``, hours).
    feature_columns : tuple of str
    model_version : str
        Set when the bundle is registered (``"<name>/<version>"``); every prediction
        row carries it.
    """

    anomaly: AnomalyScorer
    cause: CauseClassifier
    risk: HazardRiskModel
    feature_columns: tuple[str, ...] = FEATURE_COLUMNS
    risk_columns: tuple[str, ...] = RISK_COLUMNS
    model_version: str = "unregistered"
    metadata: dict = field(default_factory=dict)

    def check(self, features: pd.DataFrame) -> None:
        """Raise ValueError naming missing feature columns."""
        stale = [c for c in self.feature_columns if c not in _FEATURE_SET]
        if stale:
            # A bundle pickled by an older release: its boosters expect columns that
            # guardian_lib.features no longer computes.
            raise ValueError(
                f"model {self.model_version} was trained on an older feature set "
                f"(uses {stale[:4]}); retrain it with `guardian train`"
            )
        if not isinstance(self.risk, HazardRiskModel):
            # Bundles before the hazard model held one independent classifier per
            # horizon, whose risks could decrease with the horizon.
            raise ValueError(
                f"model {self.model_version} predicts each risk horizon separately (older "
                "release; its risks can contradict each other); retrain it with `guardian train`"
            )
        # One set of the frame's columns: ``c in features`` looks each name up in the
        # frame's column index (~100 lookups, about 1 ms a round).
        have = set(features.columns.tolist())
        missing = [c for c in ("ts", "onu_id", *self.feature_columns) if c not in have]
        if missing:
            raise ValueError(
                f"features are missing column(s) {missing[:6]} (of {len(missing)}); build them "
                "with guardian_lib.features"
            )

    def block_matrix(self, block: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray | None:
        """``features[feature_columns]`` as a float64 matrix, from the float32 block the
        features were read from (:func:`guardian_lib.features.features_with_block`:
        ``FEATURE_COLUMNS`` × rows), for ``rows`` of it (default all); None when the
        bundle uses a column that is not a row of the block. The values
        ``features.loc[:, feature_columns].to_numpy(dtype=np.float64)`` gives. [-]"""
        at = _positions_of(FEATURE_COLUMNS, tuple(self.feature_columns))
        if at is None:
            return None
        part = block[at] if rows is None else block[np.ix_(at, np.asarray(rows, dtype=np.intp))]
        return part.T.astype(np.float64)

    def _rows_fast(self, matrix: np.ndarray | None, sym: np.ndarray | None, explain: bool) -> bool:
        """Whether :meth:`predict_columns` reads nothing of the features frame but its
        ``ts`` and ``onu_id``: every estimator from ``matrix`` (finite, given), ``sym``
        given and no SHAP reasons."""
        return (
            matrix is not None
            and sym is not None
            and not explain
            and len(matrix) > 0
            and not np.isinf(matrix).any()
            and all(self._positions(m) is not None for m in (self.anomaly, self.cause, self.risk))
        )

    def _positions(self, estimator) -> np.ndarray | None:
        """Positions in ``feature_columns`` of the columns ``estimator`` was fitted on
        (None when it was fitted on others)."""
        return _positions_of(tuple(self.feature_columns), tuple(estimator.feature_names_in_))

    def predict(
        self,
        features: pd.DataFrame,
        explain: bool = True,
        max_explained: int = 20_000,
        top_k: int = 3,
        max_risk_explained: int | None = None,
    ) -> pd.DataFrame:
        """Predictions for every row of ``features`` (the ``ml_predictions`` schema).

        Parameters
        ----------
        features : pandas.DataFrame
            ``ts``, ``onu_id`` and the feature columns.
        explain : bool, default True
            Attach the top SHAP reasons (JSON) to the rows that matter: symptomatic rows
            (reasons of the cause model) and, among the others, those with
            ``risk_24h ≥ 0.2`` or ``anomaly_score ≥ 0.99`` (reasons of the 24 h risk
            model), at most ``max_explained`` rows, highest risk first. Other rows get
            ``"[]"``.
        max_explained : int, default 20000
            Most symptomatic rows explained (in row order), and most other rows
            explained unless ``max_risk_explained`` is given. [-]
        top_k : int, default 3
            Reasons per explained row. [-]
        max_risk_explained : int, optional
            Most non-symptomatic rows explained, highest ``risk_24h`` first (default:
            ``max_explained``). SHAP costs about 1 ms per row and 150 trees, so online
            scoring (:class:`~guardian_lib.models.OnlineScorer`) bounds it. [-]

        Returns
        -------
        pandas.DataFrame
            Columns :data:`PREDICTION_COLUMNS`; probabilities in [0, 1]. The class
            probabilities (``p_*``) are given for symptomatic rows (see
            :func:`guardian_lib.features.symptomatic`) and are NaN elsewhere: a row
            without a symptom has no cause to explain.
        """
        cols = self.predict_columns(features, explain, max_explained, top_k, max_risk_explained)
        return prediction_frame(cols)

    def predict_columns(
        self,
        features: pd.DataFrame,
        explain: bool = True,
        max_explained: int = 20_000,
        top_k: int = 3,
        max_risk_explained: int | None = None,
        matrix: np.ndarray | None = None,
        sym: np.ndarray | None = None,
        rows: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """:meth:`predict`'s columns as arrays, before they become a frame.

        ``prediction_frame(bundle.predict_columns(features))`` equals
        ``bundle.predict(features)``; online scoring keeps the arrays (to merge kept and
        fresh rows, and to hand them to the policy) and builds the frame once.

        Parameters
        ----------
        features : pandas.DataFrame
            Feature rows (``ts``, ``onu_id`` and ``feature_columns``).
        explain, max_explained, top_k, max_risk_explained
            As :meth:`predict`.
        matrix : ndarray of float64, optional
            ``features[feature_columns]`` as a float64 matrix, when the caller holds the
            values already (:meth:`block_matrix`): the frame's column selection is then
            skipped. The same predictions. [-]
        sym : ndarray of bool, optional
            ``symptomatic(features)``, when the caller computed it. [-]
        rows : ndarray of int, optional
            Predict only these rows of ``features`` (positions), as
            ``predict_columns(features.iloc[rows], …)`` would; ``matrix`` and ``sym``
            are then those rows' own. Without SHAP reasons and with a ``matrix`` the
            rows' frame is never built (online scoring re-predicts a few rows of the
            fleet between full predictions). [-]

        Returns
        -------
        dict
            :data:`PREDICTION_COLUMNS` in order: ``ts`` (the features' own array),
            ``onu_id`` (an object array), ``model_version`` and ``top_reasons`` (object
            arrays), the others float64 arrays. [-]
        """
        self.check(features)
        if rows is not None and not self._rows_fast(matrix, sym, explain):
            features, rows = features.iloc[rows], None  # the frame's paths read the rows
        n = len(features) if rows is None else len(rows)
        selected_cache: list[pd.DataFrame] = []

        def selected() -> pd.DataFrame:
            """The model's feature columns of ``features`` (selected once, if at all)."""
            if not selected_cache:
                selected_cache.append(features.loc[:, _columns(self.feature_columns)])
            return selected_cache[0]

        # ``.array`` keeps tz-aware times as they are (to_numpy makes 1 Timestamp per row).
        cols: dict[str, Any] = {"ts": features["ts"].array, "onu_id": features["onu_id"].to_numpy()}
        if rows is not None:
            # (Taking the rows of the ids' pyarrow array first costs more than this.)
            cols = {c: v[rows] for c, v in cols.items()}
        # The estimators read one float64 matrix (their columns picked by position)
        # instead of validating a frame each; a matrix their checks would refuse (inf,
        # no rows, non-float columns) goes through their frame API, which says why.
        if matrix is None:
            sel = selected()
            if len(sel) and all(np.issubdtype(dt, np.floating) for dt in sel.dtypes):
                matrix = sel.to_numpy(dtype=np.float64)
        if matrix is not None and (not len(matrix) or np.isinf(matrix).any()):
            matrix = None
        frame_cache: list[pd.DataFrame] = []

        def frame() -> pd.DataFrame:
            """The features as the estimators' frame API reads them (built once)."""
            if not frame_cache:
                sel = selected()
                frame_cache.append(
                    _float64(sel)
                    if matrix is None
                    else pd.DataFrame(matrix, index=sel.index, columns=sel.columns)
                )
            return frame_cache[0]

        anomaly_at = self._positions(self.anomaly)
        if matrix is not None and anomaly_at is not None:
            cols["anomaly_score"] = self.anomaly._anomaly_matrix(matrix[:, anomaly_at])
        else:
            anomaly_in = frame() if set(ANOMALY_COLUMNS) <= set(selected().columns) else features
            cols["anomaly_score"] = self.anomaly.anomaly_score(
                anomaly_in.loc[:, _columns(ANOMALY_COLUMNS)]
            )
        # Causes explain symptoms: rows without one have nothing to explain (NaN).
        if sym is None:
            sym = symptomatic(features)
        classes = list(self.cause.classes_)
        proba = np.full((n, len(classes)), np.nan)
        if sym.any():
            cause_at = self._positions(self.cause)
            if matrix is not None and cause_at is not None:
                proba[sym] = self.cause._proba_matrix(matrix[np.ix_(sym, cause_at)])
            else:
                proba[sym] = self.cause.predict_proba(frame()[sym])
        for cls, col in CLASS_COLUMNS.items():
            cols[col] = (
                proba[:, classes.index(cls)] if cls in classes else np.where(sym, 0.0, np.nan)
            )
        risk_at = self._positions(self.risk)
        if matrix is not None and risk_at is not None:
            hazards = self.risk._hazard_matrix(matrix[:, risk_at])
        else:
            hazards = self.risk.predict_hazard(frame().loc[:, _columns(self.risk_columns)])
        risk = compose_hazards(hazards)
        for k, h in enumerate(self.risk.horizons_h):
            cols[f"risk_{h}h"] = risk[:, k]
        reasons = np.full(n, "[]", dtype=object)
        if explain and n:
            X = frame()
            X_risk = X.loc[:, _columns(self.risk_columns)]
            if sym.any() and self.cause.constant_ is None:
                idx = np.flatnonzero(sym)[:max_explained]
                cls_idx = np.argmax(proba[idx], axis=1)
                rows = self.cause.booster_frame(X.iloc[idx])
                vals = shap_values(self.cause.booster_, rows.astype(float), cls_idx)
                reasons[idx] = top_reasons(vals, rows, "cause", top_k)
                # A row the lone-box prior decided: the booster's reasons argue for the
                # class it moved away from, so the prior comes first.
                for k, item in self.cause.lone_box_items(X.iloc[idx], proba[idx]).items():
                    shap = json.loads(reasons[idx[k]])[: max(top_k - 1, 0)]
                    reasons[idx[k]] = json.dumps([item, *shap])
            score = np.maximum(cols["risk_24h"], 0.0)
            hot = ~sym & ((score >= 0.2) | (cols["anomaly_score"] >= 0.99))
            idx = np.flatnonzero(hot)
            cap = max_explained if max_risk_explained is None else max_risk_explained
            idx = idx[np.argsort(-score[idx], kind="stable")][: max(0, cap)]
            # Each row is explained by the booster of the interval that adds most to
            # its 24 h risk (the first impact is likeliest there).
            which = _explaining_interval(hazards[idx])
            for k, model in enumerate(self.risk.hazards_):
                sel = idx[which == k]
                if len(sel) and getattr(model, "booster_", None) is not None:
                    rows = X_risk.iloc[sel]
                    vals = shap_values(model.booster_, rows.astype(float))
                    reasons[sel] = top_reasons(vals, rows, "risk_24h", top_k)
        cols["model_version"] = np.full(n, self.model_version, dtype=object)
        cols["top_reasons"] = reasons
        return {c: cols[c] for c in PREDICTION_COLUMNS}
