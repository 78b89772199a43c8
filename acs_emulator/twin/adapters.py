"""The autopilot's client protocols in the live twin.

* :class:`NbiDevices` — the device executor: reboots go through the GenieACS-compatible
  NBI with :class:`guardian_lib.acs.NbiClient`, exactly as in production;
* :class:`TwinStateSource` — what the CPE agents measure, read from the running
  simulation; a Reboot RPC a CPE receives is handed to the simulation thread.

The twin's technicians and customer messages are the simulator's (there is no
work-order system to call): :class:`simulator.adapters.SimFieldService` and
:class:`simulator.adapters.SimNotifier`, the backtest's adapters.
"""

from __future__ import annotations

import queue
import threading
import uuid
from typing import Any

from acs_emulator.cpe.state import SimulationStateSource
from guardian_lib.actions.clients import UnknownTargetError

__all__ = ["NbiDevices", "TwinStateSource"]


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
        guardian_lib.actions.UnknownTargetError
            The ACS does not know ``device_id`` (HTTP 404), as every adapter says it.
        guardian_lib.acs.AcsError
            Other client errors (the dispatcher records the action as failed).
        """
        from guardian_lib.acs import AcsDeviceNotFoundError

        if not device_id:
            raise ValueError("NbiDevices.reboot: device_id must be a non-empty device id")
        key = f"{self.key_prefix}:reboot:{device_id}:{len(self.calls)}"
        entry: dict[str, Any] = {"device_id": device_id, "key": key}
        self.calls.append(entry)
        try:
            result = self.client.reboot(device_id, idempotency_key=key)
        except AcsDeviceNotFoundError as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
            raise UnknownTargetError("NbiDevices.reboot", "CPE", device_id) from exc
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
