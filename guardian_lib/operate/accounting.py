"""What ``guardian operate`` counts and how actions leave it: the run summary, the
dispatcher that logs every action, the approval queue, the safety recount.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from guardian_lib.actions.dispatcher import ActionResult, Dispatcher
from guardian_lib.decision import Decision
from guardian_lib.operate.adapters import ActionContext
from guardian_lib.operate.metrics import OperateMetrics, log_json
from guardian_lib.operate.state import StateStore

__all__ = [
    "OperateSummary",
    "ApprovalDispatcher",
    "CountingDispatcher",
    "count_action",
    "safety_violations",
]

#: Actions that reach the outside world when sent.
_SENDING = ("reboot", "schedule_visit", "cancel_visit", "hold_visits")


@dataclass
class OperateSummary:
    """Figures of one ``guardian operate`` run (``--json``).

    Attributes
    ----------
    ticks : int
        Cycles completed by this process. [-]
    rows_polled : int
        ONU rows received. [-]
    predictions : int
        Prediction rows produced. [-]
    decisions : int
        Decisions of the policy (bookkeeping included). [-]
    actions_sent, actions_failed : int
        Device and field actions sent to the outside / that failed. [-]
    actions_queued : int
        Actions put in the approval queue. [-]
    safety_blocks : int
        Actions the safety guard blocked. [-]
    safety_violations : int
        Sent reboots that break a limit, re-checked over the whole journal (should be 0). [-]
    olts_failed : int
        OLT polls that did not complete, summed over cycles. [-]
    duplicates_suppressed : int
        Actions not sent because their key was already journalled. [-]
    contacts : dict of str → int
        Customer contacts of the drop folder (``site.contacts``) by outcome: ``fed``,
        ``late`` (of those fed), ``duplicates``, ``stale``, ``unknown_customers``, and
        ``files_rejected``, summed over cycles. [-]
    """

    mode: str = "simulate"
    ticks: int = 0
    first_cycle: int = 0
    rows_polled: int = 0
    predictions: int = 0
    decisions: int = 0
    decisions_by_action: dict[str, int] = field(default_factory=dict)
    actions_sent: int = 0
    actions_failed: int = 0
    actions_queued: int = 0
    actions_simulated: int = 0
    safety_blocks: int = 0
    safety_blocks_by_rule: dict[str, int] = field(default_factory=dict)
    safety_violations: int = 0
    olts_failed: int = 0
    duplicates_suppressed: int = 0
    ambiguous_after_restart: int = 0
    cycles_failed: int = 0
    contacts: dict[str, int] = field(default_factory=dict)
    model_version: str = ""
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)


class ApprovalDispatcher(Dispatcher):
    """Puts each proposed action in the approval queue instead of sending it."""

    def __init__(self, store: StateStore, context: ActionContext, inner: Dispatcher) -> None:
        super().__init__("execute", inner.devices, inner.field_ops, inner.notifier)
        self.store = store
        self.context = context
        self.queued = 0

    def execute(self, decision: Decision, at: pd.Timestamp | None = None) -> list[ActionResult]:
        at = decision.ts if at is None else at
        if decision.action == "notify":  # the notifier only writes the audit: no approval
            return super().execute(decision, at)
        open_ = {(a["action"], a["target"]) for a in self.store.approvals("pending")}
        open_ |= {(a["action"], a["target"]) for a in self.store.approvals("approved")}
        out = []
        for t in decision.targets:
            if (decision.action, str(t)) in open_:
                out.append(ActionResult(decision.action, str(t), "queued", at, at,
                                        result={"duplicate_of_pending": True}))  # fmt: skip
                continue
            aid = self.store.propose(
                ts=str(decision.ts), action=decision.action, subject=decision.subject,
                target=str(t), pon_id=self.context.pon_of.get(str(t)),
                params=decision.params, rationale=decision.rationale,
            )  # fmt: skip
            self.queued += 1
            out.append(ActionResult(decision.action, str(t), "queued", at, at,
                                    result={"approval_id": aid}))  # fmt: skip
        return out


class CountingDispatcher(Dispatcher):
    """The real dispatcher, logging one JSON line per action and counting results."""

    def __init__(self, inner: Dispatcher, metrics: OperateMetrics, summary: OperateSummary):
        super().__init__(inner.mode, inner.devices, inner.field_ops, inner.notifier)
        self.inner = inner
        self.metrics = metrics
        self.summary = summary

    def execute(self, decision: Decision, at: pd.Timestamp | None = None) -> list[ActionResult]:
        results = self.inner.execute(decision, at)
        for r in results:
            count_action(r, self.metrics, self.summary)
        return results


def count_action(r: ActionResult, metrics: OperateMetrics, summary: OperateSummary) -> None:
    status = r.status
    if status == "failed":
        summary.actions_failed += 1
    elif status == "simulated":
        summary.actions_simulated += 1
    elif status == "queued":
        summary.actions_queued += 1
    elif r.action_type in _SENDING:
        summary.actions_sent += 1
    metrics.actions.labels(r.action_type, status).inc()
    log_json("action", action=r.action_type, target=r.target, status=status, error=r.error,
             result=r.result)  # fmt: skip


def safety_violations(store: StateStore, settings: Any) -> int:
    """Reboots in the journal that break the cooldown or the daily cap. [-]

    Every reboot attempted (sent, failed or ambiguous) counts, as the guard counts them.
    """
    rows = store.journal("reboot")
    by_target: dict[str, list[float]] = {}
    for j in rows:
        by_target.setdefault(j["target"], []).append(pd.Timestamp(j["ts"]).value / 1e9)
    cooldown = settings.reboot_cooldown_minutes * 60
    bad = 0
    for times in by_target.values():
        times.sort()
        for i, t in enumerate(times):
            if i and t - times[i - 1] < cooldown - 1e-6:
                bad += 1
            if sum(1 for x in times[: i + 1] if t - x < 86400) > settings.max_reboots_per_day:
                bad += 1
    return bad
