"""``RulesPolicy``: the product notes' rules, exactly (docs/autopilot.md, "Policies").

1. massive probability > 0.8 with many neighbours offline → open a massive incident and
   hold visits in the area (a visit that exists when its case turns massive is
   cancelled and the customer told);
2. individual with high risk → notify the customer and try one reboot (at most once
   per 6 h);
3. back and stable for 30 min → close the case and avoid the visit;
4. persists → schedule a visit with priority.

How the notes are read where they leave room (each is a reason the rules once ordered
more than twice the visits of today's practice):

* "persists" means a problem a technician can fix: an ONU that went dark with a
  *dying gasp* lost power at the customer's premises (the customer switched it off, or
  the street has no power) and gets no visit, only the notice; a visit would find the
  customer's equipment fine ("customer absent");
* an ONU whose neighbours are also down (massive probability above the threshold but
  not yet, or no longer, an incident) waits for the incident logic rather than a visit;
* "persists" is counted from when the problem started (``impacted_min``), so a member
  still down when its massive incident ends gets its visit at once (the hold lifts);
* a problem that still persists after its visit — the field service cancelled the order,
  or the technician closed it and the customer still has no (or degraded) service — meets
  rule 4 again and gets a new priority visit. The notes bound repeated actions, not
  visits alone ("rate limits: avoid repeated actions", "reboot 1× per 6 h"), and
  count recurrence as context: the new visit waits as the expected-cost policy's does
  (``revisit_after_cancel_h`` after a cancellation, ``revisit_after_visit_h`` after a
  completed visit) and a case gets at most ``max_repeat_visits`` repeats
  (:func:`~guardian_lib.decision.visits.visit_held`, the settings of ``costs``). The
  rules read neither the visit's closure code nor prices: no call-ahead before a repeat
  to a customer found absent (the notes have none; the expected-cost policy prices one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from guardian_lib.decision._base import PolicyBase
from guardian_lib.decision._types import Decision, Snapshot
from guardian_lib.decision.costs import CostModel
from guardian_lib.decision.visits import (
    revisit_rationale,
    visit_held,
    visit_open,
    with_visit_hours,
)

__all__ = ["RulesPolicy"]


def _minutes_since(ts: pd.Timestamp, then) -> float:
    if then is None or pd.isna(then):
        return np.inf
    return (ts - pd.Timestamp(then)).total_seconds() / 60.0


@dataclass
class RulesPolicy(PolicyBase):
    """The product notes' rules (see the module docstring).

    Parameters
    ----------
    reboot_every_minutes : float, default 360
        At most one reboot per case in this time. [min]
    persist_minutes : float, default 60
        A problem still there this long after the reboot (or after the case opened,
        when no reboot was possible) gets a priority visit. [min]
    high_risk : float, default 0.5
        ``risk_2h`` above which a healthy-looking ONU counts as high risk. [-]
    costs : CostModel, optional
        Only its follow-up settings are read (``revisit_after_cancel_h``,
        ``revisit_after_visit_h``, ``max_repeat_visits``): when a problem that outlasted
        its visit gets a new one. The rules price nothing.
    """

    reboot_every_minutes: float = 360.0
    persist_minutes: float = 60.0
    high_risk: float = 0.5
    costs: CostModel = field(default_factory=CostModel)
    name: str = "rules"
    version: str = "2"

    def decide(self, snapshot: Snapshot) -> list[Decision]:
        """Decisions for one snapshot (see the module docstring)."""
        snap = snapshot
        out, active, with_order = self.common_decisions(snap)
        active = with_visit_hours(active, snap.ts)
        hold_rule, _ = self.reboot_holds(snap, active)
        for onu, r, held_by in zip(active.index, active.records(), hold_rule, strict=True):
            onu = str(onu)
            if not (r["impacted"] or r["risk_2h"] > self.high_risk):
                continue
            case_id = r["case_id"] if isinstance(r["case_id"], str) else None
            reasons = r["top_reasons"]
            if not r["notified"]:
                out.append(
                    self._d(snap, onu, "notify", targets=(onu,), case_id=case_id,
                            confidence=float(r["anomaly_score"]),
                            rationale={"rule": "individual with high risk: notify",
                                       "top_reasons": reasons},
                            params={"template": "individual_problem", "until_h": 6.0})
                )  # fmt: skip
            since_reboot = _minutes_since(snap.ts, r.get("last_reboot_at"))
            if r["online"] and since_reboot >= self.reboot_every_minutes:
                if held_by is not None:
                    # The safety layer would refuse it (the CPE's cooldown, e.g. rebooted
                    # in an earlier case, or an open outage above it): wait, do not ask.
                    continue
                out.append(
                    self._d(snap, onu, "reboot", targets=(str(r["cpe_id"]),), case_id=case_id,
                            confidence=float(r["p_customer_premises"]),
                            rationale={"rule": "individual with high risk: try one reboot",
                                       "top_reasons": reasons})
                )  # fmt: skip
                continue
            waited = since_reboot if r["reboots"] > 0 else float(r["impacted_min"])
            has_visit = onu in with_order or visit_open(r)
            own_power_off = not r["online"] and r["down_type"] == "DYING_GASP"
            neighbours_down = r["p_massive_outage"] + r["p_external_network"] > (
                self.massive_threshold
            )
            if own_power_off or neighbours_down:
                continue
            if waited < self.persist_minutes or has_visit or visit_held(r, self.costs):
                continue
            out.append(
                self._d(snap, onu, "schedule_visit", targets=(onu,), case_id=case_id,
                        confidence=float(r["anomaly_score"]),
                        rationale={"rule": "problem persists: priority visit",
                                   "waited_min": round(float(waited), 1),
                                   "top_reasons": reasons, **revisit_rationale(r)},
                        params={"priority": "high", "reason": "autopilot_persistent"})
            )  # fmt: skip
        return out
