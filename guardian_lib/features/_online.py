"""An in-memory rolling window of fleet telemetry for online (tick-by-tick) scoring."""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from guardian_lib._frames import frame_from_columns
from guardian_lib.features._compute import (
    LOST_LOSS_PCT,
    NEIGHBOUR_LEVELS,
    compute_features,
    features_with_block,
    group_index,
)
from guardian_lib.features._cube import EVENT_FEATURE_TYPES, MEASURES, Cube
from guardian_lib.features._kernels import slide_sums
from guardian_lib.schema import US_PER_S

if TYPE_CHECKING:  # pragma: no cover
    from guardian_lib.loop.tick import Tick

__all__ = ["RollingCube"]

#: Windows this long or longer are recomputed from the buffer one per tick (see
#: RollingCube._update_sums); shorter ones cost little. [ticks]
_SPREAD_FROM = 64
#: Ticks summed at a time when running sums are recomputed from the buffer. [ticks]
_REBASE_CHUNK = 32
#: Storage type of the window: readings have at most 4-5 significant digits (dBm to
#: 0.01, latency to 0.1 ms), far within float32's 7; sums are kept in float64. [-]
BUFFER_DTYPE = np.float32
#: Status mark of an ONU without such a tick: far before any window. [ticks]
_NO_MARK = -(2**40)


#: Kinds of :attr:`Cube.status_marks` (see :func:`_mark_flags`).
_MARK_KINDS = ("reported", "offline", "lost")


def _mark_flags(online: np.ndarray, loss_pct: np.ndarray) -> dict[str, np.ndarray]:
    """Per tick and ONU: reported at all, reported anything but online (1: an offline
    report), lost all traffic (bool)."""
    reported = ~np.isnan(online)
    return {
        "reported": reported,
        "offline": reported & (online != 1),
        "lost": loss_pct >= LOST_LOSS_PCT,
    }


#: :data:`EVENT_FEATURE_TYPES` as a set (membership tests).
_FEATURE_TYPES = frozenset(EVENT_FEATURE_TYPES)


def _missing(value: Any) -> bool:
    """A missing id (None, NaN, NA, NaT): ``astype(str)`` keeps it missing, so it is no
    ONU's id."""
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


class _WindowSums:
    """Sums over the ``w`` newest ticks of one measure, updated as each tick arrives.

    Time ``k`` is counted in ticks from ``origin`` (an absolute tick index). Adding
    the new tick and taking out the one leaving the window costs O(n_onus); at least
    every ``w`` ticks the sums are recomputed from the buffer with a new origin, so
    rounding errors do not build up and ``k`` stays below ``2 w``.
    """

    def __init__(self, w: int, slope: bool) -> None:
        self.w = w
        self.slope = slope
        self.origin = 0
        self.rebased = 0  # tick of the last recomputation

    def rebase(self, block: np.ndarray, start: int) -> None:
        """Recompute from ``block``: the window's ticks, the first being tick ``start``."""
        n_ticks, n_onus = block.shape
        self.origin = start
        self.rebased = start + n_ticks - 1
        self.n = np.zeros(n_onus)
        self.sx = np.zeros(n_onus)
        if self.slope:
            self.st, self.stt, self.stx = np.zeros(n_onus), np.zeros(n_onus), np.zeros(n_onus)
        # A few ticks at a time, summed in float64: the buffer may hold float32 and a
        # whole-window float64 temporary would cost as much memory as the buffer itself.
        for lo in range(0, n_ticks, _REBASE_CHUNK):
            part = block[lo : lo + _REBASE_CHUNK]
            valid = ~np.isnan(part)
            xb = np.where(valid, part, 0.0).astype(np.float64, copy=False)
            vf = valid.astype(np.float64)
            self.n += vf.sum(axis=0)
            self.sx += xb.sum(axis=0)
            if self.slope:
                t = np.arange(lo, lo + len(part), dtype=np.float64)
                self.st += t @ vf
                self.stt += (t * t) @ vf
                self.stx += t @ xb

    def slide(self, new: np.ndarray, tick: int, old: np.ndarray | None, old_tick: int) -> None:
        """Add the readings ``new`` of ``tick`` and take out ``old`` (of ``old_tick``, the
        tick leaving the window; None when none does)."""
        sums = (self.n, self.sx, self.st, self.stt, self.stx) if self.slope else (self.n, self.sx)
        slide_sums(sums, new, tick - self.origin, old, old_tick - self.origin)

    def window(self, newest: int) -> tuple[np.ndarray, ...]:
        """``(n, Σt, Σx, Σt², Σt·x)`` with t counted from the window's first tick."""
        d = float(self.origin - max(newest - self.w + 1, 0))
        st = self.st + d * self.n
        stt = self.stt + 2 * d * self.st + d * d * self.n
        stx = self.stx + d * self.sx
        return self.n.copy(), st, self.sx.copy(), stt, stx


class _RunningView:
    """The :class:`~guardian_lib.features.RunningSums` of one measure of a RollingCube.

    Answers only while no tick has arrived since the cube view it belongs to was made.
    """

    def __init__(self, owner: RollingCube, measure: str, newest: int) -> None:
        self._owner = owner
        self._measure = measure
        self._newest = newest

    def _stat(self, w: int, slope: bool) -> _WindowSums | None:
        if self._owner._newest != self._newest:
            return None
        return self._owner._window_sums(self._measure, w, slope)

    def sums(self, w: int) -> tuple[np.ndarray, np.ndarray] | None:
        stat = self._stat(w, slope=False)
        return None if stat is None else (stat.sx.copy(), stat.n.copy())

    def slope_sums(self, w: int) -> tuple[np.ndarray, ...] | None:
        stat = self._stat(w, slope=True)
        return None if stat is None else stat.window(self._newest)


def _events_frame(events: list[tuple[int, int, str]], start_tick: int) -> pd.DataFrame:
    """:attr:`Cube.events` of a window starting at ``start_tick`` from the held events
    ``(tick, ONU row, type)``."""
    if not events:
        return pd.DataFrame(columns=["onu", "tick", "type"])
    # One frame from three arrays (the frame of tuples, its selection and column
    # reorder cost more than the feature counts on a decision round).
    tick, onu, etype = zip(*events, strict=True)
    rel = np.array(tick, dtype=np.int64) - start_tick
    keep = rel >= 0
    cols = {
        "onu": np.array(onu, dtype=np.int64)[keep],
        "tick": rel[keep],
        "type": np.array(etype, dtype=object)[keep],
    }
    if not keep.any():  # no rows: the constructor's dtype for an empty object column
        return pd.DataFrame(cols)
    # The types are str (see RollingCube._append): the string array pandas infers for
    # them, and the frame from blocks (its constructor costs ~1 ms).
    cols["type"] = pd.array(cols["type"], dtype="str")
    return frame_from_columns(cols)


class _WindowView(Cube):
    """A :class:`Cube` of a :class:`RollingCube`'s window whose ``events`` frame is built
    when first read (given as a function of no arguments): the features read the events
    by type (``events_by_type``), so a decision round rarely needs the frame."""

    @property
    def events(self) -> pd.DataFrame:
        ev = self.__dict__["_events"]
        if callable(ev):
            ev = self.__dict__["_events"] = ev()
        return ev

    @events.setter
    def events(self, value: pd.DataFrame | Callable[[], pd.DataFrame]) -> None:
        self.__dict__["_events"] = value


class RollingCube:
    """The last ``window_ticks`` ticks of every ONU, appended one tick at a time.

    A buffer of 1.25 times the window is filled and, when full, its newest
    ``window_ticks`` rows are moved to the front (once per ``window_ticks / 4`` ticks),
    so the chronological window is always a zero-copy slice. Readings are held as
    float32 (:data:`BUFFER_DTYPE`; 2 days × 50k ONUs × 10 measures is 1.4 GB) and summed
    in float64. Feature values equal the batch computation over the same readings to
    float rounding (over float64 readings: within float32 rounding of the inputs, about
    1e-6 relative) as long as the window covers the longest window used (7 days for
    baselines; shorter windows give baselines over what is held).

    Window sums and slopes at the newest tick come from running sums: the first time a
    (measure, window) is asked for, its sums are computed from the buffer; from then
    on each :meth:`update` adds the new tick and takes out the one leaving the window,
    so one tick's features cost O(n_onus) per window instead of O(n_onus × window).
    Each update also marks, per ONU, the last tick that reported, reported anything but
    online and lost all traffic, and files its events by type
    (:attr:`Cube.status_marks`, :attr:`Cube.events_by_type`): the newest tick's carried
    status is then computed for the marked ONUs only. Neighbour groups are computed once
    for the inventory.

    Parameters
    ----------
    onus : pandas.DataFrame
        Inventory rows (``onu_id``, ``pon_id``, ``splitter_id``, ``olt_id``, ``lat``,
        ``lon``, ``distance_m``) in the order of the ticks passed to :meth:`update`.
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
        # Room for the window plus a quarter: when full, the newest window_ticks rows
        # move to the front (one copy of the window every window_ticks / 4 ticks).
        self._margin = max(window_ticks // 4, 1)
        rows = window_ticks + self._margin
        # Uninitialised: only the rows before _pos are ever read, each written first
        # (filling 2 days × 2,000 ONUs × 10 measures with NaN cost ~0.1 s per fleet).
        self._buf = {m: np.empty((rows, n), dtype=BUFFER_DTYPE) for m in MEASURES}
        self._pos = 0  # rows used in the buffer
        self._first_tick = 0  # absolute tick index of buffer row 0
        self._t0_us: int | None = None
        self._events: list[tuple[int, int, str]] = []
        # The same events per type (ticks, ONU rows), in event order: a round's counts
        # read them as arrays without selecting types from the frame.
        self._by_type: dict[str, tuple[list[int], list[int]]] = {}
        self._index = pd.Index(self.onus["onu_id"].astype(str))
        self._row_of: dict[str, int] | None = None  # row of each id of _index (built once)
        self._sums: dict[tuple[str, int], _WindowSums] = {}
        self._groups: dict[str, np.ndarray] | None = None
        # Last tick (absolute) at which each ONU reported, reported offline and lost all
        # traffic: the status features of a round look at the ONUs marked within their
        # slice only (Cube.status_marks).
        self._marks = {k: np.full(n, _NO_MARK, dtype=np.int64) for k in _MARK_KINDS}
        self.orders = pd.DataFrame(columns=["onu", "opened_tick", "closed_tick", "completed"])
        # Online scoring receives no OLT alarms: one empty frame for every cube view.
        self._no_alarms = pd.DataFrame(
            {"olt_id": pd.Series(dtype=object), "tick": pd.Series(dtype=int)}
        )

    @property
    def n_ticks(self) -> int:
        """Ticks currently held. [-]"""
        return min(self._pos, self.window_ticks)

    @property
    def _newest(self) -> int:
        """Absolute index of the newest tick (-1 before the first append). [-]"""
        return self._first_tick + self._pos - 1

    def _window_sums(self, measure: str, w: int, slope: bool) -> _WindowSums:
        """The running sums of ``measure`` over ``w`` ticks, started from the buffer."""
        w = min(w, self.window_ticks)  # the cube never holds more
        stat = self._sums.get((measure, w))
        if stat is None or (slope and not stat.slope):
            stat = _WindowSums(w, slope)
            self._rebase(measure, stat)
            self._sums[(measure, w)] = stat
        return stat

    def _rebase(self, measure: str, stat: _WindowSums) -> None:
        start = max(self._newest - stat.w + 1, 0)
        stat.rebase(self._buf[measure][start - self._first_tick : self._pos], start)

    def update(self, tick: Tick) -> None:
        """Add one tick.

        Parameters
        ----------
        tick : guardian_lib.loop.Tick
            Must follow the previous tick by ``tick_s``; readings per measure
            (:data:`~guardian_lib.features.MEASURES`, missing ones are NaN) in the
            inventory's ONU order, and the events since the previous tick (those about
            one ONU, a customer call mapped to its ONU, are counted).
        """
        if tick.n_onus != len(self.onus):
            raise ValueError(
                f"RollingCube.update: tick at {tick.ts} has {tick.n_onus} ONUs, "
                f"the inventory {len(self.onus)}"
            )
        self._append(tick.ts, tick.numeric())
        if tick.events:
            self._add_events(self._newest, tick.onu_event_pairs())

    def _append(
        self,
        ts: pd.Timestamp,
        values: dict[str, np.ndarray],
        events: pd.DataFrame | None = None,
    ) -> None:
        """:meth:`update` from arrays (``online`` as 0/1) and a frame of ``onu_id``, ``type``."""
        t_us = int(pd.Timestamp(ts).value // 1000)
        if self._t0_us is None:
            self._t0_us = t_us
        tick = int(round((t_us - self._t0_us) / (self.tick_s * US_PER_S)))
        expected = self._first_tick + self._pos
        if tick != expected:
            raise ValueError(
                f"RollingCube.update: expected the tick at "
                f"{pd.Timestamp((self._t0_us + expected * self.tick_s * US_PER_S) * 1000, tz='UTC')}, "
                f"got {pd.Timestamp(ts)}"
            )
        if self._pos == len(self._buf[MEASURES[0]]):
            self._compact()
        for m, buf in self._buf.items():
            row = values.get(m)
            # Cast to the buffer's float32 by the assignment (as through float64).
            buf[self._pos] = np.nan if row is None else row
        self._pos += 1
        self._update_sums(tick)
        for kind, hit in _mark_flags(
            self._buf["online"][self._pos - 1 : self._pos],
            self._buf["loss_pct"][self._pos - 1 : self._pos],
        ).items():
            self._marks[kind][hit[0]] = tick
        if events is not None and len(events):
            pairs = zip(events["onu_id"].to_numpy(dtype=object), events["type"], strict=True)
            self._add_events(tick, list(pairs), trim=False)
        self._trim_events()

    def _add_events(self, tick: int, pairs: list[tuple[Any, Any]], trim: bool = True) -> None:
        """File the events ``(onu_id, type)`` of ``tick`` (the newest) that the features
        count, in order: those of a type of :data:`EVENT_FEATURE_TYPES` about an ONU of
        the fleet (an id is read as ``str``, a missing one matches none)."""
        row_of = self._row_of
        if row_of is None:
            row_of = self._row_of = {o: i for i, o in enumerate(self._index.tolist())}
        new = []
        for o, t in pairs:
            if t in _FEATURE_TYPES and not _missing(o):
                i = row_of.get(o if type(o) is str else str(o), -1)
                if i >= 0:
                    new.append((tick, i, str(t)))
        self._events += new
        for _, i, t in new:
            ticks, onus = self._by_type.setdefault(t, ([], []))
            ticks.append(tick)
            onus.append(i)
        if trim:
            self._trim_events()

    def _trim_events(self) -> None:
        """Drop the events older than the window (and one tick)."""
        oldest = self._first_tick + self._pos - self.window_ticks - 1
        if self._events and self._events[0][0] < oldest:
            self._events = [e for e in self._events if e[0] >= oldest]
            for ticks, onus in self._by_type.values():
                gone = bisect.bisect_left(ticks, oldest)
                del ticks[:gone], onus[:gone]

    def _compact(self) -> None:
        """Move the newest ``window_ticks`` rows to the front of the buffer."""
        keep, margin = self.window_ticks, self._margin
        src = self._pos - keep  # = margin
        for m in self._buf.values():
            # Chunks no longer than the shift never overlap: no temporary copy.
            for lo in range(0, keep, margin):
                hi = min(lo + margin, keep)
                m[lo:hi] = m[src + lo : src + hi]
        self._first_tick += src
        self._pos = keep

    def _update_sums(self, tick: int) -> None:
        """Move every running window on to ``tick`` (just written to the buffer)."""
        # Recompute each window from the buffer now and then, which bounds rounding
        # errors and time offsets: any window whose offset k would reach 2 w, and besides
        # one long window per tick (the most overdue, once half its length has passed),
        # so that long windows do not all fall due on the same tick.
        due = [
            s for s in self._sums.values() if s.w >= _SPREAD_FROM and 2 * (tick - s.rebased) >= s.w
        ]
        early = max(due, key=lambda s: (tick - s.rebased) / s.w, default=None)
        for (measure, w), stat in self._sums.items():
            if stat is early or tick - stat.origin >= 2 * w:
                self._rebase(measure, stat)
                continue
            buf = self._buf[measure]
            leaving = tick - w
            old = buf[leaving - self._first_tick] if leaving >= 0 else None
            stat.slide(buf[self._pos - 1], tick, old, leaving)

    def state_dict(self) -> dict[str, Any]:
        """The held window (picklable), for a restart: readings, events, clock."""
        lo = max(self._pos - self.window_ticks, 0)
        return {
            "onu_ids": self._index.to_numpy(dtype=object),
            "tick_s": self.tick_s,
            "t0_us": self._t0_us,
            "first_tick": self._first_tick + lo,
            "values": {m: b[lo : self._pos].copy() for m, b in self._buf.items()},
            "events": list(self._events),
            "orders": self.orders.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (same fleet and tick; running sums are
        recomputed from the window when next asked for)."""
        ids = np.asarray(state["onu_ids"], dtype=object)
        if not np.array_equal(ids, self._index.to_numpy(dtype=object)):
            raise ValueError("RollingCube.load_state_dict: the saved fleet differs")
        if state["tick_s"] != self.tick_s:
            raise ValueError(
                f"RollingCube.load_state_dict: saved tick_s {state['tick_s']} s, "
                f"this cube {self.tick_s} s"
            )
        k = min(len(next(iter(state["values"].values()))), self.window_ticks)
        for m, buf in self._buf.items():
            buf[:] = np.nan
            saved = state["values"].get(m)
            if saved is not None and k:
                buf[:k] = saved[-k:]
        self._pos = k
        self._first_tick = int(state["first_tick"]) + len(next(iter(state["values"].values()))) - k
        self._t0_us = state["t0_us"]
        self._events = list(state["events"])
        self._by_type = {}
        for tick, i, t in self._events:
            ticks, onus = self._by_type.setdefault(t, ([], []))
            ticks.append(tick)
            onus.append(i)
        self._sums = {}
        # Marks from the restored window (the last tick of each kind held, if any).
        for kind, hit in _mark_flags(self._buf["online"][:k], self._buf["loss_pct"][:k]).items():
            self._marks[kind] = np.full(len(self.onus), _NO_MARK, dtype=np.int64)
            if k:
                last = k - 1 - np.argmax(hit[::-1], axis=0)
                self._marks[kind][hit.any(axis=0)] = (self._first_tick + last)[hit.any(axis=0)]
        self.orders = state["orders"].copy()

    def cube(self) -> Cube:
        """The window as a :class:`~guardian_lib.features.Cube` (zero-copy views, valid
        until the next :meth:`update`, which may move the buffer's rows)."""
        if self._pos == 0:
            raise ValueError("RollingCube is empty: append ticks first")
        lo = max(self._pos - self.window_ticks, 0)
        start_tick = self._first_tick + lo
        by_type = {}
        for etype, (ticks, onus) in self._by_type.items():
            rel = np.array(ticks, dtype=np.int64) - start_tick
            keep = rel >= 0
            if keep.any():
                by_type[etype] = (np.array(onus, dtype=np.int64)[keep], rel[keep])
        if self._groups is None:
            self._groups = {lvl: group_index(self.onus, lvl) for lvl in NEIGHBOUR_LEVELS}
        return _WindowView(
            onus=self.onus,
            t0_us=self._t0_us + start_tick * self.tick_s * US_PER_S,
            tick_s=self.tick_s,
            values={m: b[lo : self._pos] for m, b in self._buf.items()},
            # Built when first read: the features read the events by type (below).
            events=functools.partial(_events_frame, list(self._events), start_tick),
            olt_alarms=self._no_alarms,
            orders=self.orders,
            running={m: _RunningView(self, m, self._newest) for m in self._buf},
            groups=self._groups,
            status_marks={k: v - start_tick for k, v in self._marks.items()},
            events_by_type=by_type,
        )

    def latest_features(self) -> pd.DataFrame:
        """Features of every ONU at the newest tick."""
        c = self.cube()
        return compute_features(c, np.array([c.n_ticks - 1]))

    def latest_features_with_block(self) -> tuple[pd.DataFrame, np.ndarray | None]:
        """:meth:`latest_features` and its float32 block (``FEATURE_COLUMNS`` × ONUs,
        see :func:`~guardian_lib.features._compute.features_with_block`)."""
        c = self.cube()
        return features_with_block(c, np.array([c.n_ticks - 1]))
