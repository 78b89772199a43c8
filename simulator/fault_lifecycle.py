"""How one fault lives in the simulation: it starts, hurts, raises alarms and ends.

:class:`FaultLifecycle` is the part of :class:`simulator.engine.Simulation` that runs
each drawn :class:`~simulator.fault_model.Fault` as a SimPy process and keeps the ground
truth of which faults affect which ONU right now. A fault ends when its timer runs out
or when something fixes it (:meth:`FaultLifecycle.fix_fault`: a visit, a reboot, a
Wi-Fi profile change).
"""

from __future__ import annotations

from collections.abc import Callable

import simpy

from simulator import optics
from simulator.fault_model import Effects, Fault
from simulator.topology import Topology

__all__ = ["FaultLifecycle"]


class FaultLifecycle:
    """Mixin of :class:`~simulator.engine.Simulation`: fault processes and who is affected.

    The simulation provides the attributes annotated below and ``emit_event``.
    """

    env: simpy.Environment
    effects: Effects
    topology: Topology
    # Insertion-ordered dicts, not sets: iteration order must not depend on ids.
    _active: dict[int, dict[str, Fault]]
    _fix_events: dict[str, simpy.Event]
    _fault_by_id: dict[str, Fault]
    on_fault_change: list[Callable[[Fault, str], None]]
    emit_event: Callable[..., None]

    def active_faults(self, onu_row: int) -> list[Fault]:
        """Faults currently affecting an ONU, oldest first (ground truth: simulator only)."""
        return list(self._active.get(onu_row, {}).values())

    def fix_fault(self, fault: Fault, by: str) -> bool:
        """End an active fault now (a visit, a reboot). Returns whether it was active."""
        event = self._fix_events.get(fault.fault_id)
        if event is None or event.triggered:
            return False
        event.succeed(by)
        return True

    # --- processes ------------------------------------------------------------------------
    def _register(self, fault: Fault, add: bool) -> None:
        for row in fault.onus.tolist():
            bucket = self._active.setdefault(row, {})
            if add:
                bucket[fault.fault_id] = fault
            else:
                bucket.pop(fault.fault_id, None)
                if not bucket:
                    del self._active[row]

    def _impact_delay_s(self, fault: Fault) -> float:
        """Seconds from a fault's start until it hurts the customer (if nobody fixes it)."""
        if fault.kind == "hardware_failure" and not fault.params.get("dead"):
            return fault.params["drift_s"]
        if fault.kind == "cpe_hang":
            return fault.params.get("precursor_s", 0.0)
        if fault.kind == "fibre_degradation":
            # RX falls linearly from where it is now to the level that hurts.
            row = int(fault.onus[0])
            rx_now = self.topology.base_rx_dbm[row] - self.effects.rx_offset_db(self.env.now)[row]
            margin_db = max(float(rx_now) - optics.IMPACT_RX_DBM, 0.0)
            return margin_db / fault.params["db_per_s"]
        return 0.0

    def _fault_process(self, fault: Fault):
        env = self.env
        yield env.timeout(fault.start_s)
        follows = self._fault_by_id.get(fault.params.get("follows", ""))
        if follows is not None and (follows.params.get("skipped") or follows.fixed_by == "visit"):
            # A visit fixed the Wi-Fi for good: this recurrence never happens.
            fault.params["skipped"] = True
            return
        fix = env.event()
        self._fix_events[fault.fault_id] = fix
        self.effects.apply(fault, env.now, +1)
        self._register(fault, True)
        self._board_alarm(fault, "critical")
        fault.impact_start_s = env.now + self._impact_delay_s(fault)
        for cb in self.on_fault_change:
            cb(fault, "start")
        by = yield from self._until_fixed(fault, fix)
        self.effects.apply(fault, env.now, -1)
        self._register(fault, False)
        fault.end_s = env.now
        fault.fixed_by = by
        if fault.impact_start_s is not None and fault.impact_start_s > env.now:
            fault.impact_start_s = None  # fixed before it hurt anyone
        self._board_alarm(fault, "clear")
        for cb in self.on_fault_change:
            cb(fault, "end")

    def _until_fixed(self, fault: Fault, fix: simpy.Event):
        """Wait until ``fault`` ends; return who ended it (``timer``, ``reboot``, …)."""
        env = self.env
        waits = [fix]
        if fault.duration_s is not None and fault.kind != "cpe_hang":
            waits.append(env.timeout(fault.duration_s))
        if fault.kind == "cpe_hang":
            leak_s = fault.params.get("precursor_s", 0.0)
            result = {}
            if leak_s > 0:
                result = yield env.any_of([fix, env.timeout(leak_s)])
                if fix not in result:
                    self.effects.hang_cpe(fault)
            if fix in result:
                by = result[fix]
            else:
                # The customer power-cycles it after a while if nobody reboots it.
                if fault.duration_s is not None:
                    waits.append(env.timeout(fault.duration_s))
                result = yield env.any_of(waits)
                by = result[fix] if fix in result else "timer"
        elif fault.kind == "hardware_failure" and not fault.params.get("dead"):
            death = env.timeout(fault.params["drift_s"])
            result = yield env.any_of([fix, death])
            if fix not in result:
                self.effects.kill_hardware(fault)
                result = yield fix
                by = result
            else:
                by = result[fix]
        else:
            result = yield env.any_of(waits)
            by = result[fix] if fix in result else "timer"
        return by

    def _board_alarm(self, fault: Fault, severity: str) -> None:
        """Raise (``critical``) or clear the OLT alarm of a failed OLT board."""
        if fault.kind == "olt_board_failure":
            olt_id = fault.scope_key.rsplit("/", 1)[0]
            self.emit_event(
                self.env.now,
                olt_id,
                "olt",
                "OLT_ALARM",
                severity,
                {"board": fault.scope_key, "alarm": "board_fault"},
            )
