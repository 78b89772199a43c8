"""Approve mode of ``guardian operate``: sending the actions an operator approved.

:class:`ApprovedActions` is a mixin of :class:`~guardian_lib.operate.service.Operator`
(it uses the operator's ``store``, ``audit``, ``autopilot``, ``fleet``, ``settings``,
``real_dispatcher`` and ``_restore_guard``): each approved action is checked again at
send time against every safety rule, so an approval never overrides what changed since
the action was proposed. A sent action then takes the autopilot's own path
(:meth:`~guardian_lib.decision.engine.Autopilot.follow`): an approved reboot is verified
like the autopilot's, its outcome feeding the circuit breaker and the listeners.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd

from guardian_lib.decision import Decision, SafetyGuard
from guardian_lib.decision._base import REBOOT_HOLD_SCOPES, SCOPE_COLUMNS
from guardian_lib.decision.maintenance import place_labels
from guardian_lib.decision.safety import blocked_action
from guardian_lib.operate.metrics import log_json

__all__ = ["ApprovedActions"]


class ApprovedActions:
    """Approve mode's send step (mixin of the operate service)."""

    def _run_approved(self, ts: pd.Timestamp) -> None:
        """Send the actions an operator approved since the last cycle.

        Each one is checked again, now, against every safety rule (kill switch,
        maintenance windows, open outages, breaker, cooldowns and caps over what was
        really sent): an approval does not override what changed since it was proposed.
        """
        guard = self._approval_guard()
        outage_scopes = {
            (v["scope_type"], v["scope_key"]) for v in self.autopilot.incidents.values()
        }
        table = self.fleet.table.set_index("onu_id", drop=False)
        for a in self.store.approvals("approved"):
            target = a["target"]
            case = self.autopilot.cases.get(a["subject"])  # the ONU's open case, if any
            proposed = json.loads(a.get("rationale") or "{}")
            d = Decision(ts=ts, subject=a["subject"], action=a["action"], targets=(target,),
                         params=json.loads(a["params"] or "{}"),
                         case_id=case["case_id"] if case is not None else None,
                         # the proposal's rule, so the audit (and its replay) says why
                         rationale={"rule": str(proposed.get("rule", "")), "approved": a["id"],
                                    "by": a["decided_by"], "comment": a.get("comment")})  # fmt: skip
            pon_id, outage, places = a["pon_id"], False, []
            if a["subject"] in table.index:
                row = table.loc[a["subject"]]
                pon_id = pon_id or row.get("pon_id")
                outage = any((scope, str(row.get(SCOPE_COLUMNS[scope]))) in outage_scopes
                             for scope in REBOOT_HOLD_SCOPES)  # fmt: skip
                places = [place_labels(row, a["subject"])]
            verdict = guard.check(d, ts, pon_id=pon_id, outage=outage, places=places)
            if not verdict.allowed:
                if verdict.maintenance_window is not None:  # as the autopilot's decision rows
                    d = replace(d, rationale={**d.rationale,
                                              "maintenance_window": verdict.maintenance_window})  # fmt: skip
                did = self.audit.record_decision(
                    d, {"approval_id": a["id"]}, "approve", False, verdict.rule
                )
                blocked = blocked_action(verdict, d.action, target, ts)
                self.audit.record_action(did, blocked)
                self.store.finish_approval(a["id"], "failed", blocked.result)
                log_json("action", action=a["action"], target=target, status="blocked",
                         approval_id=a["id"], rule=verdict.rule, detail=verdict.detail,
                         maintenance_window=verdict.maintenance_window)  # fmt: skip
                continue
            did = self.audit.record_decision(d, {"approval_id": a["id"]}, "approve", True, None)
            results = self.real_dispatcher.execute(d, ts)
            # As the autopilot's own actions: a sent reboot is verified later (circuit
            # breaker, listeners: customer notices), anything else audited and told now.
            # It also counts a sent reboot on the case (the proposal did not).
            self.autopilot.follow(did, d, results, ts)
            if case is not None:  # the case follows the order now really opened / cancelled
                self.autopilot.track_visit(case, d, results, did)
            ok = all(r.status != "failed" for r in results)
            self.store.finish_approval(
                a["id"], "executed" if ok else "failed",
                [{"status": r.status, "error": r.error, "result": r.result} for r in results],
            )  # fmt: skip

    def _approval_guard(self) -> SafetyGuard:
        """A safety guard for approved actions: the autopilot's kill switch, breaker and
        maintenance windows, and the reboots really sent (the journal), not the proposals
        the autopilot's guard counted when it queued them."""
        live = self.autopilot.guard
        guard = SafetyGuard(self.settings, maintenance=live.maintenance)
        guard._breaker_until, guard._killed = live._breaker_until, live._killed
        self._restore_guard(guard, committed=-1)
        return guard
