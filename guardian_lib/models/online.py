"""Online scoring: the model bundle applied tick by tick to an in-memory window."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from guardian_lib.features import RollingCube

if TYPE_CHECKING:  # pragma: no cover
    from guardian_lib.loop.tick import Tick

__all__ = ["OnlineScorer", "ModelScorer"]


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
    ) -> None:
        self.bundle = bundle
        self.cube = RollingCube(onus, tick_s=tick_s, window_ticks=window_ticks)
        self.explain = explain
        self.max_risk_explained = max_risk_explained
        self.max_explained = max_explained
        self.model_version = bundle.model_version
        #: Feature rows of the last call (None before the first).
        self.last_features: pd.DataFrame | None = None

    def update(self, tick: Tick) -> None:
        """Add one tick of readings and events (see :meth:`RollingCube.update`)."""
        self.cube.update(tick)

    def state_dict(self) -> dict[str, Any]:
        """The scorer's window (picklable) and model version, for a restart."""
        return {"model_version": self.model_version, "cube": self.cube.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output; the window is kept even if the model
        version changed (features do not depend on the model)."""
        self.cube.load_state_dict(state["cube"])

    def __call__(self, snapshot=None) -> pd.DataFrame:
        """Predictions of every ONU at the newest observed tick (its feature rows stay
        in :attr:`last_features`, e.g. for drift monitoring)."""
        self.last_features = self.cube.latest_features()
        return self.bundle.predict(
            self.last_features,
            explain=self.explain,
            max_explained=self.max_explained,
            max_risk_explained=self.max_risk_explained,
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
    """

    def __init__(
        self,
        bundle,
        window_ticks: int = 576,
        explain: bool = False,
        max_risk_explained: int | None = 500,
        max_explained: int = 20_000,
    ) -> None:
        self.bundle = bundle
        self.window_ticks = window_ticks
        self.explain = explain
        self.max_risk_explained = max_risk_explained
        self.max_explained = max_explained
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
        )
