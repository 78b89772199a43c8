"""The screens' data: pure functions of a run's :class:`~guardian_lib.dashboards._data.RunData`.

Operational figures (:func:`operations_kpis`), the risk queue, one customer's dossier,
the SHAP reasons and decisions of the explainability screen and the backtest's policy
table. Only :func:`customer_telemetry` reads the warehouse again (one ONU's window).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from guardian_lib.dashboards._data import CAUSE_COLUMNS, RunData
from guardian_lib.warehouse import connect

__all__ = [
    "operations_kpis",
    "risk_queue",
    "customer_telemetry",
    "customer_dossier",
    "reason_frequency",
    "decision_reasons",
    "policy_table",
]


def operations_kpis(data: RunData) -> dict[str, float]:
    """Operational figures of the run (what every ISP can count without the autopilot).

    Returns
    -------
    dict
        ``customers``, ``onus``, ``calls`` (``CUSTOMER_CALL`` events), ``visits``
        (completed service orders), ``visits_no_fault_found``, ``service_orders_total``
        and ``visit_cost_brl`` (sum of the service orders' ``cost_brl``) [R$].
    """
    so = data.table("service_orders")
    ev = data.table("events")
    so = so if so is not None else pd.DataFrame(columns=["status", "outcome", "cost_brl"])
    calls = int((ev["type"] == "CUSTOMER_CALL").sum()) if ev is not None else 0
    cust = data.table("customers")
    onus = data.table("onus")
    return {
        "customers": len(cust) if cust is not None else 0,
        "onus": len(onus) if onus is not None else 0,
        "calls": calls,
        "visits": int((so["status"] == "completed").sum()),
        "visits_no_fault_found": int((so["outcome"] == "no_fault_found").sum()),
        "service_orders_total": len(so),
        "visit_cost_brl": float(pd.to_numeric(so["cost_brl"], errors="coerce").fillna(0).sum()),
    }


def _contacts_30d(data: RunData) -> pd.Series:
    """Calls + service orders per customer in the 30 days before the run's end."""
    end = data.end or pd.Timestamp.now(tz="UTC")
    since = end - pd.Timedelta(days=30)
    parts = []
    ev = data.table("events")
    if ev is not None and len(ev):
        calls = ev.loc[(ev["type"] == "CUSTOMER_CALL") & (ev["ts"] >= since), "entity_id"]
        parts.append(calls)
    so = data.table("service_orders")
    if so is not None and len(so):
        parts.append(so.loc[pd.to_datetime(so["opened_at"], utc=True) >= since, "customer_id"])
    if not parts:
        return pd.Series(dtype="int64")
    return pd.concat(parts, ignore_index=True).value_counts()


def risk_queue(
    data: RunData,
    region: str | None = None,
    plan: str | None = None,
    vip_only: bool = False,
    recurrent_only: bool = False,
    limit: int | None = 50,
) -> pd.DataFrame | None:
    """Customers ranked by ``risk_2h`` at the latest scoring time, filtered.

    Parameters
    ----------
    data : RunData
    region, plan : str, optional
        Keep one region / plan (``None``: all).
    vip_only : bool, default False
        Keep VIP customers only.
    recurrent_only : bool, default False
        Keep customers with 2 or more contacts (calls + service orders) in 30 days.
    limit : int or None, default 50
        Rows returned (``None``: all).

    Returns
    -------
    DataFrame or None
        ``customer_id``, ``onu_id``, ``region``, ``plan``, ``segment``, ``contacts_30d``,
        ``risk_2h``, ``risk_6h``, ``risk_24h`` [-], ``anomaly_score`` [-],
        ``probable_cause``; ``None`` when the run has no predictions.
    """
    preds = data.predictions
    cust = data.table("customers")
    if preds is None or cust is None:
        return None
    cols = ["customer_id", "onu_id", "region", "plan", "segment"]
    df = cust[cols].merge(preds, on="onu_id", how="inner")
    contacts = _contacts_30d(data)
    df["contacts_30d"] = df["customer_id"].map(contacts).fillna(0).astype(int)
    present = [c for c in CAUSE_COLUMNS.values() if c in df.columns]
    if present:
        names = {v: k for k, v in CAUSE_COLUMNS.items()}
        df["probable_cause"] = df[present].fillna(0).idxmax(axis=1).map(names)
    else:
        df["probable_cause"] = "UNKNOWN"
    if region:
        df = df.loc[df["region"] == region]
    if plan:
        df = df.loc[df["plan"] == plan]
    if vip_only:
        df = df.loc[df["segment"].str.lower() == "vip"]
    if recurrent_only:
        df = df.loc[df["contacts_30d"] >= 2]
    df = df.sort_values(["risk_2h", "risk_24h", "customer_id"], ascending=[False, False, True])
    keep = cols + ["contacts_30d", "risk_2h", "risk_6h", "risk_24h", "anomaly_score"]
    df = df[keep + ["probable_cause"]].reset_index(drop=True)
    return df if limit is None else df.head(limit)


def customer_telemetry(run: Path | str, onu_id: str, end: pd.Timestamp, hours: int = 48):
    """SILVER telemetry of one ONU over the ``hours`` before ``end``. [UTC, h]"""
    con = connect(run)
    try:
        return con.execute(
            "SELECT ts, online, rx_dbm, tx_dbm, olt_rx_dbm, latency_ms, loss_pct FROM telemetry "
            f"WHERE onu_id = ? AND ts > ?::TIMESTAMPTZ - INTERVAL {int(hours)} HOUR ORDER BY ts",
            [onu_id, end],
        ).df()
    finally:
        con.close()


def _mentions(targets: Any, keys: set[str]) -> bool:
    try:
        items = json.loads(targets) if isinstance(targets, str) else list(targets or [])
    except json.JSONDecodeError:
        return False
    return any(str(t) in keys for t in items)


def customer_dossier(data: RunData, customer_id: str, hours: int = 48) -> dict[str, Any]:
    """Everything about one customer: inventory, telemetry, events, decisions, actions.

    Parameters
    ----------
    data : RunData
    customer_id : str
    hours : int, default 48
        Telemetry window before the run's end. [h]

    Returns
    -------
    dict
        ``customer`` (dict), ``telemetry``, ``events``, ``service_orders``, ``reasons``
        (DataFrames) and ``decisions`` / ``actions`` (DataFrames, or ``None`` when the
        run has no audit tables).

    Raises
    ------
    KeyError
        ``customer_id`` is not in ``customers``.
    """
    cust = data.table("customers")
    if cust is None or customer_id not in set(cust["customer_id"]):
        raise KeyError(f"customers: no customer_id {customer_id!r} in run {data.run}")
    row = cust.loc[cust["customer_id"] == customer_id].iloc[0].to_dict()
    onu = str(row["onu_id"])
    keys = {customer_id, onu, str(row.get("cpe_id", ""))}
    tel = (
        customer_telemetry(data.run, onu, data.end, hours)
        if data.end is not None
        else pd.DataFrame(columns=["ts", "online", "rx_dbm", "tx_dbm", "latency_ms"])
    )
    ev = data.table("events")
    events = ev.loc[ev["entity_id"].isin(keys)] if ev is not None else pd.DataFrame()
    so = data.table("service_orders")
    orders = so.loc[so["customer_id"] == customer_id] if so is not None else pd.DataFrame()
    decisions = actions = None
    dec = data.table("decisions")
    if dec is not None:
        mask = dec["subject"].astype(str).isin(keys)
        if "targets" in dec:
            mask |= dec["targets"].map(lambda t: _mentions(t, keys))
        decisions = dec.loc[mask].sort_values("ts")
    act = data.table("actions")
    if act is not None:
        ids = set(decisions["decision_id"]) if decisions is not None else set()
        actions = act.loc[act["decision_id"].isin(ids) | act["target"].astype(str).isin(keys)]
    reasons = pd.DataFrame(columns=["ts", "feature", "value", "contribution", "model"])
    if data.reasons is not None and len(data.reasons):
        mine = data.reasons.loc[data.reasons["onu_id"] == onu]
        if len(mine):
            reasons = mine.loc[mine["ts"] == mine["ts"].max()]
    return {
        "customer": row,
        "telemetry": tel,
        "events": events.reset_index(drop=True),
        "service_orders": orders.reset_index(drop=True),
        "decisions": decisions,
        "actions": actions,
        "reasons": reasons.reset_index(drop=True),
    }


def reason_frequency(data: RunData, top: int = 15) -> pd.DataFrame | None:
    """How often each feature is a top SHAP reason, and its mean |contribution|.

    Returns
    -------
    DataFrame or None
        ``feature``, ``n``, ``mean_abs_contribution`` [-], most frequent first;
        ``None`` without predictions or reasons.
    """
    r = data.reasons
    if r is None or not len(r):
        return None
    g = r.assign(abs_c=r["contribution"].abs()).groupby("feature")
    out = g.agg(n=("onu_id", "size"), mean_abs_contribution=("abs_c", "mean")).reset_index()
    return out.sort_values(["n", "feature"], ascending=[False, True]).head(top)


def decision_reasons(data: RunData, limit: int = 20) -> pd.DataFrame | None:
    """The latest decisions with their rationale (JSON text), newest first (``None``: no audit)."""
    dec = data.table("decisions")
    if dec is None:
        return None
    cols = [c for c in ("ts", "subject", "action", "confidence", "rationale") if c in dec]
    return dec.sort_values("ts", ascending=False)[cols].head(limit).reset_index(drop=True)


def policy_table(backtest: dict[str, Any] | None) -> pd.DataFrame | None:
    """The backtest's ``{"policies": {p: {metric: {"mean", "ci95"}}}}`` as a long table.

    Returns
    -------
    DataFrame or None
        ``policy``, ``metric``, ``mean``, ``ci_lo``, ``ci_hi``; scalar metrics (not
        dicts with ``mean``) are kept with empty intervals.
    """
    if not backtest:
        return None
    rows = []
    for policy, metrics in backtest.get("policies", {}).items():
        for metric, v in (metrics or {}).items():
            if isinstance(v, dict) and "mean" in v:
                ci = v.get("ci95") or [np.nan, np.nan]
                rows.append((policy, metric, v["mean"], ci[0], ci[1]))
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                rows.append((policy, metric, v, np.nan, np.nan))
    return pd.DataFrame.from_records(rows, columns=["policy", "metric", "mean", "ci_lo", "ci_hi"])
