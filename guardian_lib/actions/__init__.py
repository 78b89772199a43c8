"""Executors of the autopilot's actions.

:class:`Dispatcher` runs allowed decisions: in ``simulate`` mode it touches nothing; in
``execute`` mode it calls the injected clients (:class:`DeviceClient` — e.g.
``guardian_lib.acs.NbiClient`` —, :class:`FieldClient`, :class:`Notifier`).
"""

from guardian_lib.actions.clients import (
    ORDER_COLUMNS,
    DeviceClient,
    FieldClient,
    FieldService,
    Notifier,
    UnknownTargetError,
)
from guardian_lib.actions.dispatcher import ActionResult, Dispatcher

__all__ = [
    "ActionResult",
    "Dispatcher",
    "DeviceClient",
    "FieldClient",
    "FieldService",
    "Notifier",
    "ORDER_COLUMNS",
    "UnknownTargetError",
]
