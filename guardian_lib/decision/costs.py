"""Cost model of the autopilot: pure functions in R$ over arrays.

Every function takes numbers or numpy arrays and returns the same shape; none reads
global state. :class:`CostModel` only holds the parameters and passes them on.

The expected cost of an alternative for a case is the cost of what it does now (a
visit, a reboot's disruption) plus the expected cost of the impact that remains:
SLA credit (pro-rata of the monthly fee for outages of 30 min or more), customer
calls, and churn risk while the problem lasts.
"""

from __future__ import annotations

import functools
from math import log

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import ndtr

from guardian_lib.schema import VISIT_COST_BRL

__all__ = [
    "CostModel",
    "Prior",
    "visit_cost_brl",
    "sla_credit_brl",
    "impact_cost_rate_brl_per_h",
    "lognormal_residual_h",
    "lognormal_survival",
    "contact_lr",
    "ALTERNATIVES",
]

#: Alternatives the expected-cost policy compares for an individual case.
ALTERNATIVES = ("wait", "reboot", "change_wifi_profile", "schedule_visit")
_Z90 = 1.2815515655446004


class Prior(BaseModel):
    """Log-normal duration prior of a problem left alone (median, p90). [h]"""

    model_config = ConfigDict(frozen=True)
    median_h: float = Field(gt=0)
    p90_h: float = Field(gt=0)


class CostModel(BaseModel):
    """Parameters of the cost model (all money in R$, times in hours).

    Attributes
    ----------
    cost_per_visit_brl : float
        One technician visit. [R$]
    call_cost_brl : float
        Handling one customer call. [R$]
    reboot_cost_brl : float
        Disruption of one remote reboot (a few minutes down). [R$]
    notify_cost_brl : float
        Sending one notification. [R$]
    monthly_fee_brl : float
        Monthly fee used for SLA credits. [R$]
    churn_cost_brl_per_h : float
        Churn risk per hour of outage (repeat failures make customers leave). [R$/h]
    degraded_cost_brl_per_h : float
        Churn risk per hour of degraded service. [R$/h]
    call_rate_per_h : float
        Calls per hour from a customer with an outage (0.3 of it when notified). [1/h]
    visit_delay_h : float
        Time until a priority visit restores service (schedule + travel + work). [h]
    reboot_fix_prob : float
        Probability that a reboot clears a hung CPE. [-]
    wifi_change_cost_brl : float
        One remote Wi-Fi profile change (no downtime; a support follow-up). [R$]
    wifi_profile_fix_prob : float
        Probability that a Wi-Fi profile change ends an interference episode. [-]
    horizon_h : float
        Cap on the residual durations considered. [h]
    dying_gasp_fixable_share : float
        Largest share of a dying-gasp outage's individual causes (premises, equipment,
        intermittent) that a visit can fix: only a failed ONU power supply also sends a
        dying gasp (fibre faults and dead lasers show as LOS); the rest is the
        customer's own power, which returns by itself. An assumption (range 0.01–0.1):
        power supplies fail far less often than customers switch off. [-]
    dying_gasp_contact_lr : float
        How many times more often a customer contacts us (a call or a ticket) about a
        dark ONU when the ONU itself failed (their power is on: ``call_rate_per_h``)
        than when their own power is off. A contact since the ONU went dark
        (``contacted_since_down``) divides the odds of a power cut on a dying-gasp row
        by :func:`contact_lr`: this ratio for a fresh outage, towards 1 for a long one.
        A customer with the lights on and a dark ONU calls; one whose home has no power
        knows why the Internet is down (or is away) and rarely does. An assumption
        (range 5–50). [-]
    call_ahead_cost_brl : float
        One call-ahead: before a technician goes to a dark ONU with a dying gasp, the
        dispatch office calls the customer and asks whether their power is on (2–3 min of
        an office agent's time, an outbound call, cheaper than handling an inbound support
        call, ``call_cost_brl``). An assumption, range R$ 2–8. [R$]
    call_ahead_reach_prob : float
        Probability that the call-ahead reaches the customer, who then answers truthfully:
        power off → the visit is cancelled, power on → the technician goes. A call that
        does not reach sends no technician (the ONU is inside the home: nobody to let him
        in) and is tried again after ``call_ahead_retry_h``. A visit called ahead costs
        ``call_ahead_cost_brl + P(go) · cost_per_visit_brl``, ``P(go) =
        call_ahead_reach_prob · (1 − P(power cut))``, plus the later call and repair of a
        failed power supply the call did not reach. An assumption, 0.8 (range 0.5–0.95),
        the share of call-centre visits the simulator's office confirms before going
        (``confirm_before_visit_prob``). 0 switches call-aheads off (visits are then
        priced and ordered as without them). [-]
    call_ahead_retry_h : float
        Time until a call-ahead that did not reach the customer is tried again (the case
        gets no visit meanwhile). An assumption, 4 h (range 2–12 h: later that day). [h]
    call_ahead_quiet_h : float
        After a customer said on a call-ahead that their power is off, their case gets no
        visit (and no new call) for this long; after it the answer still counts: the ONU
        is dark because the power cut goes on (its survival since the answer) or because
        the ONU did not come back when the power did (taken to happen with the prior
        share of failed power supplies among lone dying gasps, ``dying_gasp_fixable_share``,
        an upper bound; see :func:`case_costs
        <guardian_lib.decision.expected_cost.case_costs>`). A bound on the calls: at
        most one per ``call_ahead_quiet_h`` per case. An assumption, range 12–48 h. [h]
    revisit_after_cancel_h : float
        After the field service cancelled a case's visit (the dispatcher, the ticketing
        system, a technician who could not get in; not the autopilot's own cancellation
        nor a call-ahead's answer), the case gets no new visit for this long: the
        dispatcher's decision is respected for a while, never for as long as the case
        lasts (:mod:`~guardian_lib.decision.visits`; every policy, the rules and the
        oracle too). An assumption, 8 h (range 4–24 h: the rest of a working day). [h]
    revisit_after_visit_h : float
        After a case's visit was completed, the case gets no new visit for this long: a
        problem still there after it (the technician found nothing, could not get in,
        brought the wrong part) is looked at again, by the expected cost (by rule 4 for
        the rules), only then. An assumption, 12 h (range 4–24 h: the next working
        day's slots). [h]
    max_repeat_visits : int
        Visits a case may get after its first completed one (repeat truck rolls): a case
        never loops visits (the expected-cost and rule policies; the oracle, which sees
        whether a visit fixed the fault, needs no cap). An assumption, 1 (range 0–2; 0
        switches repeats off). [-]
    visit_fix_prob : float
        Probability that a completed visit ends a problem a visit can fix (first-time
        fix rate): a problem present at the visit and still there after it is a fixable
        one with its odds times ``1 − visit_fix_prob`` when a repeat visit is priced. An
        assumption, 0.85 (range 0.7–0.95, the first-time fix rates field-service teams
        report). [-]
    light_drop_other_share : float
        On a link with degraded service whose light fell (a degrading fibre or a
        drifting laser), the largest share the customer-premises and unknown causes keep
        of the individual causes (:func:`~guardian_lib.decision.caps.explain_by_light_drop`):
        Wi-Fi and blips do not lower the optical level. An assumption, 0.02. [-]
    priors : dict
        Duration of each problem kind when nobody acts (log-normal, median and p90);
        kinds absent never end alone. ``power`` (a customer's own power off or the ONU
        unplugged, a dying gasp from one ONU: a tripped breaker, a supply cut, a home
        left for a trip) has median 6 h and p90 48 h (σ = ln 8 / 1.28 ≈ 1.6): an
        assumption, median range 2–12 h and p90 24–168 h. Utility cuts of an area are
        shorter (Brazil averages about 10 h a year in about 5 cuts per customer) but are
        massive outages, not this kind; the long tail is the absent customer.
    """

    model_config = ConfigDict(frozen=True)
    cost_per_visit_brl: float = Field(VISIT_COST_BRL, ge=0)
    call_cost_brl: float = Field(8.0, ge=0)
    reboot_cost_brl: float = Field(2.0, ge=0)
    notify_cost_brl: float = Field(0.2, ge=0)
    monthly_fee_brl: float = Field(110.0, ge=0)
    churn_cost_brl_per_h: float = Field(3.0, ge=0)
    degraded_cost_brl_per_h: float = Field(2.0, ge=0)
    call_rate_per_h: float = Field(0.2, ge=0)
    visit_delay_h: float = Field(4.0, gt=0)
    reboot_fix_prob: float = Field(0.85, ge=0, le=1)
    wifi_change_cost_brl: float = Field(0.5, ge=0)
    wifi_profile_fix_prob: float = Field(0.4, ge=0, le=1)
    horizon_h: float = Field(168.0, gt=0)
    dying_gasp_fixable_share: float = Field(0.05, ge=0, le=1)
    dying_gasp_contact_lr: float = Field(20.0, ge=1)
    call_ahead_cost_brl: float = Field(4.0, ge=0)
    call_ahead_reach_prob: float = Field(0.8, ge=0, le=1)
    call_ahead_retry_h: float = Field(4.0, gt=0)
    call_ahead_quiet_h: float = Field(24.0, gt=0)
    revisit_after_cancel_h: float = Field(8.0, gt=0)
    revisit_after_visit_h: float = Field(12.0, gt=0)
    max_repeat_visits: int = Field(1, ge=0)
    visit_fix_prob: float = Field(0.85, ge=0, le=1)
    light_drop_other_share: float = Field(0.02, ge=0, le=1)
    priors: dict[str, Prior] = Field(
        default_factory=lambda: {
            "massive": Prior(median_h=4.0, p90_h=12.0),
            "external": Prior(median_h=0.75, p90_h=2.5),
            "hang": Prior(median_h=4.0, p90_h=30.0),
            "power": Prior(median_h=6.0, p90_h=48.0),
            "wifi": Prior(median_h=72.0, p90_h=400.0),
            "unknown": Prior(median_h=0.75, p90_h=1.5),
        }
    )


def visit_cost_brl(
    n_visits: np.ndarray | float, cost_per_visit_brl: float = VISIT_COST_BRL
) -> np.ndarray:
    """Cost of technician visits.

    Parameters
    ----------
    n_visits : array_like
        Number of visits. [-]
    cost_per_visit_brl : float, default 150
        [R$]

    Returns
    -------
    ndarray
        [R$]

    Examples
    --------
    >>> float(visit_cost_brl(3))
    450.0
    """
    return np.asarray(n_visits, dtype=float) * cost_per_visit_brl


def sla_credit_brl(
    outage_h: np.ndarray | float, monthly_fee_brl: np.ndarray | float = 110.0
) -> np.ndarray:
    """Pro-rata credit owed for an outage (Brazil: outages of 30 min or more).

    Parameters
    ----------
    outage_h : array_like
        Outage duration. [h]
    monthly_fee_brl : array_like, default 110
        Customer's monthly fee. [R$]

    Returns
    -------
    ndarray
        ``fee × hours / 720`` for outages of at least 0.5 h, else 0. [R$]

    Examples
    --------
    >>> float(sla_credit_brl(7.2, 100.0)), float(sla_credit_brl(0.25, 100.0))
    (1.0, 0.0)
    """
    h = np.asarray(outage_h, dtype=float)
    return np.where(h >= 0.5, np.asarray(monthly_fee_brl, dtype=float) * h / 720.0, 0.0)


def impact_cost_rate_brl_per_h(
    outage: np.ndarray | bool, notified: np.ndarray | bool, model: CostModel
) -> np.ndarray:
    """Cost per hour of an ongoing problem (credit, calls, churn risk).

    Parameters
    ----------
    outage : array_like of bool
        True for no service (offline or no PPPoE), False for degraded service.
    notified : array_like of bool
        The customer was told about the problem (calls drop to 30 %).
    model : CostModel

    Returns
    -------
    ndarray
        [R$/h]
    """
    outage = np.asarray(outage, dtype=bool)
    calls = model.call_rate_per_h * np.where(np.asarray(notified, dtype=bool), 0.3, 1.0)
    credit = model.monthly_fee_brl / 720.0
    outage_rate = credit + model.churn_cost_brl_per_h + calls * model.call_cost_brl
    degraded_rate = model.degraded_cost_brl_per_h + 0.6 * calls * model.call_cost_brl
    return np.where(outage, outage_rate, degraded_rate)


def lognormal_residual_h(
    elapsed_h: np.ndarray | float, prior: Prior, horizon_h: float = 168.0
) -> np.ndarray:
    """Expected remaining duration of a problem that has lasted ``elapsed_h``.

    ``E[min(T, e + H) − e | T > e]`` for a log-normal ``T`` with the prior's median
    and p90, computed by numerical integration of the survival function.

    Parameters
    ----------
    elapsed_h : array_like
        How long the problem has lasted. [h]
    prior : Prior
    horizon_h : float, default 168
        Cap on the remaining time considered. [h]

    Returns
    -------
    ndarray
        [h]

    Examples
    --------
    >>> r0 = float(lognormal_residual_h(0.0, Prior(median_h=4, p90_h=30)))
    >>> r8 = float(lognormal_residual_h(8.0, Prior(median_h=4, p90_h=30)))
    >>> r8 > r0  # a heavy tail: the longer it lasts, the longer it will last
    True
    """
    e = np.atleast_1d(np.asarray(elapsed_h, dtype=float))
    mu, sigma = log(prior.median_h), log(prior.p90_h / prior.median_h) / _Z90
    # z = (log(max(t, 1e-9)) − mu) / sigma on t = e + grid × horizon, in place (a policy
    # round calls this ~10 times on a few cases: the temporaries cost more than the math).
    t = e[:, None] + _grid_steps(float(horizon_h))[None, :]
    np.maximum(t, 1e-9, out=t)
    np.log(t, out=t)
    t -= mu
    t /= sigma
    surv = ndtr(t)
    np.subtract(1.0, surv, out=surv)
    rel = surv / np.maximum(surv[:, :1], 1e-12)
    # np.trapezoid(rel, dx=horizon_h / (len(grid) − 1), axis=1), as numpy computes it.
    dx = horizon_h / (len(_RESIDUAL_GRID) - 1)
    out = (dx * (rel[:, 1:] + rel[:, :-1]) / 2.0).sum(1)
    return out.reshape(np.shape(elapsed_h)) if np.ndim(elapsed_h) else out[0]


#: Integration grid of :func:`lognormal_residual_h`, as fractions of the horizon. [-]
_RESIDUAL_GRID = np.linspace(0.0, 1.0, 65)


@functools.lru_cache(maxsize=32)
def _grid_steps(horizon_h: float) -> np.ndarray:
    """``_RESIDUAL_GRID × horizon_h`` (read-only, computed once per horizon). [h]"""
    steps = _RESIDUAL_GRID * horizon_h
    steps.setflags(write=False)
    return steps


def lognormal_survival(t_h: np.ndarray | float, prior: Prior) -> np.ndarray:
    """Probability that a problem with this prior lasts longer than ``t_h``.

    Parameters
    ----------
    t_h : array_like
        Duration. [h]
    prior : Prior

    Returns
    -------
    ndarray
        ``P(T > t)``. [-]

    Examples
    --------
    >>> round(float(lognormal_survival(4.0, Prior(median_h=4, p90_h=30))), 3)
    0.5
    """
    mu, sigma = log(prior.median_h), log(prior.p90_h / prior.median_h) / _Z90
    t = np.maximum(np.asarray(t_h, dtype=float), 1e-9)
    return 1.0 - ndtr((np.log(t) - mu) / sigma)


def contact_lr(elapsed_h: np.ndarray, model: CostModel) -> np.ndarray:
    """Likelihood ratio of "the customer contacted us since the ONU went dark".

    Between "the ONU failed, the customer has power" (contacts at
    ``call_rate_per_h``) and "the customer's power is off" (at that rate divided by
    ``dying_gasp_contact_lr``), both with a constant hazard: ``(1 − e^(−λ₁t)) /
    (1 − e^(−λ₀t))``. It falls from ``dying_gasp_contact_lr`` for a fresh outage towards
    1: the longer the outage, the likelier that even a customer without power called.

    Parameters
    ----------
    elapsed_h : ndarray
        How long the ONU has been dark. [h]
    model : CostModel

    Returns
    -------
    ndarray
        [-]
    """
    lam1 = max(model.call_rate_per_h, 1e-9)
    t = np.maximum(np.asarray(elapsed_h, dtype=float), 1e-6)
    return -np.expm1(-lam1 * t) / -np.expm1(-lam1 * t / model.dying_gasp_contact_lr)
