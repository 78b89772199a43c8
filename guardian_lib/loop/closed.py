"""``ClosedLoop``: ticks in; observed state, scores and decisions out; actions through
the adapters; everything audited.

The same object runs the closed-loop backtest, the live twin and ``guardian operate``;
only its adapters change (:mod:`guardian_lib.loop.protocols`)::

    tick ──update──▶ Observer, scorer window, EpisodeTracker
         └─ every ``every`` ticks: Snapshot (status, events since the last decision,
            open service orders) ──▶ Autopilot.step: scorer → policy → safety →
            dispatcher (devices / field service / notifier) → audit
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import pandas as pd

from guardian_lib.actions.clients import ORDER_COLUMNS
from guardian_lib.decision._types import Decision, Snapshot
from guardian_lib.decision.engine import Autopilot
from guardian_lib.decision.observe import Observer, ServiceThresholds
from guardian_lib.kpis import EpisodeTracker
from guardian_lib.loop.protocols import StreamConsumer
from guardian_lib.loop.state import load_autopilot_state, save_autopilot_state
from guardian_lib.loop.tick import EVENT_COLUMNS, EventRow, Tick

__all__ = ["ClosedLoop", "STATE_VERSION"]

#: Version of :meth:`ClosedLoop.state_dict`'s layout.
STATE_VERSION = 1


#: The events of a round without any (built once; handed out as shallow copies, which
#: pandas' copy-on-write keeps apart).
_NO_EVENTS = pd.DataFrame([], columns=list(EVENT_COLUMNS))


def _events_frame(events: list[EventRow]) -> pd.DataFrame:
    """The events since the last decision as a frame (:data:`EVENT_COLUMNS`)."""
    if not events:
        return _NO_EVENTS.copy(deep=False)
    return pd.DataFrame(events, columns=list(EVENT_COLUMNS))


class ClosedLoop:
    """Observe every tick, decide and act every ``every`` ticks.

    Parameters
    ----------
    onus : pandas.DataFrame
        Inventory ``onus`` (``onu_id``, ``pon_id``, ``olt_id``, ``splitter_id``, and
        for the ML scorer ``lat``, ``lon``, ``distance_m``): the fleet, in the ONU
        order of every tick.
    customers : pandas.DataFrame
        Inventory ``customers`` (``customer_id``, ``onu_id``, ``cpe_id``, ``region``,
        ``segment``).
    autopilot : Autopilot, optional
        Scorer, policy, safety, dispatcher and audit. Without one the loop only
        observes (the backtest's ``reactive`` baseline).
    every : int, default 3
        Ticks between two decisions (the first tick decides). [-]
    tick_s : float, default 300
        Polling interval, for binding the scorer. [s]
    field : FieldService, optional
        Lists the open service orders shown to the policy; default the dispatcher's
        field client when it has ``open_orders()``, else none are shown.
    thresholds : ServiceThresholds, optional
        When service counts as degraded (observer and episode tracker).

    Attributes
    ----------
    observer : Observer
    tracker : EpisodeTracker
        Service-impact episodes (for KPIs).
    scorer : object or None
        The autopilot's scorer after binding: an object with ``bind(onus, tick_s)``
        (e.g. :class:`guardian_lib.models.ModelScorer`) is bound to this fleet at
        construction, and a scorer with ``update(tick)`` is fed every tick.
    consumers : list of StreamConsumer
        What :meth:`feed` updates, in order.
    ticks : int
        Ticks fed so far. [-]
    decisions : list of Decision
        The decisions of the last step.
    """

    def __init__(
        self,
        onus: pd.DataFrame,
        customers: pd.DataFrame,
        autopilot: Autopilot | None = None,
        *,
        every: int = 3,
        tick_s: float = 300.0,
        field: Any = None,
        thresholds: ServiceThresholds | None = None,
    ) -> None:
        if int(every) < 1:
            raise ValueError(f"ClosedLoop: every must be >= 1 tick, got {every!r}")
        th = thresholds or ServiceThresholds()
        self.observer = Observer(
            onus,
            customers,
            degraded_loss_pct=th.degraded_loss_pct,
            degraded_latency_ms=th.degraded_latency_ms,
            high_ber=th.high_ber,
        )
        self.tracker = EpisodeTracker(self.observer.index.to_numpy(dtype=object), th)
        self.autopilot = autopilot
        self.every = int(every)
        self.tick_s = float(tick_s)
        self.scorer = None
        if autopilot is not None:
            scorer = autopilot.scorer
            if hasattr(scorer, "bind"):
                scorer = scorer.bind(onus, int(tick_s))
                autopilot.scorer = scorer
            self.scorer = scorer
            if field is None:
                field = autopilot.dispatcher.field_ops
        self.field = field if hasattr(field, "open_orders") else None
        self.consumers: list[StreamConsumer] = [self.observer]
        if isinstance(self.scorer, StreamConsumer):
            self.consumers.append(self.scorer)
        self.consumers.append(self.tracker)
        self.ticks = 0
        self.decisions: list[Decision] = []
        self._events: list[EventRow] = []
        #: The fleet's ONU ids and the row of each (the status order of every snapshot).
        self._onu_ids = self.observer.index.to_numpy(dtype=object)
        self._onu_ids.flags.writeable = False
        self._row_of = {o: i for i, o in enumerate(self._onu_ids)}

    @property
    def onu_ids(self) -> pd.Index:
        """The fleet, in tick order."""
        return self.observer.index

    # --- running --------------------------------------------------------------------------
    def feed(self, tick: Tick) -> list[Decision]:
        """Fold in one tick; on every ``every``-th tick (the first included) decide and act.

        Parameters
        ----------
        tick : Tick
            The next polling round, in the fleet's ONU order.

        Returns
        -------
        list of Decision
            The decisions taken at this tick (empty between decisions or without an
            autopilot).

        Raises
        ------
        ValueError
            The tick's fleet size differs from the inventory's.
        """
        for consumer in self.consumers:
            consumer.update(tick)
        due = self.ticks % self.every == 0
        self.ticks += 1
        if self.autopilot is None:
            return []
        self._events.extend(tick.events)
        if not due:
            return []
        return self.decide(tick.ts)

    def decide(self, ts: pd.Timestamp) -> list[Decision]:
        """Build a snapshot of what was observed and run one autopilot step now.

        :meth:`feed` calls it; call it directly only to force a decision round.
        """
        if self.autopilot is None:
            raise RuntimeError("ClosedLoop.decide: this loop has no autopilot (observe only)")
        status, columns = self.observer.status_with_columns()
        snap = Snapshot(
            ts=pd.Timestamp(ts),
            status=status,
            # Built if read (the default policies do not): the list is not added to
            # after this round (a new one is started below).
            events=functools.partial(_events_frame, self._events),
            service_orders=self.open_orders(),
        )
        snap.seed_columns(columns)
        snap.seed_fleet(self._onu_ids, self._row_of)
        self._events = []
        self.decisions = self.autopilot.step(snap)
        return self.decisions

    def run(self, source: Iterable[Tick], max_ticks: int | None = None) -> int:
        """Feed every tick of ``source`` (at most ``max_ticks``); returns ticks fed. [-]"""
        n = 0
        for tick in source:
            self.feed(tick)
            n += 1
            if max_ticks is not None and n >= max_ticks:
                break
        return n

    def open_orders(self) -> pd.DataFrame:
        """Open service orders from the field service (:data:`ORDER_COLUMNS`)."""
        if self.field is None:
            return pd.DataFrame(columns=list(ORDER_COLUMNS))
        orders = self.field.open_orders()
        missing = [c for c in ORDER_COLUMNS if c not in orders.columns]
        if missing:
            raise KeyError(
                f"ClosedLoop: {type(self.field).__name__}.open_orders() lacks columns {missing}"
            )
        return orders

    # --- restart --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything the loop learnt so far, picklable, for a restart.

        The observer's arrays, the episode tracker, the scorer's window (when the
        scorer has ``state_dict()``), the events not yet shown to the policy, and the
        autopilot's open cases, incidents, pending reboot verifications, counters and
        safety-guard memory (cooldowns, caps, circuit breaker, jitter stream). Not
        included: the audit trail (a DuckDB file that persists itself) and the
        adapters' own state.

        Returns
        -------
        dict
            Plain dicts, lists, numpy arrays and pandas objects (``pickle`` them).
        """
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "every": self.every,
            "ticks": self.ticks,
            "events": [tuple(e) for e in self._events],
            "observer": self.observer.state_dict(),
            "tracker": self.tracker.state_dict(),
            "scorer": None,
            "autopilot": None,
        }
        if self.scorer is not None and hasattr(self.scorer, "state_dict"):
            state["scorer"] = self.scorer.state_dict()
        if self.autopilot is not None:
            state["autopilot"] = save_autopilot_state(self.autopilot)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output into a loop built the same way.

        Raises
        ------
        ValueError
            Another layout version, another fleet, or saved autopilot state for a loop
            without an autopilot.
        """
        if state.get("version") != STATE_VERSION:
            raise ValueError(
                f"ClosedLoop.load_state_dict: state version {state.get('version')!r}, "
                f"expected {STATE_VERSION}"
            )
        self.observer.load_state_dict(state["observer"])
        self.tracker.load_state_dict(state["tracker"])
        self.ticks = int(state["ticks"])
        self._events = [EventRow(*e) for e in state["events"]]
        if state["scorer"] is not None and hasattr(self.scorer, "load_state_dict"):
            self.scorer.load_state_dict(state["scorer"])
        if state["autopilot"] is not None:
            if self.autopilot is None:
                raise ValueError("ClosedLoop.load_state_dict: saved autopilot state, no autopilot")
            load_autopilot_state(self.autopilot, state["autopilot"])
