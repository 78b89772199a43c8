"""The closed loop's outside world, as small structural types.

Any object with the right methods will do. The executors' clients (a device API, a
field-service system, a notifier) are those of :mod:`guardian_lib.actions`, re-exported
here; the loop adds the telemetry source, the clock and the one verb of its stateful
consumers. Adapters: ``simulator.adapters`` (the backtest and the twin), and the
production ones (SNMP poller, ACS NBI, ticketing) that ``guardian operate`` wires.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import pandas as pd

from guardian_lib.actions.clients import (
    ORDER_COLUMNS,
    DeviceClient,
    FieldClient,
    FieldService,
    Notifier,
    UnknownTargetError,
)
from guardian_lib.loop.tick import Tick

__all__ = [
    "TelemetrySource",
    "Clock",
    "StreamConsumer",
    "DeviceClient",
    "FieldClient",
    "FieldService",
    "Notifier",
    "ORDER_COLUMNS",
    "UnknownTargetError",
    "SystemClock",
]


@runtime_checkable
class TelemetrySource(Protocol):
    """Yields one :class:`Tick` per polling round, in time order, for the whole fleet
    (in the ONU order of the inventory the loop was built with)."""

    def __iter__(self) -> Iterator[Tick]: ...


@runtime_checkable
class Clock(Protocol):
    """The loop's notion of now (the simulation's time in the backtest and the twin)."""

    def now(self) -> pd.Timestamp:
        """Current time (UTC)."""
        ...


@runtime_checkable
class StreamConsumer(Protocol):
    """Streaming state fed tick by tick: the observer, the rolling feature cube, the
    online scorer, the episode tracker."""

    def update(self, tick: Tick) -> None:
        """Fold in one tick (ticks arrive in time order, none skipped)."""
        ...


class SystemClock:
    """The wall clock (UTC), for a loop that runs against a real network."""

    def now(self) -> pd.Timestamp:
        """Current wall-clock time (UTC)."""
        return pd.Timestamp.now(tz="UTC")
