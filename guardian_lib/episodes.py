"""Service-impact episodes: when a customer had no service or a degraded one, per ONU.

:class:`EpisodeTracker` folds them in tick by tick (the closed loop);
:func:`episodes_from_status` computes the same from a frame of observations. MTTR, impact
hours and SLA availability (:func:`guardian_lib.kpis.compute_kpis`) are computed from
them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from guardian_lib.decision.observe import ServiceThresholds, tick_service_state

if TYPE_CHECKING:  # pragma: no cover
    from guardian_lib.loop.tick import Tick

__all__ = ["EpisodeTracker", "episodes_from_status"]

_EP_COLS = ["onu_id", "start_at", "end_at", "outage", "duration_min"]


class EpisodeTracker:
    """Service-impact episodes per ONU, updated once per polling round.

    Parameters
    ----------
    onu_ids : array_like of str
        The fleet, in the order of the ticks given to :meth:`update`.
    thresholds : ServiceThresholds, optional
        When service counts as degraded (the observer's, by default).
    """

    def __init__(self, onu_ids: np.ndarray, thresholds: ServiceThresholds | None = None) -> None:
        self.onu_ids = np.asarray(onu_ids, dtype=object)
        self.thresholds = thresholds or ServiceThresholds()
        n = len(self.onu_ids)
        self.since = np.full(n, np.nan)
        self.had_outage = np.zeros(n, dtype=bool)
        self._rows: list[tuple[np.ndarray, np.ndarray, float, np.ndarray]] = []
        self._last = np.nan

    def update(self, tick: Tick) -> None:
        """Fold in one tick: an episode lasts while the customer has no service or a
        degraded one (:func:`~guardian_lib.decision.observe.service_state`, shared with the observer)."""
        if tick.n_onus != len(self.onu_ids):
            raise ValueError(
                f"EpisodeTracker.update: tick at {tick.ts} has {tick.n_onus} ONUs, "
                f"the fleet {len(self.onu_ids)}"
            )
        service, degraded = tick_service_state(tick, self.thresholds)
        self._fold(tick.ts, ~service | degraded, ~service)

    def _fold(self, ts: pd.Timestamp, impacted: np.ndarray, outage: np.ndarray) -> None:
        now = pd.Timestamp(ts).timestamp()
        self._last = now
        active = ~np.isnan(self.since)
        start = impacted & ~active
        self.since[start] = now
        self.had_outage[start] = False
        self.had_outage |= impacted & outage
        end = ~impacted & active
        if end.any():
            idx = np.flatnonzero(end)
            self._rows.append((idx, self.since[idx].copy(), now, self.had_outage[idx].copy()))
            self.since[idx] = np.nan

    def state_dict(self) -> dict[str, Any]:
        """Open and finished episodes (picklable), for a restart."""
        return {
            "onu_ids": self.onu_ids.copy(),
            "since": self.since.copy(),
            "had_outage": self.had_outage.copy(),
            "rows": list(self._rows),
            "last": self._last,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (same fleet, same order)."""
        if not np.array_equal(np.asarray(state["onu_ids"], dtype=object), self.onu_ids):
            raise ValueError("EpisodeTracker.load_state_dict: the saved fleet differs")
        self.since = np.asarray(state["since"], dtype=float).copy()
        self.had_outage = np.asarray(state["had_outage"], dtype=bool).copy()
        self._rows = list(state["rows"])
        self._last = float(state["last"])

    def episodes(self, until: pd.Timestamp | None = None) -> pd.DataFrame:
        """Finished episodes, plus ongoing ones cut at ``until`` (default: last update).

        Returns
        -------
        pandas.DataFrame
            ``onu_id``, ``start_at``, ``end_at``, ``outage`` (bool) and
            ``duration_min`` [min].
        """
        rows = list(self._rows)
        end_s = self._last if until is None else pd.Timestamp(until).timestamp()
        open_idx = np.flatnonzero(~np.isnan(self.since))
        if len(open_idx):
            rows.append((open_idx, self.since[open_idx], end_s, self.had_outage[open_idx]))
        if not rows:
            return pd.DataFrame(columns=_EP_COLS)
        idx = np.concatenate([r[0] for r in rows])
        st = np.concatenate([r[1] for r in rows])
        en = np.concatenate([np.full(len(r[0]), r[2]) for r in rows])
        out = np.concatenate([r[3] for r in rows])
        df = pd.DataFrame(
            {
                "onu_id": self.onu_ids[idx],
                "start_at": pd.to_datetime(st, unit="s", utc=True),
                "end_at": pd.to_datetime(en, unit="s", utc=True),
                "outage": out,
                "duration_min": (en - st) / 60.0,
            }
        )
        return df.sort_values(["start_at", "onu_id"], kind="stable").reset_index(drop=True)


def episodes_from_status(obs: pd.DataFrame) -> pd.DataFrame:
    """Episodes from a long frame of observations (vectorised).

    Parameters
    ----------
    obs : pandas.DataFrame
        ``ts``, ``onu_id``, ``impacted`` and ``outage`` (bool) per ONU and round.

    Returns
    -------
    pandas.DataFrame
        As :meth:`EpisodeTracker.episodes`.
    """
    o = obs.sort_values(["onu_id", "ts"], kind="stable").reset_index(drop=True)
    imp = o["impacted"].to_numpy(dtype=bool)
    same = o["onu_id"].to_numpy() == np.roll(o["onu_id"].to_numpy(), 1)
    same[0] = False
    prev = np.roll(imp, 1) & same
    start = imp & ~prev
    ep = np.cumsum(start)
    o["ep"] = np.where(imp, ep, 0)
    nxt_ts = o.groupby("onu_id")["ts"].shift(-1)
    o["end"] = nxt_ts.fillna(o["ts"])
    g = o.loc[imp].groupby("ep")
    df = g.agg(onu_id=("onu_id", "first"), start_at=("ts", "min"), end_at=("end", "max"),
               outage=("outage", "any"))  # fmt: skip
    df["duration_min"] = (df["end_at"] - df["start_at"]).dt.total_seconds() / 60.0
    return df.reset_index(drop=True)[_EP_COLS]
