"""Read routes over the warehouse and the autopilot's audit: the risk queue, a customer's
timeline, open incidents and the KPIs.

No ``from __future__ import annotations``: FastAPI evaluates the route signatures.
"""

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from guardian_lib.api.config import ApiConfig
from guardian_lib.api.deps import Ctx, Reader, in_region, open_state, page, records, region_filter
from guardian_lib.api.problems import Problem
from guardian_lib.layout import RunLayout

__all__ = ["incidents_audit_file", "router"]

router = APIRouter()


def incidents_audit_file(cfg: ApiConfig) -> Path:
    """The autopilot audit holding incidents: operate's (site mode) or the run's backtest."""
    return (cfg.state / "audit.duckdb") if cfg.state else RunLayout(cfg.run).audit


@router.get("/risk", tags=["risk"])
def risk(
    user: Reader,
    ctx: Ctx,
    region: Annotated[str | None, Query(max_length=64, description="Only this region.")] = None,
    window: Annotated[Literal["2h", "6h", "24h"], Query(description="Horizon.")] = "24h",
    min: Annotated[float, Query(ge=0.0, le=1.0, description="Lowest risk shown. [-]")] = 0.5,  # noqa: A002
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """The risk queue: each ONU's newest prediction at or above ``min``, riskiest first."""
    regions = region_filter(user, region, ctx.reader)
    queue, risk_desc, region_arr = ctx.reader.risk_queue(window)
    # rows are sorted by risk, descending: those >= min are a prefix
    n = int(np.searchsorted(-risk_desc, -min, side="right"))
    sel = queue.iloc[:n]
    if regions is not None:
        sel = sel[np.isin(region_arr[:n], regions)]
    out = page(sel, limit, offset)
    return out | {"window": window, "min": min}


@router.get("/customers/{customer_id}/timeline", tags=["customers"])
def timeline(
    user: Reader,
    ctx: Ctx,
    customer_id: Annotated[str, PathParam(max_length=128)],
    limit: Annotated[int, Query(ge=1, le=1000, description="Per kind.")] = 200,
) -> dict[str, Any]:
    """A customer's events, predictions and service orders, newest first."""
    reader = ctx.reader
    cust = reader.customer(customer_id)
    if cust is None:
        raise Problem(404, "not-found", f"no customer {customer_id!r}",
                      field="path.customer_id")  # fmt: skip
    onu_id = str(cust["onu_id"])
    in_region(user, reader.region_of_onu(onu_id) or cust.get("region"),
              f"customer {customer_id}", "path.customer_id")  # fmt: skip
    ids = [customer_id, onu_id] + ([str(cust["cpe_id"])] if cust.get("cpe_id") else [])
    orders: list[dict[str, Any]] = []
    so = reader.inventory().get("service_orders")
    if so is not None:
        key = "customer_id" if "customer_id" in so.columns else "onu_id"
        hit = so[so[key] == (customer_id if key == "customer_id" else onu_id)]
        orders = records(hit.head(limit))
    return {
        "customer": records(pd.DataFrame([cust]))[0],
        "events": records(reader.events_of(ids, limit)),
        "predictions": records(reader.predictions_of(onu_id, limit)),
        "service_orders": orders,
    }


@router.get("/incidents/active", tags=["incidents"])
def incidents_active(
    user: Reader,
    ctx: Ctx,
    lang: Annotated[
        Literal["en", "pt-BR"],
        Query(description="Language of severity_label and cause_label."),
    ] = "en",
) -> dict[str, Any]:
    """Open incidents from the autopilot's audit trail (operate's, or the run's backtest),
    each with its severity and probable cause as words in ``lang``."""
    from guardian_lib.dashboards.glossary import cause_name, severity_name

    reader = ctx.reader
    frame = reader.open_incidents(incidents_audit_file(ctx.cfg))
    if not frame.empty and user.regions:
        keep = []
        for _, r in frame.iterrows():
            reg = None
            if r["scope_type"] == "pon":
                reg = reader.region_of_pon(str(r["scope_key"]))
            elif r["scope_type"] == "onu":
                reg = reader.region_of_onu(str(r["scope_key"]))
            elif r["scope_type"] == "region":
                reg = str(r["scope_key"])
            keep.append(user.in_scope(reg))
        frame = frame[keep]
    items = records(frame)
    for r in items:
        r["severity_label"] = severity_name(r.get("severity"), lang)
        r["cause_label"] = cause_name(r.get("cause"), lang)
    return {"items": items, "total": int(len(frame))}


@router.get("/metrics/kpis", tags=["metrics"])
def kpis(user: Reader, ctx: Ctx) -> dict[str, Any]:
    """The backtest KPIs and SLA table of the run, and operate's last cycle (site mode)."""
    cfg = ctx.cfg
    lay = RunLayout(cfg.run)
    out: dict[str, Any] = {"backtest": None, "sla": None, "operate_last_cycle": None}
    if lay.kpis.exists():
        out["backtest"] = json.loads(lay.kpis.read_text(encoding="utf-8"))
    if lay.sla_json.exists():
        out["sla"] = json.loads(lay.sla_json.read_text(encoding="utf-8"))
    if cfg.state is not None:
        try:
            st = open_state(cfg)
        except Problem:
            st = None
        if st is not None:
            try:
                cycles = st.cycles()
            finally:
                st.close()
            out["operate_last_cycle"] = cycles[-1] if cycles else None
    return out
