"""``Autopilot``: scorer → policy → safety → executors, every step audited.

One :meth:`Autopilot.step` per observation round: the scorer fills the predictions, the
policy decides, each decision goes through :class:`~guardian_lib.decision.safety.SafetyGuard`
(blocked ones are audited with the rule), allowed actions go to the
:class:`~guardian_lib.actions.Dispatcher`, and the engine keeps the open cases and
incidents that the next snapshot shows the policy. Reboots are verified a few minutes
later (service back and not degraded) and the outcome feeds the circuit breaker.

Listeners (``Autopilot.listeners``) hear every executed action's final
:class:`~guardian_lib.decision._types.ActionOutcome` — a field action when it is done, a
reboot when it is verified — without the engine knowing who listens (``guardian
operate`` and the twin attach the customer notifier there).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from guardian_lib.actions.dispatcher import ActionResult, Dispatcher
from guardian_lib.audit import AuditLog
from guardian_lib.decision._base import (
    CASE_COLUMNS,
    INCIDENT_COLUMNS,
    OPTIONAL_CASE_COLUMNS,
    REBOOT_HOLD_SCOPES,
    SCOPE_COLUMNS,
)
from guardian_lib.decision._types import (
    BOOKKEEPING_ACTIONS,
    DEVICE_ACTIONS,
    ActionOutcome,
    Decision,
    Policy,
    Scorer,
    Snapshot,
)
from guardian_lib.decision.maintenance import place_labels
from guardian_lib.decision.safety import SafetyGuard, blocked_action
from guardian_lib.decision.settings import AutopilotSettings
from guardian_lib.decision.visits import follow_visits

__all__ = ["Autopilot"]

log = logging.getLogger("guardian_lib.decision")

#: Result statuses of an action that reached its device (or would have, simulated).
SENT = frozenset({"pending", "simulated", "succeeded", "done"})
#: Actions on one ONU that belong to its open case (an incident's carry the incident's id).
_CASE_ACTIONS = frozenset({*DEVICE_ACTIONS, "schedule_visit", "cancel_visit", "notify", "wait"})

_INPUT_COLS = (
    "online", "service_up", "degraded", "down_type", "impacted_min", "stable_min", "rx_dbm",
    "rx_drop_db", "tx_drop_db", "loss_pct", "latency_ms", "calls_24h", "pon_id", "box_id",
    "contacted_since_down",
)  # fmt: skip
_PRED_COLS = (
    "anomaly_score", "p_massive_outage", "p_customer_premises", "p_equipment_fail",
    "p_external_network", "p_intermittent", "p_unknown", "risk_2h", "risk_24h",
)  # fmt: skip


def _exactly(v: Any) -> tuple:
    """``v`` for an equality test that tells apart what a frame would store differently:
    its type, and a timestamp's time zone and unit (equal instants in other zones are
    equal values); a tuple is compared item by item. NaN never equals itself (the frame
    is then built again: never wrong, only slower)."""
    if isinstance(v, tuple):
        return tuple(map(_exactly, v))
    if isinstance(v, pd.Timestamp):
        return (pd.Timestamp, v, str(v.tz), v.unit)
    return (type(v), v)


def _clean(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return None if not np.isfinite(v) else round(float(v), 4)
    if isinstance(v, np.bool_ | bool):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    return v if v is None or isinstance(v, str | int) else str(v)


@functools.cache
def _empty_template(kind: str) -> pd.DataFrame:
    if kind == "cases":
        return pd.DataFrame(
            columns=[*CASE_COLUMNS, *OPTIONAL_CASE_COLUMNS], index=pd.Index([], name="onu_id")
        )
    if kind == "incidents":
        return pd.DataFrame([], columns=list(INCIDENT_COLUMNS))
    return pd.DataFrame(
        {"rule": [], "until": pd.to_datetime([], unit="s", utc=True)},
        index=pd.Index([], dtype=object, name="target"),
    )


def _empty(kind: str) -> pd.DataFrame:
    """An empty view of the autopilot's ``cases``, ``incidents`` or ``reboot_holds``, as
    the general construction makes it: built once, handed out as a shallow copy (pandas'
    copy-on-write keeps a change to one copy out of the others)."""
    return _empty_template(kind).copy(deep=False)


class Autopilot:
    """The decision engine of one deployment (or one backtest run).

    Parameters
    ----------
    policy : Policy
    scorer : callable
        ``scorer(snapshot) -> predictions`` (RuleScorer or the ML models).
    settings : AutopilotSettings, optional
    dispatcher : Dispatcher, optional
        Defaults to a dispatcher in ``settings.autopilot_mode`` with no clients.
    audit : AuditLog, optional
        Defaults to an in-memory log.
    guard : SafetyGuard, optional
    verify_minutes : float, default 15
        Time after a reboot at which its success is checked. [min]

    Attributes
    ----------
    listeners : list of callable
        ``listener(outcome: ActionOutcome)``, called with the final outcome of every
        executed (or simulated) action; a listener's exception is logged, never raised.
    """

    def __init__(
        self,
        policy: Policy,
        scorer: Scorer,
        settings: AutopilotSettings | None = None,
        dispatcher: Dispatcher | None = None,
        audit: AuditLog | None = None,
        guard: SafetyGuard | None = None,
        verify_minutes: float = 15.0,
    ) -> None:
        self.settings = settings or AutopilotSettings()
        self.policy = policy
        self.scorer = scorer
        self.dispatcher = dispatcher or Dispatcher(self.settings.autopilot_mode)
        self.audit = audit or AuditLog()
        self.guard = guard or SafetyGuard(self.settings)
        self.verify_minutes = verify_minutes
        self.cases: dict[str, dict[str, Any]] = {}
        self.incidents: dict[str, dict[str, Any]] = {}
        self._pending: list[tuple[str, str, str, ActionResult]] = []
        self._n_cases = 0
        self.counts: dict[str, int] = {}
        self.listeners: list[Callable[[ActionOutcome], None]] = []
        #: The last frame of each view and the values it was built from (:meth:`_frame_of`).
        self._frames: dict[str, tuple[tuple, pd.DataFrame]] = {}

    @property
    def mode(self) -> str:
        """``simulate`` or ``execute``."""
        return self.dispatcher.mode

    # --- views for the policy ----------------------------------------------------------------
    def cases_frame(self) -> pd.DataFrame:
        """Open cases (index ``onu_id``)."""
        return self._cases_view()()

    def _cases_view(self) -> Callable[[], pd.DataFrame]:
        """A function that gives :meth:`cases_frame` of the cases as they are now (their
        values are read now, the frame is built when called: a snapshot's ``cases``
        that its policy reads as arrays only, as the default policies do)."""
        if not self.cases:
            return functools.partial(_empty, "cases")
        ids = list(self.cases)
        # .get: a case saved by an older version has no Wi-Fi change count (0 then).
        cols = {c: [self.cases[k][c] for k in ids] for c in CASE_COLUMNS}
        for c, default in OPTIONAL_CASE_COLUMNS.items():
            cols[c] = [self.cases[k].get(c, default) for k in ids]
        key = (tuple(ids), *(tuple(map(_exactly, v)) for v in cols.values()))
        return functools.partial(
            self._frame_of,
            "cases",
            key,
            lambda: pd.DataFrame(cols, index=pd.Index(ids, dtype=object, name="onu_id")),
        )

    def case_columns(self) -> dict[str, np.ndarray]:
        """The open cases as :meth:`Snapshot.case_columns
        <guardian_lib.decision.Snapshot.case_columns>` gives them: ``onu_id`` and each
        column of :meth:`cases_frame` as object arrays, from the cases themselves."""
        ids = list(self.cases)
        cols = {}
        for c in CASE_COLUMNS:
            cols[c] = np.empty(len(ids), dtype=object)
            cols[c][:] = [self.cases[k][c] for k in ids]
        for c, default in OPTIONAL_CASE_COLUMNS.items():
            cols[c] = np.empty(len(ids), dtype=object)
            cols[c][:] = [self.cases[k].get(c, default) for k in ids]
        cols["onu_id"] = np.array(ids, dtype=object)
        return cols

    def incidents_frame(self) -> pd.DataFrame:
        """Open incidents."""
        if not self.incidents:
            return _empty("incidents")
        rows = [{"incident_id": k, **v} for k, v in self.incidents.items()]
        return pd.DataFrame(rows, columns=list(INCIDENT_COLUMNS))

    def reboot_holds_frame(self, ts: pd.Timestamp) -> pd.DataFrame:
        """:attr:`Snapshot.reboot_holds <guardian_lib.decision.Snapshot>` at ``ts``: the
        devices whose reboot the guard would refuse for their own history."""
        holds = self.guard.reboot_holds(ts)
        if not holds:
            return _empty("reboot_holds")

        def build() -> pd.DataFrame:
            return pd.DataFrame(
                {
                    "rule": [h[0] for h in holds.values()],
                    "until": pd.to_datetime([min(h[1], 4e9) for h in holds.values()], unit="s",
                                            utc=True),
                },
                index=pd.Index(list(holds), dtype=object, name="target"),
            )  # fmt: skip

        return self._frame_of("reboot_holds", tuple(map(_exactly, holds.items())), build)

    def _frame_of(self, name: str, key: tuple, build: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """``build()``, or a shallow copy of the frame built last time from the same
        values (``key``: each value with its type; most rounds change no case and no
        hold). pandas' copy-on-write keeps a change to one copy out of the others."""
        last = self._frames.get(name)
        if last is None or last[0] != key:
            last = self._frames[name] = (key, build())
        return last[1].copy(deep=False)

    # --- one round -------------------------------------------------------------------------
    def step(self, snapshot: Snapshot) -> list[Decision]:
        """Score, decide, check, act and audit one snapshot.

        Returns
        -------
        list of Decision
            The policy's decisions (as audited, with case ids filled in).
        """
        snap = snapshot
        self._answers(snap)
        snap.cases = self._cases_view()  # built if the policy reads it
        snap.seed_cases(self.case_columns())
        snap.incidents = self.incidents_frame()
        self._verify(snap)
        snap.reboot_holds = self.reboot_holds_frame(snap.ts)
        snap.predictions = self.scorer(snap)
        decisions = self.policy.decide(snap)
        if not decisions:
            return []
        outage_scopes = {(v["scope_type"], v["scope_key"]) for v in self.incidents.values()}
        done = []
        for d in decisions:
            done.append(self._apply(d, snap, outage_scopes))
        return done

    def _inputs(self, d: Decision, snap: Snapshot) -> dict[str, Any]:
        """What the decision saw (audited): the subject ONU's status and predictions, or
        a summary of the targets of a decision about a scope."""
        st = snap.status
        row = snap.rows_of((d.subject,))[0]
        if row >= 0:
            out = {c: _clean(snap.column(c)[row]) for c in _INPUT_COLS if c in st.columns}
            pcols = snap.prediction_columns()
            pid = pcols["onu_id"]
            if len(pid) == len(st) and pid[row] == d.subject:  # aligned with the status
                prow = row
            else:
                hits = np.flatnonzero(np.asarray(pid, dtype=object) == d.subject)
                prow = int(hits[-1]) if len(hits) else -1
            if prow >= 0:
                cols = snap.predictions.columns
                out.update({c: _clean(pcols[c][prow]) for c in _PRED_COLS if c in cols})
            return out
        pos = snap.rows_of(d.targets)
        pos = pos[pos >= 0]
        return {
            "n_targets": len(d.targets),
            "n_offline": int((~np.asarray(snap.column("online"), dtype=bool)[pos]).sum()),
            "n_no_service": int((~np.asarray(snap.column("service_up"), dtype=bool)[pos]).sum()),
            "scope": d.params.get("scope_key"),
        }

    def _apply(self, d: Decision, snap: Snapshot, outage_scopes: set) -> Decision:
        st = snap.status
        self.counts[d.action] = self.counts.get(d.action, 0) + 1
        ts = snap.ts
        if d.action == "open_case":
            self._n_cases += 1
            case_id = f"{self.audit.tag}CASE{self._n_cases:07d}"
            d = replace(d, case_id=case_id)
            self.cases[d.subject] = {
                "case_id": case_id, "opened_at": ts, "reboots": 0, "last_reboot_at": pd.NaT,
                "visit_os_id": None, "notified": False, "last_wifi_change_at": pd.NaT,
                "wifi_changes": 0,
            }  # fmt: skip
        elif d.case_id is None and d.action in _CASE_ACTIONS and d.subject in self.cases:
            # The policy decided before the engine numbered a case it opened in this step
            # (open_case, then a reboot or a visit for the same ONU): the decision is the
            # case's, and the audit says so (case_lifecycle counts it, the dossier shows it).
            d = replace(d, case_id=self.cases[d.subject]["case_id"])
        if d.action == "close_case":
            case = self.cases.pop(d.subject, None)
            outcome = "visit_avoided"
            if "massive" in str(d.rationale.get("rule", "")):
                outcome = "merged_massive"
            elif case and case["visit_os_id"] and self.dispatcher.field_ops is not None:
                status = self.dispatcher.field_ops.status(case["visit_os_id"])
                outcome = "visit" if status in ("completed", "in_progress") else outcome
            if case and outcome == "visit_avoided" and case.get("visits_completed"):
                outcome = "visit"  # a visit was made (followed: no longer the case's)
            d = replace(d, rationale={**d.rationale, "outcome": outcome})
        elif d.action == "open_incident":
            iid = self.audit.new_incident_id()
            d = replace(d, case_id=iid)
            p = d.params
            self.incidents[iid] = {
                "scope_type": p["scope_type"], "scope_key": p["scope_key"], "start_at": ts,
                "cause": p.get("cause", "MASSIVE_OUTAGE"), "affected": len(d.targets),
                "members": tuple(d.targets),
            }  # fmt: skip
            self.audit.record_incident(
                iid, ts, scope_type=p["scope_type"], scope_key=p["scope_key"], start_at=ts,
                severity="major", cause=p.get("cause"), affected_customers=len(d.targets),
                opened_by=f"autopilot:{self.policy.name}",
            )  # fmt: skip
        elif d.action == "join_incident":
            inc = self.incidents.get(d.params.get("incident_id"))
            if inc is not None:
                inc["members"] = inc["members"] + tuple(
                    t for t in d.targets if t not in inc["members"]
                )
                inc["affected"] = len(inc["members"])
        elif d.action == "close_incident":
            iid = d.params.get("incident_id")
            inc = self.incidents.pop(iid, None)
            if inc:
                self.audit.record_incident(
                    iid, ts, scope_type=inc["scope_type"], scope_key=inc["scope_key"],
                    start_at=inc["start_at"], end_at=ts, severity="major", cause=inc["cause"],
                    affected_customers=inc["affected"], opened_by=f"autopilot:{self.policy.name}",
                )  # fmt: skip
        inputs = self._inputs(d, snap)
        if d.action in BOOKKEEPING_ACTIONS:
            self.audit.record_decision(d, inputs, self.mode)
            return d
        pon_id, outage = None, False
        row = snap.rows_of((d.subject,))[0] if d.action == "reboot" else -1
        if row >= 0:
            pon_id = snap.column("pon_id")[row]
            outage = any(
                (t, snap.column(SCOPE_COLUMNS[t])[row]) in outage_scopes for t in REBOOT_HOLD_SCOPES
            )
        places = self._places(d, st, ts)
        verdict = self.guard.check(d, ts, pon_id=pon_id, outage=outage, places=places)
        if verdict.maintenance_window is not None:
            # the decision row names the window too (its rationale's "rule" stays the policy's)
            d = replace(
                d, rationale={**d.rationale, "maintenance_window": verdict.maintenance_window}
            )
        did = self.audit.record_decision(d, inputs, self.mode, verdict.allowed, verdict.rule)
        if not verdict.allowed:
            for t in d.targets or ("",):
                self.audit.record_action(did, blocked_action(verdict, d.action, str(t), ts))
            return d
        results = self.dispatcher.execute(d, verdict.execute_at or ts)
        case = self.cases.get(d.subject)
        self.follow(did, d, results, ts)
        for r in results:
            if d.action == "notify":
                row = snap.rows_of((r.target,))[0]
                cust = snap.column("customer_id")[row] if row >= 0 else None
                self.audit.record_notification(
                    cust, r.target, ts, d.params.get("template", "generic"), r.status,
                    metadata={"decision_id": did},
                )  # fmt: skip
                if r.target in self.cases and r.status != "failed":
                    self.cases[r.target]["notified"] = True
        if case is not None:
            if d.action == "change_wifi_profile":
                case["last_wifi_change_at"] = ts
                case["wifi_changes"] = case.get("wifi_changes", 0) + 1
            else:
                self.track_visit(case, d, results, did)
        return d

    @staticmethod
    def track_visit(case: dict, d: Decision, results: list[ActionResult], did: str) -> None:
        """Record on ``case`` the order a ``schedule_visit`` opened (its id, priority and
        reason; the call-ahead to follow when the visit was to be confirmed first) or a
        ``cancel_visit`` ended.

        Also for an action an operator approved (``guardian operate --mode approve``
        sends it cycles after the proposal): the case then follows the real order (its
        status when the case closes, what became of it, :meth:`_answers`). A visit the
        autopilot cancels is no longer the case's: its cancellation never counts as the
        field service's.
        """
        if d.action == "schedule_visit" and results and results[0].ref:
            case["visit_os_id"] = results[0].ref
            if d.params.get("confirm_first"):
                case["call_ahead_os_id"] = results[0].ref
        elif d.action == "schedule_visit" and results and results[0].status == "simulated":
            case["visit_os_id"] = f"simulated:{did}"
        elif d.action == "cancel_visit":
            case["visit_os_id"] = None
            case["visit_priority"] = case["visit_reason"] = None
        if d.action == "schedule_visit" and case.get("visit_os_id"):
            # what the order was placed as (the policy may re-order it, expected_cost.py)
            case["visit_priority"] = d.params.get("priority", "normal")
            case["visit_reason"] = d.params.get("reason")

    def follow(self, did: str, d: Decision, results: list[ActionResult], ts: pd.Timestamp) -> None:
        """Audit the results of an executed decision and follow each to its outcome.

        A ``pending`` result (a reboot sent to the ACS) is verified
        :attr:`verify_minutes` later (:meth:`_verify`: audited then, fed to the circuit
        breaker, told to the listeners); any other result is audited and told to the
        listeners now. The autopilot's own actions and the actions an operator approved
        in ``guardian operate --mode approve`` take this one path.

        A reboot counts on its case (``reboots``, ``last_reboot_at``) here, when it is
        sent (or simulated, :data:`SENT`): a proposal queued for approval (status
        ``queued``) does not, so a proposal that is rejected leaves the case as it was,
        nor does a send the ACS refused (``failed``).

        Parameters
        ----------
        did : str
            The audited decision's id.
        d : Decision
        results : list of ActionResult
            What the dispatcher returned for ``d``.
        ts : pandas.Timestamp
            The decision time (UTC): a result's outcome time when it has no ``finished_at``.
        """
        case = self.cases.get(d.subject)
        # A decision recorded without a case id (:meth:`_apply` gives one to those of
        # an open case): its ONU's open case, if any.
        case_id = d.case_id or (case["case_id"] if case is not None else None)
        rule = str(d.rationale.get("rule", ""))
        if d.action == "reboot" and case is not None and any(r.status in SENT for r in results):
            case["reboots"] = int(case.get("reboots") or 0) + 1
            case["last_reboot_at"] = ts
        for r in results:
            if r.status == "pending":
                if case_id is not None:  # the verification's outcome names the case
                    r.result = {**r.result, "case_id": case_id}
                self._pending.append((did, d.subject, d.action, r))
            else:
                self.audit.record_action(did, r)
                self._tell(ActionOutcome(did, d.action, d.subject, r.target, r.status,
                                         pd.Timestamp(r.finished_at or ts), case_id, rule,
                                         dict(d.params)))  # fmt: skip

    def _places(self, d: Decision, st: pd.DataFrame, ts: pd.Timestamp) -> list[dict[str, str]]:
        """Labels of the ONUs a decision touches (its subject, its ONU targets), built only
        while a maintenance window is in force (the guard matches them)."""
        if not len(self.guard.maintenance) or not self.guard.maintenance.any_in_force(ts):
            return []
        onus = dict.fromkeys(o for o in (d.subject, *d.targets) if o in st.index)
        return [place_labels(st.loc[o], str(o)) for o in onus]

    def _answers(self, snap: Snapshot) -> None:
        """Follow every case's visit once its order is no longer open
        (:func:`~guardian_lib.decision.visits.follow_visits`): a call-ahead's answer, a
        cancellation by the field service, a completed visit; asked again next round while
        the status is not final."""
        orders = snap.service_orders
        still_open = set(orders["os_id"]) if len(orders) else set()
        follow_visits(self.cases, self.dispatcher.field_ops, still_open, snap.ts)

    def _verify(self, snap: Snapshot) -> None:
        """Check pending reboots whose verification time has come."""
        if not self._pending:
            return
        st = snap.status
        keep = []
        for did, subject, action, r in self._pending:
            due = pd.Timestamp(r.started_at) + pd.Timedelta(minutes=self.verify_minutes)
            if snap.ts < due:
                keep.append((did, subject, action, r))
                continue
            ok = bool(
                subject in st.index
                and st.at[subject, "service_up"]
                and not st.at[subject, "degraded"]
            )
            r.status = "succeeded" if ok else "failed"
            r.finished_at = snap.ts
            r.result = {**r.result, "verified": ok}
            self.audit.record_action(did, r)
            self.guard.record_outcome(ok, snap.ts)
            self._tell(ActionOutcome(did, action, subject, r.target, r.status, snap.ts,
                                     r.result.get("case_id")))  # fmt: skip
        self._pending = keep

    def _tell(self, outcome: ActionOutcome) -> None:
        """Give ``outcome`` to every listener (a failing listener never stops a decision)."""
        for listener in self.listeners:
            try:
                listener(outcome)
            except Exception:  # noqa: BLE001 - listeners inform; the network action stands
                log.exception("autopilot listener %r failed on %s", listener, outcome)

    def close(self) -> None:
        """Flush the audit log."""
        self.audit.flush()
