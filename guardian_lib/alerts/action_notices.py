"""Customer notices that follow the autopilot's actions — one rule for operate and the replay.

:func:`notices_for_outcome` decides which notice an executed action calls for:

* a **reboot verified as succeeded** → ``equipment_rebooted`` to the ONU's customer, under
  the reboot's case (its decision when it has none): one per customer per case;
* a **visit held or cancelled because of an outage** → ``visit_cancelled`` under the open
  incident covering the ONU: ``hold_visits`` (the policy holds the visits of a massive
  outage's members; the decision's ``visit_onus`` names whose visit each order is) and a
  ``cancel_visit`` whose case was merged into a massive incident. A visit cancelled
  because the customer's service came back is not the outage's doing: no notice.

* an autopilot **notify** → :func:`notice_for_notify`: ``massive_outage`` →
  ``outage_detected`` under the incident that has the ONU as a *member*,
  ``individual_problem`` → ``problem_detected``. Who is told is the decision's targets:
  for an outage the policy notifies the incident's members (the ONUs its cause took
  down), never every ONU under its scope — a customer whose ONU stayed healthy is not
  told of an outage. ``guardian operate``'s notifier calls :func:`notice_for_notify`
  when the dispatcher hands it the decision; the replay through this function.

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

__all__ = [
    "AUTOPILOT_TEMPLATES", "NoticeRequest", "IncidentLookup", "MemberLookup",
    "notice_for_notify", "notices_for_outcome", "outcomes_from_audit",
]  # fmt: skip

#: The autopilot's ``notify`` template → the notice template sent.
AUTOPILOT_TEMPLATES = {
    "massive_outage": "outage_detected",
    "individual_problem": "problem_detected",
}

#: ``incident_of(onu_id, at)`` → ``(incident_id, start_at)`` of the open incident that
#: covers the ONU at ``at``, or None.
IncidentLookup = Callable[[str, pd.Timestamp], tuple[str, pd.Timestamp] | None]
#: ``member_of(onu_id, at)`` → the id of the open incident that has the ONU as a member
#: at ``at``, or None.
MemberLookup = Callable[[str, pd.Timestamp], str | None]


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


def notice_for_notify(
    onu_id: str,
    template: str,
    until_h: float,
    at: pd.Timestamp,
    member_of: MemberLookup,
    case_id: str | None = None,
) -> NoticeRequest | None:
    """The notice an autopilot ``notify`` of one ONU asks for.

    Parameters
    ----------
    onu_id : str
        A target of the ``notify`` decision (the policy chose who is told).
    template : str
        The decision's template (a key of :data:`AUTOPILOT_TEMPLATES`).
    until_h : float
        The decision's ETA after ``at``. [h]
    at : pandas.Timestamp
        When the notice is asked for (UTC).
    member_of : callable
        :data:`MemberLookup` over the incidents open then.
    case_id : str, optional
        The ONU's open case: the notice's key when the ONU is no incident's member.

    Returns
    -------
    NoticeRequest or None
        None for an unknown template. Its ``incident_id`` is the incident that has the
        ONU as a member, else the case, else ``<onu>@<date>`` (one a day at most).
    """
    notice = AUTOPILOT_TEMPLATES.get(str(template))
    if notice is None:
        return None
    at = _utc(at)
    iid = member_of(str(onu_id), at) or case_id or f"{onu_id}@{at.date()}"
    ctx = {"start": at, "eta": at + pd.Timedelta(hours=float(until_h))}
    return NoticeRequest(str(onu_id), str(iid), notice, at, ctx)


def notices_for_outcome(
    outcome: ActionOutcome,
    incident_of: IncidentLookup,
    eta_h: float = 4.0,
    member_of: MemberLookup | None = None,
) -> list[NoticeRequest]:
    """The notices one action outcome calls for (see the module docstring).

    Parameters
    ----------
    outcome : ActionOutcome
    incident_of : callable
        :data:`IncidentLookup` over the incidents open then.
    eta_h : float, default 4
        ETA announced in ``visit_cancelled``, after the incident's start. [h]
    member_of : callable, optional
        :data:`MemberLookup`, for ``notify`` outcomes (:func:`notice_for_notify`);
        without it a ``notify`` asks for nothing (``guardian operate``'s notifier queued
        it when the dispatcher called it).

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
    if o.action == "notify":
        if member_of is None:
            return []
        req = notice_for_notify(o.target, str(o.params.get("template", "")),
                                float(o.params.get("until_h", eta_h)), at, member_of, o.case_id)  # fmt: skip
        return [] if req is None else [req]
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
