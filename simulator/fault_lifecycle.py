"""How one fault lives in the simulation: it starts, hurts, raises alarms and ends.

:class:`FaultLifecycle` is the part of :class:`simulator.engine.Simulation` that runs
each drawn :class:`~simulator.fault_model.Fault` as a SimPy process and keeps the ground
truth of which faults affect which ONU right now. A fault ends when its timer runs out
or when something fixes it (:meth:`FaultLifecycle.fix_fault`: a visit, a reboot, a
Wi-Fi profile change).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import simpy

from simulator import optics
from simulator.fault_model import Effects, Fault
from simulator.telemetry import optical_levels_dbm, upstream_lost
from simulator.topology import Topology

__all__ = ["FaultLifecycle", "attempt_draw"]


class FaultLifecycle:
    """Mixin of :class:`~simulator.engine.Simulation`: fault processes and who is affected.

    The simulation provides the attributes annotated below and ``emit_event``.
    """

    env: simpy.Environment
    effects: Effects
    topology: Topology
    # Insertion-ordered dicts, not sets: iteration order must not depend on ids.
    _active: dict[int, dict[str, Fault]]
    #: Seed of the action outcomes (drawn once from the run's action stream).
    _action_key: int
    #: Attempts made so far per ``(fault_id, action)``.
    _attempts: dict[tuple[str, str], int]
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

    def attempt_fixes(self, fault: Fault, action: str, p_fix: float, peek: bool = False) -> bool:
        """Whether the next ``action`` (``reboot``, ``wifi_profile``) on ``fault`` ends it.

        The outcome is a uniform draw that belongs to the fault and the attempt's number
        (:func:`attempt_draw`), not to a stream shared by every action of the run: the
        k-th reboot of a given hang succeeds or fails alike in every policy's run of a
        seed, whatever else each policy did before (common random numbers — a shared
        stream let one policy's extra reboot elsewhere flip another's luck here).

        Parameters
        ----------
        fault : Fault
        action : str
        p_fix : float
            Probability that one attempt ends the fault. [-]
        peek : bool, default False
            Only tell the outcome (the oracle's truth); do not count the attempt.
        """
        key = (fault.fault_id, action)
        k = self._attempts.get(key, 0)
        if not peek:
            self._attempts[key] = k + 1
        return attempt_draw(self._action_key, fault.fault_id, action, k) < p_fix

    def attempts_until_fix(self, fault: Fault, action: str, p_fix: float, limit: int = 50):
        """How many more attempts of ``action`` it takes to end ``fault`` (1: the next).

        The oracle's truth (:meth:`attempt_fixes` without counting); ``None`` if none of
        the next ``limit`` attempts would.
        """
        k = self._attempts.get((fault.fault_id, action), 0)
        for j in range(limit):
            if attempt_draw(self._action_key, fault.fault_id, action, k + j) < p_fix:
                return j + 1
        return None

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

    def _impact_delay_s(self, fault: Fault) -> float | None:
        """Seconds from a fault's start until it hurts the customer (if nobody fixes it).

        ``None`` for a fault that never hurts anyone while nothing else changes: a box's
        RX step (4–9 dB) that leaves every ONU of the box above the impact level. Such a
        step hurts only the ONUs it takes below that level (``fault.hurt_onus``); the
        others lose margin, not service. Called once the fault's effect is applied.
        """
        if fault.kind in ("box_fault", "box_drop_fault") and not fault.params.get("los", True):
            rows = fault.onus
            rx, olt_rx, _ = optical_levels_dbm(self.topology, self.effects, self.env.now)
            hurt = (rx[rows] < optics.IMPACT_RX_DBM) | upstream_lost(olt_rx[rows])
            fault.hurt_onus = rows[hurt]
            return 0.0 if hurt.any() else None
        if fault.kind == "hardware_failure" and not fault.params.get("dead"):
            return fault.params["drift_s"]
        if fault.kind == "cpe_hang":
            return fault.params.get("precursor_s", 0.0)
        if fault.kind == "fibre_degradation":
            # RX falls linearly from where it is now to the level that hurts.
            row = int(fault.onus[0])
            rx_now = optical_levels_dbm(self.topology, self.effects, self.env.now)[0][row]
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
        delay_s = self._impact_delay_s(fault)
        fault.impact_start_s = None if delay_s is None else env.now + delay_s
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


def attempt_draw(run_key: int, fault_id: str, action: str, attempt: int) -> float:
    """The uniform draw in [0, 1) of one attempt of ``action`` on one fault of a run.

    Deterministic in its arguments (a seed sequence of the run's key, a CRC-32 of the
    fault id and action, and the attempt's number), so independent of the order in which
    a policy acts on different faults.
    """
    tag = zlib.crc32(f"{fault_id}|{action}".encode())
    return float(np.random.default_rng([run_key, tag, attempt]).random())
