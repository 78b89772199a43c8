"""Customer notices that follow the autopilot's actions — one rule for operate and the replay.

:func:`notices_for_outcome` decides which notice an executed action calls for:

* a **reboot verified as succeeded** → ``equipment_rebooted`` to the ONU's customer, under
  the reboot's case (its decision when it has none): one per customer per case;
* a **visit held or cancelled because of an outage** → ``visit_cancelled`` under the open
  incident covering the ONU: ``hold_visits`` (the policy holds the visits of a massive
  outage's members; the decision's ``visit_onus`` names whose visit each order is) and a
  ``cancel_visit`` whose case was merged into a massive incident. A visit cancelled
  because the customer's service came back is not the outage's doing: no notice.

``guardian operate`` (and the twin) call it with each
:class:`~guardian_lib.decision._types.ActionOutcome` the autopilot's listeners hear
(:meth:`guardian_lib.alerts.customers.CustomerNotifier.action_outcome`);
``guardian alerts replay`` with the outcomes rebuilt from the audit trail
(:func:`outcomes_from_audit`). Who is told, and when, is then the notice rules' business
(opt-out, quiet hours, one opening notice per customer per incident).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from guardian_lib.decision._types import ActionOutcome

__all__ = ["NoticeRequest", "IncidentLookup", "notices_for_outcome", "outcomes_from_audit"]

#: ``incident_of(onu_id, at)`` → ``(incident_id, start_at)`` of the open incident that
#: covers the ONU at ``at``, or None.
IncidentLookup = Callable[[str, pd.Timestamp], tuple[str, pd.Timestamp] | None]


@dataclass(frozen=True)
class NoticeRequest:
    """One notice an action calls for (before the opt-out / quiet-hours / once rules).

    Attributes
    ----------
    onu_id : str
        Whose customer is told.
    incident_id : str
        The incident (or case) the notice belongs to: the per-incident limit's key.
    template : str
        ``equipment_rebooted`` or ``visit_cancelled``.
    at : pandas.Timestamp
        When it is asked for (UTC).
    ctx : dict
        Template fields (``when``; ``visit``, ``eta``, ``start``).
    """

    onu_id: str
    incident_id: str
    template: str
    at: pd.Timestamp
    ctx: dict[str, Any] = field(default_factory=dict)


def _utc(ts: Any) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def notices_for_outcome(
    outcome: ActionOutcome, incident_of: IncidentLookup, eta_h: float = 4.0
) -> list[NoticeRequest]:
    """The notices one action outcome calls for (see the module docstring).

    Parameters
    ----------
    outcome : ActionOutcome
    incident_of : callable
        :data:`IncidentLookup` over the incidents open then.
    eta_h : float, default 4
        ETA announced in ``visit_cancelled``, after the incident's start. [h]

    Returns
    -------
    list of NoticeRequest
        Empty for any other action, or an action that was not really done.
    """
    o, at = outcome, _utc(outcome.at)
    if o.action == "reboot":
        if o.status != "succeeded":
            return []
        return [NoticeRequest(str(o.subject), str(o.case_id or o.decision_id),
                              "equipment_rebooted", at, {"when": at})]  # fmt: skip
    if o.status != "done":
        return []
    if o.action == "hold_visits":
        onu = (o.params.get("visit_onus") or {}).get(o.target)
    elif o.action == "cancel_visit" and "massive" in o.rule:
        onu = o.subject
    else:
        return []
    found = incident_of(str(onu), at) if onu is not None else None
    if found is None:
        return []
    iid, start = found
    start = _utc(start)
    ctx = {"visit": at, "start": start, "eta": start + pd.Timedelta(hours=float(eta_h))}
    return [NoticeRequest(str(onu), str(iid), "visit_cancelled", at, ctx)]


def _loads(v: Any) -> dict[str, Any]:
    if isinstance(v, dict):
        return v
    if isinstance(v, str) and v:
        try:
            out = json.loads(v)
        except json.JSONDecodeError:
            return {}
        return out if isinstance(out, dict) else {}
    return {}


def outcomes_from_audit(actions: pd.DataFrame, decisions: pd.DataFrame) -> list[ActionOutcome]:
    """The :class:`ActionOutcome` of every final action row of an audit trail.

    Parameters
    ----------
    actions, decisions : pandas.DataFrame
        The audit's ``actions`` and ``decisions`` tables (a decision row gives the
        subject, case, rule and parameters; an action without one keeps its target as
        subject).

    Returns
    -------
    list of ActionOutcome
        In ``finished_at`` order; ``pending`` rows (a reboot not verified yet) left out.
    """
    if not len(actions):
        return []
    by_id: dict[str, dict[str, Any]] = {}
    if len(decisions):
        for r in decisions[["decision_id", "subject", "case_id", "rationale"]].itertuples():
            by_id[str(r.decision_id)] = {"subject": r.subject, "case_id": r.case_id,
                                         "rationale": _loads(r.rationale)}  # fmt: skip
    acts = actions.loc[actions["status"] != "pending"].copy()
    acts["outcome_at"] = pd.to_datetime(acts["finished_at"], utc=True).fillna(
        pd.to_datetime(acts["started_at"], utc=True)
    )
    out = []
    for a in acts.sort_values("outcome_at", kind="stable").itertuples():
        d = by_id.get(str(a.decision_id), {})
        rationale = d.get("rationale", {})
        result = _loads(getattr(a, "result", None))
        case = d.get("case_id")  # None when decided in the step that opened the case
        case = None if case is None or pd.isna(case) else str(case)
        out.append(ActionOutcome(
            str(a.decision_id), str(a.action_type), str(d.get("subject") or a.target),
            str(a.target), str(a.status), a.outcome_at, result.get("case_id") or case,
            str(rationale.get("rule", "")), dict(rationale.get("params") or {}),
        ))  # fmt: skip
    return out
