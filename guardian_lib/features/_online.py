"""An in-memory rolling window of fleet telemetry for online (tick-by-tick) scoring."""

from __future__ import annotations

import numpy as np
import pandas as pd

from guardian_lib.features._compute import compute_features
from guardian_lib.features._cube import EVENT_FEATURE_TYPES, MEASURES, Cube

__all__ = ["RollingCube"]

_US = 1_000_000


class RollingCube:
    """The last ``window_ticks`` ticks of every ONU, appended one tick at a time.

    A buffer of twice the window is filled and, when full, its newest half is moved to
    the front (once per ``window_ticks`` appends), so the chronological window is always
    a zero-copy slice. Feature values equal the batch computation as long as the window
    covers the longest window used (7 days for baselines; shorter windows give baselines
    over what is held).

    Parameters
    ----------
    onus : pandas.DataFrame
        Inventory rows (``onu_id``, ``pon_id``, ``splitter_id``, ``olt_id``, ``lat``,
        ``lon``, ``distance_m``) in the order of the arrays passed to :meth:`append`.
    tick_s : int, default 300
        Polling interval. [s]
    window_ticks : int, default 2016
        Ticks kept (2016 × 5 min = 7 days). [-]
    """

    def __init__(self, onus: pd.DataFrame, tick_s: int = 300, window_ticks: int = 2016) -> None:
        self.onus = onus.reset_index(drop=True)
        self.tick_s = tick_s
        self.window_ticks = window_ticks
        n = len(self.onus)
        self._buf = {m: np.full((2 * window_ticks, n), np.nan) for m in MEASURES}
        self._pos = 0  # rows used in the buffer
        self._first_tick = 0  # absolute tick index of buffer row 0
        self._t0_us: int | None = None
        self._events: list[tuple[int, int, str]] = []
        self._index = pd.Index(self.onus["onu_id"].astype(str))
        self.orders = pd.DataFrame(columns=["onu", "opened_tick", "closed_tick", "completed"])

    @property
    def n_ticks(self) -> int:
        """Ticks currently held. [-]"""
        return min(self._pos, self.window_ticks)

    def append(
        self,
        ts: pd.Timestamp,
        values: dict[str, np.ndarray],
        events: pd.DataFrame | None = None,
    ) -> None:
        """Add one tick.

        Parameters
        ----------
        ts : pandas.Timestamp
            Tick time (UTC); must follow the previous tick by ``tick_s``.
        values : dict of str → ndarray, shape (n_onus,)
            Readings per measure (:data:`~guardian_lib.features.MEASURES`); missing
            measures are NaN. ``online`` as 0/1.
        events : pandas.DataFrame, optional
            Events since the previous tick: columns ``onu_id`` and ``type``.
        """
        t_us = int(pd.Timestamp(ts).value // 1000)
        if self._t0_us is None:
            self._t0_us = t_us
        tick = int(round((t_us - self._t0_us) / (self.tick_s * _US)))
        expected = self._first_tick + self._pos
        if tick != expected:
            raise ValueError(
                f"RollingCube.append: expected the tick at "
                f"{pd.Timestamp((self._t0_us + expected * self.tick_s * _US) * 1000, tz='UTC')}, "
                f"got {pd.Timestamp(ts)}"
            )
        if self._pos == 2 * self.window_ticks:
            keep = self.window_ticks
            for m in self._buf.values():
                m[:keep] = m[-keep:]
                m[keep:] = np.nan
            self._first_tick += self._pos - keep
            self._pos = keep
        for m, buf in self._buf.items():
            row = values.get(m)
            buf[self._pos] = np.nan if row is None else np.asarray(row, dtype=float)
        self._pos += 1
        if events is not None and len(events):
            ev = events[events["type"].isin(EVENT_FEATURE_TYPES)]
            idx = self._index.get_indexer(ev["onu_id"].astype(str).to_numpy())
            self._events += [
                (tick, int(i), str(t)) for i, t in zip(idx, ev["type"], strict=True) if i >= 0
            ]
        oldest = self._first_tick + self._pos - self.window_ticks - 1
        if self._events and self._events[0][0] < oldest:
            self._events = [e for e in self._events if e[0] >= oldest]

    def cube(self) -> Cube:
        """The window as a :class:`~guardian_lib.features.Cube` (zero-copy views)."""
        if self._pos == 0:
            raise ValueError("RollingCube is empty: append ticks first")
        lo = max(self._pos - self.window_ticks, 0)
        start_tick = self._first_tick + lo
        ev = pd.DataFrame(self._events, columns=["tick", "onu", "type"])
        ev["tick"] = ev["tick"] - start_tick
        ev = ev[ev["tick"] >= 0]
        return Cube(
            onus=self.onus,
            t0_us=self._t0_us + start_tick * self.tick_s * _US,
            tick_s=self.tick_s,
            values={m: b[lo : self._pos] for m, b in self._buf.items()},
            events=ev[["onu", "tick", "type"]].reset_index(drop=True),
            olt_alarms=pd.DataFrame(
                {"olt_id": pd.Series(dtype=object), "tick": pd.Series(dtype=int)}
            ),
            orders=self.orders,
        )

    def latest_features(self) -> pd.DataFrame:
        """Features of every ONU at the newest tick."""
        c = self.cube()
        return compute_features(c, np.array([c.n_ticks - 1]))
