"""Closed-loop backtest: policies act on the simulated ISP and change what happens next.

For each seed and policy the scenario is simulated again from scratch; faults are drawn
up front in :class:`~simulator.engine.Simulation`, so every policy faces the same fault
sequence for a given seed (common random numbers). The simulation feeds each tick to a
:class:`guardian_lib.loop.ClosedLoop` (the loop ``guardian operate`` runs on a real
network); every ``every_minutes`` the loop hands the policy a
:class:`~guardian_lib.decision.Snapshot` built from observable data only (telemetry,
events, inventory, open service orders) and applies its actions through the adapters
of :mod:`simulator.adapters`:

* a reboot takes the CPE down for a few minutes and fixes a hang with the scenario's
  probability (only while the device is online: the ACS cannot reach it otherwise);
* a scheduled visit is a service order; a cancelled or held visit frees its technician;
* a notified customer calls less.

Policies: ``reactive`` (today's practice: the simulator's call centre, each call may
become a visit), ``rules`` (:class:`~guardian_lib.decision.RulesPolicy` with the
:class:`~guardian_lib.decision.RuleScorer`), ``autopilot``
(:class:`~guardian_lib.decision.ExpectedCostPolicy` with an injectable scorer) and
``oracle`` (sees the active faults: the upper bound).
"""

from __future__ import annotations

import contextlib
import gc
import json
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from guardian_lib.actions import Dispatcher
from guardian_lib.audit import AUDIT_TABLES, AuditLog
from guardian_lib.decision import (
    Autopilot,
    AutopilotSettings,
    RuleScorer,
    RulesPolicy,
    make_autopilot,
)
from guardian_lib.decision.costs import CostModel
from guardian_lib.kpis import WASTED_OUTCOMES, compute_kpis
from guardian_lib.kpis_stats import gap_share, paired_vs_baseline, summarise_runs
from guardian_lib.loop.closed import ClosedLoop
from guardian_lib.schema import POLICY_EVERY_MINUTES
from simulator.adapters import SimDevices, SimFieldService, SimNotifier, SimTelemetry
from simulator.engine import Simulation
from simulator.oracle import OraclePolicy, TruthScorer
from simulator.parallel import default_workers, run_jobs
from simulator.scenario import Scenario

__all__ = [
    "POLICIES",
    "OraclePolicy",
    "run_policy",
    "run_backtest",
    "default_workers",
    "merge_audit",
    "BacktestWorld",
    "summarise",
    "scenario_of_run",
    "safety_violations",
    "deferred_repairs",
    "policy_every_ticks",
    "heap_frozen",
]

POLICIES = ("reactive", "rules", "autopilot", "oracle")


def scenario_of_run(run: Path | str) -> Scenario:
    """The scenario a simulated run folder was made from (its ``run.json``)."""
    path = Path(run) / "run.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no run.json (is {run} a `guardian simulate` folder?)")
    data = json.loads(path.read_text())
    if "scenario" not in data:
        raise KeyError(f"{path}: key 'scenario' missing (expected network-guardian-run/1)")
    return Scenario.model_validate(data["scenario"])


def _orders_frame(sim: Simulation) -> pd.DataFrame:
    recs = sim.ops.records()
    df = pd.DataFrame(
        recs,
        columns=["os_id", "customer_id", "onu_row", "region", "reason", "status", "opened_s",
                 "scheduled_s", "closed_s", "technician_id", "outcome", "cost_brl", "opened_by"],
    )  # fmt: skip
    df["onu_id"] = sim.onu_ids[df["onu_row"].to_numpy(dtype=int)] if len(df) else []
    df["opened_at"] = pd.to_datetime(sim.start) + pd.to_timedelta(df["opened_s"], unit="s")
    return df


def _labels(sim: Simulation) -> pd.DataFrame:
    """Confirmed cause of each problem (from the simulator's faults; evaluation only).

    One row per fault and ONU: ``start_at`` when it began to hurt (NaT for a fault that
    started but never hurt within the run: fixed before, or a precursor still), ``onset_at``
    when it began (a drifting laser or a leaking CPE before it hurts), ``end_at``,
    ``massive`` and ``confirmed`` (False for an unexplained symptom: a real symptom on one
    ONU that ``faults_truth`` does not record, individual by nature). The per-decision
    scores use the confirmed rows with a ``start_at``, as before.
    """
    rows = []
    horizon = sim.scenario.horizon_s
    for f in sim.faults:
        if f.start_s > horizon:
            continue
        end = horizon if f.end_s is None else min(f.end_s, horizon)
        imp = f.impact_start_s
        hurt = imp is not None and imp <= horizon
        massive = f.cause_class in ("MASSIVE_OUTAGE", "EXTERNAL_NETWORK")
        # A box's RX step hurts only the ONUs it takes below the impact level.
        hurt_rows = set(f.onus.tolist() if f.hurt_onus is None else f.hurt_onus.tolist())
        for row in f.onus.tolist():
            hurt_here = hurt and row in hurt_rows
            rows.append((sim.onu_ids[row], f.start_s, imp if hurt_here else np.nan,
                         horizon if f.end_s is None else f.end_s if hurt_here else end,
                         massive and f.recorded, f.recorded))  # fmt: skip
    df = pd.DataFrame(rows, columns=["onu_id", "onset_s", "start_s", "end_s", "massive",
                                     "confirmed"])  # fmt: skip
    for c in ("onset", "start", "end"):
        df[f"{c}_at"] = sim.start + pd.to_timedelta(df[f"{c}_s"], unit="s")
    return df[["onu_id", "start_at", "end_at", "massive", "onset_at", "confirmed"]]


def _calibration(sim: Simulation, calls: pd.DataFrame) -> dict[str, float]:
    """Figures to check the simulator against the field (experiments/scenarios/README.md).

    ``no_fault_found_share``: completed visits that found nothing to fix (no fault,
    customer absent, a massive outage a technician cannot fix) [-];
    ``contacts_per_sub_year``: customer calls per subscriber, annualised [1/yr].
    """
    done = [o for o in sim.ops.orders if o.status == "completed"]
    wasted = sum(o.outcome in WASTED_OUTCOMES for o in done)
    years = sim.scenario.horizon_s / (365 * 86400)
    n_subs = max(len(sim.topology.customers), 1)
    return {
        "no_fault_found_share": wasted / len(done) if done else float("nan"),
        "contacts_per_sub_year": len(calls) / n_subs / years,
    }


def deferred_repairs(sim: Simulation) -> int:
    """Faults that only a visit ends, still unrepaired when the run ends (truth). [-]

    A drifting laser, a degrading fibre or a one-ONU street box's fault
    (:attr:`~simulator.fault_model.Fault.needs_visit`) never ends by itself: whoever
    leaves it at the end of the run owes its visit after it. :func:`run_policy` books
    that visit in the total cost (``deferred_repairs_brl``), so a visit ordered late in
    the week — paid in the run, its benefit after the end — costs no more than leaving
    the fault for next week (unseen_4x32 seed 2: the oracle's two last visits, to faults that would have
    hurt only after hour 168, made it dearer than the autopilot that left them).
    """
    horizon = sim.scenario.horizon_s
    return sum(
        1
        for f in sim.faults
        if f.needs_visit
        and f.recorded
        and f.start_s <= horizon
        and (f.end_s is None or f.end_s > horizon)
    )


def safety_violations(actions: pd.DataFrame, settings: AutopilotSettings, pon_of: dict) -> int:
    """Executed reboots that break the cooldown, the daily limit or the per-PON cap. [-]"""
    reb = actions.loc[
        (actions["action_type"] == "reboot")
        & actions["status"].isin(["succeeded", "failed", "pending", "done"])
    ]
    if len(reb) == 0:
        return 0
    epoch = pd.Timestamp(0, tz="UTC")
    t = (pd.to_datetime(reb["started_at"], utc=True) - epoch).dt.total_seconds().to_numpy()
    targets = reb["target"].to_numpy()
    bad = 0
    cd = settings.reboot_cooldown_minutes * 60
    for tg in np.unique(targets):
        x = np.sort(t[targets == tg])
        bad += int((np.diff(x) < cd - 1e-3).sum())
        bad += int(sum((np.searchsorted(x, v + 86400) - i) > settings.max_reboots_per_day
                       for i, v in enumerate(x)))  # fmt: skip
    pons = np.array([pon_of.get(x) for x in targets], dtype=object)
    for p in np.unique(pons.astype(str)):
        x = np.sort(t[pons.astype(str) == p])
        bad += int(sum((np.searchsorted(x, v + 3600) - i) > settings.max_reboots_per_pon_per_hour
                       for i, v in enumerate(x)))  # fmt: skip
    return bad


def policy_every_ticks(every_minutes: float, tick_minutes: int) -> int:
    """Ticks between two policy calls: ``every_minutes`` must be a positive multiple of the tick.

    Parameters
    ----------
    every_minutes : float
        Policy call interval. [min]
    tick_minutes : int
        The scenario's polling interval. [min]

    Returns
    -------
    int
        ``every_minutes / tick_minutes``. [-]

    Raises
    ------
    ValueError
        ``every_minutes`` is not a positive multiple of ``tick_minutes`` (naming both), so
        that a backtest never calls the policy at another interval than the one its
        ``kpis.json`` records.
    """
    ticks = every_minutes / tick_minutes if tick_minutes > 0 else float("nan")
    if not (every_minutes > 0 and float(ticks).is_integer()):
        raise ValueError(
            f"every_minutes: expected a positive multiple of the scenario's {tick_minutes}-minute "
            f"tick (e.g. {tick_minutes * 3}), got {every_minutes!r}"
        )
    return int(ticks)


def run_policy(
    scenario: Scenario,
    policy: str,
    seed: int,
    every_minutes: int = POLICY_EVERY_MINUTES,
    scorer: Callable | None = None,
    settings: AutopilotSettings | None = None,
    costs: CostModel | None = None,
    audit_path: Path | None = None,
) -> dict[str, Any]:
    """Simulate ``scenario`` with ``seed`` and ``policy`` in the loop; return its KPIs.

    Parameters
    ----------
    scenario : Scenario
    policy : {'reactive', 'rules', 'autopilot', 'oracle'}
    seed : int
    every_minutes : int, default 15
        How often the policy is called (a multiple of the tick). [min]
    scorer : callable, optional
        ``scorer(snapshot) -> predictions`` for ``autopilot`` (default RuleScorer). The
        :class:`~guardian_lib.loop.ClosedLoop` binds an object with ``bind(onus, tick_s)``
        (e.g. :class:`guardian_lib.models.ModelScorer`) to this simulation's fleet and
        feeds a scorer with ``update(tick)`` every tick (the ML models need history).
    settings : AutopilotSettings, optional
        Safety limits; the loop always runs in ``execute`` mode against the simulation.
    costs : CostModel, optional
    audit_path : Path, optional
        DuckDB file for the audit trail (in memory if omitted).

    Returns
    -------
    dict
        :func:`~guardian_lib.kpis.compute_kpis` output plus ``safety_violations``,
        ``blocked`` (per rule), ``decisions`` and ``deferred_repairs`` (see
        :func:`deferred_repairs`); ``total_cost_brl`` includes ``deferred_repairs_brl``
        (one visit each). [R$]
    """
    with heap_frozen():
        world = BacktestWorld.build(scenario, policy, seed, every_minutes, scorer, settings,
                                    costs, audit_path)  # fmt: skip
        world.sim.run()
        return world.close()


@contextlib.contextmanager
def heap_frozen() -> Iterator[None]:
    """Leave the objects that exist now out of the garbage collector's full passes
    until the block ends (``gc.freeze`` … ``gc.unfreeze``).

    A run allocates enough to trigger a full collection early on (its first decision
    round loads the compiled kernels), which walks every object of the process: the
    imported libraries and a loaded model bundle, about 375,000 on ``small`` with the
    ML scorer, none of which the run makes garbage. On the 2-core machine of 2026-12-06
    that pass took 0.21 s of a 7-day ML run of about 7 s (0.44 s with the machine
    loaded); frozen, the run's two full collections walk its own objects only
    (0.01–0.05 s together). Nothing the run computes depends on when memory is
    collected. Does nothing when the collector is off or objects are frozen already
    (the caller's, left as they are).
    """
    freeze = gc.isenabled() and gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    try:
        yield
    finally:
        if freeze:
            gc.unfreeze()


@dataclass
class BacktestWorld:
    """One simulated ISP with a policy in the closed loop: what :func:`run_policy` runs.

    Build it with :meth:`build`, run the simulation (``world.sim.run()`` or
    ``world.sim.step()``), then :meth:`close` for the KPIs. :meth:`restart` replaces the
    loop and its autopilot mid-run by new ones restored from the loop's saved state, as
    ``guardian operate`` does after a crash (the audit trail persists, as its file does).

    Attributes
    ----------
    sim : Simulation
    source : simulator.adapters.SimTelemetry
        Feeds each tick to ``loop``.
    loop : guardian_lib.loop.ClosedLoop
    audit : AuditLog
    """

    scenario: Scenario
    policy: str
    seed: int
    every: int
    scorer: Callable | None
    settings: AutopilotSettings
    costs: CostModel
    sim: Simulation
    audit: AuditLog
    source: SimTelemetry
    loop: ClosedLoop

    @classmethod
    def build(
        cls,
        scenario: Scenario,
        policy: str,
        seed: int,
        every_minutes: int = POLICY_EVERY_MINUTES,
        scorer: Callable | None = None,
        settings: AutopilotSettings | None = None,
        costs: CostModel | None = None,
        audit_path: Path | None = None,
    ) -> BacktestWorld:
        """The simulation, its adapters and the loop (arguments as :func:`run_policy`)."""
        if policy not in POLICIES:
            raise ValueError(f"run_policy: policy must be one of {POLICIES}, got {policy!r}")
        every = policy_every_ticks(every_minutes, scenario.tick_minutes)
        base = settings or AutopilotSettings()
        settings = base.model_copy(update={"autopilot_mode": "execute", "jitter_seed": seed})
        econ = scenario.economics
        costs = costs or CostModel(
            cost_per_visit_brl=settings.cost_per_visit,
            call_cost_brl=econ.call_cost_brl,
            monthly_fee_brl=econ.monthly_fee_brl["residential"],
            reboot_fix_prob=scenario.faults.cpe_hang_reboot_fix_prob,
        )
        sim = Simulation(scenario, seed=seed)
        audit = AuditLog(audit_path, tag=f"{policy[:3].upper()}{seed}-")
        world = cls(scenario, policy, seed, every, scorer, settings, costs, sim, audit,
                    SimTelemetry(sim), None)  # type: ignore[arg-type]  # fmt: skip
        world.loop = world._new_loop()
        world.source.connect(world.loop)
        return world

    def _new_loop(self) -> ClosedLoop:
        sim, settings = self.sim, self.settings
        autopilot = None
        if self.policy != "reactive":
            sim.ops.reactive = False
            if self.policy == "rules":
                ev = settings.outage_evidence()
                sc = RuleScorer(outage_evidence=ev)
                pol = RulesPolicy(outage_evidence=ev, costs=self.costs)
            elif self.policy == "autopilot":
                sc, pol = make_autopilot(self.scorer, settings=settings, costs=self.costs)
            else:
                sc = TruthScorer(sim)
                pol = OraclePolicy(
                    sim=sim,
                    costs=self.costs,
                    cooldown_minutes=settings.reboot_cooldown_minutes,
                    outage_evidence=settings.outage_evidence(),
                )
            dispatcher = Dispatcher(
                "execute",
                devices=SimDevices(sim),
                field_ops=SimFieldService(sim),
                notifier=SimNotifier(sim),
            )
            autopilot = Autopilot(
                pol, sc, settings=settings, dispatcher=dispatcher, audit=self.audit
            )
        topo = sim.topology
        return ClosedLoop(topo.onus, topo.customers, autopilot, every=self.every,
                          tick_s=sim.tick_s)  # fmt: skip

    def restart(self) -> ClosedLoop:
        """Replace the loop by a new one (new autopilot, adapters, scorer) restored from
        the pickled :meth:`~guardian_lib.loop.ClosedLoop.state_dict` of the old one."""
        saved = pickle.dumps(self.loop.state_dict())
        self.loop = self._new_loop()
        self.loop.load_state_dict(pickle.loads(saved))
        self.source.connect(self.loop)
        return self.loop

    def close(self) -> dict[str, Any]:
        """The run's KPIs (see :func:`run_policy`); closes the audit."""
        sim, audit, autopilot = self.sim, self.audit, self.loop.autopilot
        end = sim.ts_of(self.scenario.horizon_s)
        actions = audit.frame("actions")
        k = compute_kpis(
            decisions=audit.frame("decisions"),
            actions=actions,
            notifications=audit.frame("notifications"),
            service_orders=_orders_frame(sim),
            episodes=self.loop.tracker.episodes(until=end),
            calls=self.source.calls_frame(),
            customers=sim.topology.customers,
            start=sim.start,
            end=end,
            costs=self.costs,
            labels=_labels(sim),
        )
        topo = sim.topology
        pon_of = dict(zip(topo.customers["cpe_id"], topo.onus["pon_id"], strict=True))
        k["safety_violations"] = safety_violations(actions, self.settings, pon_of)
        k.update(_calibration(sim, self.source.calls_frame()))
        k["deferred_repairs"] = deferred_repairs(sim)
        k["deferred_repairs_brl"] = k["deferred_repairs"] * self.costs.cost_per_visit_brl
        k["total_cost_brl"] += k["deferred_repairs_brl"]
        # The autopilot's call-aheads before dying-gasp visits (none for other policies).
        k["call_aheads"] = sim.ops.call_aheads
        if sim.ops.call_aheads:
            k["total_cost_brl"] += sim.ops.call_aheads * self.costs.call_ahead_cost_brl
        k["blocked"] = dict(autopilot.guard.blocked) if autopilot else {}
        k["decisions"] = int(sum(autopilot.counts.values())) if autopilot else 0
        audit.close()
        return k


def summarise(per_seed: dict[str, list[dict[str, Any]]], days: float = 7.0) -> dict[str, Any]:
    """Estimate and 95 % interval of every KPI per policy, and the paired headline.

    Intervals are percentile bootstraps over seeds that stay within each quantity's
    range (:mod:`guardian_lib.kpis_stats`). With ``reactive`` among the policies, each
    other policy also gets the paired differences of
    :func:`~guardian_lib.kpis_stats.paired_vs_baseline`; with ``rules`` and ``oracle``,
    the ``autopilot`` gets ``rules_oracle_gap_share`` (on the total cost).

    Parameters
    ----------
    per_seed : dict
        ``{policy: [kpis of seed 1, …]}`` (same seeds in the same order).
    days : float, default 7
        Simulated days per run (for the per-month figures). [d]
    """
    out: dict[str, Any] = {pol: summarise_runs(runs) for pol, runs in per_seed.items()}
    base = per_seed.get("reactive")
    if base:
        for pol, runs in per_seed.items():
            if pol != "reactive":
                out[pol].update(paired_vs_baseline(runs, base, days))
    if all(p in per_seed for p in ("autopilot", "rules", "oracle")):
        cost = {p: [r["total_cost_brl"] for r in per_seed[p]] for p in per_seed}
        m, ci = gap_share(cost["autopilot"], cost["rules"], cost["oracle"])
        out["autopilot"]["rules_oracle_gap_share"] = {"mean": m, "ci95": ci}
    return out


def merge_audit(parts: list[Path], dest: Path) -> None:
    """Append the audit tables of the DuckDB files ``parts`` (in order) to ``dest``.

    ``dest`` gets the tables of :data:`~guardian_lib.audit.AUDIT_TABLES` if it has none
    yet; the ids of the parts must not collide (the backtest tags them per policy and seed).
    """
    import duckdb

    AuditLog(dest).close()  # creates the tables
    con = duckdb.connect(str(dest))
    try:
        for i, part in enumerate(parts):
            quoted = str(part).replace("'", "''")
            con.execute(f"ATTACH '{quoted}' AS part{i} (READ_ONLY)")
            for table, cols in AUDIT_TABLES.items():
                names = ", ".join(cols)
                con.execute(f"INSERT INTO {table} SELECT {names} FROM part{i}.{table}")
            con.execute(f"DETACH part{i}")
    finally:
        con.close()


def run_backtest(
    scenario: Scenario,
    policies: list[str] | tuple[str, ...] = POLICIES,
    seeds: list[int] | None = None,
    every_minutes: int = POLICY_EVERY_MINUTES,
    scorer: Callable | None = None,
    settings: AutopilotSettings | None = None,
    progress: Callable[[str, int, dict], None] | None = None,
    audit_path: Path | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Run every policy on every seed (common random numbers) and summarise.

    Each (seed, policy) cell is an independent simulation seeded from ``seed`` alone, so
    the cells run in ``workers`` processes (:class:`~concurrent.futures.ProcessPoolExecutor`,
    *spawn* start method) and the result does not depend on ``workers`` or on the order in
    which cells finish. ``workers=1`` runs them one after the other in this process. A
    script that calls this with ``workers`` > 1 must keep its top-level code under
    ``if __name__ == "__main__":`` (the workers import it again).

    ``audit_path`` (a DuckDB file) keeps the audit trail of the ``autopilot`` policy
    (every seed; ids are prefixed ``AUT<seed>-``), which the dashboards read; the other
    policies' trails stay in memory. Each autopilot cell writes its own file in a
    temporary folder next to ``audit_path`` (so its KPIs read its own trail only), and
    the files are appended to ``audit_path`` in seed order at the end.

    Parameters
    ----------
    scenario, policies, seeds, every_minutes, scorer, settings
        As :func:`run_policy` (``seeds`` default ``[scenario.seed]``). With ``workers``
        > 1, ``scorer`` and ``settings`` are pickled to each process.
    progress : callable, optional
        ``progress(policy, seed, kpis)`` in this process as each cell finishes.
    audit_path : Path, optional
    workers : int, optional
        Processes [-]; default :func:`default_workers` (one per cell, at most one per CPU).

    Returns
    -------
    dict
        ``{"policies": {policy: {metric: {"mean", "ci95"}}}, "settings": {...},
        "per_seed": {policy: [kpis, ...]}}``; with ``reactive`` among the policies,
        each other policy also gets ``cost_saving_vs_reactive_brl`` and
        ``visits_avoided_vs_reactive_pct`` (paired per seed).
    """
    seeds = list(seeds if seeds is not None else [scenario.seed])
    policy_every_ticks(every_minutes, scenario.tick_minutes)  # refuse before any cell runs
    cells = [(seed, pol) for seed in seeds for pol in policies]
    if workers is not None and workers < 1:
        raise ValueError(f"run_backtest: workers must be >= 1, got {workers}")
    n_workers = min(workers or default_workers(len(cells)), max(len(cells), 1))
    parts_dir = None
    if audit_path is not None:
        audit_path = Path(audit_path)
        audit_path.parent.mkdir(parents=True, exist_ok=True)
        parts_dir = Path(tempfile.mkdtemp(prefix=f".{audit_path.name}.", dir=audit_path.parent))

    def part(seed: int, pol: str) -> Path | None:
        return parts_dir / f"AUT{seed}.duckdb" if parts_dir and pol == "autopilot" else None

    def finished(cell: tuple[int, str], k: dict[str, Any]) -> None:
        if progress:
            progress(cell[1], cell[0], k)

    try:
        jobs = [((seed, pol), (scenario, pol, seed, every_minutes, scorer, settings, None,
                               part(seed, pol))) for seed, pol in cells]  # fmt: skip
        done = run_jobs(run_policy, jobs, n_workers, finished, caller="run_backtest")
        if parts_dir is not None and "autopilot" in policies:
            merge_audit([part(seed, "autopilot") for seed in seeds], audit_path)
    finally:
        if parts_dir is not None:
            shutil.rmtree(parts_dir, ignore_errors=True)
    per_seed = {pol: [done[seed, pol] for seed in seeds] for pol in policies}
    if "reactive" in per_seed:
        for runs in per_seed.values():
            for r, base in zip(runs, per_seed["reactive"], strict=True):
                r["cost_saving_vs_reactive_brl"] = base["total_cost_brl"] - r["total_cost_brl"]
                r["visits_avoided_vs_reactive_pct"] = (
                    100.0 * (base["visits"] - r["visits"]) / base["visits"]
                    if base["visits"]
                    else float("nan")
                )
    s = settings or AutopilotSettings()
    return {
        "policies": summarise(per_seed, scenario.days),
        "settings": {
            "scenario": scenario.name,
            "days": scenario.days,
            "seeds": seeds,
            "every_minutes": every_minutes,
            "autopilot": json.loads(s.model_dump_json()),
        },
        "per_seed": per_seed,
    }
