"""Follow-up of a case's technician visit: what happened to the order, and whether the
case may get another one.

A case keeps the order it opened (``visit_os_id``) while the order is open. Once the
order leaves the field-service system's open orders the engine asks its status and
closure code, once (:func:`follow_visits`; one call per order with a client that has
``closure(os_id)``), and the case records what became of it:

* **cancelled by the customer on the call-ahead** (``customer_power_off``,
  ``customer_unreached``; :mod:`~guardian_lib.decision.call_ahead`): the answer
  (``power_off_said_at``, ``call_unanswered_at``), as before;
* **cancelled by someone else** (the dispatcher, the ticketing system, a technician who
  could not get in; not the autopilot, whose own ``cancel_visit`` clears the case's visit
  before it is followed): ``visit_cancelled_at`` and the closure code
  (``visit_cancel_code``, ``cancelled`` when the system gives none). The policy may order
  a new visit, but not within ``revisit_after_cancel_h``
  (:class:`~guardian_lib.decision.costs.CostModel`): the dispatcher's decision is
  respected for a while, never forever;
* **completed** (the technician went): ``visit_completed_at``, the closure code
  (``visit_completed_code``: ``no_fault_found``, ``customer_absent`` …, None for none)
  and ``visits_completed``.
  A case whose problem persists after it may get one more visit (a repeat truck roll),
  not within ``revisit_after_visit_h`` and at most ``max_repeat_visits`` per case; its
  price counts the visit that did not fix it (a problem present at the visit is a
  fixable one with the odds times ``1 − visit_fix_prob``,
  :func:`~guardian_lib.decision.expected_cost.case_costs`);
* any other status (``scheduled``, ``unknown`` while the system does not answer): asked
  again next round.

The previous order's id is kept (``last_visit_os_id``) and the decision that orders a
visit after it names it (:func:`revisit_rationale`). While the order is open the case
also keeps the priority and reason it was placed with (``visit_priority``,
``visit_reason``): an order that no longer fits the case is cancelled
(:func:`visit_outdated`: a regular slot where a priority visit is now needed, a dying
gasp's visit to an ONU back online).

Every policy follows its visits this one way: a case may get a new visit when it has no
open order (:func:`visit_open`) and :func:`visit_held` gives no reason to wait. The
expected-cost policy and the rule policy read all three holds; the oracle, which knows
whether a fault persists and whether a visit ends it, only the field service's
cancellation (``knows_outcome``). A repeat to a customer a technician found absent may be
called ahead first (:func:`~guardian_lib.decision.call_ahead.absent_call_ahead`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd

from guardian_lib.decision._columns import Rows
from guardian_lib.decision.call_ahead import POWER_OFF_OUTCOME, UNREACHED_OUTCOME, hours_since
from guardian_lib.decision.costs import CostModel

__all__ = [
    "VISIT_CASE_COLUMNS",
    "follow_visits",
    "order_closure",
    "revisit_rationale",
    "visit_held",
    "visit_open",
    "visit_outdated",
    "with_visit_hours",
]

#: Case columns of the follow-up (:data:`~guardian_lib.decision._base.OPTIONAL_CASE_COLUMNS`)
#: with their value for a case without one. ``visit_priority`` and ``visit_reason``: the
#: priority and reason the case's open order was placed with (the ``schedule_visit``
#: parameters; None once it is no longer the case's), so that the policy can tell a
#: regular-slot visit from a priority one and a dying gasp's visit from others.
VISIT_CASE_COLUMNS: dict[str, Any] = {
    "visit_priority": None,
    "visit_reason": None,
    "visit_cancelled_at": None,
    "visit_cancel_code": None,
    "visit_completed_at": None,
    "visit_completed_code": None,
    "visits_completed": 0,
    "last_visit_os_id": None,
}
#: Hours-since columns the policy derives from the case columns.
_WHEN = {"visit_cancelled_at": "visit_cancelled_h", "visit_completed_at": "visit_completed_h"}


def order_closure(field: Any, os_id: str) -> tuple[str, str | None]:
    """Status and closure code of a service order, with one call where the client can.

    Parameters
    ----------
    field : FieldClient
        With ``closure(os_id) -> (status, code)`` (one request), else ``outcome(os_id)``
        then ``status(os_id)`` (a client written before ``closure``; the status is not
        asked when the code is a call-ahead's answer), else ``status(os_id)`` alone.
    os_id : str

    Returns
    -------
    (str, str or None)
        ``scheduled``, ``in_progress``, ``completed``, ``cancelled`` or ``unknown``, and
        the closure code (None for none).
    """
    closure = getattr(field, "closure", None)
    if callable(closure):
        status, code = closure(os_id)
        return str(status), (None if code is None else str(code))
    code = None
    if callable(getattr(field, "outcome", None)):
        code = field.outcome(os_id)
        if code in (POWER_OFF_OUTCOME, UNREACHED_OUTCOME):
            return "cancelled", str(code)
    return str(field.status(os_id)), (None if code is None else str(code))


def follow_visits(
    cases: dict[str, dict[str, Any]], field: Any, open_ids: Collection[str], ts: pd.Timestamp
) -> int:
    """Record on each case what became of its visit once the order is no longer open.

    Parameters
    ----------
    cases : dict
        The engine's open cases (changed in place: see the module docstring).
    field : FieldClient or None
        None (no field service, simulate mode): nothing is followed.
    open_ids : collection of str
        Ids of the open service orders (the snapshot's ``service_orders``).
    ts : pandas.Timestamp
        Now (UTC): the time recorded.

    Returns
    -------
    int
        Orders asked this round. [-]
    """
    if field is None:
        return 0
    asked = 0
    for case in cases.values():
        os_id = case.get("visit_os_id")
        if not isinstance(os_id, str) or os_id.startswith("simulated:") or os_id in open_ids:
            continue
        status, code = order_closure(field, os_id)
        asked += 1
        called = case.get("call_ahead_os_id") == os_id
        if code == POWER_OFF_OUTCOME:
            case["power_off_said_at"] = ts
        elif status == "cancelled" and called and code in (None, UNREACHED_OUTCOME):
            case["call_unanswered_at"] = ts  # no code: the answer is unknown, tried again
        elif status == "cancelled":
            case["visit_cancelled_at"] = ts
            case["visit_cancel_code"] = code or "cancelled"
            case["last_visit_os_id"] = os_id
        elif status == "completed":
            case["visit_completed_at"] = ts
            case["visit_completed_code"] = code
            case["visits_completed"] = int(case.get("visits_completed") or 0) + 1
            case["last_visit_os_id"] = os_id
        else:
            continue  # not final (or unknown): asked again next round
        case["visit_os_id"] = None
        case["call_ahead_os_id"] = None
        case["visit_priority"] = case["visit_reason"] = None
    return asked


def visit_open(row: dict[str, Any]) -> bool:
    """Whether a case's visit is still its own open order (``visit_os_id``; cleared by
    :func:`follow_visits` once the order is cancelled or completed)."""
    return isinstance(row.get("visit_os_id"), str)


def with_visit_hours(active: Rows, ts: pd.Timestamp) -> Rows:
    """``active`` with ``visit_cancelled_h`` and ``visit_completed_h`` (hours since the
    case columns ``visit_cancelled_at`` and ``visit_completed_at``; NaN for none)."""
    add = {h: hours_since(ts, active[at]) for at, h in _WHEN.items() if at in active}
    return active.with_columns(**add) if add else active


def visit_held(row: dict[str, Any], model: CostModel, knows_outcome: bool = False) -> str | None:
    """Why a case may get no new visit now, after its last one, or None.

    Parameters
    ----------
    row : dict
        A case with the hours of :func:`with_visit_hours` and ``visits_completed``.
    model : CostModel
        ``revisit_after_cancel_h``, ``revisit_after_visit_h``, ``max_repeat_visits``.
    knows_outcome : bool, default False
        The policy knows whether the problem persists and whether a visit ends it (the
        oracle of the backtest): only the field service's cancellation holds it. The wait
        after a completed visit and the cap on repeats are for a policy that only
        observes (time to see whether the visit fixed it; no loop of visits on a problem
        a truck does not fix).

    Returns
    -------
    str or None
        ``cancelled_recently`` (within ``revisit_after_cancel_h`` of a cancellation by the
        field service), ``visited_recently`` (within ``revisit_after_visit_h`` of a
        completed visit), ``repeat_cap`` (``1 + max_repeat_visits`` visits made).
    """
    if row.get("visit_cancelled_h", np.nan) < model.revisit_after_cancel_h:
        return "cancelled_recently"
    if knows_outcome:
        return None
    done = int(row.get("visits_completed") or 0)
    if done > model.max_repeat_visits:
        return "repeat_cap"
    if row.get("visit_completed_h", np.nan) < model.revisit_after_visit_h:
        return "visited_recently"
    return None


def visit_outdated(
    row: dict[str, Any], order_status: str | None, power_reason: str, needs_priority: bool
) -> str | None:
    """Why the case's own open order no longer fits the case (to be cancelled now), or None.

    * ``back_online`` — the order is a dying gasp's visit (``visit_reason`` is
      ``power_reason``) and the ONU is online again. Such a visit exists only to replace a
      failed ONU power supply (a dying gasp rules fibre and a dead laser out,
      :func:`~guardian_lib.decision.caps.cap_fixable_on_dying_gasp`), and a failed supply
      does not come back by itself: the ONU's return shows its power is on, the visit has
      nothing left to fix. Cancelled scheduled or in progress (a technician on the road is
      called back): waiting for the case to close, 30 min back and stable, let the call-ahead
      of an order placed just before the customer's power returned hear "power on" and
      send the technician to a working ONU.
    * ``priority`` — the order waits for a regular slot (``visit_priority`` ``normal``,
      still ``scheduled``) while the visit the case needs now is a priority one
      (``needs_priority``: the policy would order a visit this round and
      :func:`~guardian_lib.decision.expected_cost.visit_priority` makes it ``high``, e.g.
      a drifting laser's proactive visit, planned ahead, whose laser has since died). The
      regular slot comes hours to days later (the cost comparison priced a visit after
      ``visit_delay_h``); a priority order replaces it (the next round orders it: a field
      service keeps one open order per ONU).

    Parameters
    ----------
    row : dict
        A case with ``visit_os_id``, ``visit_priority``, ``visit_reason`` and ``online``.
    order_status : str or None
        Status of the case's order among the open orders (``scheduled``,
        ``in_progress``; None when it is not open).
    power_reason : str
        The ``reason`` the policy gives a dying gasp's visit.
    needs_priority : bool
        The case would get a priority visit now if it had none.

    Returns
    -------
    str or None
    """
    if not visit_open(row) or order_status not in ("scheduled", "in_progress"):
        return None
    if row.get("visit_reason") == power_reason and bool(row.get("online")):
        return "back_online"
    if order_status == "scheduled" and row.get("visit_priority") == "normal" and needs_priority:
        return "priority"
    return None


def revisit_rationale(row: dict[str, Any]) -> dict[str, Any]:
    """``revisit`` for the rationale of a visit ordered after an earlier one of its case
    (empty for a first visit): the previous order, what became of it and when.

    Parameters
    ----------
    row : dict
        A case with the hours of :func:`with_visit_hours`.

    Returns
    -------
    dict
        ``{"revisit": {"previous_os_id", "after", "hours_since", ...}}`` where ``after``
        is ``completed`` (with ``repeat``: the visits made) or ``cancelled``, each with
        its closure ``code``; hours since the later of the two. [h]
    """
    prev = row.get("last_visit_os_id")
    if not isinstance(prev, str):
        return {}
    done_h = row.get("visit_completed_h", np.nan)
    cancel_h = row.get("visit_cancelled_h", np.nan)
    done_h = np.inf if done_h is None or np.isnan(done_h) else float(done_h)
    cancel_h = np.inf if cancel_h is None or np.isnan(cancel_h) else float(cancel_h)
    if not np.isfinite(min(done_h, cancel_h)):
        return {}
    if done_h <= cancel_h:
        why = {"after": "completed", "repeat": int(row.get("visits_completed") or 0),
               "code": row.get("visit_completed_code"), "hours_since": round(done_h, 2)}  # fmt: skip
    else:
        why = {"after": "cancelled", "code": row.get("visit_cancel_code"),
               "hours_since": round(cancel_h, 2)}  # fmt: skip
    return {"revisit": {"previous_os_id": prev, **why}}
