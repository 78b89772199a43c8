"""Closed-loop backtest: policies act on the simulated ISP and change what happens next.

For each seed and policy the scenario is simulated again from scratch; faults are drawn
up front in :class:`~simulator.engine.Simulation`, so every policy faces the same fault
sequence for a given seed (common random numbers). Every ``every_minutes`` the loop
hands the policy a :class:`~guardian_lib.decision.Snapshot` built from observable data
only (telemetry, events, inventory, open service orders) and applies its actions through
adapters that implement the executors' client protocols on the simulation:

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

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from guardian_lib.actions import Dispatcher
from guardian_lib.audit import AuditLog
from guardian_lib.decision import (
    Autopilot,
    AutopilotSettings,
    Observer,
    RuleScorer,
    RulesPolicy,
    Snapshot,
    make_autopilot,
)
from guardian_lib.decision.costs import CostModel
from guardian_lib.kpis import WASTED_OUTCOMES, EpisodeTracker, compute_kpis
from guardian_lib.kpis_stats import gap_share, paired_vs_baseline, summarise_runs
from simulator.engine import EventRow, Simulation
from simulator.oracle import OraclePolicy, TruthScorer, WifiProfileDevices
from simulator.scenario import Scenario
from simulator.telemetry import TickState

__all__ = [
    "POLICIES",
    "OraclePolicy",
    "run_policy",
    "run_backtest",
    "summarise",
    "scenario_of_run",
    "safety_violations",
]

POLICIES = ("reactive", "rules", "autopilot", "oracle")
_TEL = ("rx_dbm", "tx_dbm", "olt_rx_dbm", "ber", "latency_ms", "loss_pct", "uptime_s")


def scenario_of_run(run: Path | str) -> Scenario:
    """The scenario a simulated run folder was made from (its ``run.json``)."""
    path = Path(run) / "run.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no run.json (is {run} a `guardian simulate` folder?)")
    data = json.loads(path.read_text())
    if "scenario" not in data:
        raise KeyError(f"{path}: key 'scenario' missing (expected network-guardian-run/1)")
    return Scenario.model_validate(data["scenario"])


# --- adapters: the executors' client protocols on a simulation ---------------------------
class _SimDevices:
    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        cust = sim.topology.customers
        self.row_of_cpe = {c: i for i, c in enumerate(cust["cpe_id"].tolist())}

    def reboot(self, device_id: str) -> str:
        row = self.row_of_cpe[device_id]
        if self.sim.state is not None and not self.sim.state.online[row]:
            return "queued: device offline"
        self.sim.reboot_cpe(row, by="autopilot")
        return "done"


class _SimField:
    def __init__(self, sim: Simulation, priority_delay_h: float = 1.0) -> None:
        self.sim = sim
        self.row_of_onu = {o: i for i, o in enumerate(sim.onu_ids.tolist())}
        self.by_id: dict[str, Any] = {}
        self.priority_delay_h = priority_delay_h

    def open_visit(self, onu_id: str, reason: str, priority: str) -> str:
        delay = self.priority_delay_h * 3600 if priority == "high" else None
        order = self.sim.ops.open_order(
            self.row_of_onu[onu_id], reason, delay_s=delay, opened_by="autopilot"
        )
        self.by_id[order.os_id] = order
        return order.os_id

    def cancel_visit(self, os_id: str, reason: str) -> bool:
        return self.sim.ops.cancel_order(os_id, reason)

    def status(self, os_id: str) -> str:
        order = self.by_id.get(os_id)
        if order is None:
            order = next((o for o in self.sim.ops.orders if o.os_id == os_id), None)
        return "unknown" if order is None else order.status


class _SimNotifier:
    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.row_of_onu = {o: i for i, o in enumerate(sim.onu_ids.tolist())}

    def notify(self, onu_id: str, template: str, until_h: float) -> bool:
        self.sim.notify_customer(self.row_of_onu[onu_id], self.sim.env.now + until_h * 3600)
        return True


# --- the loop -------------------------------------------------------------------------------
def _scorer_values(state: TickState) -> dict[str, np.ndarray]:
    """What a poller would have read at this tick, by feature-store measure."""
    out = {c: getattr(state, c) for c in ("rx_dbm", "tx_dbm", "olt_rx_dbm", "snr_db", "ber",
                                          "crc_errors", "latency_ms", "loss_pct", "uptime_s")}  # fmt: skip
    out["online"] = state.online.astype(float)
    return out


def _scorer_events(events: list[EventRow]) -> pd.DataFrame:
    """ONU events and customer calls (mapped to the caller's ONU) since the last tick."""
    rows = []
    for e in events:
        if e[2] == "onu":
            rows.append((e[1], e[3]))
        elif e[3] == "CUSTOMER_CALL":
            rows.append((json.loads(e[5])["onu_id"], e[3]))
    return pd.DataFrame(rows, columns=["onu_id", "type"])


class _Loop:
    """Tick sink: observe every tick, call the autopilot every ``every`` ticks."""

    def __init__(self, sim: Simulation, autopilot: Autopilot | None, every: int) -> None:
        topo = sim.topology
        self.observer = Observer(topo.onus, topo.customers)
        self.tracker = EpisodeTracker(sim.onu_ids.astype(str))
        self.autopilot = autopilot
        self.every = every
        self.sim = sim
        self.onu_ids = sim.onu_ids.astype(object)
        self._events: list[EventRow] = []
        self.calls: list[tuple[float, str]] = []

    def on_tick(self, sim: Simulation, state: TickState, events: list[EventRow]) -> None:
        values = {c: getattr(state, c) for c in _TEL}
        scorer = getattr(self.autopilot, "scorer", None)
        if hasattr(scorer, "observe"):
            scorer.observe(state.ts, _scorer_values(state), _scorer_events(events))
        ev = None
        if events:
            ev = pd.DataFrame(
                [e[1:4] + (e[5],) for e in events],
                columns=["entity_id", "entity_type", "type", "payload"],
            )
            for e in events:
                if e[3] == "CUSTOMER_CALL":
                    self.calls.append((e[0], json.loads(e[5])["onu_id"]))
        obs = self.observer
        obs.update_arrays(state.ts, state.online, values, ev)
        impacted = ~obs.service_up | obs.degraded
        self.tracker.update(state.ts, impacted, ~obs.service_up)
        if self.autopilot is None:
            return
        self._events.extend(events)
        if sim.tick_index % self.every:
            return
        evs = pd.DataFrame(
            [(sim.ts_of(e[0]),) + e[1:] for e in self._events],
            columns=["ts", "entity_id", "entity_type", "type", "severity", "payload"],
        )
        self._events = []
        snap = Snapshot(ts=state.ts, status=obs.status(), events=evs, service_orders=self._orders())
        self.autopilot.step(snap)

    def _orders(self) -> pd.DataFrame:
        rows = [
            (o.os_id, self.onu_ids[o.onu_row], o.status, o.opened_by)
            for o in self.sim.ops.open_order_by_onu.values()
        ]
        return pd.DataFrame(rows, columns=["os_id", "onu_id", "status", "opened_by"])


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
    """Confirmed cause of each problem (from the simulator's faults; evaluation only)."""
    rows = []
    horizon = sim.scenario.horizon_s
    for f in sim.faults:
        if not f.recorded or f.impact_start_s is None or f.impact_start_s > horizon:
            continue
        end = horizon if f.end_s is None else f.end_s
        massive = f.cause_class in ("MASSIVE_OUTAGE", "EXTERNAL_NETWORK")
        for row in f.onus.tolist():
            rows.append((sim.onu_ids[row], f.impact_start_s, end, massive))
    df = pd.DataFrame(rows, columns=["onu_id", "start_s", "end_s", "massive"])
    df["start_at"] = sim.start + pd.to_timedelta(df["start_s"], unit="s")
    df["end_at"] = sim.start + pd.to_timedelta(df["end_s"], unit="s")
    return df[["onu_id", "start_at", "end_at", "massive"]]


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


def run_policy(
    scenario: Scenario,
    policy: str,
    seed: int,
    every_minutes: int = 15,
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
        ``scorer(snapshot) -> predictions`` for ``autopilot`` (default RuleScorer). An
        object with ``bind(onus, tick_s)`` (e.g. :class:`guardian_lib.models.ModelScorer`)
        is bound to this simulation's fleet first; a bound scorer with
        ``observe(ts, values, events)`` is fed every tick (the ML models need history).
    settings : AutopilotSettings, optional
        Safety limits; the loop always runs in ``execute`` mode against the simulation.
    costs : CostModel, optional
    audit_path : Path, optional
        DuckDB file for the audit trail (in memory if omitted).

    Returns
    -------
    dict
        :func:`~guardian_lib.kpis.compute_kpis` output plus ``safety_violations``,
        ``blocked`` (per rule) and ``decisions``.
    """
    if policy not in POLICIES:
        raise ValueError(f"run_policy: policy must be one of {POLICIES}, got {policy!r}")
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
    autopilot = None
    if policy != "reactive":
        sim.ops.reactive = False
        if policy == "rules":
            sc, pol = RuleScorer(), RulesPolicy()
        elif policy == "autopilot":
            bound = scorer
            if scorer is not None and hasattr(scorer, "bind"):
                bound = scorer.bind(sim.topology.onus, int(sim.tick_s))
            sc, pol = make_autopilot(bound, settings=settings, costs=costs)
        else:
            sc = TruthScorer(sim)
            pol = OraclePolicy(
                sim=sim, costs=costs, cooldown_minutes=settings.reboot_cooldown_minutes
            )
        dispatcher = Dispatcher(
            "execute",
            devices=WifiProfileDevices(_SimDevices(sim), sim),
            field_ops=_SimField(sim),
            notifier=_SimNotifier(sim),
        )
        autopilot = Autopilot(pol, sc, settings=settings, dispatcher=dispatcher, audit=audit)
    every = max(1, int(round(every_minutes / scenario.tick_minutes)))
    loop = _Loop(sim, autopilot, every)
    sim.sinks.append(loop)
    sim.run()
    end = sim.ts_of(scenario.horizon_s)
    calls = pd.DataFrame(loop.calls, columns=["ts_s", "onu_id"])
    calls["ts"] = sim.start + pd.to_timedelta(calls["ts_s"], unit="s")
    actions = audit.frame("actions")
    k = compute_kpis(
        decisions=audit.frame("decisions"),
        actions=actions,
        notifications=audit.frame("notifications"),
        service_orders=_orders_frame(sim),
        episodes=loop.tracker.episodes(until=end),
        calls=calls,
        customers=sim.topology.customers,
        start=sim.start,
        end=end,
        costs=costs,
        labels=_labels(sim),
    )
    pon_of = dict(zip(sim.topology.customers["cpe_id"], sim.topology.onus["pon_id"], strict=True))
    k["safety_violations"] = safety_violations(actions, settings, pon_of)
    k.update(_calibration(sim, calls))
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


def run_backtest(
    scenario: Scenario,
    policies: list[str] | tuple[str, ...] = POLICIES,
    seeds: list[int] | None = None,
    every_minutes: int = 15,
    scorer: Callable | None = None,
    settings: AutopilotSettings | None = None,
    progress: Callable[[str, int, dict], None] | None = None,
    audit_path: Path | None = None,
) -> dict[str, Any]:
    """Run every policy on every seed (common random numbers) and summarise.

    ``audit_path`` (a DuckDB file) keeps the audit trail of the ``autopilot`` policy
    (every seed; ids are prefixed ``AUT<seed>-``), which the dashboards read; the other
    policies' trails stay in memory.

    Returns
    -------
    dict
        ``{"policies": {policy: {metric: {"mean", "ci95"}}}, "settings": {...},
        "per_seed": {policy: [kpis, ...]}}``; with ``reactive`` among the policies,
        each other policy also gets ``cost_saving_vs_reactive_brl`` and
        ``visits_avoided_vs_reactive_pct`` (paired per seed).
    """
    seeds = list(seeds if seeds is not None else [scenario.seed])
    per_seed: dict[str, list[dict[str, Any]]] = {p: [] for p in policies}
    for seed in seeds:
        for pol in policies:
            keep = audit_path if pol == "autopilot" else None
            k = run_policy(scenario, pol, seed, every_minutes, scorer, settings, audit_path=keep)
            per_seed[pol].append(k)
            if progress:
                progress(pol, seed, k)
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
