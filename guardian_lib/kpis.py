"""Operational KPIs and money, computed from the audit and operational tables only.

Inputs are tables an ISP has: the audit trail (:mod:`guardian_lib.audit`), service
orders, customer calls (``CUSTOMER_CALL`` events), customers, and service-impact
episodes derived from telemetry (:mod:`guardian_lib.episodes`: :class:`EpisodeTracker`
incrementally, or :func:`episodes_from_status` on a frame of observations; both
re-exported here). Optional ``labels`` (the
confirmed cause of each problem, e.g. from closed tickets) give the precision / recall
of massive-vs-individual decisions.

Definitions
-----------
visits_avoided
    Cases closed without a visit (``visit_avoided``) whose customer called or got a
    remote action (a reboot), and who has no recurrence — no new case, call or service
    order — within 7 days of the close (cases closed less than 7 days before the end
    of the data are judged on the days available).
savings_brl, net_savings_brl
    ``visits_avoided × cost_per_visit``; net of the autopilot's action costs (reboots,
    notifications, Wi-Fi profile changes) and of its visits that fixed nothing. [R$]
total_cost_brl
    Cost of the period under the :class:`~guardian_lib.decision.costs.CostModel`, the
    same definition every policy decides with: completed visits, calls, SLA credits,
    action costs (reboots, notifications, Wi-Fi profile changes) and the churn risk of
    the service impact (``churn_cost_brl``: hours of outage × ``churn_cost_brl_per_h``
    plus hours of degraded service × ``degraded_cost_brl_per_h``). Without the churn
    term a customer left down costs only his credit and his calls (under R$ 1 per hour
    once he has called), so leaving him down all week would look cheaper than a visit. [R$]
mttr_hours
    Mean duration of service-impact episodes (no service or degraded) of at least
    15 min, excluding the downtime caused by the autopilot's own reboots. [h]
impact_hours
    Customer-hours of service impact (sum over episodes): unlike MTTR it cannot improve
    by preventing short episodes. [h]
mttd_minutes
    Mean time from an episode's start to its detection: the first case / incident
    decision covering the ONU or the customer's first call, whichever is first. [min]
sla_availability
    ``1 − outage time / (customers × period)``, overall and per region. [-]
false_action_rate
    Share of reboots that failed verification and completed visits that fixed nothing
    (outcome ``no_fault_found``, ``customer_absent`` or ``massive_outage``). [-]
massive_precision, massive_recall, individual_precision, individual_recall
    Per decision (:func:`classification_scores`): each ``open_incident`` target and
    ``open_case`` subject against the confirmed problem of its ONU at that moment. [-]
problem_massive_precision, …, problem_individual_recall
    Per problem (:func:`problem_classification_scores`): the call held on each confirmed
    problem — incident member (massive) or individual case (a proactive case opened on
    its precursor counts) — plus the calls made on nothing of their class. The
    per-decision figures count proactive cases, cases on problems shorter than 15 min or
    without a confirmed cause, calls on a fault that hurt no one (a box's RX step that
    left its ONUs above the impact level) and ONUs that joined an incident as errors;
    these do not. [-]
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from guardian_lib.audit import case_lifecycle
from guardian_lib.decision.costs import CostModel, sla_credit_brl
from guardian_lib.episodes import EpisodeTracker, episodes_from_status
from guardian_lib.kpis_classification import (
    _SCORE_KEYS,
    _explode_targets,
    classification_scores,
    problem_classification_scores,
)

__all__ = [
    "EpisodeTracker",
    "episodes_from_status",
    "compute_kpis",
    "classification_scores",
    "problem_classification_scores",
    "RECURRENCE_DAYS",
    "WASTED_OUTCOMES",
]

#: A visit counts as avoided only without recurrence within this many days. [d]
RECURRENCE_DAYS = 7
#: Visit outcomes that mean the visit fixed nothing.
WASTED_OUTCOMES = ("no_fault_found", "customer_absent", "massive_outage")


def _without_reboot_downtime(
    episodes: pd.DataFrame,
    reb_done: pd.DataFrame,
    customers: pd.DataFrame,
    reboot_down_minutes: float,
) -> pd.DataFrame:
    """The episodes without the autopilot's own reboot downtime.

    An episode that begins within ``reboot_down_minutes`` of a reboot of its CPE loses
    its first ``reboot_down_minutes`` (and is dropped if nothing is left): the rest is
    not the reboot's. Dropping the whole episode hid a 24 h hang that began as a
    proactive reboot of the leaking CPE failed (unseen_8x4 seed 4: 49 h of outage
    missing from one policy's impact and churn cost).
    """
    if not (len(episodes) and len(reb_done)):
        return episodes
    rb = reb_done[["target", "started_at"]].copy()
    rb["started_at"] = pd.to_datetime(rb["started_at"], utc=True)
    cust_map = customers.set_index("cpe_id")["onu_id"] if "cpe_id" in customers else None
    rb["onu_id"] = rb["target"].map(cust_map) if cust_map is not None else rb["target"]
    m = episodes.reset_index().merge(rb[["onu_id", "started_at"]], on="onu_id", how="inner")
    lag = (m["start_at"] - m["started_at"]).dt.total_seconds() / 60.0
    hits = m.loc[(lag >= -1.0) & (lag <= reboot_down_minutes), "index"].unique()
    if not len(hits):
        return episodes
    out = episodes.copy()
    pos = out.index.get_indexer(hits)
    dur = out["duration_min"].to_numpy(dtype=float).copy()
    cut = np.minimum(dur[pos], reboot_down_minutes)
    dur[pos] -= cut
    start = out["start_at"].copy()
    start.iloc[pos] = start.iloc[pos] + pd.to_timedelta(cut, unit="min")
    out["duration_min"], out["start_at"] = dur, start
    return out.loc[dur > 0]


def _detection(
    real: pd.DataFrame, decisions: pd.DataFrame, calls: pd.DataFrame
) -> tuple[float, float]:
    """MTTD [min] and the share detected by the autopilot before a call [-]."""
    # First case/incident decision covering the ONU, or the first call.
    det = _explode_targets(decisions, ("open_case", "open_incident")) if len(decisions) else None
    frames = [calls[["ts", "onu_id"]].assign(src="call")]
    if det is not None and len(det):
        frames.append(det[["ts", "onu_id"]].assign(src="autopilot"))
    dets = pd.concat(frames, ignore_index=True)
    dets["ts"] = pd.to_datetime(dets["ts"], utc=True)
    mttd = float("nan")
    before_call = float("nan")
    if len(real) and len(dets):
        m = real.reset_index().merge(dets, on="onu_id", how="inner")
        m = m.loc[(m["ts"] >= m["start_at"] - pd.Timedelta(minutes=5)) & (m["ts"] <= m["end_at"])]
        first = m.sort_values("ts").groupby("index").first()
        if len(first):
            lag = (first["ts"] - first["start_at"]).dt.total_seconds().clip(lower=0) / 60.0
            mttd = float(lag.mean())
            before_call = float((first["src"] == "autopilot").mean())
    return mttd, before_call


def _sla(
    real: pd.DataFrame, customers: pd.DataFrame, period_h: float, fee: float
) -> tuple[float, dict[str, float], float]:
    """SLA availability overall and by region [-], and the SLA credits owed [R$]."""
    out_ep = real.loc[real["outage"].astype(bool)]
    region = customers.set_index("onu_id")["region"]
    down_h = out_ep.groupby(out_ep["onu_id"].map(region))["duration_min"].sum() / 60.0
    n_by_region = customers.groupby("region").size()
    by_region = {
        str(r): float(1.0 - down_h.get(r, 0.0) / (n * period_h)) for r, n in n_by_region.items()
    }
    sla = float(1.0 - down_h.sum() / (len(customers) * period_h)) if len(customers) else np.nan
    credits = float(sla_credit_brl(out_ep["duration_min"].to_numpy() / 60.0, fee).sum())
    return sla, by_region, credits


def _churn_cost_brl(real: pd.DataFrame, costs: CostModel) -> float:
    """Churn risk of the service impact: outage and degraded hours at the cost model's rates. [R$]"""
    if not len(real):
        return 0.0
    hours = real["duration_min"].to_numpy(dtype=float) / 60.0
    outage = real["outage"].to_numpy(dtype=bool)
    return float(
        hours[outage].sum() * costs.churn_cost_brl_per_h
        + hours[~outage].sum() * costs.degraded_cost_brl_per_h
    )


def _ns_by(frame: pd.DataFrame, key: str, col: str) -> dict[Any, np.ndarray]:
    """``frame[col]`` (times, read as UTC) per value of ``frame[key]``, as int64
    nanoseconds since the epoch (NaT as the smallest int64). [ns]"""
    if not len(frame):
        return {}
    ns = pd.to_datetime(frame[col], utc=True).array.as_unit("ns").asi8
    codes, uniques = pd.factorize(frame[key].to_numpy(dtype=object))  # a missing key: −1
    keep = codes >= 0
    order = np.argsort(codes[keep], kind="stable")
    bounds = np.searchsorted(codes[keep][order], np.arange(1, len(uniques)))
    return dict(zip(uniques, np.split(ns[keep][order], bounds), strict=True))


def _visits_avoided(life: pd.DataFrame, calls: pd.DataFrame, so: pd.DataFrame) -> int:
    """Cases closed as ``visit_avoided`` that did something and did not recur. [-]

    A case did something if a call of its subject fell within it or it rebooted; it
    recurred if a call, a case or a service order of its subject came within
    :data:`RECURRENCE_DAYS` after it closed (each time compared as an instant in
    nanoseconds; a missing time matches nothing).
    """
    cand = life.loc[life["outcome"] == "visit_avoided"] if len(life) else life
    if not len(cand):
        return 0
    nat, window = np.iinfo(np.int64).min, pd.Timedelta(days=RECURRENCE_DAYS).value
    none = np.empty(0, dtype=np.int64)
    called, opened = _ns_by(calls, "onu_id", "ts"), _ns_by(life, "subject", "opened_at")
    so_open = _ns_by(so, "onu_id", "opened_at")
    starts, ends = (pd.to_datetime(cand[c], utc=True).array.as_unit("ns").asi8
                    for c in ("opened_at", "closed_at"))  # fmt: skip
    subjects, reboots = cand["subject"].to_numpy(dtype=object), cand["n_reboots"].to_numpy()
    avoided = 0
    for subject, start, end, n_reboots in zip(subjects, starts, ends, reboots, strict=True):
        call_ts = called.get(subject, none)
        known = start != nat and end != nat
        in_case = known and bool(((call_ts >= start) & (call_ts <= end) & (call_ts != nat)).any())
        if not (in_case or n_reboots > 0):
            continue
        if end != nat and any(
            ((xs > end) & (xs <= end + window)).any()
            for xs in (call_ts, opened.get(subject, none), so_open.get(subject, none))
        ):
            continue
        avoided += 1
    return avoided


def _scores(decisions: pd.DataFrame, labels: pd.DataFrame | None) -> dict[str, float]:
    """:func:`classification_scores`, or all NaN without labels or decisions. [-]"""
    if labels is not None and len(decisions):
        return {**classification_scores(decisions, labels),
                **problem_classification_scores(decisions, labels)}  # fmt: skip
    keys = [*_SCORE_KEYS, *(f"problem_{k}" for k in _SCORE_KEYS), "problem_unscored_calls",
            "problem_masked"]  # fmt: skip
    return dict.fromkeys(keys, float("nan"))


class _ActionCounts(NamedTuple):
    """What was done in a period: visits, reboots, notifications. [-]"""

    visits: int
    cancelled: int
    reboots_done: pd.DataFrame
    reboots_ok: int
    reboots_verified: int
    notified: int
    wasted_visits: int
    wasted_autopilot_visits: int
    wifi_changes: int


def _action_counts(
    actions: pd.DataFrame, notifications: pd.DataFrame, so: pd.DataFrame
) -> _ActionCounts:
    """Count completed / cancelled / wasted visits, reboots and sent notifications."""
    visits = int((so["status"] == "completed").sum()) if len(so) else 0
    cancelled = int((so["status"] == "cancelled").sum()) if len(so) else 0
    acts = actions if len(actions) else pd.DataFrame(columns=["action_type", "status", "target"])
    reb = acts.loc[acts["action_type"] == "reboot"]
    reb_done = reb.loc[reb["status"].isin(["succeeded", "failed", "done", "pending"])]
    reb_ok = int((reb_done["status"] == "succeeded").sum())
    reb_verified = int(reb_done["status"].isin(["succeeded", "failed"]).sum())
    n_notify = int((notifications["status"] != "failed").sum()) if len(notifications) else 0
    wasted_all = int(so["outcome"].isin(WASTED_OUTCOMES).sum()) if len(so) else 0
    auto = so.loc[so["opened_by"] == "autopilot"] if len(so) else so
    wasted_auto = int(auto["outcome"].isin(WASTED_OUTCOMES).sum()) if len(auto) else 0
    wifi = acts.loc[(acts["action_type"] == "change_wifi_profile") & (acts["status"] == "done")]
    return _ActionCounts(visits, cancelled, reb_done, reb_ok, reb_verified, n_notify,
                         wasted_all, wasted_auto, len(wifi))  # fmt: skip


def compute_kpis(
    *,
    decisions: pd.DataFrame,
    actions: pd.DataFrame,
    notifications: pd.DataFrame,
    service_orders: pd.DataFrame,
    episodes: pd.DataFrame,
    calls: pd.DataFrame,
    customers: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    costs: CostModel | None = None,
    labels: pd.DataFrame | None = None,
    reboot_down_minutes: float = 10.0,
    min_episode_minutes: float = 15.0,
) -> dict[str, Any]:
    """Every KPI of one period.

    Parameters
    ----------
    decisions, actions, notifications : pandas.DataFrame
        Audit tables (may be empty for a period without autopilot).
    service_orders : pandas.DataFrame
        ``os_id``, ``onu_id``, ``status``, ``outcome``, ``opened_by``, ``opened_at``.
    episodes : pandas.DataFrame
        Service-impact episodes (:meth:`EpisodeTracker.episodes`).
    calls : pandas.DataFrame
        ``ts`` and ``onu_id`` of each customer call.
    customers : pandas.DataFrame
        ``onu_id``, ``region``, ``segment``.
    start, end : pandas.Timestamp
        The period. [UTC]
    costs : CostModel, optional
    labels : pandas.DataFrame, optional
        Confirmed causes for :func:`classification_scores`.
    reboot_down_minutes : float, default 10
        Episodes starting this soon after an autopilot reboot are its own downtime. [min]
    min_episode_minutes : float, default 15
        MTTR counts episodes at least this long (shorter ones are blips: a flap, a
        missed poll). [min]

    Returns
    -------
    dict
        Scalar KPIs (see the module docstring), ``sla_availability_by_region`` and
        ``total_cost_brl`` (visits + calls + SLA credits + action costs, among them
        Wi-Fi profile changes, + churn risk) [R$], ``churn_cost_brl`` [R$] and
        ``wifi_changes`` [-].
    """
    costs = costs or CostModel()
    period_h = (end - start).total_seconds() / 3600.0
    so = service_orders
    c = _action_counts(actions, notifications, so)
    visits, cancelled, reb_done = c.visits, c.cancelled, c.reboots_done
    reb_ok, reb_verified, n_notify = c.reboots_ok, c.reboots_verified, c.notified
    wasted_all, wasted_auto = c.wasted_visits, c.wasted_autopilot_visits
    n_calls = len(calls)

    # Episodes: drop the autopilot's own reboot downtime.
    ep = episodes.copy()
    real = _without_reboot_downtime(ep, reb_done, customers, reboot_down_minutes)
    long = real.loc[real["duration_min"] >= min_episode_minutes]
    mttr_h = float(long["duration_min"].mean() / 60.0) if len(long) else float("nan")
    mttd, before_call = _detection(real, decisions, calls)
    sla, by_region, credits = _sla(real, customers, period_h, costs.monthly_fee_brl)

    # Cases: visits avoided without recurrence.
    life = (
        case_lifecycle(decisions, actions)
        if len(decisions)
        else case_lifecycle(pd.DataFrame(), pd.DataFrame())
    )
    avoided = _visits_avoided(life, calls, so)
    n_reboots = len(reb_done)
    action_cost = (
        n_reboots * costs.reboot_cost_brl
        + n_notify * costs.notify_cost_brl
        + c.wifi_changes * costs.wifi_change_cost_brl
    )
    savings = avoided * costs.cost_per_visit_brl
    net = savings - action_cost - wasted_auto * costs.cost_per_visit_brl
    total = (
        visits * costs.cost_per_visit_brl + n_calls * costs.call_cost_brl + credits + action_cost
    )
    churn = _churn_cost_brl(real, costs)
    total += churn
    false_den = reb_verified + visits
    scores = _scores(decisions, labels)
    return {
        "visits": visits,
        "visits_avoided": avoided,
        "savings_brl": float(savings),
        "net_savings_brl": float(net),
        "total_cost_brl": float(total),
        "churn_cost_brl": churn,
        "sla_credits_brl": credits,
        "mttr_hours": mttr_h,
        "impact_hours": float(real["duration_min"].sum() / 60.0),
        "mttd_minutes": mttd,
        "detected_before_call_share": before_call,
        "sla_availability": sla,
        "sla_availability_by_region": by_region,
        "reboots": n_reboots,
        "reboot_success_rate": reb_ok / reb_verified if reb_verified else float("nan"),
        "visit_cancellations": cancelled,
        "visit_cancellation_rate": cancelled / len(so) if len(so) else float("nan"),
        "false_action_rate": (reb_verified - reb_ok + wasted_all) / false_den
        if false_den
        else float("nan"),
        "wasted_visits": wasted_all,
        "calls": n_calls,
        "notifications": n_notify,
        "wifi_changes": c.wifi_changes,
        "cases": len(life),
        "episodes": len(real),
        **scores,
    }
