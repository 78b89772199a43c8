"""The live twin: the simulator in scaled real time, the ACS, the CPE agents and the autopilot.

Three parts run at once, on 127.0.0.1 only:

* the simulation, on a ``simpy.rt.RealtimeEnvironment`` (``speed`` simulated seconds
  per wall-clock second), in the calling thread;
* the ACS (CWMP + GenieACS-compatible NBI) and one CPE agent per simulated customer, in
  a background asyncio loop; agents report the simulation's live values and hand the
  Reboot RPCs they receive back to the simulation (:class:`TwinStateSource`);
* the closed loop (:class:`guardian_lib.loop.ClosedLoop`, the same as the backtest's and
  ``guardian operate``'s), fed every tick by the simulation through the adapters of
  :mod:`simulator.adapters`; its autopilot decides every ``every_minutes`` on a
  snapshot of observable data only. In ``execute`` mode
  its reboots go through the NBI with :class:`guardian_lib.acs.NbiClient`: the ACS sends
  a connection request, the CPE opens a session, receives Reboot, and the simulated
  CPE really reboots (``Simulation.reboot_cpe(..., by="acs")``), which may clear a hang.
  In ``simulate`` mode (the default) decisions are made and audited, nothing is sent.

The NBI client blocks while the ACS waits for the device; the simulation then lags
behind the wall clock and catches up (the environment is not ``strict``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import simpy.rt

from acs_emulator.twin.adapters import NbiDevices, TwinStateSource
from guardian_lib.schema import POLICY_EVERY_MINUTES

__all__ = ["Twin", "TwinReport", "run_twin"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class TwinReport:
    """What happened in one twin run.

    Attributes
    ----------
    mode : {'simulate', 'execute'}
    speed : float
        Simulated seconds per wall-clock second. [-]
    ticks : int
        Simulation ticks run. [-]
    sim_minutes : float
        Simulated time covered. [min]
    wall_s : float
        Wall-clock time of the loop (services started). [s]
    decisions : dict
        Decisions per action. [-]
    nbi_reboots : list of dict
        Reboots sent to the NBI (device id, idempotency key, task status or error).
    cpe_reboots : list of str
        Device ids whose CPE agent received and executed a Reboot RPC.
    sim_reboots_by_acs : int
        Reboots the simulation applied because a CPE agent asked. [-]
    hangs_cleared_by_reboot : list of str
        Device ids whose ``cpe_hang`` fault a reboot ended. [-]
    reboot_actions : dict
        Audited reboot actions per status (``simulated``, ``succeeded``, ``failed``…). [-]
    sessions_ok, sessions_failed : int
        CWMP sessions of the agents. [-]
    alerts : dict
        With an alerting file: the alerting figures
        (:meth:`~acs_emulator.twin.alerting.TwinAlerting.summary`); else empty.
    """

    mode: str
    speed: float
    ticks: int = 0
    sim_minutes: float = 0.0
    wall_s: float = 0.0
    decisions: dict[str, int] = field(default_factory=dict)
    nbi_reboots: list[dict[str, Any]] = field(default_factory=list)
    cpe_reboots: list[str] = field(default_factory=list)
    sim_reboots_by_acs: int = 0
    hangs_cleared_by_reboot: list[str] = field(default_factory=list)
    reboot_actions: dict[str, int] = field(default_factory=dict)
    sessions_ok: int = 0
    sessions_failed: int = 0
    alerts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The report as JSON."""
        return json.dumps(asdict(self), indent=2, default=str)


class _Services:
    """The ACS and the CPE fleet in a background event loop (loopback only)."""

    def __init__(
        self,
        identities: list[Any],
        state: TwinStateSource,
        host: str,
        nbi_token: str | None,
        agent_options: dict[str, Any],
        seed: int,
    ) -> None:
        from acs_emulator.cwmp import AcsService

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="twin-acs", daemon=True)
        self.svc = AcsService(host=host, nbi_token=nbi_token)
        self.identities = identities
        self.state = state
        self.host = host
        self.agent_options = agent_options
        self.seed = seed
        self.fleet: Any = None
        self._started = False

    def call(self, coro: Awaitable[T], timeout_s: float = 60.0) -> T:
        """Run a coroutine in the services' loop and wait for its result. [s]"""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)  # type: ignore[arg-type]

    def start(self, settle_timeout_s: float) -> None:
        self.thread.start()
        self._started = True
        from acs_emulator.cpe import CpeFleet

        self.call(self.svc.start())
        self.fleet = CpeFleet(
            self.identities,
            self.svc.cwmp_url,
            state=self.state,
            host=self.host,
            agent_options=self.agent_options,
            seed=self.seed,
        )
        self.call(self.fleet.start(spread_s=min(2.0, 0.005 * len(self.identities))))
        self.call(self._settled(settle_timeout_s), timeout_s=settle_timeout_s + 5)

    async def _settled(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        want = {i.device_id for i in self.identities if self.state.values(i.device_id)["online"]}
        while loop.time() < end:
            known = set(self.svc.acs.store.devices)
            if want <= known and not self.svc.acs.sessions:
                return
            await asyncio.sleep(0.02)
        missing = sorted(want - set(self.svc.acs.store.devices))
        log.warning("twin: %d CPEs had not informed after %.0f s: %s", len(missing),
                    timeout_s, missing[:5])  # fmt: skip

    def stop(self) -> None:
        if not self._started:
            return
        try:
            if self.fleet is not None:
                self.call(self.fleet.stop(), timeout_s=15)
            self.call(self.svc.close(), timeout_s=15)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            if not self.thread.is_alive():
                self.loop.close()
            self._started = False


class Twin:
    """A simulated ISP, its ACS and CPEs, and the autopilot, in scaled real time.

    Parameters
    ----------
    scenario : simulator.scenario.Scenario
    seed : int, optional
        Seed of the simulation (``scenario.seed`` if None).
    speed : float, default 60
        Simulated seconds per wall-clock second (60: one simulated hour per minute). [-]
    settings : guardian_lib.decision.AutopilotSettings, optional
        Mode and safety limits; default from the environment (``AUTOPILOT_MODE``,
        simulate unless set).
    every_minutes : float, default 15
        How often the autopilot is called: a multiple of the scenario's tick (another
        value raises ValueError). [min]
    scorer : callable, optional
        ``scorer(snapshot) -> predictions`` (default: the rule scorer). As in the
        backtest, the loop binds a scorer with ``bind(onus, tick_s)`` (e.g.
        :class:`guardian_lib.models.ModelScorer`) to the fleet and feeds a scorer with
        ``update(tick)`` every tick.
    costs : guardian_lib.decision.CostModel, optional
        Default: the scenario's economics.
    audit : str or Path, optional
        DuckDB file of the audit trail (in memory if None).
    host : str, default "127.0.0.1"
        Bind address of the ACS, the NBI and the agents' connection-request listener.
        Only loopback addresses are accepted.
    n_cpes : int, optional
        Emulate the first ``n_cpes`` customers' CPEs only (all by default).
    nbi_token : str, optional
        Bearer token of the NBI (none by default, as GenieACS).
    inbox_s : float, default 10
        How often the simulation applies the reboots CPE agents received. [s of sim]
    periodic_inform_min : float, default 60
        Periodic inform interval of the agents in simulated time. [min]
    alerting : str or Path, optional
        An alerting file (the one ``guardian operate`` reads): its pipeline runs on
        every decision cycle (:class:`~acs_emulator.twin.alerting.TwinAlerting`).
    alerting_state : str or Path, optional
        Folder of its outbox and silences (default ``twin-alerts`` in the current folder).

    Attributes
    ----------
    sim : simulator.engine.Simulation
    loop : guardian_lib.loop.ClosedLoop
        Observer, scorer window, episode tracker and autopilot, fed every tick by
        ``source`` (:class:`simulator.adapters.SimTelemetry`).
    autopilot : guardian_lib.decision.Autopilot
    state : TwinStateSource
    devices : NbiDevices or None
        The NBI executor (set while :meth:`run` runs and after it).
    """

    def __init__(
        self,
        scenario: Any,
        *,
        seed: int | None = None,
        speed: float = 60.0,
        settings: Any = None,
        every_minutes: float = POLICY_EVERY_MINUTES,
        scorer: Callable | None = None,
        costs: Any = None,
        audit: str | Path | None = None,
        host: str = "127.0.0.1",
        n_cpes: int | None = None,
        nbi_token: str | None = None,
        inbox_s: float = 10.0,
        periodic_inform_min: float = 60.0,
        alerting: str | Path | None = None,
        alerting_state: str | Path | None = None,
    ) -> None:
        from guardian_lib.actions import Dispatcher
        from guardian_lib.audit import AuditLog
        from guardian_lib.decision import Autopilot, AutopilotSettings, CostModel, make_autopilot
        from guardian_lib.loop.closed import ClosedLoop
        from simulator.adapters import SimFieldService, SimNotifier, SimTelemetry
        from simulator.engine import Simulation

        if not speed > 0:
            raise ValueError(f"Twin: speed must be > 0 simulated s per wall s, got {speed!r}")
        if not host.startswith("127.") and host not in ("localhost", "::1"):
            raise ValueError(f"Twin: host must be a loopback address, got {host!r}")
        if not inbox_s > 0:
            raise ValueError(f"Twin: inbox_s must be > 0 s, got {inbox_s!r}")
        if n_cpes is not None and n_cpes < 1:
            raise ValueError(f"Twin: n_cpes must be >= 1 or None, got {n_cpes!r}")
        from simulator.backtest import policy_every_ticks

        every = policy_every_ticks(every_minutes, scenario.tick_minutes)  # before any server
        self.scenario = scenario
        self.speed = float(speed)
        self.host = host
        self.nbi_token = nbi_token
        self.inbox_s = float(inbox_s)
        self.settings = settings or AutopilotSettings()
        self.env = simpy.rt.RealtimeEnvironment(factor=1.0 / self.speed, strict=False)
        self.sim = Simulation(scenario, seed=seed, env=self.env)
        self.every = every
        self.state = TwinStateSource(self.sim)
        self.identities = self.state.identities(n_cpes)
        econ = scenario.economics
        costs = costs or CostModel(
            cost_per_visit_brl=self.settings.cost_per_visit,
            call_cost_brl=econ.call_cost_brl,
            monthly_fee_brl=econ.monthly_fee_brl["residential"],
            reboot_fix_prob=scenario.faults.cpe_hang_reboot_fix_prob,
        )
        sc, policy = make_autopilot(scorer, settings=self.settings, costs=costs)
        self.devices: NbiDevices | None = None
        self.dispatcher = Dispatcher(
            self.settings.autopilot_mode,
            devices=None,
            field_ops=SimFieldService(self.sim),
            notifier=SimNotifier(self.sim),
        )
        self.audit = AuditLog(audit, tag="TWIN-")
        self.autopilot = Autopilot(
            policy, sc, settings=self.settings, dispatcher=self.dispatcher, audit=self.audit
        )
        if self.mode == "execute":
            # The autopilot owns field decisions; the call centre no longer opens visits.
            self.sim.ops.reactive = False
        topo = self.sim.topology
        self.loop = ClosedLoop(
            topo.onus, topo.customers, self.autopilot, every=self.every, tick_s=self.sim.tick_s
        )
        self.source = SimTelemetry(self.sim)
        self.source.connect(self.loop)
        self.alerting = None
        if alerting is not None:
            from acs_emulator.twin.alerting import TwinAlerting

            self.alerting = TwinAlerting(self, alerting, alerting_state or "twin-alerts")
        self.env.process(self._inbox())
        self.periodic_interval_s = max(0.5, periodic_inform_min * 60.0 / self.speed)
        self.reboot_duration_s = scenario.faults.reboot_down_minutes * 60.0 / self.speed

    @property
    def mode(self) -> str:
        """``simulate`` or ``execute``."""
        return self.settings.autopilot_mode

    def _inbox(self):
        while True:
            self.state.apply_reboots()
            yield self.env.timeout(self.inbox_s)

    def run(
        self,
        ticks: int | None = None,
        duration_s: float | None = None,
        stop: threading.Event | None = None,
        settle_timeout_s: float = 60.0,
        on_tick: Callable[[int, TwinReport], None] | None = None,
    ) -> TwinReport:
        """Start the ACS and the agents, run the simulation, stop everything.

        Parameters
        ----------
        ticks : int, optional
            Ticks to run (default: to the end of the scenario). [-]
        duration_s : float, optional
            Wall-clock limit: no tick due after it is started. [s]
        stop : threading.Event, optional
            Set from another thread to stop after the current tick.
        settle_timeout_s : float, default 60
            Wait for the agents' first Informs at most this long. [s]
        on_tick : callable, optional
            ``on_tick(tick_index, report)`` after each tick (progress display).

        Returns
        -------
        TwinReport
        """
        from guardian_lib.acs import NbiClient

        sim = self.sim
        last = sim.n_ticks - 1 if ticks is None else min(sim.n_ticks - 1, sim.tick_index + ticks)
        first_tick = sim.tick_index
        if sim.state is None:
            sim.step()  # the agents' first Informs carry the values of tick 0
        report = TwinReport(mode=self.mode, speed=self.speed)
        services = _Services(
            self.identities,
            self.state,
            self.host,
            self.nbi_token,
            {
                "periodic_interval_s": self.periodic_interval_s,
                "reboot_duration_s": self.reboot_duration_s,
                "periodic_phase": True,  # a real fleet's Informs are spread in time
            },
            seed=int(self.scenario.seed),
        )
        client = None
        t0 = time.monotonic()
        try:
            services.start(settle_timeout_s)
            client = NbiClient(services.svc.nbi_url, token=self.nbi_token or "", retries=2)
            self.devices = NbiDevices(client)
            self.dispatcher.devices = self.devices
            # Map the simulation's present onto the wall clock now that all is up.
            self.env.env_start = self.env.now
            self.env.sync()
            t0 = time.monotonic()
            while sim.tick_index < last:
                if stop is not None and stop.is_set():
                    break
                if duration_s is not None and self._next_tick_wall() > t0 + duration_s:
                    break
                sim.step()
                if on_tick is not None:
                    on_tick(sim.tick_index, self._fill(report, services, first_tick, t0))
            self.state.apply_reboots()
        finally:
            if client is not None:
                client.close()
            services.stop()
        self.audit.flush()
        return self._fill(report, services, first_tick, t0)

    def _next_tick_wall(self) -> float:
        """Wall-clock time (``time.monotonic``) at which the next tick is due. [s]"""
        env, sim = self.env, self.sim
        return env.real_start + ((sim.tick_index + 1) * sim.tick_s - env.env_start) * env.factor

    def _fill(self, report: TwinReport, services: _Services, first: int, t0: float) -> TwinReport:
        sim = self.sim
        report.ticks = sim.tick_index - first
        report.sim_minutes = report.ticks * sim.scenario.tick_minutes
        report.wall_s = round(time.monotonic() - t0, 3)
        report.decisions = dict(self.autopilot.counts)
        report.nbi_reboots = list(self.devices.calls) if self.devices else []
        report.cpe_reboots = list(self.state.received)
        report.sim_reboots_by_acs = sum(r["by"] == "acs" for r in sim.reboots)
        cpe_of = dict(
            zip(sim.topology.customers["onu_id"], sim.topology.customers["cpe_id"], strict=True)
        )
        report.hangs_cleared_by_reboot = [
            str(cpe_of.get(sim.onu_ids[int(f.onus[0])]))
            for f in sim.faults
            if f.kind == "cpe_hang" and f.fixed_by == "reboot"
        ]
        actions = self.audit.frame("actions")
        reb = actions.loc[actions["action_type"] == "reboot", "status"] if len(actions) else []
        report.reboot_actions = {str(k): int(v) for k, v in pd.Series(reb).value_counts().items()}
        if services.fleet is not None:
            report.sessions_ok = services.fleet.sessions_ok
            report.sessions_failed = services.fleet.sessions_failed
        if self.alerting is not None:
            report.alerts = self.alerting.summary()
        return report

    def close(self) -> None:
        """Close the audit log (and the alerting's files and clients)."""
        if self.alerting is not None:
            self.alerting.close()
        self.audit.close()


def run_twin(
    scenario: Any,
    *,
    seed: int | None = None,
    speed: float = 60.0,
    ticks: int | None = None,
    duration_s: float | None = None,
    **options: Any,
) -> TwinReport:
    """Build a :class:`Twin`, run it and close it.

    Parameters
    ----------
    scenario : Scenario
    seed : int, optional
    speed : float, default 60
        Simulated seconds per wall-clock second. [-]
    ticks : int, optional
        Ticks to run (default: the whole scenario). [-]
    duration_s : float, optional
        Wall-clock limit. [s]
    **options
        Other :class:`Twin` arguments (``settings``, ``every_minutes``, ``audit`` …).

    Returns
    -------
    TwinReport
    """
    twin = Twin(scenario, seed=seed, speed=speed, **options)
    try:
        return twin.run(ticks=ticks, duration_s=duration_s)
    finally:
        twin.close()
