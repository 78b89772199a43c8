"""Online scoring: the model bundle applied tick by tick to an in-memory window."""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from guardian_lib._numeric import nan_to_num
from guardian_lib.features import FEATURE_COLUMNS, RollingCube, symptomatic
from guardian_lib.models.bundle import prediction_frame

if TYPE_CHECKING:  # pragma: no cover
    from guardian_lib.loop.tick import Tick

__all__ = ["OnlineScorer", "ModelScorer", "RISK_EVERY_ROUNDS"]

#: Decision rounds between two predictions of the whole fleet when the models score the
#: closed loop (the backtest's and ``operate``'s :class:`ModelScorer`): every hour with
#: the backtest's 15-minute rounds, every 20 min with operate's 5-minute cycles. In the
#: rounds between, the rows with a symptom now or at the previous round or a last
#: ``risk_24h`` of at least 0.05 are predicted afresh, and the other rows keep their last
#: prediction (see ``OnlineScorer.full_every``). Risk horizons are 2 h or more; on the
#: unseen variant ``unseen_8x4`` (5 seeds × 7 days, the ``mixture`` bundle) every round
#: and every 4th round gave the same visits, MTTR, costs, reboots and massive F1 on every
#: seed (docs/autopilot-results.md "Speed"). [rounds]
RISK_EVERY_ROUNDS = 4
#: Prediction columns of strings (object arrays in ``predict_columns``' output).
_STRING_COLUMNS = ("onu_id", "model_version", "top_reasons")


def _columns_of(predictions: pd.DataFrame) -> dict[str, Any]:
    """Prediction arrays of a saved predictions frame (as ``predict_columns`` gives
    them: ``ts`` as the frame's array, string columns as object arrays)."""
    cols: dict[str, Any] = {"ts": predictions["ts"].array}
    for c in predictions.columns:
        if c != "ts":
            v = predictions[c]
            cols[c] = v.to_numpy(dtype=object) if v.dtype.kind not in "biufc" else v.to_numpy()
    return cols


@functools.lru_cache(maxsize=16)
def _takes_exact_of(func: Any) -> bool:
    try:
        return "exact" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def _takes_exact(seed: Any) -> bool:
    """Whether a ``seed_predictions`` method takes ``exact`` (checked once per class)."""
    return _takes_exact_of(getattr(seed, "__func__", seed))


class OnlineScorer:
    """Predictions for the whole fleet at the newest tick, from what was observed so far.

    Feed it every tick with :meth:`update`; call it (e.g. as the autopilot's
    ``scorer(snapshot)``) to get the ``ml_predictions`` rows of the newest tick. It
    keeps no ground truth and reads nothing but the readings and events given to it.

    Parameters
    ----------
    bundle : ModelBundle
    onus : pandas.DataFrame
        Inventory rows in the ONU order of the ticks given to :meth:`update`.
    tick_s : int, default 300
        Polling interval. [s]
    window_ticks : int, default 2016
        History kept (7 days at 5 minutes); shorter windows are cheaper and give
        baselines over what is held. [-]
    explain : bool, default True
        Attach top SHAP reasons (see :meth:`ModelBundle.predict`).
    max_risk_explained : int or None, default 500
        Most rows without a symptom that get the 24 h risk model's reasons each tick,
        highest ``risk_24h`` first (every symptomatic row keeps its cause reasons).
        SHAP costs about 1 ms per row and 150 trees, so this bounds a tick's latency
        while still covering the rows an operator or the autopilot acts on (high risk);
        None explains all of them, as batch scoring does. [-]
    max_explained : int, default 20000
        Most symptomatic rows that get the cause model's reasons each tick (in fleet
        order). [-]
    full_every : int, default 1
        Calls between two predictions of the whole fleet. With 1 (the default) every
        call predicts every row. With ``k > 1`` the calls in between predict only the
        rows that can matter now — those with a symptom now or at the previous call, or
        whose last ``risk_24h`` was at least ``refresh_risk`` — and the other rows keep
        their last prediction (at most ``k − 1`` calls old; their ``ts`` is the newest
        tick). The models score each row on its own features, so a re-predicted row
        gets exactly the value a full prediction gives it; only the kept rows can
        differ (a healthy row whose risk rose from below ``refresh_risk`` is seen up to
        ``k − 1`` calls later). [-]
    refresh_risk : float, default 0.05
        See ``full_every``. [-]
    """

    def __init__(
        self,
        bundle,
        onus: pd.DataFrame,
        tick_s: int = 300,
        window_ticks: int = 2016,
        explain: bool = True,
        max_risk_explained: int | None = 500,
        max_explained: int = 20_000,
        full_every: int = 1,
        refresh_risk: float = 0.05,
    ) -> None:
        if full_every < 1:
            raise ValueError(f"OnlineScorer: full_every must be at least 1, got {full_every}")
        self.bundle = bundle
        self.cube = RollingCube(onus, tick_s=tick_s, window_ticks=window_ticks)
        self.explain = explain
        self.max_risk_explained = max_risk_explained
        self.max_explained = max_explained
        self.full_every = full_every
        self.refresh_risk = refresh_risk
        self.model_version = bundle.model_version
        self._last: dict[str, Any] | None = None  # the previous call's prediction arrays
        self._last_sym: np.ndarray | None = None
        # The last frame's string columns: (the object array, the frame's array, whether
        # a value is missing).
        self._strings: dict[str, tuple[np.ndarray, Any, bool]] = {}
        self._calls = 0
        #: Feature rows of the last call (None before the first).
        self.last_features: pd.DataFrame | None = None

    def update(self, tick: Tick) -> None:
        """Add one tick of readings and events (see :meth:`RollingCube.update`)."""
        self.cube.update(tick)

    def state_dict(self) -> dict[str, Any]:
        """The scorer's window (picklable) and model version, for a restart."""
        return {
            "model_version": self.model_version,
            "cube": self.cube.state_dict(),
            "last": None if self._last is None else prediction_frame(self._last),
            "last_sym": self._last_sym,
            "calls": self._calls,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output; the window is kept even if the model
        version changed (features do not depend on the model)."""
        self.cube.load_state_dict(state["cube"])
        last = state.get("last")
        self._last = None if last is None else _columns_of(last)
        self._last_sym = state.get("last_sym")
        self._calls = int(state.get("calls", 0))

    def __call__(self, snapshot=None) -> pd.DataFrame:
        """Predictions of every ONU at the newest observed tick (see ``full_every``; its
        feature rows stay in :attr:`last_features`, e.g. for drift monitoring).

        The frame is built once from the prediction arrays, and a ``snapshot`` that
        takes them (``seed_predictions``, as :class:`~guardian_lib.decision.Snapshot`)
        is handed the arrays too, so the policy does not read the frame back.
        """
        features, block = self.cube.latest_features_with_block()
        self.last_features = features
        # The symptom flags and the models' matrix are read from the features' float32
        # block (the same values as from the frame, without a pandas selection).
        cols_of = None if block is None else dict(zip(FEATURE_COLUMNS, block, strict=True))
        sym = symptomatic(features if cols_of is None else cols_of)
        full = self._last is None or self._calls % self.full_every == 0
        self._calls += 1
        if self.full_every == 1:
            cols = self._predict(features, sym, block)
        else:
            if full or len(self._last["onu_id"]) != len(features):
                cols = self._predict(features, sym, block)
            else:
                cols = self._merged(features, sym, block)
            self._last, self._last_sym = cols, sym
        out = self._frame(cols)
        seed = getattr(snapshot, "seed_predictions", None)
        if seed is not None:
            # The string arrays are what the frame gives back when none is missing
            # (told to a snapshot that takes ``exact``, as Snapshot does).
            if _takes_exact(seed) and not any(k[2] for k in self._strings.values()):
                seed(out, cols, exact=True)
            else:
                seed(out, cols)
        return out

    def _frame(self, cols: dict[str, Any]) -> pd.DataFrame:
        """``prediction_frame(cols)``, with the previous frame's string columns where
        their values are unchanged (the same ids, version and reasons most rounds:
        pandas infers a string dtype for each object array, which costs more than
        comparing them)."""
        given = dict(cols)
        missing = {}
        for c in _STRING_COLUMNS:
            kept = self._strings.get(c)
            # The same array (a round between two full predictions that changed none of
            # its values keeps it, see _merged) or equal values.
            if kept is not None and (kept[0] is cols[c] or np.array_equal(kept[0], cols[c])):
                given[c], missing[c] = kept[1], kept[2]
            else:  # whether a value is missing (the frame then differs): checked once
                missing[c] = bool(pd.isna(cols[c]).any())
        out = prediction_frame(given)
        self._strings = {c: (cols[c], out[c].array, missing[c]) for c in _STRING_COLUMNS}
        return out

    def _merged(
        self, features: pd.DataFrame, sym: np.ndarray, block: np.ndarray | None
    ) -> dict[str, Any]:
        """The last call's columns with the rows that can matter now predicted afresh."""
        last = self._last
        rows = np.flatnonzero(
            sym
            | self._last_sym
            | (nan_to_num(np.asarray(last["risk_24h"], dtype=float)) >= self.refresh_risk)
        )
        fresh = None
        if len(rows):
            fresh = self._predict(features, sym[rows], block, rows)
        cols: dict[str, Any] = {"ts": features["ts"].array}
        for c, v in last.items():
            if c == "ts":
                continue
            if c in _STRING_COLUMNS and (fresh is None or np.array_equal(v[rows], fresh[c])):
                # Unchanged strings (ids, version, most rounds the reasons): the same
                # array, which no one writes to (_frame then need not compare it).
                cols[c] = v
                continue
            # New arrays: the ones handed out last time stay as they were.
            col = np.array(v, copy=True)
            if fresh is not None:
                col[rows] = fresh[c]
            cols[c] = col
        return cols

    def _predict(
        self,
        features: pd.DataFrame,
        sym: np.ndarray,
        block: np.ndarray | None,
        rows: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """The bundle's prediction arrays of this round's ``features`` (their float32
        ``block``), or of their ``rows``, with those rows' symptom flags ``sym``."""
        return self.bundle.predict_columns(
            features,
            explain=self.explain,
            max_explained=self.max_explained,
            max_risk_explained=self.max_risk_explained,
            matrix=None if block is None else self.bundle.block_matrix(block, rows),
            sym=sym,
            rows=rows,
        )


class ModelScorer:
    """A model bundle not yet bound to a fleet: :meth:`bind` gives an :class:`OnlineScorer`.

    The closed-loop backtest builds a new simulation per seed and binds the scorer to
    each fleet (``scorer.bind(onus, tick_s)``), then feeds it every tick
    (:class:`~guardian_lib.loop.ClosedLoop` does both).

    Parameters
    ----------
    bundle : ModelBundle
    window_ticks : int, default 576
        History kept per fleet (2 days at 5 minutes: 7-day baselines are then taken over
        what is held, which keeps a week-long backtest fast). [-]
    explain : bool, default False
        Attach SHAP reasons (slower; the audit keeps the policy's own rationale).
    max_risk_explained : int or None, default 500
        As in :class:`OnlineScorer`. [-]
    max_explained : int, default 20000
        As in :class:`OnlineScorer`. [-]
    full_every : int, default :data:`RISK_EVERY_ROUNDS`
        As in :class:`OnlineScorer`: calls (decision rounds) between two predictions of
        the whole fleet; 1 predicts every row at every round (exact, slower).
    refresh_risk : float, default 0.05
        As in :class:`OnlineScorer`.
    """

    def __init__(
        self,
        bundle,
        window_ticks: int = 576,
        explain: bool = False,
        max_risk_explained: int | None = 500,
        max_explained: int = 20_000,
        full_every: int = RISK_EVERY_ROUNDS,
        refresh_risk: float = 0.05,
    ) -> None:
        self.bundle = bundle
        self.window_ticks = window_ticks
        self.explain = explain
        self.max_risk_explained = max_risk_explained
        self.max_explained = max_explained
        self.full_every = full_every
        self.refresh_risk = refresh_risk
        self.model_version = bundle.model_version

    def bind(self, onus: pd.DataFrame, tick_s: int = 300) -> OnlineScorer:
        """An :class:`OnlineScorer` for the fleet ``onus``."""
        return OnlineScorer(
            self.bundle,
            onus,
            tick_s=tick_s,
            window_ticks=self.window_ticks,
            explain=self.explain,
            max_risk_explained=self.max_risk_explained,
            max_explained=self.max_explained,
            full_every=self.full_every,
            refresh_risk=self.refresh_risk,
        )
