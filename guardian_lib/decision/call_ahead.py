"""Call-ahead of a dying-gasp visit: "is your power on?" before the truck rolls.

A dark ONU with a dying gasp is a customer's own power cut (usually) or the ONU's failed
power supply (rarely); only the second needs a technician. Before a technician goes,
the dispatch office calls the customer: one whose power is off says so and the visit is
cancelled (closure code :data:`POWER_OFF_OUTCOME`), one whose power is on confirms; a
call that does not reach them sends no technician (:data:`UNREACHED_OUTCOME`: the ONU is
inside the home, nobody would let him in) and is tried again later. The expected-cost policy asks for it on its
visits to dying-gasp rows only (``confirm_first`` in the visit's parameters), because
there the customer's answer tells the two causes apart; on other rows (a hung CPE, Wi-Fi,
LOS) the customer cannot tell what failed, and a visit to a problem that ends by itself
is cancelled anyway when the case closes.

The answer is evidence for the case: :func:`answered_power_off` gives the hours since it
(the engine records when a call-ahead visit came back cancelled with that closure code,
case column ``power_off_said_at``), and :func:`~guardian_lib.decision.expected_cost.case_costs`
prices the rest: a visit confirmed first costs the call plus ``P(go)`` times the visit
(:class:`~guardian_lib.decision.costs.CostModel` ``call_ahead_*``), no new visit within
``call_ahead_quiet_h`` of a "power off" nor ``call_ahead_retry_h`` of a call that did not
reach the customer (:func:`call_ahead_held`).

A repeat visit to a customer a technician found absent (the last completed visit closed
:data:`ABSENT_OUTCOME`) is called ahead too when the expected cost says so
(:func:`absent_call_ahead`): a second absent visit is a truck roll for nothing.
:func:`visit_confirmation` gives the call-ahead of any visit the expected-cost policy
orders.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from guardian_lib.decision._columns import Rows
from guardian_lib.decision.costs import (
    CostModel,
    impact_cost_rate_brl_per_h,
    lognormal_survival,
)

__all__ = [
    "ABSENT_OUTCOME",
    "POWER_OFF_OUTCOME",
    "POWER_QUESTION",
    "UNREACHED_OUTCOME",
    "absent_call_ahead",
    "answered_power_off",
    "call_ahead_held",
    "found_absent",
    "hours_since",
    "visit_call_ahead",
    "visit_confirmation",
    "with_call_ahead_hours",
]

#: Closure code of a visit cancelled because the customer said on the call-ahead that
#: their power is off (the field-service system reports it as the order's outcome).
POWER_OFF_OUTCOME = "customer_power_off"
#: Closure code of a visit cancelled because the call-ahead did not reach the customer
#: (no technician goes: nobody to let him in; the office tries again later).
UNREACHED_OUTCOME = "customer_unreached"
#: Closure code of a visit the technician completed without getting in: nobody home (in
#: the simulator, the customer's own power off, :meth:`simulator.engine.Simulation.visit_premises`).
ABSENT_OUTCOME = "customer_absent"
#: The call-ahead's question on a dying-gasp visit.
POWER_QUESTION = "power_on"
#: Case columns (:data:`~guardian_lib.decision._base.OPTIONAL_CASE_COLUMNS`) with when
#: the last answer came, and the hours-since columns the policy derives from them.
_WHEN = {"power_off_said_at": "power_off_said_h", "call_unanswered_at": "call_unanswered_h"}


def hours_since(ts: pd.Timestamp, at: np.ndarray) -> np.ndarray:
    """Hours from each of ``at`` (timestamps; ``None`` or ``NaT`` for none) to ``ts``.

    Parameters
    ----------
    ts : pandas.Timestamp
        Now (UTC).
    at : ndarray of object
        When something happened, per row.

    Returns
    -------
    ndarray
        [h]; NaN where ``at`` is missing.
    """
    out = np.full(len(at), np.nan)
    for i, v in enumerate(at):
        if v is not None and not pd.isna(v):
            out[i] = (ts - pd.Timestamp(v)).total_seconds() / 3600.0
    return out


def with_call_ahead_hours(active: Rows, ts: pd.Timestamp) -> Rows:
    """``active`` with ``power_off_said_h`` and ``call_unanswered_h`` (hours since the
    case columns ``power_off_said_at`` and ``call_unanswered_at``; NaN for none)."""
    add = {h: hours_since(ts, active[at]) for at, h in _WHEN.items() if at in active}
    return active.with_columns(**add) if add else active


def call_ahead_held(row: Any, model: CostModel, subtype: str = "power") -> bool:
    """Whether a case whose visits are called ahead may get no visit (nor call) now: its
    customer said their power was off less than ``call_ahead_quiet_h`` ago, or a
    call-ahead did not reach them less than ``call_ahead_retry_h`` ago (``row``: a case
    with the hours of :func:`with_call_ahead_hours`). Only a dying gasp's case
    (``subtype`` ``power``) and one whose last visit found the customer absent
    (:func:`found_absent`) are held: their visits are the ones called ahead."""
    if subtype != "power" and not found_absent(row):
        return False
    said = row.get("power_off_said_h", np.nan)
    missed = row.get("call_unanswered_h", np.nan)
    return bool(said < model.call_ahead_quiet_h or missed < model.call_ahead_retry_h)


def answered_power_off(
    active: Rows, dying_gasp: np.ndarray, elapsed_h: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The customer's answer on a call-ahead, as evidence of each case.

    Parameters
    ----------
    active : Rows
        Cases; optional columns ``power_off_said_h`` (hours since the customer said their
        power was off, NaN for no such answer) and ``last_call_min`` (minutes since the
        customer's last contact).
    dying_gasp : ndarray of bool
        Rows offline with a dying gasp (the answer counts only there).
    elapsed_h : ndarray
        How long each problem has lasted (an answer older than that is another outage's). [h]

    Returns
    -------
    said_h : ndarray
        Hours since the answer on dying-gasp rows that have one, NaN elsewhere. [h]
    contact_counts : ndarray of bool
        Whether a contact since the ONU went dark is still evidence: everywhere without
        an answer; with one, only a contact after it (the answer explained the earlier
        ones: the customer's power was off).
    """
    n = len(active)
    said_h = np.full(n, np.nan)
    if "power_off_said_h" in active:
        said_h = np.asarray(active["power_off_said_h"], dtype=float).copy()
        said_h[~np.asarray(dying_gasp, dtype=bool) | ~(said_h <= elapsed_h)] = np.nan
    counts = np.ones(n, dtype=bool)
    said = ~np.isnan(said_h)
    if said.any():
        if "last_call_min" in active:
            last_h = np.asarray(active["last_call_min"], dtype=float) / 60.0
            counts[said] = last_h[said] < said_h[said]
        else:
            counts[said] = False
    return said_h, counts


def visit_call_ahead(model: CostModel, p_go: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parameters and rationale of a dying-gasp visit that is called ahead.

    Parameters
    ----------
    model : CostModel
    p_go : float
        Probability that the technician goes after the call (:func:`case_costs
        <guardian_lib.decision.expected_cost.case_costs>`' ``p_go``). [-]

    Returns
    -------
    params : dict
        ``confirm_first`` and ``confirm_question``, for the field-service system.
    rationale : dict
        ``call_ahead``: the question, the call's cost [R$], reach probability and
        ``p_go`` [-].
    """
    params = {"confirm_first": True, "confirm_question": POWER_QUESTION}
    why = {"call_ahead": {"question": POWER_QUESTION,
                          "cost_brl": model.call_ahead_cost_brl,
                          "reach_prob": model.call_ahead_reach_prob,
                          "p_go": round(float(p_go), 3)}}  # fmt: skip
    return params, why


def found_absent(row: Any) -> bool:
    """Whether a case's last completed visit found the customer absent (closure code
    :data:`ABSENT_OUTCOME`, case column ``visit_completed_code``)."""
    return row.get("visit_completed_code") == ABSENT_OUTCOME


def absent_call_ahead(row: Any, model: CostModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """Call-ahead of a repeat visit to a customer a technician found absent, if it pays.

    The case's last completed visit closed :data:`ABSENT_OUTCOME` and its problem
    persists. A call before the truck rolls asks :data:`POWER_QUESTION`: a customer still
    away (or whose power is still off) says so, or is not reached, and no technician goes
    (the visit is cancelled with :data:`POWER_OFF_OUTCOME` or :data:`UNREACHED_OUTCOME`,
    and the case waits ``call_ahead_quiet_h`` or ``call_ahead_retry_h``,
    :func:`call_ahead_held`); one who is back confirms. With ``p`` the probability that
    the absence still lasts when the technician would arrive, ``C`` the visit, ``ca`` the
    call and ``rate`` the problem's cost per hour
    (:func:`~guardian_lib.decision.costs.impact_cost_rate_brl_per_h`):

    * without the call: ``C`` (the truck rolls; for nothing with probability ``p``);
    * with it: ``ca + (1 − p) · (C + (1 − reach) · (ca + rate · call_ahead_retry_h))``:
      the call, and for a customer who is back the visit, after one more call and
      ``call_ahead_retry_h`` more of the problem when the first call misses them.

    ``p`` comes from the ``power`` duration prior (a customer's own power off, whose long
    tail is the customer away from home): an absence at least as old as the hours ``h``
    since the visit lasts ``visit_delay_h`` more with probability
    ``S(h + visit_delay_h) / S(h)`` (``S``: the prior's survival; ``h``, a lower bound on
    its age, gives the smaller ``p`` of a heavy tail's).

    Parameters
    ----------
    row : dict
        A case with ``visit_completed_code``, ``visit_completed_h`` (hours since the
        visit, :func:`~guardian_lib.decision.visits.with_visit_hours`), ``outage`` and
        ``notified``.
    model : CostModel

    Returns
    -------
    params : dict
        ``confirm_first`` and ``confirm_question`` when the call pays, else empty.
    rationale : dict
        ``call_ahead`` (the question, ``cost_brl`` and ``reach_prob`` as on a dying-gasp
        visit, and the prices) when the call pays, ``no_call_ahead`` (the prices) when it
        does not; each with ``after`` (the code), ``p_absent`` [-], ``with_call_brl`` and
        ``without_brl`` [R$]. Empty when the last visit did not find the customer absent.
    """
    done_h = row.get("visit_completed_h", np.nan)
    if not found_absent(row) or done_h is None or not done_h >= 0:
        return {}, {}
    h, prior = float(done_h), model.priors["power"]
    p = float(lognormal_survival(h + model.visit_delay_h, prior)) / max(
        float(lognormal_survival(h, prior)), 1e-12
    )
    rate = float(impact_cost_rate_brl_per_h(row.get("outage"), row.get("notified"), model))
    ca, reach = model.call_ahead_cost_brl, model.call_ahead_reach_prob
    visit = model.cost_per_visit_brl
    called = ca + (1 - p) * (visit + (1 - reach) * (ca + rate * model.call_ahead_retry_h))
    prices = {"after": ABSENT_OUTCOME, "p_absent": round(p, 3),
              "with_call_brl": round(called, 2), "without_brl": round(visit, 2)}  # fmt: skip
    if not called < visit:
        return {}, {"no_call_ahead": prices}
    params = {"confirm_first": True, "confirm_question": POWER_QUESTION}
    why = {"question": POWER_QUESTION, "cost_brl": ca, "reach_prob": reach, **prices}
    return params, {"call_ahead": why}


def visit_confirmation(
    row: Any, subtype: str, p_go: float, model: CostModel
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Call-ahead of a visit the expected-cost policy orders: a dying gasp's
    (``subtype`` ``power``, :func:`visit_call_ahead`) or a repeat's to a customer found
    absent (:func:`absent_call_ahead`); none elsewhere, nor with ``call_ahead_reach_prob``
    0 (parameters and rationale to merge into the visit's, empty for none)."""
    if model.call_ahead_reach_prob <= 0:
        return {}, {}
    if subtype == "power":
        return visit_call_ahead(model, p_go)
    return absent_call_ahead(row, model)
