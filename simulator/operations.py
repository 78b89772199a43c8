"""Field operations as SimPy processes: calls, service orders, technicians, visits.

Today's practice (the *reactive* policy): a customer calls; phone support may talk them
through a reboot; otherwise the call often becomes a service order, scheduled hours or a
day later, and a technician of the region's crew travels and works on site. A visit fixes
what a visit can fix, finds a massive outage it cannot fix, or finds nothing.

Processes claim a technician with ``with crew.request() as req: yield req`` so that a
cancelled visit (an :class:`simpy.Interrupt`) always frees its crew slot.

Every random draw here is *keyed*: to the customer, to what it is for (a call, a service
order) and to how many of those the customer has had (common random numbers). Two
policies run on the same seed then meet the same customer behaviour and the same field
times for the same customer's k-th call and k-th order, whatever else each policy does;
with one shared stream, one extra call anywhere shifted every later draw, and the paired
difference between two policies carried that noise.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np
import simpy

from simulator.fault_model import lognormal_at
from simulator.faults import Fault
from simulator.scenario import Scenario
from simulator.topology import Topology

__all__ = ["ServiceOrder", "Operations", "Plant", "REASONS"]


class Plant(Protocol):
    """What field operations need of the simulated network (a :class:`~simulator.engine.Simulation`).

    Operations see the plant through these attributes and methods only, so that
    ``operations`` does not depend on the engine that owns it.
    """

    env: simpy.Environment
    scenario: Scenario
    topology: Topology
    onu_ids: np.ndarray
    customer_ids: np.ndarray

    def active_faults(self, onu_row: int) -> list[Fault]: ...

    def customer_impacted(self, onu_row: int) -> bool: ...

    def emit_event(
        self,
        now_s: float,
        entity_id: str,
        entity_type: str,
        type_: str,
        severity: str,
        payload: dict | None = None,
    ) -> None: ...

    def reboot_cpe(self, onu: int | str, by: str = ...) -> None: ...

    def visit_premises(self, onu_row: int) -> str: ...


#: What a customer says when calling, by the symptom they see.
REASONS = ("no_connection", "no_internet", "slow_internet", "wifi_problem", "other")
_SYMPTOM_REASON = {
    "offline": "no_connection",
    "power": "no_connection",
    "no_pppoe": "no_internet",
    "degraded": "slow_internet",
    "wifi": "wifi_problem",
    "none": "other",
}


@dataclass
class ServiceOrder:
    """A technician visit (a row of ``service_orders``). Times in seconds since start."""

    os_id: str
    customer_id: str
    onu_row: int
    region: str
    reason: str
    status: str
    opened_s: float
    scheduled_s: float
    closed_s: float | None = None
    technician_id: str | None = None
    outcome: str | None = None
    cost_brl: float = 0.0
    opened_by: str = "call_center"

    def record(self) -> dict:
        """Plain dict for the output table."""
        return asdict(self)


class Operations:
    """Call centre, service orders and technician crews of one simulation.

    Parameters
    ----------
    sim : Plant
        The simulation whose environment, topology and faults this acts on.
    rng : numpy.random.Generator
        Draws the run's key once; every later draw comes from a generator keyed to
        the customer (:meth:`_draws`).
    """

    def __init__(self, sim: Plant, rng: np.random.Generator) -> None:
        self.sim = sim
        self.env: simpy.Environment = sim.env
        self._key = int(rng.integers(2**63 - 1))
        #: Calls and orders so far per (ONU row, kind): the k of the next keyed draw.
        self._counts: dict[tuple[int, str], int] = {}
        #: Each open order's draws: (confirm, reach) uniforms, (delay, travel, work) normals.
        self._order_draws: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        cfg = sim.scenario.operations
        self.cfg = cfg
        self.crews = {
            region: simpy.Resource(self.env, capacity=cfg.technicians_per_region)
            for region in sim.topology.regions
        }
        self.free_techs = {
            region: [f"T-{i + 1:02d}-{k + 1:03d}" for k in range(cfg.technicians_per_region)]
            for i, region in enumerate(sim.topology.regions)
        }
        self.orders: list[ServiceOrder] = []
        self.open_order_by_onu: dict[int, ServiceOrder] = {}
        self._visit_procs: dict[str, simpy.Process] = {}
        self.calls = 0
        self.reactive = True
        #: Orders to confirm with the customer first, and the question (the autopilot's
        #: call-ahead; call-centre orders keep the standing confirmation below).
        self.confirm: dict[str, str] = {}
        #: Call-aheads made (the office called the customer before a visit). [-]
        self.call_aheads = 0

    def _draws(self, onu_row: int, kind: str) -> np.random.Generator:
        """A generator for the customer's next ``kind`` (``"call"``, ``"order"``).

        Seeded by the run's key, the ONU row, the kind and how many of that kind the
        customer had before, so it does not depend on the order in which customers
        call or get orders. Each caller draws a fixed vector from it (every position has
        one use, taken or not), so a branch never shifts a later draw.
        """
        k = self._counts.get((onu_row, kind), 0)
        self._counts[(onu_row, kind)] = k + 1
        return np.random.default_rng([self._key, onu_row, zlib.crc32(kind.encode()), k])

    # --- calls ---------------------------------------------------------------------------
    def on_call(self, onu_row: int, symptom: str) -> None:
        """A customer calls about ``symptom`` (see :data:`REASONS`)."""
        sim = self.sim
        self.calls += 1
        reason = _SYMPTOM_REASON[symptom]
        u_wrong, u_which, u_phone, u_visit = self._draws(onu_row, "call").random(4)
        if u_wrong < self.cfg.wrong_reason_prob:
            others = [r for r in REASONS if r != reason]
            reason = others[int(u_which * len(others))]
        customer_id = sim.customer_ids[onu_row]
        sim.emit_event(
            sim.env.now,
            customer_id,
            "customer",
            "CUSTOMER_CALL",
            "info",
            {"reason": reason, "onu_id": sim.onu_ids[onu_row]},
        )
        if not self.reactive or onu_row in self.open_order_by_onu:
            return
        # Phone support asks the customer to power-cycle the CPE.
        active = sim.active_faults(onu_row)
        if any(f.kind == "cpe_hang" for f in active):
            if u_phone < self.cfg.phone_reboot_fix_prob:
                sim.reboot_cpe(onu_row, by="customer_phone")
                return
        has_fault = any(f.recorded for f in active)
        p = self.cfg.visit_prob_with_fault if has_fault else self.cfg.visit_prob_without_fault
        if any(
            f.cause_class in ("MASSIVE_OUTAGE", "EXTERNAL_NETWORK")
            or f.kind == "customer_power_off"
            for f in active
        ):
            # The agent sees why: a massive outage on the NOC's board, or the ONU's own dying
            # gasp (no power at the premises). They tell the caller; rarely a ticket.
            p = self.cfg.visit_prob_known_outage
        if u_visit < p:
            self.open_order(onu_row, reason)

    # --- service orders --------------------------------------------------------------------
    def open_order(
        self,
        onu_row: int,
        reason: str,
        delay_s: float | None = None,
        opened_by: str = "call_center",
        confirm: str | None = None,
    ) -> ServiceOrder:
        """Open a service order and start its visit process.

        Parameters
        ----------
        onu_row : int
            Row of the customer's ONU in ``topology.onus``.
        reason : str
        delay_s : float, optional
            Time until the visit is scheduled; drawn from the scenario if omitted. [s]
        opened_by : str
        confirm : str, optional
            Call the customer before the visit and ask this (``"power_on"``: a customer
            whose power is off cancels the visit, one not reached too; see
            :meth:`_call_ahead`).
        """
        if onu_row in self.open_order_by_onu:
            return self.open_order_by_onu[onu_row]
        now = self.env.now
        g = self._draws(onu_row, "order")
        draws = (g.random(2), g.standard_normal(3))
        if delay_s is None:
            delay_s = float(lognormal_at(self.cfg.scheduling_delay, draws[1][0])) * 3600
        sim = self.sim
        order = ServiceOrder(
            os_id=f"OS{len(self.orders) + 1:07d}",
            customer_id=sim.customer_ids[onu_row],
            onu_row=onu_row,
            region=sim.topology.regions[sim.topology.onu_region[onu_row]],
            reason=reason,
            status="scheduled",
            opened_s=now,
            scheduled_s=now + delay_s,
            opened_by=opened_by,
        )
        self.orders.append(order)
        self.open_order_by_onu[onu_row] = order
        self._order_draws[order.os_id] = draws
        if confirm:
            self.confirm[order.os_id] = confirm
        self._visit_procs[order.os_id] = self.env.process(self._visit(order))
        return order

    def cancel_order(self, os_id: str, reason: str = "cancelled") -> bool:
        """Cancel a visit that has not finished; frees its technician. Returns success."""
        proc = self._visit_procs.get(os_id)
        if proc is None or not proc.is_alive:
            return False
        proc.interrupt(reason)
        return True

    def _close(self, order: ServiceOrder, status: str, outcome: str) -> None:
        order.status = status
        order.outcome = outcome
        order.closed_s = self.env.now
        self.open_order_by_onu.pop(order.onu_row, None)
        self._visit_procs.pop(order.os_id, None)
        self._order_draws.pop(order.os_id, None)

    def _visit(self, order: ServiceOrder):
        env = self.env
        region = order.region
        (u_confirm, _), (_, z_travel, z_work) = self._order_draws[order.os_id]
        try:
            yield env.timeout(max(0.0, order.scheduled_s - env.now))
            # The office calls ahead; a customer whose service is back cancels (visits
            # the autopilot scheduled on purpose, e.g. before an outage, go ahead).
            if (
                order.opened_by == "call_center"
                and not self.sim.customer_impacted(order.onu_row)
                and u_confirm < self.cfg.confirm_before_visit_prob
            ):
                self._close(order, "cancelled", "resolved_before_visit")
                return
            if order.os_id in self.confirm:
                answer = self._call_ahead(order)
                if answer is not None:
                    self._close(order, "cancelled", answer)
                    return
            with self.crews[region].request() as req:
                yield req
                tech = self.free_techs[region].pop()
                order.technician_id = tech
                order.status = "in_progress"
                try:
                    travel_s = float(lognormal_at(self.cfg.travel, z_travel)) * 3600
                    work_s = float(lognormal_at(self.cfg.work, z_work)) * 3600
                    yield env.timeout(travel_s + work_s)
                    outcome = self.sim.visit_premises(order.onu_row)
                    order.cost_brl = self.sim.scenario.economics.cost_per_visit_brl
                    self._close(order, "completed", outcome)
                finally:
                    self.free_techs[region].append(tech)
        except simpy.Interrupt as interrupt:
            self._close(order, "cancelled", str(interrupt.cause))

    def _call_ahead(self, order: ServiceOrder) -> str | None:
        """The office calls the customer before the visit; the outcome if it is cancelled.

        The call reaches the customer with ``confirm_before_visit_prob``; asked whether
        their power is on, they answer truthfully: off (their own power cut, or an area's)
        cancels the visit (``customer_power_off``), on (a failed ONU power supply, any
        other fault) confirms it (None). A call that does not reach them cancels it too
        (``customer_unreached``: the ONU is inside the home, nobody would let the
        technician in). The reach is the order's own keyed draw (see :meth:`_draws`).
        """
        self.call_aheads += 1
        u_reach = self._order_draws[order.os_id][0][1]
        if u_reach >= self.cfg.confirm_before_visit_prob:
            return "customer_unreached"
        if self.confirm[order.os_id] != "power_on":
            return None
        active = self.sim.active_faults(order.onu_row)
        if any(f.kind in ("customer_power_off", "power_outage") for f in active):
            return "customer_power_off"
        return None

    def records(self) -> list[dict]:
        """Every service order as a dict, in opening order."""
        return [o.record() for o in self.orders]
