"""The oracle of the closed-loop backtest: a policy that knows the simulator's truth.

:class:`OraclePolicy` sees the active faults of every ONU (kind, start, how long they
will last if nobody acts) and picks the cheapest *correct* action for each, with the
same :class:`~guardian_lib.decision.costs.CostModel` as the autopilot:

* a hung or leaking CPE → reboot (before it hangs, when it is leaking);
* a drifting laser or a degrading fibre → one visit, planned to arrive before the fault
  would hurt (they never end alone; the oracle knows when the outage would start) —
  and only then: another problem of the same customer (Wi-Fi, a hang) does not bring
  it forward, that problem gets its own cheapest action;
* Wi-Fi interference → remote profile changes first (one every ``wifi_retry_min``,
  each ending the episode with the scenario's probability), a visit only when it is
  cheaper than trying remotely until a change works (technician's delay included; the
  episodes drawn to follow count for the visit, which ends the interference for good);
* a power cut at the customer's, a massive outage, an upstream failure, an unexplained
  blip → never a visit (they end by themselves or by a crew);
* a hang whose reboot failed → a visit only if the hang would otherwise outlast it;
* a fault of a street box that serves one customer (their drop) → a visit once it hurts;
  where the scenario sends a crew to such boxes too (``Faults.lone_box_crew``), only if
  it costs less than the outage left until the crew;
* a massive incident is made of the ONUs a massive or upstream fault took down (truth):
  ONUs dark for faults of their own neither make one, however close their failures, nor
  join one (their visits are not held); it ends when its shared fault does: a member
  down for a fault of its own (Wi-Fi, a hang, …) neither holds it open nor is covered
  by it;
* a fault that a visit ends and that outlasted the case's last visit (the field service
  cancelled the order; a technician closed it without fixing the fault, or the fault
  began after the visit) gets its visit as any other: every visit of a case, not only the
  first. The oracle waits only for the field service's cancellation to lift
  (``revisit_after_cancel_h``, as every policy); it needs neither the wait after a
  completed visit nor the cap on repeats, which are for a policy that cannot see whether
  the visit fixed the fault (:func:`~guardian_lib.decision.visits.visit_held`).

It is an upper bound on what any policy that only observes can do; the share of the
rules → oracle gap that the autopilot closes is measured against it. It prices outage and
degraded time with the cost model's rates (SLA credit, calls and churn risk), the same
definition as the backtest's ``total_cost_brl``, which also books one visit for every
fault that only a visit ends still unrepaired at the end of the run
(:func:`simulator.backtest.deferred_repairs`): a visit the oracle orders late in the run,
to a fault that would hurt only after it, costs it no more than leaving the fault does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from guardian_lib.decision import Decision, Snapshot
from guardian_lib.decision._base import SCOPE_COLUMNS, PolicyBase, Rows
from guardian_lib.decision._types import CLASS_COLUMNS, PREDICTION_COLUMNS
from guardian_lib.decision.costs import CostModel, impact_cost_rate_brl_per_h
from guardian_lib.decision.visits import visit_held, visit_open, with_visit_hours
from simulator.engine import Simulation

__all__ = ["OraclePolicy", "TruthScorer", "VISIT_KINDS", "CREW_OR_VISIT_KINDS", "TRUTH_SCOPES"]

#: Fault kinds that only a technician ends (Wi-Fi: a visit also ends it for good).
VISIT_KINDS = ("hardware_failure", "fibre_degradation")
#: Outages of one customer that a visit ends, and a crew's timer too where the scenario
#: sends crews to such boxes (a fault of a street box that serves only that customer: its
#: drop; ``Faults.lone_box_crew``). Without a crew only a visit ends it, given once it hurts.
CREW_OR_VISIT_KINDS = ("box_drop_fault",)
_RISKY = ("hardware_failure", "fibre_degradation", "cpe_hang", "wifi_interference",
          *CREW_OR_VISIT_KINDS)  # fmt: skip
#: The incident scope of a massive fault's member, from the fault's own scope in the
#: simulator: a cut feeder is its PON, a failed board its PONs (each entirely down), a
#: power cut (a circle on the map) the street boxes it reaches. ``None``: as observed.
TRUTH_SCOPES = {"pon": "pon", "box": "box", "board": "pon", "geo": "box", "bng": None}
_SHARED = ("MASSIVE_OUTAGE", "EXTERNAL_NETWORK")
#: A CPE is down this long while it reboots (the simulator's ``reboot_down_minutes``). [h]
_REBOOT_DOWN_H = 10.0 / 60.0


class TruthScorer:
    """Predictions from the simulator's active faults (oracle only)."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim

    def __call__(self, snap: Snapshot) -> pd.DataFrame:
        """One row per ONU of ``snap.status``: the true class, risk 1 where a fault acts."""
        n = len(snap.status)
        probs = np.zeros((n, 6))
        probs[:, 5] = 1.0
        risk = np.zeros(n)
        col = {c.removeprefix("p_").upper(): j for j, c in enumerate(CLASS_COLUMNS)}
        for row, bucket in self.sim._active.items():
            faults = [f for f in bucket.values() if f.recorded]
            if not faults:
                continue
            probs[row] = 0.0
            probs[row, col[faults[0].cause_class]] = 1.0
            if any(f.kind in _RISKY for f in faults):
                risk[row] = 1.0
        impacted = snap.status["impacted"].to_numpy(dtype=bool)
        out = pd.DataFrame(
            {
                "ts": snap.ts,
                "onu_id": snap.status.index.to_numpy(),
                "anomaly_score": np.maximum(impacted, risk),
                **{c: probs[:, j] for j, c in enumerate(CLASS_COLUMNS)},
                "risk_2h": risk,
                "risk_6h": risk,
                "risk_24h": risk,
                "model_version": "truth",
                "top_reasons": "[]",
            }
        )
        return out[list(PREDICTION_COLUMNS)]


def _minutes_since(ts: pd.Timestamp, then) -> float:
    if then is None or pd.isna(then):
        return np.inf
    return (ts - pd.Timestamp(then)).total_seconds() / 60.0


@dataclass
class OraclePolicy(PolicyBase):
    """Knows the active faults; picks the cheapest correct action (module docstring).

    Parameters
    ----------
    sim : Simulation
        The simulation whose truth the oracle reads.
    costs : CostModel, optional
    cooldown_minutes : float, default 360
        Between two reboots or Wi-Fi changes of the same CPE (the safety limit). [min]
    visit_delay_h : float, default 2
        Time from a priority order to a technician on site (the backtest's field
        adapter: 1 h, plus travel and work). [h]
    visit_lead_h : float, default 6
        A fault that only a visit ends gets its visit when it would hurt within this
        time (the oracle knows when): early enough for the technician to arrive first,
        late enough not to pay for visits whose benefit falls beyond the horizon. [h]
    wifi_retry_min : float, default 60
        Least time between two Wi-Fi profile changes of one CPE (a change takes no
        service down; the autopilot's retry interval). [min]
    """

    sim: Simulation | None = None
    costs: CostModel = field(default_factory=CostModel)
    cooldown_minutes: float = 360.0
    visit_delay_h: float = 2.0
    visit_lead_h: float = 6.0
    wifi_retry_min: float = 60.0
    massive_threshold: float = 0.5
    min_neighbours: int = 1
    name: str = "oracle"
    version: str = "10"

    def frame(self, snap: Snapshot) -> Rows:
        """:meth:`PolicyBase.frame`, with each massive fault's members scoped by the truth.

        Observed neighbour evidence picks the widest scope that explains the dark ONUs:
        a power cut reaching 44 customers over several PONs of an OLT became one incident
        on the whole OLT, open all week, and its hold refused every reboot beneath it
        (hung CPEs of other PONs stayed down for hours). The oracle knows which ONUs the
        fault took down and scopes its incident as narrowly as the fault
        (:data:`TRUTH_SCOPES`), so reboots elsewhere pass.
        """
        df = super().frame(snap)
        if not len(df):
            return df
        row_of = self._row_of()
        stype = np.array(df["scope_type"], dtype=object)
        skey = np.array(df["scope_key"], dtype=object)
        otype = np.array(df["outage_scope_type"], dtype=object)
        okey = np.array(df["outage_scope_key"], dtype=object)
        for i, onu in enumerate(df.index):
            bucket = self.sim._active.get(row_of[str(onu)], {})
            shared = [f for f in bucket.values() if f.recorded and f.cause_class in _SHARED]
            scope = TRUTH_SCOPES.get(shared[0].scope_type) if shared else None
            if scope is None:
                continue
            key = df[SCOPE_COLUMNS[scope]][i]
            stype[i], skey[i] = scope, key
            if pd.notna(otype[i]):
                otype[i], okey[i] = scope, key
        return df.with_columns(scope_type=stype, scope_key=skey, outage_scope_type=otype,
                               outage_scope_key=okey)  # fmt: skip

    def _eligible(self, snap: Snapshot) -> np.ndarray | None:
        """:meth:`PolicyBase._eligible`, and only the ONUs a shared fault took down (truth).

        The topology evidence counts ONUs that went dark together; two faults of their
        own (two dead ONUs of one street box minutes apart) are no outage of the box,
        whatever their timing. Version 8 counted them: it opened an incident on the box,
        closed it the next round (neither member is down for it, :meth:`incident_down`)
        and opened it again, every round, and each opening held (cancelled) the
        members' visits: the dead ONUs stayed dark.
        """
        shared = self._truth_rows(snap)[1]
        eligible = super()._eligible(snap)
        return shared if eligible is None else eligible & shared

    def incident_down(self, snap: Snapshot) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`PolicyBase.incident_down`, without the members down for a fault of their own.

        A member whose every active fault is its own (Wi-Fi, a hang, a failed laser, its
        power off) once the shared fault is over is back as far as the incident goes: it
        kept a two-member street-box incident open for days after a power cut ended,
        its Wi-Fi episode (begun during the cut) never acted on and every reboot beneath
        the box held (version 5; unseen_8x4 and unseen_4x32 seed 5).
        """
        down, stable = super().incident_down(snap)
        own = self._truth_rows(snap)[0]
        return down & ~own, np.where(own, np.inf, stable)

    def incident_decisions(self, snap: Snapshot, df: Rows) -> tuple[list[Decision], set]:
        """:meth:`PolicyBase.incident_decisions` over the ONUs a shared fault took down.

        An incident opens, and an ONU joins one, only for a massive or upstream fault
        (truth): an ONU of the scope that went dark for a fault of its own within the
        incident's window is no member, its visit is not held (the observed rule takes
        every dark ONU of the scope). A member whose shared fault has ended while faults
        of its own remain is not covered either: it gets its own case and its faults
        their cheapest actions at once.
        """
        own, shared = self._truth_rows(snap)
        pos = snap.rows_of(df.index)
        keep = np.flatnonzero(shared[pos] & (pos >= 0))
        out, covered = super().incident_decisions(snap, df.take(keep))
        if covered:
            ids = snap.onu_ids()
            covered -= {str(ids[i]) for i in np.flatnonzero(own)}
        return out, covered

    def _truth_rows(self, snap: Snapshot) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ``snap.status`` with active faults, by the truth (once per round).

        Returns
        -------
        own : ndarray of bool
            Active faults, none of them shared (:data:`_SHARED` classes).
        shared : ndarray of bool
            At least one active shared fault (a massive or upstream fault).
        """
        cached = snap._cache.get("oracle_truth_rows")
        if cached is not None:
            return cached
        own = np.zeros(len(snap.status), dtype=bool)
        shared = np.zeros(len(snap.status), dtype=bool)
        ids = self.sim.onu_ids
        rows, is_shared = [], []
        for r, bucket in self.sim._active.items():
            classes = [f.cause_class for f in bucket.values() if f.recorded]
            if classes:
                rows.append(str(ids[r]))
                is_shared.append(any(c in _SHARED for c in classes))
        if rows:
            pos = snap.rows_of(rows)
            hit = pos >= 0
            flag = np.asarray(is_shared, dtype=bool)[hit]
            own[pos[hit][~flag]] = True
            shared[pos[hit][flag]] = True
        snap._cache["oracle_truth_rows"] = (own, shared)
        return own, shared

    def _row_of(self) -> dict[str, int]:
        """Row of each ONU id in the simulation (built once)."""
        if getattr(self, "_rows", None) is None:
            self._rows = {o: i for i, o in enumerate(self.sim.onu_ids.tolist())}
        return self._rows

    def decide(self, snapshot: Snapshot) -> list[Decision]:
        """Decisions from ground truth."""
        snap = snapshot
        out, active, with_order = self.common_decisions(snap)
        if len(active) == 0:
            return out
        row_of = self._row_of()
        active = with_visit_hours(active, snap.ts)
        hold_rule, hold_min = self.reboot_holds(snap, active)
        now_s = self.sim.env.now
        rows = zip(active.index, active.records(),
                   np.where(pd.notna(hold_rule), hold_min, 0.0), strict=True)  # fmt: skip
        for onu, r, held_min in rows:
            onu = str(onu)
            faults = [f for f in self.sim.active_faults(row_of[onu]) if f.recorded]
            kinds = {f.kind for f in faults}
            case_id = r["case_id"] if isinstance(r["case_id"], str) else None
            since = _minutes_since(snap.ts, r.get("last_reboot_at"))
            since_w = _minutes_since(snap.ts, r.get("last_wifi_change_at"))
            # No new visit while one is open or the field service's cancellation holds.
            has_visit = (onu in with_order or visit_open(r)
                         or visit_held(r, self.costs, knows_outcome=True) is not None)  # fmt: skip
            why = {"truth": sorted(kinds)}
            if r["outage"] and not r["notified"] and r["impacted_min"] >= 10:
                out.append(self._d(snap, onu, "notify", targets=(onu,), case_id=case_id,
                                   params={"template": "individual_problem", "until_h": 6.0}))  # fmt: skip
            action, priority = None, "high"
            hang = next((f for f in faults if f.kind == "cpe_hang"), None)
            wifi = next((f for f in faults if f.kind == "wifi_interference"), None)
            drop = next((f for f in faults if f.kind in CREW_OR_VISIT_KINDS), None)
            visit_faults = [f for f in faults if f.kind in VISIT_KINDS]
            if visit_faults and not has_visit:
                # Needed sooner or later: planned to arrive just before it would hurt
                # (0 once it does). Not earlier because something else hurts the
                # customer: that gets its own action below, and a visit whose benefit
                # lies beyond the lead time is paid for nothing meanwhile.
                hurts_in_h = min(self._hurts_in_h(f, now_s) for f in visit_faults)
                if hurts_in_h <= self.visit_lead_h:
                    action, priority = "schedule_visit", "high"
            # A drop fault that does not hurt (a 4-9 dB step that leaves the ONU above
            # the impact level) costs nothing while it lasts: no visit until it does, as
            # for the other faults only a visit ends (left at the end, it owes its visit:
            # deferred_repairs). Version 9 visited every one at once (unseen_16x2: 15 of
            # its 47 drop visits in ten weeks went to steps that had not hurt).
            if action is None and drop is not None and not has_visit and r["impacted"]:
                if self._visit_beats_wait(self._left_h(drop, now_s), np.inf):
                    action, priority = "schedule_visit", "high"
            if action is not None:
                pass  # the technician fixes whatever else is wrong at the premises
            elif hang is not None:
                action, priority = self._hang_action(hang, r, held_min, since, has_visit, now_s)
            elif wifi is not None and r["impacted"]:
                action, priority = self._wifi_action(wifi, since_w, has_visit, now_s)
            if action == "reboot" or action == "change_wifi_profile":
                out.append(self._d(snap, onu, action, targets=(str(r["cpe_id"]),),
                                   case_id=case_id, rationale=why))  # fmt: skip
            elif action == "schedule_visit":
                out.append(self._d(snap, onu, "schedule_visit", targets=(onu,), case_id=case_id,
                                   rationale=why,
                                   params={"priority": priority, "reason": "oracle"}))  # fmt: skip
        return out

    def _hang_action(self, hang, r: dict, held_min: float, since: float, has_visit: bool,
                     now_s: float) -> tuple[str | None, str]:  # fmt: skip
        """Reboot, visit or wait for a hung (or leaking) CPE, knowing each reboot's outcome.

        The oracle knows which reboot attempt will clear the hang
        (:meth:`~simulator.fault_lifecycle.FaultLifecycle.attempts_until_fix`): a reboot
        that would fail is still asked for when a later one (one cooldown apart) clears
        the hang early enough to spare more outage than the reboots cost — it has to be
        spent to get there — and not otherwise. While the CPE is hung, a visit is ordered when it restores service
        for less than waiting for the clearing reboot or the hang's own end.
        """
        c = self.costs
        out_rate = float(impact_cost_rate_brl_per_h(True, True, c))
        p_fix = self.sim.scenario.faults.cpe_hang_reboot_fix_prob
        left_h = self._left_h(hang, now_s)
        cool_h = self.cooldown_minutes / 60.0
        n = self.sim.attempts_until_fix(hang, "reboot", p_fix)
        # When the next reboot can be done: after the CPE's cooldown and any hold of the
        # safety layer (the CPE's own limits, an incident above it: a reboot it would
        # refuse is not asked for); never while the CPE is unreachable. [h]
        first_h = max(cool_h - since / 60.0, held_min / 60.0, 0.0)
        if not r["online"]:
            first_h = np.inf
        can_now = first_h == 0.0
        fixed_h = np.inf if n is None else first_h + (n - 1) * cool_h + _REBOOT_DOWN_H
        hurts_h = self._hurts_in_h(hang, now_s)
        if can_now and n is not None:
            # Outage spared by the reboots (a leaking CPE hangs only at hurts_h) against
            # the reboots themselves. [R$]
            spared = out_rate * max(left_h - max(fixed_h, hurts_h), 0.0)
            if spared > n * c.reboot_cost_brl:
                return "reboot", "high"
        if hurts_h == 0.0 and not has_visit and self._visit_beats_wait(left_h, fixed_h):
            return "schedule_visit", "high"
        return None, "high"

    def _visit_beats_wait(self, left_h: float, fixed_h: float) -> bool:
        """Whether a visit now costs less than the outage it would spare.

        Parameters
        ----------
        left_h : float
            How long the outage lasts if nobody acts (the fault's own end). [h]
        fixed_h : float
            When another action ends it (``inf``: none does). [h]
        """
        c = self.costs
        out_rate = float(impact_cost_rate_brl_per_h(True, True, c))
        wait = out_rate * min(left_h, fixed_h)
        visit = c.cost_per_visit_brl + out_rate * min(left_h, self.visit_delay_h)
        return visit < wait

    def _wifi_action(self, wifi, since_w: float, has_visit: bool,
                     now_s: float) -> tuple[str | None, str]:  # fmt: skip
        """Profile change, visit or wait for Wi-Fi interference, knowing each change's outcome.

        One change every ``wifi_retry_min``; the oracle knows which change will end the
        episode. Changes are made only if that one comes before the episode ends by
        itself; a visit (next regular slot; cancelled at no cost if the episode ends
        first) only when it ends the degraded service for less than the changes. A visit
        ends the interference for good, a change only this episode: the episodes that
        would follow (:meth:`_recurrences`) count for the visit, each at what handling it
        remotely would cost (changes from its start until the one that works, or its
        whole degraded time).
        """
        c = self.costs
        deg_rate = float(impact_cost_rate_brl_per_h(False, True, c))
        p_fix = self.sim.scenario.faults.wifi_profile_fix_prob
        left_h = self._left_h(wifi, now_s)
        retry_h = self.wifi_retry_min / 60.0
        n = self.sim.attempts_until_fix(wifi, "wifi_profile", p_fix)
        first_h = max(retry_h - since_w / 60.0, 0.0)
        fixed_h = np.inf if n is None else first_h + (n - 1) * retry_h
        remote = deg_rate * min(left_h, fixed_h)
        if fixed_h < left_h:
            remote += n * c.wifi_change_cost_brl
        visit = c.cost_per_visit_brl + deg_rate * min(left_h, c.visit_delay_h)
        for nxt in self._recurrences(wifi):
            dur_h = (nxt.duration_s or 0.0) / 3600.0
            m = self.sim.attempts_until_fix(nxt, "wifi_profile", p_fix)
            fix_h = np.inf if m is None else (m - 1) * retry_h
            remote += deg_rate * min(dur_h, fix_h)
            remote += m * c.wifi_change_cost_brl if fix_h < dur_h else 0.0
        if not has_visit and visit < remote:
            return "schedule_visit", "normal"
        if first_h == 0.0 and fixed_h < left_h:
            return "change_wifi_profile", "high"
        return None, "high"

    def _recurrences(self, wifi) -> list:
        """The Wi-Fi episodes drawn to follow ``wifi`` (truth: a visit now prevents them)."""
        if getattr(self, "_next_wifi", None) is None:
            self._next_wifi = {f.params["follows"]: f for f in self.sim.faults
                               if f.kind == "wifi_interference" and "follows" in f.params}  # fmt: skip
        out, nxt = [], self._next_wifi.get(wifi.fault_id)
        while nxt is not None:
            out.append(nxt)
            nxt = self._next_wifi.get(nxt.fault_id)
        return out

    @staticmethod
    def _hurts_in_h(fault, now_s: float) -> float:
        """Hours until a fault starts hurting the customer (0 once it does). [h]"""
        start = fault.impact_start_s
        return 0.0 if start is None else max(start - now_s, 0.0) / 3600.0

    @staticmethod
    def _left_h(fault, now_s: float) -> float:
        """Hours a timer-ended fault still lasts if nobody acts (inf if only a visit ends it)."""
        if fault.duration_s is None:
            return np.inf
        begin = fault.start_s
        if fault.kind == "cpe_hang":
            begin = fault.start_s + fault.params.get("precursor_s", 0.0)
        return max(begin + fault.duration_s - now_s, 0.0) / 3600.0
