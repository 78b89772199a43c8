"""Streaming anomaly score with temporal context: per-series level, season and scale.

:class:`AnomalyScorer` judges each row on its own. On a single metric stream (CPU,
latency, traffic) that is no better than a detector that never fires: what is anomalous
about a value depends on what came just before it and on the time of day.
:class:`TemporalAnomalyScorer` keeps, for every series (one ONU, one host…) and every
column, a robust running state

* ``level`` — an exponentially weighted level of the de-seasonalised value,
* ``season`` — one offset per phase of the seasonal period (e.g. hour of day),
* ``scale`` — an exponentially weighted mean absolute residual,

and scores each new value with several members: how far it is from
``level + trend + season[phase]`` in units of ``scale`` (``point``); how far the mean
of the last ``window`` residuals is (``window``: level shifts too small for any single
point); for seasonal streams, how unlike any earlier stretch of the series the latest
``shape_window`` values are (``shape``: the distance of the z-normalised subsequence to
its nearest neighbour among the series' past ones; it catches a heartbeat or a daily
curve of the wrong shape whose values all stay in range); and |z| against the mean and
standard deviation of the previous W values for a short and a long W (the windowed
Gaussian, ``gaussian_<W>``). The state is updated after scoring each value, with
residuals clipped at ``clip`` scales, so a spike does not drag the reference while a
lasting level shift is absorbed within a few ``level_halflife``: the scorer fires at
the shift and settles on the new level.

Members speak in different units, so each is calibrated against its own latest
``calibration_size`` scores of the same series and column (:func:`tail_surprise`: the
empirical tail probability, extended past the largest scores by an exponential tail),
and the raw score is the harmonic mean of the members' tail probabilities, as a
surprise in decades. That raw score is calibrated in turn through the raw scores
replayed over the fitting data, as :class:`AnomalyScorer` does: 0.99 means "more
anomalous than 99 % of the reference", on any stream. Scoring is streaming: scoring a
frame in one call or in consecutive chunks gives the same scores (tested). The batch
methods (:meth:`~TemporalAnomalyScorer.score_samples`, ``predict``,
``decision_function``, and ``update=False``) score a frame the same way, each row with
the frame's earlier rows of its series as context, on a copy of the state: the fitted
scorer is left unchanged, as scikit-learn's ``predict`` leaves it.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted

from guardian_lib.models._stream_stats import _MIN_REFERENCE, seasonal_period, tail_surprise

__all__ = ["TemporalAnomalyScorer", "seasonal_period", "tail_surprise"]


class TemporalAnomalyScorer(OutlierMixin, BaseEstimator):
    """Streaming anomaly score in [0, 1] from per-series level, seasonality and scale.

    Parameters
    ----------
    period : int or None, default None
        Seasonal period in rows of one series (e.g. 288 for 5-minute data with a daily
        cycle); None detects it from the fitting data (autocorrelation up to
        ``max_period``); 0 turns seasonality off. [rows]
    max_period : int, default 400
        Longest period searched when ``period`` is None. [rows]
    window : int, default 8
        Rows averaged by the window (level-shift) score. [rows]
    level_halflife : float, default 24
        Half-life of the level's exponential weights. [rows]
    season_halflife : float, default 8
        Half-life, in periods, of each phase's seasonal offset. [periods]
    scale_halflife : float, default 96
        Half-life of the residual scale. [rows]
    clip : float, default 4.0
        Residuals are clipped at ``clip`` scales before they update the state. [-]
    series_column : str or None, default None
        Column naming the series of each row (e.g. ``onu_id``); rows of one series must be
        in time order. None: the frame is one series.
    shape_window : int or None, default None
        Length of the subsequences compared by the shape score (0: off). None: the
        seasonal period when it is between 8 and 512 rows, else off. [rows]
    max_reference : int, default 1500
        Most past subsequences per series and column kept for the shape score (the
        oldest are dropped first). [-]
    gaussian_windows : tuple of int or None, default None
        Lengths of the trailing windows of the windowed-Gaussian members (|z| of a value
        against the mean and standard deviation of the previous W values). None: a short
        and a long window, ``4·window`` and ``max(32·window, 2·period)``; () turns them
        off. [rows]
    calibration_size : int, default 3000
        Latest scores of each member kept per series and column (as float32) as that
        member's reference distribution: its extreme tail, where anomalies are told
        apart, needs thousands (on the labelled streams of docs/models.md 300 ranked
        worse than 1,000, and 1,000 worse than 3,000 on most). [rows]
    combine : {"hmp", "max", "mean"}, default "hmp"
        How the members' calibrated surprises make the raw score: the harmonic mean of
        their tail probabilities (led by the least likely, raised when several members
        agree; valid for dependent members, Wilson 2019), the largest surprise alone, or
        the mean surprise (members must agree).
    threshold : float, default 0.99
        Calibrated score at or above which :meth:`predict` says anomaly (-1). [-]

    Attributes
    ----------
    columns_ : list of str
        Numeric columns scored.
    period_ : int
        Seasonal period used (0: none). [rows]
    shape_window_ : int
        Subsequence length of the shape score (0: off). [rows]
    gaussian_windows_ : tuple of int
        Windows of the windowed-Gaussian members. [rows]
    members_ : list of str
        Names of the members, in the order of :meth:`member_surprise`'s columns.
    state_ : dict of str → dict of ndarray
        Per-series state (``level``, ``scale``, ``season``, ``phase``, ``recent``,
        ``history``, ``calibration``, ``n``…).
    quantiles_ : ndarray, shape (1001,)
        Raw scores of the fitting data replayed, for calibration.
    """

    def __init__(
        self,
        period: int | None = None,
        max_period: int = 400,
        window: int = 8,
        level_halflife: float = 24.0,
        season_halflife: float = 8.0,
        scale_halflife: float = 96.0,
        clip: float = 4.0,
        series_column: str | None = None,
        shape_window: int | None = None,
        max_reference: int = 1500,
        gaussian_windows: tuple[int, ...] | None = None,
        calibration_size: int = 3000,
        combine: str = "hmp",
        threshold: float = 0.99,
    ):
        self.period = period
        self.max_period = max_period
        self.window = window
        self.level_halflife = level_halflife
        self.season_halflife = season_halflife
        self.scale_halflife = scale_halflife
        self.clip = clip
        self.series_column = series_column
        self.shape_window = shape_window
        self.max_reference = max_reference
        self.gaussian_windows = gaussian_windows
        self.calibration_size = calibration_size
        self.combine = combine
        self.threshold = threshold

    # -- input ---------------------------------------------------------------------------

    def _split(self, X) -> tuple[np.ndarray, np.ndarray]:
        """(series key per row, float values (n, n_columns)) of a frame or array."""
        if not isinstance(X, pd.DataFrame):
            arr = np.asarray(X, dtype=float)
            if arr.ndim == 1:
                arr = arr[:, None]
            X = pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])
        if self.series_column is not None and self.series_column not in X:
            raise ValueError(
                f"TemporalAnomalyScorer: series_column {self.series_column!r} is not a column "
                f"of X (columns: {list(X.columns)[:8]})"
            )
        keys = (
            X[self.series_column].astype(str).to_numpy()
            if self.series_column is not None
            else np.zeros(len(X), dtype=object)
        )
        if hasattr(self, "columns_"):
            missing = [c for c in self.columns_ if c not in X]
            if missing:
                raise ValueError(
                    f"X is missing column(s) {missing[:5]} that TemporalAnomalyScorer was "
                    "fitted with"
                )
            cols = self.columns_
        else:
            cols = [
                c
                for c in X.columns
                if c != self.series_column and pd.api.types.is_numeric_dtype(X[c])
            ]
            if not cols:
                raise ValueError("TemporalAnomalyScorer: X has no numeric column to score")
        values = X.loc[:, cols].to_numpy(dtype=float)
        if np.isinf(values).any():
            raise ValueError("TemporalAnomalyScorer: X contains infinite values")
        return keys, values

    # -- state ---------------------------------------------------------------------------

    def _new_state(self, first: np.ndarray) -> dict:
        k = len(self.columns_)
        level = np.where(np.isnan(first), np.nan, first)
        history = max(self.gaussian_windows_, default=0)
        return {
            "level": level.astype(float),
            "trend": np.zeros(k),
            "scale": np.full(k, np.nan),
            "season": np.zeros((max(self.period_, 1), k)),
            "phase": 0,  # rows of this series seen so far
            "recent": np.zeros((max(int(self.window), 1), k)),
            "n": np.zeros(k, dtype=np.int64),
            "history": np.full((max(history, 1), k), np.nan),  # last values, a ring
            # Latest member scores, a ring; float32 halves the largest part of the state.
            "calibration": np.full(
                (len(self.members_), int(self.calibration_size), k), np.nan, dtype=np.float32
            ),
            **self._new_shape_state(k),
        }

    def _new_shape_state(self, k: int) -> dict:
        m = self.shape_window_
        if not m:
            return {}
        cap = int(self.max_reference) + m
        return {
            "tail": np.full((m, k), np.nan),  # last m values, oldest first
            "bank": np.zeros((k, cap, m)),  # z-normalised past subsequences
            "written": np.full((k, cap), -1, dtype=np.int64),  # step each was stored at
            "steps": 0,
        }

    def _shape_step(self, st: dict, x: np.ndarray) -> np.ndarray:
        """Nearest-neighbour distance of the latest subsequence per column (NaN while
        there is no reference), then the update. [-]"""
        m = self.shape_window_
        k = len(x)
        tail = np.vstack([st["tail"][1:], x[None, :]])
        step = st["steps"]
        cap = st["bank"].shape[1]
        dists = np.full(k, np.nan)
        queries = [None] * k
        for j in range(k):
            w = tail[:, j]
            if np.isnan(w).any():
                continue
            sd = w.std()
            q = (w - w.mean()) / sd if sd > 1e-12 else np.zeros(m)
            queries[j] = q
            # Trivial matches (subsequences overlapping the query) are not neighbours.
            ok = (st["written"][j] >= 0) & (step - st["written"][j] >= m)
            if not ok.any():
                continue
            # einsum, not a BLAS product: one matrix-vector product per row gains
            # nothing from BLAS threads, which cost 10× on a busy machine.
            corr = np.where(ok, np.einsum("ij,j->i", st["bank"][j], q), -np.inf).max() / m
            dists[j] = float(np.sqrt(max(0.0, 2.0 * (1.0 - corr))))
        st["tail"] = tail
        for j in range(k):
            if queries[j] is None:
                continue
            slot = step % cap
            st["bank"][j, slot] = queries[j]
            st["written"][j, slot] = step
        st["steps"] = step + 1
        return dists

    def _gaussian_members(self, st: dict, x: np.ndarray) -> np.ndarray:
        """|z| of x against the previous W values, one row per window W. [-]"""
        hist = st["history"]
        size = hist.shape[0]
        seen = st["phase"]
        out = np.full((len(self.gaussian_windows_), len(x)), np.nan)
        for i, w in enumerate(self.gaussian_windows_):
            past = hist[(seen - 1 - np.arange(min(w, seen))) % size]
            ok = ~np.isnan(past)
            cnt = ok.sum(axis=0)
            filled = np.where(ok, past, 0.0)
            mean = filled.sum(axis=0) / np.maximum(cnt, 1)
            var = (np.where(ok, past - mean, 0.0) ** 2).sum(axis=0) / np.maximum(cnt - 1, 1)
            sd = np.sqrt(var)
            good = (cnt >= 2) & (sd > 1e-12 * (np.abs(mean) + 1.0))
            out[i] = np.where(good, np.abs(x - mean) / np.where(good, sd, 1.0), np.nan)
        return out

    def _warmup(self) -> int:
        # Enough points for a first scale and one seasonal cycle, before judging.
        return max(2 * int(self.window), 10, self.period_)

    def _members(self, st: dict, x: np.ndarray) -> tuple[np.ndarray, dict]:
        """Member scores of one row (n_members, n_columns), NaN before warm-up, and the
        quantities the state update needs."""
        p = self.period_
        phase = st["phase"] % p if p else 0
        season = st["season"][phase] if p else 0.0
        # Additive Holt-Winters in error-correction form: level + trend + season[phase].
        expected = st["level"] + st["trend"] + season
        resid = x - expected
        valid = ~np.isnan(x) & ~np.isnan(st["level"])
        warm = valid & (st["n"] >= self._warmup())
        scale = np.where(st["scale"] > 0, st["scale"], np.nan)
        w = st["recent"].shape[0]
        recent = st["recent"].copy()
        # Clipped at `clip` scales: one spike moves the window mean by at most clip/w
        # (the point score's news), a lasting shift below `clip` scales moves it fully.
        recent[st["phase"] % w] = np.where(warm, np.clip(resid / scale, -self.clip, self.clip), 0.0)
        rows = [np.abs(resid) / scale, np.abs(recent.mean(axis=0)) * np.sqrt(w)]
        if self.shape_window_:
            # The shape is judged on values with spikes clipped to `clip` scales: a spike
            # is the point score's news, and would otherwise keep the shape score high
            # for as long as it stays in the window.
            bound = np.where(warm, self.clip * np.nan_to_num(scale, nan=np.inf), np.inf)
            cleaned = np.where(np.isnan(x), x, expected + np.clip(resid, -bound, bound))
            cleaned = np.where(np.isnan(expected), x, cleaned)
            rows.append(self._shape_step(st, cleaned))
        members = np.vstack([np.vstack(rows), self._gaussian_members(st, x)])
        members = np.where(warm[None, :], members, np.nan)
        return members, {"resid": resid, "valid": valid, "scale": scale, "recent": recent}

    def _step(self, st: dict, x: np.ndarray, out: np.ndarray | None = None) -> float:
        """Raw score of one row of one series, then the update of its state ``st``.

        ``out`` (n_members,), if given, receives each member's surprise (max over columns).
        """
        members, upd = self._members(st, x)
        surprise = tail_surprise(st["calibration"], members)
        if out is not None:
            finite = ~np.isnan(surprise)
            out[:] = np.where(
                finite.any(axis=1), np.nanmax(np.where(finite, surprise, -1.0), 1), 0.0
            )
        if np.isnan(surprise).all():
            raw = 0.0
        elif self.combine == "mean":
            raw = float(np.nanmax(np.nanmean(surprise, axis=0)))
        elif self.combine == "hmp":
            # Harmonic mean of the members' tail probabilities, per column: valid for
            # dependent members, led by the smallest p but higher when several agree.
            top = np.nanmax(surprise, axis=0)
            count = (~np.isnan(surprise)).sum(axis=0)
            with np.errstate(invalid="ignore"):
                spread = np.nansum(10.0 ** (surprise - top), axis=0)
                per_column = top + np.log10(spread) - np.log10(np.maximum(count, 1))
            raw = float(np.nanmax(np.where(count > 0, per_column, np.nan)))
        else:
            raw = float(np.nanmax(surprise))
        seen = st["phase"]
        st["calibration"][:, seen % st["calibration"].shape[1]] = members
        st["history"][seen % st["history"].shape[0]] = x
        st["recent"] = upd["recent"]
        resid, valid, scale = upd["resid"], upd["valid"], upd["scale"]
        p = self.period_
        phase = seen % p if p else 0
        a_l = 1 - 0.5 ** (1 / self.level_halflife)
        a_t = a_l / 4
        a_s = 1 - 0.5 ** (1 / self.season_halflife)
        a_sc = 1 - 0.5 ** (1 / self.scale_halflife)
        n = st["n"]
        # Clipped residuals update the state once it is warm (a spike does not drag the
        # reference; a lasting shift still moves it by `clip` scales per step).
        bound = np.where(n >= self._warmup(), self.clip * np.nan_to_num(scale, nan=np.inf), np.inf)
        r = np.where(valid, np.clip(resid, -bound, bound), 0.0)
        first = np.isnan(st["level"]) & ~np.isnan(x)
        st["level"] = np.where(first, x, st["level"] + np.where(valid, st["trend"] + a_l * r, 0.0))
        st["trend"] = st["trend"] + np.where(valid, a_t * a_l * r, 0.0)
        if p:
            st["season"][phase] = st["season"][phase] + np.where(valid, a_s * (1 - a_l) * r, 0.0)
        # Scale: plain mean of |residual| during warm-up, then exponentially weighted.
        weight = np.where(n < self._warmup(), 1.0 / (n + 1), a_sc)
        old = np.nan_to_num(st["scale"], nan=0.0)
        new_scale = (1 - weight) * old + weight * np.abs(r)
        # Keep the scale off zero on flat stretches (a wiggle after a flat line is news,
        # not an infinite one).
        floor = 1e-9 * (np.abs(np.nan_to_num(st["level"])) + 1.0)
        st["scale"] = np.where(valid & (n > 0), np.maximum(new_scale, floor), st["scale"])
        st["n"] = n + valid
        st["phase"] = seen + 1
        return raw

    def _run(
        self,
        keys: np.ndarray,
        values: np.ndarray,
        update: bool,
        per_member: np.ndarray | None = None,
    ) -> np.ndarray:
        """Raw score of each row, in order, each series' rows scored after its earlier ones.

        ``update`` True moves ``state_`` (streaming). False runs the same steps on copies
        of the states of the series in the frame (taken at their first row) and leaves
        ``state_`` as it was: a row is scored with the frame's earlier rows of its series
        as context, and the fitted scorer does not change.
        """
        states = self.state_ if update else {}
        raw = np.zeros(len(values))
        for i in range(len(values)):
            key = keys[i]
            st = states.get(key)
            if st is None:
                fitted = None if update else self.state_.get(key)
                st = self._new_state(values[i]) if fitted is None else copy.deepcopy(fitted)
                states[key] = st
            raw[i] = self._step(st, values[i], None if per_member is None else per_member[i])
        return raw

    # -- public --------------------------------------------------------------------------

    def fit(self, X, y=None):
        """Learn each series' state and the calibration from X (labels ignored).

        Raises
        ------
        ValueError
            Bad parameters, no numeric column, infinite values, or ``series_column``
            missing.
        """
        self._fit(X)
        return self

    def _fit(self, X) -> np.ndarray:
        """:meth:`fit`, returning the raw scores of X's rows replayed. [-]"""
        if not (0 < self.threshold < 1):
            raise ValueError(
                f"TemporalAnomalyScorer: threshold must be in (0, 1), got {self.threshold}"
            )
        if int(self.window) < 1 or self.clip <= 0:
            raise ValueError("TemporalAnomalyScorer: window must be >= 1 and clip > 0")
        if self.combine not in ("hmp", "max", "mean"):
            raise ValueError(
                "TemporalAnomalyScorer: combine must be 'hmp', 'max' or 'mean', got "
                f"{self.combine!r}"
            )
        if int(self.calibration_size) < 2 * _MIN_REFERENCE:
            raise ValueError(
                "TemporalAnomalyScorer: calibration_size must be >= "
                f"{2 * _MIN_REFERENCE}, got {self.calibration_size}"
            )
        if self.gaussian_windows is not None and any(int(w) < 2 for w in self.gaussian_windows):
            raise ValueError(
                "TemporalAnomalyScorer: every gaussian_windows entry must be >= 2 rows, got "
                f"{tuple(self.gaussian_windows)}"
            )
        for name in (
            "columns_",
            "period_",
            "shape_window_",
            "gaussian_windows_",
            "members_",
            "state_",
            "quantiles_",
        ):
            if hasattr(self, name):
                delattr(self, name)
        keys, values = self._split(X)
        self.columns_ = (
            [
                c
                for c in X.columns
                if c != self.series_column and pd.api.types.is_numeric_dtype(X[c])
            ]
            if isinstance(X, pd.DataFrame)
            else [f"x{i}" for i in range(values.shape[1])]
        )
        if self.period is None:
            # The period of the first series' first column stands for all: series of one
            # frame share a sampling rate and a daily cycle.
            first = values[keys == keys[0], 0] if len(keys) else values[:, 0]
            self.period_ = seasonal_period(first, int(self.max_period))
        else:
            self.period_ = int(self.period)
        if self.shape_window is None:
            self.shape_window_ = self.period_ if 8 <= self.period_ <= 512 else 0
        else:
            self.shape_window_ = int(self.shape_window)
        if self.gaussian_windows is None:
            w = int(self.window)
            self.gaussian_windows_ = (4 * w, max(32 * w, 2 * self.period_))
        else:
            self.gaussian_windows_ = tuple(int(w) for w in self.gaussian_windows)
        self.members_ = (
            ["point", "window"]
            + (["shape"] if self.shape_window_ else [])
            + [f"gaussian_{w}" for w in self.gaussian_windows_]
        )
        self.state_ = {}
        raw = self._run(keys, values, update=True)
        # Calibrate on rows after each series' warm-up (raw = 0 there by construction).
        ref = raw[raw > 0] if (raw > 0).any() else raw
        self.quantiles_ = np.quantile(ref, np.linspace(0, 1, 1001)) if len(ref) else np.zeros(1001)
        self.offset_ = -self.threshold
        return raw

    def fit_predict(self, X, y=None) -> np.ndarray:
        """Fit on X, then -1 for X's anomalous rows, 1 otherwise.

        The rows are judged by the scores of the fit itself (each row after the earlier
        rows of its series), not scored a second time after the fit.
        """
        return self._labels(self._calibrated(self._fit(X)))

    def raw_score(self, X, update: bool = True) -> np.ndarray:
        """Uncalibrated score: the members' combined surprise (higher = more anomalous). [-]

        Rows are scored in order, each with the earlier rows of its series (in the fit,
        in earlier streaming calls and in X) as context.

        Parameters
        ----------
        update : bool, default True
            True: streaming, each series' state moves with the scored values (the next
            call carries on after X). False: the same scores, computed on a copy of the
            state, which is left as it is (the next call carries on after the previous
            streaming one, as if X had not been scored).
        """
        check_is_fitted(self, "quantiles_")
        keys, values = self._split(X)
        return self._run(keys, values, update=update)

    def member_surprise(self, X, update: bool = True) -> np.ndarray:
        """Each member's calibrated surprise per row (max over columns; 0 before
        warm-up), shape (n_rows, len(members_)): which member finds a row unlikely. [-]

        Moves the state like :meth:`raw_score` unless ``update`` is False.
        """
        check_is_fitted(self, "quantiles_")
        keys, values = self._split(X)
        out = np.zeros((len(values), len(self.members_)))
        self._run(keys, values, update=update, per_member=out)
        return out

    def anomaly_score(self, X, update: bool = True) -> np.ndarray:
        """Calibrated anomaly score in [0, 1] (higher = more anomalous), rows scored in
        order as :meth:`raw_score` does (streaming unless ``update`` is False). [-]"""
        return self._calibrated(self.raw_score(X, update=update))

    def _calibrated(self, raw: np.ndarray) -> np.ndarray:
        q = self.quantiles_
        lo = np.searchsorted(q, raw, side="left")
        hi = np.searchsorted(q, raw, side="right")
        score = np.clip((lo + hi) / 2 / (len(q) - 1), 0.0, 1.0)
        # Warm-up rows (no reference yet) say nothing.
        return np.where(raw > 0, score, 0.0)

    def _labels(self, score: np.ndarray) -> np.ndarray:
        return np.where(-score - self.offset_ <= 0, -1, 1)

    def score_samples(self, X) -> np.ndarray:
        """``−anomaly_score(X, update=False)`` (scikit-learn convention: lower is more
        abnormal). [-]

        Batch scoring of new data: the rows of X are scored in time order per series,
        each with the earlier rows of its series in X as context, as streaming X would
        score them, but on a copy of the state: the fitted scorer is not changed.
        """
        return -self.anomaly_score(X, update=False)

    def decision_function(self, X) -> np.ndarray:
        """``score_samples − offset_``: negative for anomalies (state not changed)."""
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """-1 for anomalies, 1 otherwise, rows scored as :meth:`score_samples` does
        (state not changed)."""
        return self._labels(-self.score_samples(X))
