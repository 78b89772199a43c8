"""What the executors need from the outside world (structural types).

Any object with the right methods will do: the TR-069 NBI client of
:mod:`guardian_lib.acs` is a :class:`DeviceClient` (``NbiClient.reboot(device_id)``);
the closed-loop backtest passes adapters onto the simulator. Nothing here imports
``guardian_lib.acs``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from guardian_lib.errors import GuardianError

__all__ = [
    "DeviceClient",
    "FieldClient",
    "FieldService",
    "Notifier",
    "ORDER_COLUMNS",
    "UnknownTargetError",
]


class UnknownTargetError(GuardianError, KeyError):
    """An action names a device, ONU or service order the client does not know.

    Every adapter raises it (never returns ``False``) so that the dispatcher records the
    action as ``failed`` with this message.
    """

    def __init__(self, client: str, kind: str, target: str) -> None:
        super().__init__(f"{client}: unknown {kind} {target!r} (not in this network's inventory)")
        self.target = target

    def __str__(self) -> str:
        return str(self.args[0])


@runtime_checkable
class DeviceClient(Protocol):
    """Remote device operations (an ACS northbound API)."""

    def reboot(self, device_id: str) -> Any:
        """Ask the device to reboot; returns the ACS's answer (any object)."""
        ...

    def change_wifi_profile(self, device_id: str) -> Any:
        """Move the CPE's Wi-Fi to another channel / band plan; returns the ACS's answer.

        Optional: the dispatcher reports a clear failure when a client lacks it.
        """
        ...


@runtime_checkable
class FieldClient(Protocol):
    """Field operations (a work-order system)."""

    def open_visit(self, onu_id: str, reason: str, priority: str) -> str:
        """Schedule a technician visit; returns the service-order id.

        The dispatcher adds ``confirm="power_on"`` when the visit is to be called ahead
        (the office asks the customer first; :mod:`guardian_lib.decision.call_ahead`):
        a client that can carry it takes the keyword, and reports a visit the customer
        cancelled on the call by an optional ``outcome(os_id)`` method returning the
        closure code (``customer_power_off``).
        """
        ...

    def cancel_visit(self, os_id: str, reason: str) -> bool:
        """Cancel a visit that has not finished; returns whether it was cancelled."""
        ...

    def status(self, os_id: str) -> str:
        """Status of a service order (``scheduled``, ``in_progress``, ``completed``,
        ``cancelled``; ``unknown`` when the system does not answer).

        The engine follows each case's visit once its order has left the open orders
        (:mod:`guardian_lib.decision.visits`): a client with an optional
        ``closure(os_id) -> (status, closure code or None)`` method is asked that, once
        per order and round (one request); one without it ``outcome(os_id)`` and then
        ``status(os_id)``, or ``status`` alone. A ``cancelled`` order (not cancelled by
        the autopilot) lets the case get a new visit after ``revisit_after_cancel_h``, a
        ``completed`` one after ``revisit_after_visit_h`` if its problem persists.
        """
        ...


@runtime_checkable
class Notifier(Protocol):
    """Customer notifications (SMS, app push, IVR message)."""

    def notify(self, onu_id: str, template: str, until_h: float) -> bool:
        """Tell the customer of ``onu_id``; returns whether the message was accepted."""
        ...


#: Columns of :meth:`FieldService.open_orders`.
ORDER_COLUMNS = ("os_id", "onu_id", "status", "opened_by")


@runtime_checkable
class FieldService(FieldClient, Protocol):
    """A :class:`FieldClient` that can also list its open service orders (what the
    closed loop shows the policy in each snapshot)."""

    def open_orders(self) -> Any:
        """Open service orders as a ``pandas.DataFrame`` with :data:`ORDER_COLUMNS`."""
        ...
