"""The approval queue (``/decisions``, approve / reject) and decision requests
(``/decision/simulate``, ``/decision/execute``) over operate's state store.

No ``from __future__ import annotations``: FastAPI evaluates the route signatures.
"""

import json
import math
import time
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from guardian_lib.api.deps import (
    ApiContext,
    Ctx,
    Decider,
    Reader,
    approval_region,
    audit,
    in_region,
    needs,
    open_state,
    records,
)
from guardian_lib.api.problems import Problem
from guardian_lib.api.users import User

__all__ = ["REQUESTABLE_ACTIONS", "DecisionComment", "DecisionRequest", "router"]

#: Actions an operator may request through ``POST /decision/execute``.
REQUESTABLE_ACTIONS = ("reboot", "schedule_visit")
_STATE_ALIASES = {"proposed": "pending"}

router = APIRouter()


class DecisionComment(BaseModel):
    """Body of ``POST /decisions/{id}/approve|reject``."""

    model_config = ConfigDict(extra="forbid")
    comment: str = Field(min_length=1, max_length=2000, description="Why (kept in the audit).")


class DecisionRequest(BaseModel):
    """Body of ``POST /decision/simulate`` and ``/decision/execute``."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["reboot", "schedule_visit"] = Field(description="What to do.")
    onu_id: str = Field(min_length=1, max_length=128, description="The ONU acted on.")
    comment: str = Field("", max_length=2000, description="Why (kept in the audit).")
    params: dict[Annotated[str, Field(max_length=64)], str | int | float | bool] = Field(
        default_factory=dict, max_length=20, description="Action parameters (scalars)."
    )


# --- the approval queue ----------------------------------------------------------------------
def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its JSON text columns parsed (left as text when not JSON)."""
    for k in ("params", "rationale", "result"):
        if isinstance(row.get(k), str):
            try:
                row[k] = json.loads(row[k])
            except ValueError:
                pass
    return row


@router.get("/decisions", tags=["decisions"])
def decisions(
    user: Reader,
    ctx: Ctx,
    state: Annotated[
        Literal["proposed", "pending", "approved", "rejected", "executed", "failed"] | None,
        Query(description="proposed (= pending), approved, rejected, executed, failed."),
    ] = "proposed",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    lang: Annotated[
        Literal["en", "pt-BR"], Query(description="Language of action_label and rationale_text.")
    ] = "en",
) -> dict[str, Any]:
    """Actions ``guardian operate --mode approve`` proposed (oldest first), each with its
    region, its action's name and its rationale as a sentence in ``lang``."""
    from guardian_lib.dashboards.glossary import action_name, rationale_text

    st = open_state(ctx.cfg)
    try:
        rows = st.approvals(_STATE_ALIASES.get(state, state) if state else None)
    finally:
        st.close()
    items = []
    for r in rows:
        r = dict(r)
        r["region"] = approval_region(ctx.reader, r)
        if user.in_scope(r["region"]):
            r = _decoded(r)
            r["action_label"] = action_name(r["action"], lang)
            r["rationale_text"] = rationale_text(r["rationale"], lang)
            items.append(r)
    return {"items": items[offset : offset + limit], "total": len(items),
            "limit": limit, "offset": offset}  # fmt: skip


def _decide(request: Request, ctx: ApiContext, user: User, approval_id: int, verdict: str,
            comment: str) -> dict[str, Any]:  # fmt: skip
    """Approve or reject one pending action, auditing every outcome."""
    from guardian_lib.operate.state import StateError

    st = open_state(ctx.cfg)
    try:
        rows = [r for r in st.approvals() if r["id"] == approval_id]
        if not rows:
            raise Problem(404, "not-found", f"no proposed action with id {approval_id}",
                          field="path.approval_id")  # fmt: skip
        row = dict(rows[0])
        region = approval_region(ctx.reader, row)
        if not user.in_scope(region):
            audit(request, user, verdict, approval_id, 403, comment)
            in_region(user, region, f"action {approval_id} ({row['action']} "
                      f"{row['target']})", "path.approval_id")  # fmt: skip
        try:
            done = st.decide(approval_id, verdict, by=f"api:{user.name}", comment=comment)
        except StateError as exc:
            audit(request, user, verdict, approval_id, 409, comment)
            raise Problem(409, "not-pending", str(exc).split(": ", 1)[-1],
                          field="path.approval_id", current=row["status"]) from None  # fmt: skip
    finally:
        st.close()
    audit(request, user, verdict, approval_id, 200, comment)
    return {"id": approval_id, "action": done["action"], "target": done["target"],
            "status": done["status"], "decided_by": f"api:{user.name}",
            "comment": comment}  # fmt: skip


@router.post("/decisions/{approval_id}/approve", tags=["decisions"])
def approve(request: Request, user: Decider, ctx: Ctx,
            approval_id: Annotated[int, PathParam(ge=1)],
            body: DecisionComment) -> dict[str, Any]:  # fmt: skip
    """Approve a proposed action: operate (approve mode) sends it at its next cycle."""
    return _decide(request, ctx, user, approval_id, "approved", body.comment)


@router.post("/decisions/{approval_id}/reject", tags=["decisions"])
def reject(request: Request, user: Decider, ctx: Ctx,
           approval_id: Annotated[int, PathParam(ge=1)],
           body: DecisionComment) -> dict[str, Any]:  # fmt: skip
    """Reject a proposed action: it is never sent."""
    return _decide(request, ctx, user, approval_id, "rejected", body.comment)


# --- decision requests -----------------------------------------------------------------------
def _check_target(ctx: ApiContext, user: User,
                  body: DecisionRequest) -> tuple[str | None, dict[str, Any]]:  # fmt: skip
    """(PON, newest prediction) of the requested ONU (404 unknown, 403 out of region)."""
    reader = ctx.reader
    onus = reader.inventory()["onus"]
    hit = onus[onus["onu_id"] == body.onu_id]
    if hit.empty:
        raise Problem(404, "not-found", f"no ONU {body.onu_id!r}", field="body.onu_id")
    region = reader.region_of_onu(body.onu_id)
    in_region(user, region, f"ONU {body.onu_id}", "body.onu_id")
    latest = reader.latest_predictions()
    pred = latest[latest["onu_id"] == body.onu_id]
    return str(hit.iloc[0]["pon_id"]), (records(pred)[0] if len(pred) else {})


def _blocked_by(ctx: ApiContext, body: DecisionRequest) -> str | None:
    """The rule that would stop the request (a pending duplicate, the reboot cooldown)."""
    cfg = ctx.cfg
    if cfg.state is None:
        return None
    st = open_state(cfg)
    try:
        pending = {(a["action"], a["target"]) for a in st.approvals("pending")}
        if (body.action, body.onu_id) in pending:
            return "duplicate_of_pending"
        if body.action == "reboot":
            horizon = time.time() - cfg.reboot_cooldown_minutes * 60.0
            for j in st.journal("reboot"):
                if j["target"] == body.onu_id and (j["created_at"] or 0) >= horizon:
                    return "reboot_cooldown"
    finally:
        st.close()
    return None


@router.post("/decision/simulate", tags=["decisions"])
def simulate(user: Annotated[User, Depends(needs("simulate"))], ctx: Ctx,
             body: DecisionRequest) -> dict[str, Any]:  # fmt: skip
    """What ``/decision/execute`` would queue, and what would block it (nothing changes)."""
    read_only = ctx.cfg.read_only
    pon_id, pred = _check_target(ctx, user, body)
    reason = _blocked_by(ctx, body)
    return {"mode": "simulate", "would_queue": reason is None and not read_only,
            "blocked_by": reason or ("read_only" if read_only else None),
            "action": body.action, "onu_id": body.onu_id, "pon_id": pon_id,
            "latest_prediction": pred}  # fmt: skip


def _refuse(request: Request, user: User, body: DecisionRequest, problem: Problem) -> None:
    """Audit a refused execute request, then raise ``problem``."""
    audit(request, user, "execute", body.onu_id, problem.status, body.comment)
    raise problem


@router.post("/decision/execute", tags=["decisions"], status_code=201)
def execute(request: Request, user: Decider, ctx: Ctx, body: DecisionRequest) -> dict[str, Any]:
    """Request an action: it enters operate's approval queue as ``pending``."""
    cfg = ctx.cfg
    wait = ctx.execute_limiter.allow(user.name)
    if wait is not None:
        _refuse(request, user, body, Problem(
            429, "rate-limited", f"at most {cfg.execute_per_minute} execute requests per minute",
            headers={"Retry-After": str(max(1, math.ceil(wait)))}))  # fmt: skip
    if cfg.read_only:
        _refuse(request, user, body, Problem(
            409, "read-only", "this API serves a run read-only (--run): use /decision/simulate, "
            "or start it with --site SITE --state STATE"))  # fmt: skip
    pon_id, _ = _check_target(ctx, user, body)
    reason = _blocked_by(ctx, body)
    if reason is not None:
        _refuse(request, user, body, Problem(
            409, "blocked", f"{body.action} {body.onu_id} is blocked: {reason}",
            field="body.onu_id", rule=reason))  # fmt: skip
    st = open_state(cfg)
    try:
        aid = st.propose(
            ts=pd.Timestamp.now(tz="UTC").isoformat(), action=body.action,
            subject=body.onu_id, target=body.onu_id, pon_id=pon_id, params=body.params,
            rationale={"requested_by": f"api:{user.name}", "comment": body.comment},
        )  # fmt: skip
    finally:
        st.close()
    audit(request, user, "execute", body.onu_id, 201, body.comment)
    return {"id": aid, "status": "pending", "action": body.action, "target": body.onu_id,
            "requested_by": f"api:{user.name}"}  # fmt: skip
