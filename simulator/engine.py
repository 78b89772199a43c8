"""The simulation: SimPy for discrete events, one vectorised numpy step per tick.

>>> from simulator.scenario import load_scenario
>>> sim = Simulation(load_scenario("tiny"), seed=1)
>>> state = sim.step()
>>> bool(state.online.mean() > 0.9)
True
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import NamedTuple, Protocol

import numpy as np
import pandas as pd
import simpy

from guardian_lib.loop.tick import EventRow
from simulator.admin import AdminState
from simulator.fault_lifecycle import FaultLifecycle
from simulator.faults import FAULT_KINDS, Effects, Fault, Storm, draw_faults, draw_storms
from simulator.operations import Operations
from simulator.scenario import Scenario
from simulator.telemetry import (
    TickState,
    compute_tick,
    detect_events,
    nan_to_zero,
    traffic_load,
)
from simulator.topology import Topology, build_topology

__all__ = ["Simulation", "SimParts", "TickSink", "SimEvent"]


class SimEvent(NamedTuple):
    """One event as the simulation logs it: like :class:`guardian_lib.loop.EventRow`
    but timed in simulation seconds (:meth:`Simulation.event_row` converts).

    Attributes
    ----------
    now_s : float
        Simulation time. [s]
    entity_id, entity_type, type, severity : str
    payload : str
        JSON object.
    """

    now_s: float
    entity_id: str
    entity_type: str
    type: str
    severity: str
    payload: str


_NIGHT_START_H, _NIGHT_END_H = 0.0, 6.5


class SimParts(NamedTuple):
    """A simulation's network, faults and random streams, prepared outside it.

    The sharded simulator (:mod:`simulator.sharded`) draws the network and every fault
    of the fleet once and runs each region with its own streams.

    Attributes
    ----------
    topology : Topology
    storms : list of Storm
    faults : list of Fault
        Fault ``onus`` index rows of ``topology.onus``.
    streams : tuple of 5 numpy.random.Generator
        Tick noise, calls, operations, data quality, action outcomes.
    """

    topology: Topology
    storms: list[Storm]
    faults: list[Fault]
    streams: tuple[np.random.Generator, ...]


class TickSink(Protocol):
    """Receives every tick and the events logged since the previous one."""

    def on_tick(self, sim: Simulation, state: TickState, events: list[SimEvent]) -> None: ...


class Simulation(FaultLifecycle):
    """A simulated ISP that can be stepped tick by tick or run to the end.

    Parameters
    ----------
    scenario : Scenario
    seed : int, optional
        Overrides ``scenario.seed``. Give ``seed`` or ``rng``, not both.
    rng : numpy.random.Generator, optional
    env : simpy.Environment, optional
        E.g. a ``simpy.rt.RealtimeEnvironment`` for a live twin; the model does not
        care which environment runs it.
    sinks : list of TickSink, optional
        Observers called after every tick (e.g. the Parquet writer).
    parts : SimParts, optional
        A network, faults and streams prepared elsewhere (instead of ``seed`` / ``rng``).

    Attributes
    ----------
    topology : Topology
    state : TickState or None
        Readings at the last tick (``None`` before the first :meth:`step`).
    faults : list of Fault
        Every fault of the scenario, drawn up front (start times do not depend on
        what any policy does).
    ops : Operations
    """

    def __init__(
        self,
        scenario: Scenario,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        env: simpy.Environment | None = None,
        sinks: list[TickSink] | None = None,
        parts: SimParts | None = None,
    ) -> None:
        if seed is not None and rng is not None:
            raise ValueError("give seed or rng, not both")
        if parts is not None and (seed is not None or rng is not None):
            raise ValueError("give parts or seed/rng, not both")
        self.scenario = scenario
        self.start = pd.Timestamp(scenario.start)
        if parts is None:
            if rng is None:
                rng = np.random.default_rng(scenario.seed if seed is None else seed)
            streams = rng.spawn(7)
            (r_topo, r_faults, r_tick, r_calls, r_ops, self.rng_dq, self._rng_actions) = streams
            topology = build_topology(scenario, r_topo)
            storms = draw_storms(scenario, len(topology.regions), r_faults)
            faults = draw_faults(scenario, topology, storms, r_faults)
        else:
            topology, storms, faults = parts.topology, parts.storms, parts.faults
            (r_tick, r_calls, r_ops, self.rng_dq, self._rng_actions) = parts.streams
        self.topology: Topology = topology
        self.onu_ids = self.topology.onus["onu_id"].to_numpy()
        self.customer_ids = self.topology.customers["customer_id"].to_numpy()
        self.env = env if env is not None else simpy.Environment()
        self.tick_s = scenario.tick_minutes * 60.0
        self.effects = Effects(self.topology.n_onus)
        n = self.topology.n_onus
        self._rng_tick = r_tick
        self._rng_calls = r_calls
        self.storms = storms
        self.faults: list[Fault] = faults
        self._fault_by_id = {f.fault_id: f for f in self.faults}
        # Insertion-ordered dicts, not sets: iteration order must not depend on ids.
        self._active: dict[int, dict[str, Fault]] = {}
        self._fix_events: dict[str, simpy.Event] = {}
        self.boot_s = -r_tick.uniform(3600, 60 * 86400, n)
        self.rebooting_until_s = np.full(n, -np.inf)
        self.base_latency_ms = r_tick.uniform(4.0, 18.0, n)
        self.impact_since_s = np.full(n, np.nan)
        self.called_episode = np.zeros(n, dtype=bool)
        self.notified_until_s = np.full(n, -np.inf)
        self.ops = Operations(self, r_ops)
        #: What the OLTs' operators configured (authorized / disabled ONUs, shut ports).
        self.admin = AdminState(self.topology.onus["pon_id"].to_numpy())
        self.sinks: list[TickSink] = list(sinks or [])
        self.state: TickState | None = None
        self._pending_events: list[SimEvent] = []
        self.reboots: list[dict] = []
        self.wifi_changes: list[dict] = []
        # Action outcomes are drawn per fault and attempt (FaultLifecycle.attempt_fixes).
        self._action_key = int(self._rng_actions.integers(2**63 - 1))
        self._attempts: dict[tuple[str, str], int] = {}
        self.tick_index = -1
        self.on_fault_change: list[Callable[[Fault, str], None]] = []
        for fault in self.faults:
            self.env.process(self._fault_process(fault))
        self.env.process(self._ticker())

    # --- public API --------------------------------------------------------------------
    @property
    def n_ticks(self) -> int:
        """Ticks in the whole scenario. [-]"""
        return self.scenario.n_ticks

    def add_fault(self, fault: Fault) -> Fault:
        """Add one fault to the simulation (as :func:`~simulator.faults.draw_faults` would).

        For scripted scenarios and tests: the fault starts at ``fault.start_s`` and runs
        its lifecycle like a drawn one (it lands in ``faults_truth``).

        Raises
        ------
        ValueError
            ``fault.fault_id`` is already used, ``fault.kind`` is not a fault kind, or
            ``fault.start_s`` [s] lies before the simulation's current time.
        """
        if fault.fault_id in self._fault_by_id:
            raise ValueError(f"add_fault: fault_id {fault.fault_id!r} is already used")
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"add_fault: unknown kind {fault.kind!r} (expected one of "
                             f"{sorted(FAULT_KINDS)})")  # fmt: skip
        if fault.start_s < self.env.now:
            raise ValueError(f"add_fault: start_s {fault.start_s} s is before the "
                             f"simulation's time {self.env.now} s")  # fmt: skip
        self.faults.append(fault)
        self._fault_by_id[fault.fault_id] = fault
        self.env.process(self._fault_process(fault))
        return fault

    def ts_of(self, now_s: float) -> pd.Timestamp:
        """UTC timestamp of a simulation time. [s] → Timestamp"""
        return self.start + pd.Timedelta(seconds=float(now_s))

    def event_row(self, event: SimEvent) -> EventRow:
        """``event`` as the closed loop sees it (a UTC timestamp instead of seconds)."""
        e = event
        return EventRow(self.ts_of(e.now_s), e.entity_id, e.entity_type, e.type, e.severity,
                        e.payload)  # fmt: skip

    def step(self) -> TickState:
        """Advance to the next tick and return its readings."""
        if self.tick_index + 1 >= self.n_ticks:
            raise StopIteration("the scenario has no more ticks")
        target = self.tick_index + 1
        # Run just past the tick so that its process has executed.
        self.env.run(until=target * self.tick_s + 1e-6)
        assert self.state is not None and self.tick_index == target
        return self.state

    def run(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Run every remaining tick (calling ``progress(done, total)`` after each day)."""
        per_day = self.scenario.ticks_per_day
        while self.tick_index + 1 < self.n_ticks:
            self.step()
            if progress and (self.tick_index + 1) % per_day == 0:
                progress(self.tick_index + 1, self.n_ticks)
        # Let events scheduled before the horizon (visits, fault ends) finish.
        self.env.run(until=self.scenario.horizon_s)

    def customer_impacted(self, onu_row: int) -> bool:
        """Whether the customer currently sees a problem (as they would tell the office)."""
        return not np.isnan(self.impact_since_s[onu_row])

    def emit_event(
        self,
        now_s: float,
        entity_id: str,
        entity_type: str,
        type_: str,
        severity: str,
        payload: dict | None = None,
    ) -> None:
        """Log one event (written with the next tick's batch)."""
        self._pending_events.append(
            SimEvent(now_s, entity_id, entity_type, type_, severity, json.dumps(payload or {}))
        )

    def reboot_cpe(self, onu: int | str, by: str = "autopilot") -> None:
        """Power-cycle a CPE: down for a few minutes, may clear a hang.

        Parameters
        ----------
        onu : int or str
            Row in ``topology.onus`` or the ONU id.
        by : str
            Who asked (recorded in the REBOOT event).
        """
        row = int(np.flatnonzero(self.onu_ids == onu)[0]) if isinstance(onu, str) else int(onu)
        self.env.process(self._reboot(row, by))

    def change_wifi_profile(self, onu_row: int, by: str = "autopilot") -> bool:
        """Move a CPE's Wi-Fi to another channel / band plan (TR-069 SetParameterValues).

        Each active Wi-Fi interference episode of the customer ends with the scenario's
        ``faults.wifi_profile_fix_prob``; unlike a visit it does not stop later
        recurrences (the neighbour's router is still there).

        Parameters
        ----------
        onu_row : int
            Row of the customer's ONU in ``topology.onus``.
        by : str
            Who asked (recorded in ``wifi_changes``).

        Returns
        -------
        bool
            Whether an interference episode ended.
        """
        p_fix = self.scenario.faults.wifi_profile_fix_prob
        self.wifi_changes.append({"ts_s": self.env.now, "onu_row": onu_row, "by": by})
        fixed = False
        for fault in self.active_faults(onu_row):
            if fault.kind == "wifi_interference" and self.attempt_fixes(
                fault, "wifi_profile", p_fix
            ):
                fixed = self.fix_fault(fault, by="wifi_profile") or fixed
        return fixed

    def notify_customer(self, onu_row: int, until_s: float) -> None:
        """Tell a customer that their problem is known: they call less until ``until_s``.

        Parameters
        ----------
        onu_row : int
            Row of the customer's ONU in ``topology.onus``.
        until_s : float
            Simulation time until which the notice holds. [s]
        """
        self.notified_until_s[onu_row] = max(self.notified_until_s[onu_row], float(until_s))

    def visit_premises(self, onu_row: int) -> str:
        """What a technician finds and fixes at a customer's premises (the outcome)."""
        active = self.active_faults(onu_row)
        fixed = [f for f in active if f.fixable_by_visit and self.fix_fault(f, "visit")]
        if fixed:
            return "fixed_" + sorted(f.cause_class.lower() for f in fixed)[0]
        if any(f.cause_class in ("MASSIVE_OUTAGE", "EXTERNAL_NETWORK") for f in active):
            return "massive_outage"
        if any(f.kind == "customer_power_off" for f in active):
            return "customer_absent"
        return "no_fault_found"

    # --- processes ------------------------------------------------------------------------
    def _reboot(self, row: int, by: str):
        env = self.env
        down_s = self.scenario.faults.reboot_down_minutes * 60
        self.reboots.append({"ts_s": env.now, "onu_row": row, "by": by})
        self.emit_event(env.now, self.onu_ids[row], "onu", "REBOOT", "info", {"by": by})
        self.rebooting_until_s[row] = max(self.rebooting_until_s[row], env.now + down_s)
        yield env.timeout(down_s)
        self.boot_s[row] = env.now
        p_fix = self.scenario.faults.cpe_hang_reboot_fix_prob
        for fault in self.active_faults(row):
            if fault.kind == "cpe_hang" and self.attempt_fixes(fault, "reboot", p_fix):
                self.fix_fault(fault, by="reboot")

    def _ticker(self):
        env = self.env
        prev: TickState | None = None
        for k in range(self.n_ticks):
            if env.now < k * self.tick_s:
                yield env.timeout(k * self.tick_s - env.now)
            now = env.now
            ts = self.ts_of(now)
            load = traffic_load(now, self.start)
            # An ONU that comes back from a power loss has rebooted.
            state = compute_tick(
                self.topology,
                self.effects,
                now,
                ts,
                load,
                self.boot_s,
                self.rebooting_until_s,
                self.base_latency_ms,
                self._rng_tick,
                admin_down=self.admin.down_mask() if self.admin.any_down() else None,
            )
            if prev is not None:
                powered_back = ~prev.online & (prev.down_cause == 2) & state.online
                self.boot_s[powered_back] = now
                state.uptime_s[powered_back] = 0
                for rows, type_, severity in detect_events(prev, state, self._rng_tick):
                    for row in rows.tolist():
                        self._pending_events.append(
                            SimEvent(now, self.onu_ids[row], "onu", type_, severity, "{}")
                        )
            self._sample_calls(state)
            events, self._pending_events = self._pending_events, []
            self.state = state
            self.tick_index = k
            for sink in self.sinks:
                sink.on_tick(self, state, events)
            prev = state

    def _sample_calls(self, state: TickState) -> None:
        """Customers call with a hazard that grows with severity and duration (vectorised)."""
        c = self.scenario.customers
        now = state.now_s
        e = self.effects
        offline_los = ~state.online & (state.down_cause == 1)
        # A failed ONU power supply also sends a dying gasp, but the customer has power:
        # they call like any customer offline.
        psu = e.psu_n > 0
        offline_power = ~state.online & (state.down_cause == 2) & ~psu
        offline_los = offline_los | (~state.online & (state.down_cause == 2) & psu)
        no_pppoe = state.online & ~state.pppoe_up
        degraded = (
            state.online
            & state.pppoe_up
            & ((e.wifi_n > 0) | (e.symptom_n > 0) | (nan_to_zero(state.ber) > 1e-6))
        )
        impacted = offline_los | offline_power | no_pppoe | degraded
        started = impacted & np.isnan(self.impact_since_s)
        self.impact_since_s[started] = now
        ended = ~impacted & ~np.isnan(self.impact_since_s)
        self.impact_since_s[ended] = np.nan
        self.called_episode[ended] = False
        rate_h = (
            offline_los * c.call_rate_per_hour_offline
            + offline_power * c.call_rate_per_hour_power
            + no_pppoe * c.call_rate_per_hour_no_pppoe
            + degraded * c.call_rate_per_hour_degraded
        )
        dur_min = nan_to_zero(now - self.impact_since_s) / 60
        rate_h = rate_h * (1 - np.exp(-dur_min / c.notice_minutes))
        rate_h = np.where(self.called_episode, rate_h * c.repeat_call_factor, rate_h)
        rate_h = np.where(self.notified_until_s > now, rate_h * 0.3, rate_h)
        rate_h = rate_h + ~impacted * (c.background_calls_per_year / (365 * 24))
        local_h = (state.ts.hour + state.ts.minute / 60 - 3.0) % 24
        if _NIGHT_START_H <= local_h < _NIGHT_END_H:
            rate_h = rate_h * c.night_factor
        p = 1 - np.exp(-rate_h * self.tick_s / 3600)
        callers = np.flatnonzero(self._rng_calls.random(len(p)) < p)
        for row in callers.tolist():
            symptom = (
                "offline"
                if offline_los[row]
                else "power"
                if offline_power[row]
                else "no_pppoe"
                if no_pppoe[row]
                else "degraded"
                if degraded[row]
                else "none"
            )
            if symptom == "degraded" and e.wifi_n[row] > 0:
                symptom = "wifi"
            if impacted[row]:
                self.called_episode[row] = True
            self.ops.on_call(row, symptom)
