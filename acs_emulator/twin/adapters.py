"""The autopilot's client protocols in the live twin.

* :class:`NbiDevices` — the device executor: reboots go through the GenieACS-compatible
  NBI with :class:`guardian_lib.acs.NbiClient`, exactly as in production;
* :class:`TwinStateSource` — what the CPE agents measure, read from the running
  simulation; a Reboot RPC a CPE receives is handed to the simulation thread;
* :class:`SimFieldOps` and :class:`SimNotifier` — the twin's technicians and customer
  messages are the simulator's (there is no work-order system to call).
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable
from typing import Any

from acs_emulator.cpe.state import SimulationStateSource

__all__ = ["NbiDevices", "TwinStateSource", "SimFieldOps", "SimNotifier"]


class NbiDevices:
    """Device executor that reboots CPEs through an NBI client.

    A :class:`guardian_lib.actions.DeviceClient`: the autopilot's dispatcher calls
    :meth:`reboot` only in ``execute`` mode.

    Parameters
    ----------
    client : object
        Has ``reboot(device_id, idempotency_key=...)``, e.g. a
        :class:`guardian_lib.acs.NbiClient`.
    key_prefix : str, optional
        Prefix of the idempotency keys; default ``twin-<random run id>`` so that keys of
        two runs against one persistent ACS never collide. One key per call: a retry
        inside the client never reboots twice, a new decision is a new key.

    Attributes
    ----------
    calls : list of dict
        One entry per reboot asked (``device_id``, ``key``, ``status`` or ``error``).
    """

    def __init__(self, client: Any, key_prefix: str | None = None) -> None:
        self.client = client
        self.key_prefix = key_prefix or f"twin-{uuid.uuid4().hex[:12]}"
        self.calls: list[dict[str, Any]] = []

    def reboot(self, device_id: str) -> Any:
        """Reboot ``device_id`` through the NBI; returns the client's task result.

        Raises
        ------
        ValueError
            ``device_id`` is empty (never reboot "all devices" by mistake).
        guardian_lib.acs.AcsError
            From the client (the dispatcher records the action as failed).
        """
        if not device_id:
            raise ValueError("NbiDevices.reboot: device_id must be a non-empty device id")
        key = f"{self.key_prefix}:reboot:{device_id}:{len(self.calls)}"
        entry: dict[str, Any] = {"device_id": device_id, "key": key}
        self.calls.append(entry)
        try:
            result = self.client.reboot(device_id, idempotency_key=key)
        except Exception as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
            raise
        entry["status"] = str(getattr(result, "status", result))
        return result


class TwinStateSource:
    """A thread-safe :class:`~acs_emulator.cpe.StateSource` over a running simulation.

    CPE agents run in the ACS's event-loop thread, the simulation in another. Values
    are read from the simulation's latest tick (whole arrays are swapped per tick, so
    a read never sees half a tick). Reboots are queued and applied by
    :meth:`apply_reboots`, which the simulation thread calls.

    Parameters
    ----------
    sim : simulator.engine.Simulation
        The running simulation.

    Attributes
    ----------
    received : list of str
        Device ids whose CPE agent executed a Reboot RPC, in order.
    """

    def __init__(self, sim: Any) -> None:
        self.inner = SimulationStateSource(sim)
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.received: list[str] = []

    def identities(self, count: int | None = None) -> list[Any]:
        """Identities of the simulated CPEs (the first ``count``, or all)."""
        return self.inner.identities(count)

    def values(self, device_id: str) -> dict[str, Any]:
        """Current values of ``device_id`` (see :class:`SimulationStateSource`)."""
        return self.inner.values(device_id)

    def reboot(self, device_id: str) -> None:
        """Queue a reboot of ``device_id`` for the simulation thread."""
        with self._lock:
            self.received.append(device_id)
        self._queue.put(device_id)

    def apply_reboots(self) -> int:
        """Apply queued reboots to the simulation (call from its thread). [-]

        Returns
        -------
        n : int
            Reboots applied. [-]
        """
        n = 0
        while True:
            try:
                device_id = self._queue.get_nowait()
            except queue.Empty:
                return n
            self.inner.reboot(device_id)
            n += 1


class SimFieldOps:
    """Visits of the twin: service orders of the simulator's technicians.

    Parameters
    ----------
    sim : simulator.engine.Simulation
    priority_delay_h : float, default 1
        Delay of a ``high``-priority visit. [h]
    """

    def __init__(self, sim: Any, priority_delay_h: float = 1.0) -> None:
        self.sim = sim
        self.priority_delay_h = priority_delay_h
        self._row = {o: i for i, o in enumerate(sim.onu_ids.tolist())}

    def open_visit(self, onu_id: str, reason: str, priority: str) -> str:
        """Open a service order for ``onu_id``; returns its id."""
        if onu_id not in self._row:
            raise KeyError(f"SimFieldOps.open_visit: unknown onu_id {onu_id!r}")
        delay_s = self.priority_delay_h * 3600 if priority == "high" else None
        order = self.sim.ops.open_order(
            self._row[onu_id], reason, delay_s=delay_s, opened_by="autopilot"
        )
        return str(order.os_id)

    def cancel_visit(self, os_id: str, reason: str) -> bool:
        """Cancel an open service order; returns whether it was open."""
        return bool(self.sim.ops.cancel_order(os_id, reason))

    def status(self, os_id: str) -> str:
        """Status of a service order (``unknown`` if it does not exist)."""
        order = next((o for o in self.sim.ops.orders if o.os_id == os_id), None)
        return "unknown" if order is None else str(order.status)


class SimNotifier:
    """Customer notifications of the twin: the simulated customer calls less.

    Parameters
    ----------
    sim : simulator.engine.Simulation
    clock : callable, optional
        Current simulation time [s]; ``sim.env.now`` by default.
    """

    def __init__(self, sim: Any, clock: Callable[[], float] | None = None) -> None:
        self.sim = sim
        self.clock = clock or (lambda: float(sim.env.now))
        self._row = {o: i for i, o in enumerate(sim.onu_ids.tolist())}

    def notify(self, onu_id: str, template: str, until_h: float) -> bool:
        """Tell the customer of ``onu_id`` that the problem is known until ``until_h``. [h]"""
        if onu_id not in self._row:
            return False
        self.sim.notify_customer(self._row[onu_id], self.clock() + until_h * 3600)
        return True
