"""``ExpectedCostPolicy``: for each case, the alternative of least expected cost.

For every open individual case it compares, with the scorer's class probabilities and
the :class:`~guardian_lib.decision.costs.CostModel`:

* **wait** — the problem lasts its expected residual time (log-normal priors per kind:
  a hung CPE reboots itself, a customer's power returns, a massive outage gets fixed by
  a crew); kinds that never end alone (equipment, fibre) need a visit later anyway;
* **reboot** — a hung CPE comes back with probability ``reboot_fix_prob`` (only
  possible while the device is online);
* **change_wifi_profile** — a remote change of the CPE's Wi-Fi channel / band plan ends
  an interference episode with probability ``wifi_profile_fix_prob`` (only for degraded
  service that looks like Wi-Fi; it takes no service down, so it may be tried again
  after ``wifi_retry_min``, at most ``wifi_max_changes`` times per case). Each change
  that did not end the problem lowers the Wi-Fi share of the class probabilities
  (Bayes), and while another change is allowed later, *wait* includes "wait for the
  next change, then change": a visit is ordered only when it is cheaper than trying
  remotely again;
* **schedule_visit** — a technician fixes premises, equipment and fibre problems after
  ``visit_delay_h``, at ``cost_per_visit_brl``; a visit cannot fix a power cut, a
  massive outage or an upstream failure. On a dark ONU with a dying gasp the *wait*
  visits whatever is still dark after it (a customer's power cut and a failed ONU
  power supply look alike), and a customer contact since the ONU went dark divides the
  odds of a power cut by ``dying_gasp_contact_lr``. A visit to a dying gasp is called
  ahead ("is your power on?", :mod:`~guardian_lib.decision.call_ahead`): priced as the
  call plus the trips it does not filter, held after a "power off" or an unanswered
  call. An outage gets a priority visit,
  and so does degraded service that will probably not end alone (a degrading fibre or
  a drifting laser: bit errors before the link goes dark; :func:`visit_priority`);
  other degraded service (Wi-Fi) takes the next regular slot, and a problem that ends
  before the technician comes cancels its visit. An open visit that no longer fits its
  case is cancelled (:func:`~guardian_lib.decision.visits.visit_outdated`): a regular
  slot still waiting when the case now needs a priority visit (re-ordered next round),
  a dying gasp's visit once the ONU is back online. A case whose visit the field service
  cancelled, or whose problem outlasted a completed visit, may get another one later
  (:mod:`~guardian_lib.decision.visits`: held ``revisit_after_cancel_h`` /
  ``revisit_after_visit_h``, at most ``max_repeat_visits`` repeats; a completed visit
  that did not fix the problem makes the kinds a visit fixes less likely; a repeat to a
  customer found absent is called ahead when that is cheaper, ``absent_call_ahead``).

Before the customer is hurt (a case opened on risk alone) the comparison is different:
with ``p = risk_24h`` the probability that the problem is real,

* a *leaking* CPE (online, healthy-looking, customer-premises cause: latency up, failed
  DHCP renewals) will hang: waiting costs ``p · (reboot + outage until the next round
  reboots it)``, a reboot now costs ``reboot + (1 − reboot_fix_prob) · wait``;
* a *drifting* link (fibre degrading, laser drifting: equipment or intermittent cause)
  needs a visit sooner or later if it is real: waiting costs ``p · (visit + outage
  until a priority visit)``, a proactive visit ``visit + p · (1 − fixable) · wait``.
  The visit pays off when ``p`` exceeds about ``visit / (visit + outage cost)``.

Such a case opens only where one of the two could answer the risk
(:mod:`~guardian_lib.decision.proactive`): a risk tied to no cause and no precursor
leaves nothing to do but wait.

The ongoing impact costs SLA credit, calls and churn risk per hour
(:func:`~guardian_lib.decision.costs.impact_cost_rate_brl_per_h`). Every action decision
carries the cost table and the top reasons. Massive incidents and the case lifecycle
follow the same rules as :class:`~guardian_lib.decision.rules.RulesPolicy`, with a lower
massive threshold (0.6). Customers with an outage are notified after ``notify_after_min``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from guardian_lib.decision._base import PolicyBase, Rows
from guardian_lib.decision._types import CLASS_COLUMNS, Decision, Scorer, Snapshot
from guardian_lib.decision.call_ahead import (
    answered_power_off,
    call_ahead_held,
    visit_confirmation,
    with_call_ahead_hours,
)
from guardian_lib.decision.caps import DRIFT_DB, cap_fixable_on_dying_gasp, explain_by_light_drop
from guardian_lib.decision.costs import (
    CostModel,
    contact_lr,
    impact_cost_rate_brl_per_h,
    lognormal_residual_h,
    lognormal_survival,
)
from guardian_lib.decision.proactive import proactive_grounds, risk_grounds
from guardian_lib.decision.settings import AutopilotSettings
from guardian_lib.decision.visits import (
    revisit_rationale,
    visit_held,
    visit_outdated,
    with_visit_hours,
)

__all__ = [
    "DRIFT_DB",
    "VISIT_REASON",
    "ExpectedCostPolicy",
    "cap_fixable_on_dying_gasp",
    "case_costs",
    "explain_by_light_drop",
    "make_autopilot",
    "visit_priority",
]


#: The ``reason`` of the visits the policy orders, by what the problem looks like
#: (:func:`case_costs`' ``subtype``: ``autopilot_power`` for a dying gasp's).
VISIT_REASON = "autopilot_{subtype}"


def visit_priority(outage: bool, impacted: bool, p_self_resolving: float,
                   max_self_resolving: float = 0.5) -> str:  # fmt: skip
    """Priority of a visit the expected-cost policy orders: ``"high"`` or ``"normal"``.

    An outage gets a priority visit. Degraded service takes the next regular slot (hours
    to days later) only when the problem may well end before the technician comes: then
    the visit is cancelled at no cost, which is what the wait buys. A degraded problem
    that will not end alone (a degrading fibre, a drifting laser: bit errors before the
    link goes dark) gains nothing from that wait and is heading for an outage, so its
    visit is a priority one too — the one the cost comparison assumed
    (:attr:`~guardian_lib.decision.costs.CostModel.visit_delay_h`). Proactive visits
    (no impact yet) are planned ahead and keep the regular slot.

    Parameters
    ----------
    outage : bool
        No service (offline or no PPPoE).
    impacted : bool
        The customer is hurt now (outage or degraded service).
    p_self_resolving : float
        Posterior probability that the problem ends by itself (:func:`case_costs`). [-]
    max_self_resolving : float, default 0.5
        At or above this, degraded service keeps the regular slot. [-]

    Returns
    -------
    str

    Examples
    --------
    >>> visit_priority(False, True, 0.12), visit_priority(False, True, 0.95)
    ('high', 'normal')
    """
    if outage or (impacted and p_self_resolving < max_self_resolving):
        return "high"
    return "normal"


def case_costs(active: Rows, model: CostModel, review_h: float = 0.25, wait_h: float = 2.0) -> Rows:
    """Expected cost of each alternative for each case (vectorised).

    The class probabilities are first updated with how long the problem has lasted
    (Bayes: ``q_c ∝ q_c · S_c(elapsed)``, where ``S_c`` is the survival of kind ``c``'s
    duration prior; kinds that never end alone keep ``S = 1``), so a problem that
    persists becomes less and less likely to be one that goes away by itself.

    Parameters
    ----------
    active : Rows
        One row per case (e.g. the ``active`` cases of
        :meth:`~guardian_lib.decision.PolicyBase.case_decisions`) with the status columns (``online``, ``outage``, ``degraded``,
        ``impacted``, ``down_type``, ``impacted_min``, ``notified``), ``risk_24h`` and
        the class probabilities.
    model : CostModel
    review_h : float, default 0.25
        Time until the policy looks again. [h]
    wait_h : float, default 2
        Horizon of the *wait* alternative: wait this long, then visit if the problem
        still needs it (a non-myopic comparison with visiting now). [h]

    Returns
    -------
    Rows
        The rows of ``active``; columns ``wait``, ``reboot`` and ``change_wifi_profile`` (NaN where impossible),
        ``schedule_visit`` [R$], ``subtype`` (what the problem looks like: hang, power,
        wifi, los; before any impact: leak or drift) and
        ``p_self_resolving`` (posterior probability that it ends alone) [-].
    """
    cols = ["wait", "reboot", "change_wifi_profile", "schedule_visit", "subtype",
            "p_self_resolving"]  # fmt: skip
    if len(active) == 0:
        return Rows(active.index, {c: np.zeros(0) for c in cols})
    online = np.asarray(active["online"], dtype=bool)
    outage = np.asarray(active["outage"], dtype=bool)
    dg = ~online & (np.asarray(active["down_type"], dtype=object) == "DYING_GASP")
    los = ~online & ~dg
    subtype = np.where(dg, "power", np.where(online & outage, "hang", "wifi"))
    subtype = np.where(los, "los", subtype)
    elapsed = np.asarray(active["impacted_min"], dtype=float) / 60.0
    notified = np.asarray(active["notified"], dtype=bool)
    rate = impact_cost_rate_brl_per_h(outage, notified, model)
    # A drifting ONU with no impact yet costs its risk of an outage.
    not_impacted = ~np.asarray(active["impacted"], dtype=bool)
    risk = np.asarray(active["risk_24h"], dtype=float)
    rate = np.where(not_impacted, risk * impact_cost_rate_brl_per_h(True, False, model), rate)
    pr, H, C = model.priors, model.horizon_h, model.cost_per_visit_brl
    delay = model.visit_delay_h
    visit_later = C + rate * (wait_h + delay)
    # Customer-premises prior by subtype; an offline ONU with LOS cannot be a hang.
    prem = {"power": pr["power"], "hang": pr["hang"], "wifi": pr["wifi"]}
    kind = {
        "massive_outage": "massive",
        "external_network": "external",
        "unknown": "unknown",
    }
    names = [c.removeprefix("p_") for c in CLASS_COLUMNS]
    jp = names.index("customer_premises")
    q = np.column_stack([np.asarray(active[c], dtype=float) for c in CLASS_COLUMNS])
    # A dying gasp rules fibre and a dead laser out, whatever the scorer says: a visit
    # then fixes only a failed power supply (the time update below still raises its
    # share as the outage outlasts a customer's power cut, so a long one gets a visit).
    q = cap_fixable_on_dying_gasp(q, dg, model.dying_gasp_fixable_share)
    # The customer said on a call-ahead that their power was off (hours ago; NaN: never).
    said_h, since_said = answered_power_off(active, dg, elapsed)
    # A customer who contacted us about the dark ONU (since that answer, if any) most
    # likely has power at home.
    if "contacted_since_down" in active:
        contacted = dg & np.asarray(active["contacted_since_down"], dtype=bool) & since_said
        lr = contact_lr(np.where(np.isnan(said_h), elapsed, said_h), model)
        q[:, jp] = np.where(contacted, q[:, jp] / lr, q[:, jp])
    # Light down on a degraded ONU: a link fault, not Wi-Fi nor a blip (see the function).
    if "rx_drop_db" in active and "tx_drop_db" in active:
        light_down = (
            online & ~outage & np.asarray(active["impacted"], dtype=bool)
            & ((np.asarray(active["rx_drop_db"], dtype=float) >= DRIFT_DB)
               | (np.asarray(active["tx_drop_db"], dtype=float) >= DRIFT_DB))
        )  # fmt: skip
        q = explain_by_light_drop(q, light_down, model.light_drop_other_share)
    surv = np.ones_like(q)
    resid = np.zeros_like(q)  # expected remaining duration within the wait horizon [h]
    still = np.ones_like(q)  # P(still there after the wait horizon)
    forever = np.zeros_like(q)  # expected cost of waiting it out entirely [R$]
    for j, name in enumerate(names):
        if name in kind:
            p = pr[kind[name]]
            s_e = lognormal_survival(elapsed, p)
            surv[:, j] = s_e
            resid[:, j] = lognormal_residual_h(elapsed, p, wait_h)
            still[:, j] = lognormal_survival(elapsed + wait_h, p) / np.maximum(s_e, 1e-12)
            forever[:, j] = rate * lognormal_residual_h(elapsed, p, H)
        elif name == "customer_premises":
            for sub, p in prem.items():
                m = subtype == sub
                if m.any():
                    s_e = lognormal_survival(elapsed[m], p)
                    surv[m, j] = s_e
                    resid[m, j] = lognormal_residual_h(elapsed[m], p, wait_h)
                    still[m, j] = lognormal_survival(elapsed[m] + wait_h, p) / np.maximum(
                        s_e, 1e-12
                    )
                    forever[m, j] = rate[m] * lognormal_residual_h(elapsed[m], p, H)
    # LOS is not a premises problem that ends alone: treat it like equipment.
    surv[los, jp], still[los, jp] = 1.0, 1.0
    # The customer said the power was off: the ONU is dark because the cut goes on
    # (S(e) / S(e_answer)) or because it did not come back when the power did (the
    # prior power-supply share, on the rest): no visit is needed right after the answer.
    said = ~np.isnan(said_h)
    if said.any():
        s_said = lognormal_survival(elapsed[said] - said_h[said], pr["power"])
        on_since = surv[said, jp] / np.maximum(s_said, 1e-12)
        surv[said, jp] = on_since
        for k in ("equipment_fail", "intermittent"):
            surv[said, names.index(k)] = 1.0 - on_since
    q = q * surv
    # Each profile change that did not end the problem makes Wi-Fi less likely (Bayes:
    # an interference episode survives a change with probability 1 − wifi_profile_fix_prob).
    if "wifi_changes" in active:
        tried = np.asarray(active["wifi_changes"], dtype=float)
        q[:, jp] *= np.where(subtype == "wifi", (1 - model.wifi_profile_fix_prob) ** tried, 1.0)
    # A completed visit that left the problem (present at the visit) as it was: a kind a
    # visit fixes survived it with probability 1 − visit_fix_prob (Bayes, as above).
    if "visit_completed_h" in active:
        done_h = np.asarray(active["visit_completed_h"], dtype=float)
        seen = ~np.isnan(done_h) & (elapsed >= done_h)
        if seen.any():
            miss = 1.0 - model.visit_fix_prob
            for k in ("equipment_fail", "intermittent"):
                q[seen, names.index(k)] *= miss
            q[seen & (subtype != "power"), jp] *= miss
    q = q / np.maximum(q.sum(axis=1, keepdims=True), 1e-12)
    fixable = np.zeros_like(q, dtype=bool)
    fixable[:, names.index("equipment_fail")] = True
    fixable[:, names.index("intermittent")] = True
    fixable[:, jp] = subtype != "power"
    never = np.zeros_like(q, dtype=bool)
    never[:, names.index("equipment_fail")] = True
    never[:, names.index("intermittent")] = True
    never[los, jp] = True
    r = rate[:, None]
    # Visit now: fixable kinds end after the delay; the others run their course.
    v = np.where(fixable, r * delay, forever)
    visit = C + (q * v).sum(axis=1)
    # Wait the horizon, then visit what still needs a visit.
    w_fixable = r * resid + still * (C + r * delay)
    w = np.where(never, visit_later[:, None], np.where(fixable, w_fixable, forever))
    # A power cut and a failed power supply look alike (a dark ONU, a dying gasp): an ONU
    # still dark after the wait gets the visit, whatever its cause (priced as skippable
    # for free, a visit won only at a 95 % sure power supply: after 490–850 h dark).
    w[:, jp] = np.where(subtype == "power", forever[:, jp] + still[:, jp] * C, w[:, jp])
    # A visit to a dying gasp is called ahead ("is your power on?"): the technician goes
    # only to a customer the call reaches who has power; a call that does not reach is
    # tried again after call_ahead_retry_h (:mod:`~guardian_lib.decision.call_ahead`).
    power = subtype == "power"
    reach = model.call_ahead_reach_prob
    p_go = np.where(power & (reach > 0), reach * (1.0 - q[:, jp]), 1.0)
    if reach > 0 and power.any():
        ca = model.call_ahead_cost_brl
        again = (1 - reach) * (ca + rate * model.call_ahead_retry_h)  # not reached: later
        q_need = (q * never).sum(axis=1)  # the shares only a visit ends (a power supply)
        w = np.where(never & power[:, None], w + ca + again[:, None], w)
        w[:, jp] = np.where(power, forever[:, jp] + still[:, jp] * ca, w[:, jp])
        trips = p_go + q_need * (1 - reach)  # now, or after a call that reaches later
        visit = np.where(power, visit + ca - (1 - trips) * C + q_need * again, visit)
    wait = (q * w).sum(axis=1)
    hang = np.where(subtype == "hang", q[:, jp], 0.0)
    p_fix = model.reboot_fix_prob
    reboot = (
        model.reboot_cost_brl
        + hang * (p_fix * rate * 0.1 + (1 - p_fix) * w[:, jp])
        + (wait - hang * w[:, jp])
    )
    reboot = np.where(online & (subtype == "hang"), reboot, np.nan)
    # Wi-Fi profile change: ends the premises (Wi-Fi) share of the problem with p_wfix.
    wifi_like = online & ~outage & (subtype == "wifi")
    prem = q[:, jp]
    p_wfix = model.wifi_profile_fix_prob
    change = model.wifi_change_cost_brl + prem * (1 - p_wfix) * w[:, jp] + (wait - prem * w[:, jp])
    change = np.where(wifi_like & np.asarray(active["impacted"], dtype=bool), change, np.nan)
    self_res = (q * ~never).sum(axis=1)
    # Not hurt yet: the case is open on risk alone (see the module docstring).
    if not_impacted.any():
        out_rate = impact_cost_rate_brl_per_h(True, False, model)
        # What the risk is about: the scorer's causes, or where it leaves them open (the
        # ML models do on rows without a symptom) the precursors seen (proactive.py).
        premises, fixable_share = risk_grounds(active)
        leak = not_impacted & online & (premises >= 0.5)
        drift = not_impacted & ~leak
        t_react = review_h + 0.1  # the next round reboots the hung CPE (a few minutes down)
        wait_leak = risk * (model.reboot_cost_brl + out_rate * t_react)
        reboot_leak = model.reboot_cost_brl + (1 - p_fix) * wait_leak
        later = C + out_rate * (review_h + delay)
        wait_drift = risk * later
        visit_drift = C + risk * (1 - fixable_share) * later
        wait = np.where(leak, wait_leak, np.where(drift, wait_drift, wait))
        reboot = np.where(leak, reboot_leak, reboot)
        visit = np.where(leak, C + wait_leak, np.where(drift, visit_drift, visit))
        subtype = np.where(leak, "leak", np.where(drift, "drift", subtype))
        self_res = np.where(not_impacted, 1.0 - risk, self_res)
    return Rows(
        active.index,
        {"wait": wait, "reboot": reboot, "change_wifi_profile": change, "schedule_visit": visit,
         "subtype": subtype, "p_self_resolving": self_res, "p_go": p_go},
    )  # fmt: skip


@dataclass
class ExpectedCostPolicy(PolicyBase):
    """Least expected cost per case (see the module docstring).

    Parameters
    ----------
    costs : CostModel, optional
    settings : AutopilotSettings, optional
        Cooldown and daily limit the policy plans with (the safety layer enforces them
        again); ``cost_per_visit`` overrides ``costs.cost_per_visit_brl``.
    notify_after_min : float, default 10
        Outage duration after which the customer is notified. [min]
    min_visit_min : float, default 15
        A problem must be seen this long before a visit is considered. [min]
    review_h : float, default 0.25
        How often the policy is called. [h]
    wifi_retry_min : float, default 60
        Least time between two Wi-Fi profile changes of one CPE: long enough to see
        whether the previous one ended the problem. [min]
    wifi_max_changes : int, default 8
        Wi-Fi profile changes per case before only *wait* and a visit remain: a bound on
        how often one customer's Wi-Fi is reconfigured (one working day of hourly
        tries), not the stopping rule. The cost comparison stops first when the failed
        changes (Bayes) have made a visit cheaper. With 3, a real interference episode
        survived all three tries one time in five (0.6³) and then waited for the
        next regular visit slot, a day or more, while a fourth change would have ended
        it with probability 0.4. [-]
    regular_slot_max_self_resolving : float, default 0.5
        A visit for degraded service takes the next regular slot only while the problem
        is at least this likely to end by itself (posterior ``p_self_resolving``); below
        it the visit is a priority one (see :func:`visit_priority`). [-]
    """

    costs: CostModel = field(default_factory=CostModel)
    settings: AutopilotSettings = field(default_factory=AutopilotSettings)
    notify_after_min: float = 10.0
    min_visit_min: float = 15.0
    review_h: float = 0.25
    massive_threshold: float = 0.6
    min_neighbours: int = 2
    wifi_retry_min: float = 60.0
    wifi_max_changes: int = 8
    regular_slot_max_self_resolving: float = 0.5
    name: str = "autopilot"
    version: str = "3"

    def __post_init__(self) -> None:
        if self.costs.cost_per_visit_brl != self.settings.cost_per_visit:
            self.costs = self.costs.model_copy(
                update={"cost_per_visit_brl": self.settings.cost_per_visit}
            )

    def proactive_grounds(self, rows: Rows) -> np.ndarray:
        """A case opens on risk alone only where a proactive action could answer it.

        A leak or a drift a visit fixes (:func:`~guardian_lib.decision.proactive.proactive_grounds`):
        a risk the scorer ties to no cause and no precursor shows leaves nothing to do but
        wait for a symptom, which opens its case in the same round.
        """
        return proactive_grounds(rows)

    def decide(self, snapshot: Snapshot) -> list[Decision]:
        """Decisions for one snapshot (see the module docstring)."""
        snap = snapshot
        out, active, with_order = self.common_decisions(snap)
        if len(active) == 0:
            return out
        active = with_visit_hours(with_call_ahead_hours(active, snap.ts), snap.ts)
        table = case_costs(active, self.costs, self.review_h).records()
        cooldown = self.settings.reboot_cooldown_minutes
        hold_rule, hold_min = self.reboot_holds(snap, active)
        order_status = snap.order_status()
        # Plain dicts: a row-wise pandas Series per case costs more than the decision.
        for onu, r, c, held_by, held_min in zip(
            active.index,
            active.records(),
            table,
            hold_rule,
            hold_min,
            strict=True,
        ):
            onu = str(onu)
            case_id = r["case_id"] if isinstance(r["case_id"], str) else None
            last = r.get("last_reboot_at")
            since = (
                np.inf
                if last is None or pd.isna(last)
                else (snap.ts - pd.Timestamp(last)).total_seconds() / 60.0
            )
            options = {"wait": float(c["wait"]), "schedule_visit": float(c["schedule_visit"])}
            waits_for = None
            if not np.isnan(c["reboot"]) and since >= cooldown:
                if held_by is None:
                    options["reboot"] = float(c["reboot"])
                elif np.isfinite(held_min):
                    # The safety layer would refuse a reboot now (the CPE's cooldown or
                    # daily limit, e.g. rebooted in an earlier case): not an option, but
                    # waiting for it is (non-myopic, as for the Wi-Fi change below).
                    rate = float(impact_cost_rate_brl_per_h(r["outage"], r["notified"], self.costs))
                    later = float(c["reboot"]) + rate * held_min / 60.0
                    if later < options["wait"]:
                        options["wait"], waits_for = later, "reboot"
            last_w = r.get("last_wifi_change_at")
            since_w = (
                np.inf
                if last_w is None or pd.isna(last_w)
                else (snap.ts - pd.Timestamp(last_w)).total_seconds() / 60.0
            )
            tries_left = int(r.get("wifi_changes", 0)) < self.wifi_max_changes
            if not np.isnan(c["change_wifi_profile"]) and tries_left:
                if since_w >= self.wifi_retry_min:
                    options["change_wifi_profile"] = float(c["change_wifi_profile"])
                else:
                    # Non-myopic wait: the next change is allowed in t_next hours.
                    t_next = (self.wifi_retry_min - since_w) / 60.0
                    rate = float(impact_cost_rate_brl_per_h(r["outage"], r["notified"], self.costs))
                    retry = float(c["change_wifi_profile"]) + rate * t_next
                    if retry < options["wait"]:
                        options["wait"], waits_for = retry, "change_wifi_profile"
            has_visit = onu in with_order or isinstance(r.get("visit_os_id"), str)
            said = r.get("power_off_said_h", np.nan)
            calls_held = call_ahead_held(r, self.costs, c["subtype"])
            # After a visit the field service cancelled or completed (visits.py).
            revisit_held = None if has_visit else visit_held(r, self.costs)
            held = (
                calls_held
                or revisit_held
                or (r["impacted"] and r["impacted_min"] < self.min_visit_min)
            )
            # A problem that hurt within stable_minutes is not over (the case lifecycle's
            # reading): a link flapping between errors and an outage keeps its priority.
            hurt = bool(r["impacted"]) or float(r.get("stable_min", np.inf)) < self.stable_minutes
            priority = visit_priority(r["outage"], hurt, c["p_self_resolving"],
                                      self.regular_slot_max_self_resolving)  # fmt: skip
            # A visit is what this round would order if the case had none: does the
            # case's open order still fit it (visits.py)?
            wants_visit = not held and min(options, key=options.get) == "schedule_visit"
            own_os = r.get("visit_os_id")
            outdated = visit_outdated(
                r, order_status.get(own_os) if isinstance(own_os, str) else None,
                VISIT_REASON.format(subtype="power"), wants_visit and priority == "high",
            )  # fmt: skip
            if has_visit or held:
                options.pop("schedule_visit")
            best = min(options, key=options.get)
            rationale = {
                "costs_brl": {k: round(v, 2) for k, v in options.items()},
                "subtype": str(c["subtype"]),
                **({"wait_for": waits_for} if waits_for else {}),
                **({"reboot_held_by": held_by} if held_by is not None else {}),
                **({"visit_held_by": revisit_held} if revisit_held else {}),
                "p_self_resolving_posterior": round(float(c["p_self_resolving"]), 3),
                **({"contacted_since_down": True} if r.get("contacted_since_down") else {}),
                **({"power_off_said_h": round(float(said), 2)} if said >= 0 else {}),
                "top_reasons": json.loads(r["top_reasons"]),
                "p": {
                    k: round(float(r[f"p_{k}"]), 3)
                    for k in ("massive_outage", "customer_premises", "equipment_fail",
                              "external_network", "intermittent", "unknown")
                },
            }  # fmt: skip
            probs = [float(r[f"p_{k}"]) for k in ("customer_premises", "equipment_fail")]
            if r["outage"] and not r["notified"] and r["impacted_min"] >= self.notify_after_min:
                out.append(
                    self._d(snap, onu, "notify", targets=(onu,), case_id=case_id,
                            confidence=float(r["anomaly_score"]),
                            expected_cost_brl=self.costs.notify_cost_brl,
                            rationale={"rule": "tell the customer we know", **rationale},
                            params={"template": "individual_problem", "until_h": 6.0})
                )  # fmt: skip
            if outdated is not None:
                why = {"rule": "cancel the case's visit", "visit_outdated": outdated,
                       "visit_priority": r.get("visit_priority"),
                       "visit_reason": r.get("visit_reason"),
                       "order_status": order_status.get(own_os)}  # fmt: skip
                out.append(
                    self._d(snap, onu, "cancel_visit", targets=(own_os,), case_id=case_id,
                            rationale={**why, **({"reorder_priority": priority}
                                                 if outdated == "priority" else {}),
                                       **rationale})
                )  # fmt: skip
                if outdated == "priority":
                    continue  # the priority visit is ordered next round (no other action)
            if best == "reboot":
                out.append(
                    self._d(snap, onu, "reboot", targets=(str(r["cpe_id"]),), case_id=case_id,
                            confidence=probs[0], expected_cost_brl=options[best],
                            rationale=rationale)
                )  # fmt: skip
            elif best == "change_wifi_profile":
                out.append(
                    self._d(snap, onu, "change_wifi_profile", targets=(str(r["cpe_id"]),),
                            case_id=case_id, confidence=probs[0],
                            expected_cost_brl=options[best], rationale=rationale)
                )  # fmt: skip
            elif best == "schedule_visit":
                params = {"priority": priority, "reason": VISIT_REASON.format(subtype=c["subtype"])}
                # "is your power on?" first: a dying gasp, a repeat to a customer found absent
                confirm, why = visit_confirmation(r, c["subtype"], c["p_go"], self.costs)
                params, rationale = {**params, **confirm}, {**rationale, **why}
                rationale = {**rationale, **revisit_rationale(r)}  # names the previous order
                out.append(
                    self._d(snap, onu, "schedule_visit", targets=(onu,), case_id=case_id,
                            confidence=float(max(probs[1], 1 - r["p_unknown"])),
                            expected_cost_brl=options[best], rationale=rationale, params=params)
                )  # fmt: skip
        return out


def make_autopilot(
    scorer: Scorer | None = None,
    settings: AutopilotSettings | None = None,
    costs: CostModel | None = None,
) -> tuple[Scorer, ExpectedCostPolicy]:
    """The autopilot's scorer and policy.

    Parameters
    ----------
    scorer : callable, optional
        ``scorer(snapshot) -> predictions``; the ML models of ``guardian_lib.models``
        plug in here. Defaults to :class:`~guardian_lib.decision.scorer.RuleScorer`.
    settings : AutopilotSettings, optional
        Limits, and the thresholds of the topology evidence for a shared outage
        (:meth:`~guardian_lib.decision.settings.AutopilotSettings.outage_evidence`).
    costs : CostModel, optional

    Returns
    -------
    (scorer, policy)
    """
    from guardian_lib.decision.scorer import RuleScorer

    settings = settings or AutopilotSettings()
    policy = ExpectedCostPolicy(
        costs=costs or CostModel(), settings=settings, outage_evidence=settings.outage_evidence()
    )
    return (scorer or RuleScorer(outage_evidence=settings.outage_evidence())), policy
