"""The closed loop's protocols on a :class:`~simulator.engine.Simulation`.

One set of adapters for every world built on the simulator — the closed-loop backtest
(:mod:`simulator.backtest`) and the live twin (:mod:`acs_emulator.twin`) — so that both
run the same :class:`guardian_lib.loop.ClosedLoop`:

* :class:`SimTelemetry` — the telemetry source: each simulated tick becomes a
  :class:`~guardian_lib.loop.Tick` (what a poller would have read, and the events);
* :class:`SimDevices` — reboots a CPE directly in the simulation (the backtest; the
  twin reboots through the ACS's NBI instead, ``acs_emulator.twin.NbiDevices``);
* :class:`SimFieldService` — visits are the simulator's service orders;
* :class:`SimNotifier` — a notified customer calls less;
* :class:`SimClock` — the simulation's time.

An unknown CPE or ONU raises :class:`guardian_lib.actions.UnknownTargetError` (the
dispatcher records the action as failed with that message).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pandas as pd

from guardian_lib.actions.clients import ORDER_COLUMNS, UnknownTargetError
from guardian_lib.loop.tick import TICK_MEASURES, Tick
from simulator.engine import SimEvent, Simulation
from simulator.telemetry import TickState

__all__ = ["SimTelemetry", "SimDevices", "SimFieldService", "SimNotifier", "SimClock"]

#: TickState attributes a poller reads, by glossary name.
_READ = TICK_MEASURES
#: What :meth:`SimFieldService.open_orders` gives without open orders.
_NO_ORDERS = pd.DataFrame([], columns=list(ORDER_COLUMNS))


class SimTelemetry:
    """Telemetry source on a simulation: one :class:`~guardian_lib.loop.Tick` per tick.

    It registers itself as a tick sink of ``sim``. Push: :meth:`connect` a loop and run
    the simulation (``sim.run()`` or ``sim.step()``), each tick is fed to the loop at
    the tick's simulated time — actions then happen at that time, as in real life.
    Pull: iterate (``for tick in source``), which steps the simulation.

    Parameters
    ----------
    sim : Simulation

    Attributes
    ----------
    calls : list of (float, str)
        Customer calls seen so far: simulation time [s] and the caller's ONU id (the
        call centre's log, for KPIs).
    last : Tick or None
        The latest tick.
    """

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.loop: Any = None
        self.calls: list[tuple[float, str]] = []
        self.last: Tick | None = None
        sim.sinks.append(self)

    def connect(self, loop: Any) -> None:
        """Feed every following tick to ``loop.feed(tick)`` (a ClosedLoop)."""
        self.loop = loop

    def tick(self, state: TickState, events: list[SimEvent]) -> Tick:
        """The :class:`Tick` of a simulated state and the events since the previous one."""
        values = {c: getattr(state, c) for c in _READ}
        return Tick(state.ts, values, tuple(self.sim.event_row(e) for e in events))

    def on_tick(self, sim: Simulation, state: TickState, events: list[SimEvent]) -> None:
        """Tick sink: build the tick, log the calls, feed the connected loop."""
        for e in events:
            if e.type == "CUSTOMER_CALL":
                self.calls.append((e.now_s, json.loads(e.payload)["onu_id"]))
        self.last = self.tick(state, events)
        if self.loop is not None:
            self.loop.feed(self.last)

    def __iter__(self) -> Iterator[Tick]:
        """Step the simulation and yield each tick (only without a connected loop)."""
        if self.loop is not None:
            raise RuntimeError("SimTelemetry: a loop is connected; run the simulation instead")
        while self.sim.tick_index + 1 < self.sim.n_ticks:
            self.sim.step()
            assert self.last is not None
            yield self.last

    def calls_frame(self) -> pd.DataFrame:
        """Customer calls: ``ts_s`` [s], ``onu_id``, ``ts`` (UTC)."""
        calls = pd.DataFrame(self.calls, columns=["ts_s", "onu_id"])
        calls["ts"] = self.sim.start + pd.to_timedelta(calls["ts_s"], unit="s")
        return calls


def _row(rows: dict[str, int], key: str, where: str, kind: str) -> int:
    """Fleet row of ``key`` in ``rows``; :class:`UnknownTargetError` if it has none."""
    row = rows.get(key)
    if row is None:
        raise UnknownTargetError(where, kind, key)
    return row


class SimDevices:
    """Device client on a simulation: a reboot power-cycles the simulated CPE.

    A device that is offline cannot be reached (the ACS would queue the task):
    the answer is ``queued: device offline`` and nothing happens.

    Parameters
    ----------
    sim : Simulation
    by : str, default "autopilot"
        Who reboots (recorded in the REBOOT event).
    """

    def __init__(self, sim: Simulation, by: str = "autopilot") -> None:
        self.sim = sim
        self.by = by
        cpe_ids = sim.topology.customers["cpe_id"].tolist()
        self.row_of_cpe = {c: i for i, c in enumerate(cpe_ids)}

    def reboot(self, device_id: str) -> str:
        """Reboot CPE ``device_id``; returns ``done`` or ``queued: device offline``.

        Raises
        ------
        UnknownTargetError
            No CPE ``device_id`` in the simulated network.
        """
        row = _row(self.row_of_cpe, device_id, "SimDevices.reboot", "CPE")
        if self.sim.state is not None and not self.sim.state.online[row]:
            return "queued: device offline"
        self.sim.reboot_cpe(row, by=self.by)
        return "done"

    def change_wifi_profile(self, device_id: str) -> str:
        """Change CPE ``device_id``'s Wi-Fi profile; ``fixed`` if an interference episode
        ended (:meth:`simulator.engine.Simulation.change_wifi_profile`), else ``done``.

        Raises
        ------
        UnknownTargetError
            No CPE ``device_id`` in the simulated network.
        """
        row = _row(self.row_of_cpe, device_id, "SimDevices.change_wifi_profile", "CPE")
        return "fixed" if self.sim.change_wifi_profile(row, by=self.by) else "done"


class SimFieldService:
    """Field service on a simulation: visits are the simulator's service orders.

    Parameters
    ----------
    sim : Simulation
    priority_delay_h : float, default 1
        Delay of a ``high``-priority visit (others follow the technicians' queue). [h]
    """

    def __init__(self, sim: Simulation, priority_delay_h: float = 1.0) -> None:
        self.sim = sim
        self.priority_delay_h = priority_delay_h
        self.row_of_onu = {o: i for i, o in enumerate(sim.onu_ids.tolist())}
        self._onu_ids = sim.onu_ids.astype(object)
        self._by_id: dict[str, Any] = {}

    def open_visit(
        self, onu_id: str, reason: str, priority: str, confirm: str | None = None
    ) -> str:
        """Open a service order for ``onu_id``; returns its id.

        ``confirm`` (``"power_on"``): the office calls the customer before the visit
        (:meth:`simulator.operations.Operations.open_order`).

        Raises
        ------
        UnknownTargetError
            No ONU ``onu_id`` in the simulated network.
        """
        row = _row(self.row_of_onu, onu_id, "SimFieldService.open_visit", "ONU")
        delay_s = self.priority_delay_h * 3600 if priority == "high" else None
        order = self.sim.ops.open_order(row, reason, delay_s=delay_s, opened_by="autopilot",
                                        confirm=confirm)  # fmt: skip
        self._by_id[order.os_id] = order
        return str(order.os_id)

    def cancel_visit(self, os_id: str, reason: str) -> bool:
        """Cancel a service order; returns whether it was open."""
        return bool(self.sim.ops.cancel_order(os_id, reason))

    def _order(self, os_id: str) -> Any:
        order = self._by_id.get(os_id)
        if order is None:
            order = next((o for o in self.sim.ops.orders if o.os_id == os_id), None)
        return order

    def status(self, os_id: str) -> str:
        """Status of a service order (``unknown`` if it does not exist)."""
        order = self._order(os_id)
        return "unknown" if order is None else str(order.status)

    def closure(self, os_id: str) -> tuple[str, str | None]:
        """Status and closure code of a service order (``customer_power_off``,
        ``customer_absent``, ``no_fault_found``, ``fixed_…``; the code is None while the
        order is open); ``("unknown", None)`` if it does not exist."""
        order = self._order(os_id)
        if order is None:
            return "unknown", None
        return str(order.status), order.outcome

    def outcome(self, os_id: str) -> str | None:
        """Closure code of a service order (``customer_power_off``: cancelled on the
        call-ahead); None while it is open or when it does not exist."""
        order = self._by_id.get(os_id)
        return None if order is None else order.outcome

    def open_orders(self) -> pd.DataFrame:
        """Open service orders (:data:`~guardian_lib.actions.ORDER_COLUMNS`), whoever
        opened them (the call centre or the autopilot)."""
        rows = [
            (o.os_id, self._onu_ids[o.onu_row], o.status, o.opened_by)
            for o in self.sim.ops.open_order_by_onu.values()
        ]
        if not rows:  # most rounds: built once, a shallow copy each (copy-on-write)
            return _NO_ORDERS.copy(deep=False)
        return pd.DataFrame(rows, columns=list(ORDER_COLUMNS))


class SimNotifier:
    """Notifier on a simulation: the notified customer calls less until the notice ends.

    Parameters
    ----------
    sim : Simulation
    """

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.row_of_onu = {o: i for i, o in enumerate(sim.onu_ids.tolist())}

    def notify(self, onu_id: str, template: str, until_h: float) -> bool:
        """Tell the customer of ``onu_id`` that the problem is known for ``until_h``. [h]

        Raises
        ------
        UnknownTargetError
            No ONU ``onu_id`` in the simulated network.
        """
        row = _row(self.row_of_onu, onu_id, "SimNotifier.notify", "ONU")
        self.sim.notify_customer(row, self.sim.env.now + until_h * 3600)
        return True


class SimClock:
    """The simulation's time as a clock (:class:`guardian_lib.loop.Clock`)."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim

    def now(self) -> pd.Timestamp:
        """Current simulated time (UTC)."""
        return self.sim.ts_of(self.sim.env.now)
