"""The closed loop: one tick at a time, observe → score → decide → check → act → audit.

- :class:`Tick`, :class:`EventRow` — one polling round of the fleet and its events
  (glossary names, fleet order);
- :class:`ClosedLoop` — feeds each tick to the observer, the scorer's window and the
  episode tracker with one verb (``update(tick)``) and runs the
  :class:`~guardian_lib.decision.Autopilot` every ``every`` ticks; ``state_dict()`` /
  ``load_state_dict()`` for restarts;
- :mod:`~guardian_lib.loop.protocols` — its outside world: :class:`TelemetrySource`,
  :class:`DeviceClient`, :class:`FieldService`, :class:`Notifier`, :class:`Clock`.

Adapters: ``simulator.adapters`` (backtest and twin); ``guardian operate`` wires the
production ones.
"""

from guardian_lib._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "Tick": ".tick",
        "EventRow": ".tick",
        "TICK_MEASURES": ".tick",
        "EVENT_COLUMNS": ".tick",
        "ClosedLoop": ".closed",
        "STATE_VERSION": ".closed",
        "save_autopilot_state": ".state",
        "load_autopilot_state": ".state",
        "TelemetrySource": ".protocols",
        "Clock": ".protocols",
        "SystemClock": ".protocols",
        "StreamConsumer": ".protocols",
        "DeviceClient": ".protocols",
        "FieldClient": ".protocols",
        "FieldService": ".protocols",
        "Notifier": ".protocols",
        "ORDER_COLUMNS": ".protocols",
        "UnknownTargetError": ".protocols",
    },
)
