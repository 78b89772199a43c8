"""Alerts and silences of the site's ``guardian operate``: ``GET /alerts``,
``GET/POST /silences``, ``DELETE /silences/{id}``.

Alerts are read from operate's alert outbox (``alerts_outbox.sqlite`` in its state
folder, opened read-only): each alert's newest notified state, so an alert whose route
ends at the ``null`` receiver (never queued) is not listed. Silences are operate's silence
file (``silences.sqlite``, :class:`~guardian_lib.alerts.silences.SilenceStore`): the
dispatcher re-reads it every cycle, so a silence added here mutes at the next cycle.

Region scope: an alert's region is its ``region`` label; a silence's is its exact
(not ``~regex``) ``region`` matcher. A region-scoped user sees, creates and expires only
silences of their regions, and so must give a ``region`` matcher.

No ``from __future__ import annotations``: FastAPI evaluates the route signatures.
"""

import json
import sqlite3
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from guardian_lib.api.config import ApiConfig
from guardian_lib.api.deps import Ctx, Decider, Reader, audit, in_region, region_filter
from guardian_lib.api.problems import Problem
from guardian_lib.api.users import User
from guardian_lib.errors import ConfigError

__all__ = ["SilenceRequest", "router"]

#: Longest silence the API accepts (30 days). [min]
MAX_SILENCE_MINUTES = 30 * 24 * 60.0

router = APIRouter()


class SilenceRequest(BaseModel):
    """Body of ``POST /silences``."""

    model_config = ConfigDict(extra="forbid")
    matchers: dict[
        Annotated[str, Field(max_length=64)], Annotated[str, Field(min_length=1, max_length=256)]
    ] = Field(min_length=1, max_length=20, description="Label → value, or ~regex (full match).")
    duration_minutes: float = Field(gt=0.0, le=MAX_SILENCE_MINUTES, description="How long. [min]")
    comment: str = Field(min_length=1, max_length=2000, description="Why (kept in the audit).")


def _state_file(cfg: ApiConfig, name: str) -> Path:
    """A file of operate's state folder (409 ``read-only`` in run mode)."""
    if cfg.state is None:
        raise Problem(409, "read-only",
                      "this API serves a run read-only (--run): alerts and silences are "
                      "operate's; start it with --site SITE --state STATE")  # fmt: skip
    return cfg.state / name


def _silence_store(cfg: ApiConfig):
    from guardian_lib.alerts.pipeline import SILENCES_FILE
    from guardian_lib.alerts.silences import SilenceStore

    return SilenceStore(_state_file(cfg, SILENCES_FILE))


def _silence_region(matchers: dict[str, str]) -> str | None:
    region = matchers.get("region")
    return None if region is None or region.startswith("~") else region


def _silence_dict(s: Any, now: pd.Timestamp) -> dict[str, Any]:
    return {"id": s.silence_id, "matchers": s.matchers, "starts_at": s.starts_at.isoformat(),
            "ends_at": s.ends_at.isoformat(), "created_by": s.created_by, "comment": s.comment,
            "active": s.active(now), "region": _silence_region(s.matchers)}  # fmt: skip


def _notified_alerts(outbox: Path) -> list[dict[str, Any]]:
    """Each alert's newest notified state (by fingerprint), oldest start first."""
    if not outbox.exists():
        return []
    con = sqlite3.connect(f"{outbox.as_uri()}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT payload FROM messages ORDER BY created_at, key").fetchall()
    finally:
        con.close()
    newest: dict[str, dict[str, Any]] = {}
    for (payload,) in rows:
        for alert in json.loads(payload).get("alerts", []):
            newest[alert["fingerprint"]] = alert
    return sorted(newest.values(), key=lambda a: (a["startsAt"], a["fingerprint"]))


@router.get("/alerts", tags=["alerts"])
def list_alerts(
    user: Reader,
    ctx: Ctx,
    region: Annotated[str | None, Query(max_length=64, description="Only this region.")] = None,
    status: Annotated[Literal["firing", "resolved"] | None, Query()] = "firing",
) -> dict[str, Any]:
    """Alerts operate has notified (newest state of each), filtered by status and region."""
    from guardian_lib.alerts.pipeline import OUTBOX_FILE

    regions = region_filter(user, region, ctx.reader)
    items = [
        a for a in _notified_alerts(_state_file(ctx.cfg, OUTBOX_FILE))
        if (status is None or a["status"] == status)
        and user.in_scope(a["labels"].get("region"))
        and (regions is None or a["labels"].get("region") in regions)
    ]  # fmt: skip
    return {"items": items, "total": len(items)}


@router.get("/silences", tags=["alerts"])
def list_silences(
    user: Reader,
    ctx: Ctx,
    region: Annotated[str | None, Query(max_length=64, description="Only this region.")] = None,
    expired: Annotated[bool, Query(description="Also list ended silences.")] = False,
) -> dict[str, Any]:
    """Silences (active ones, or all with ``expired=true``), oldest start first."""
    regions = region_filter(user, region, ctx.reader)
    now = pd.Timestamp.now(tz="UTC")
    store = _silence_store(ctx.cfg)
    try:
        silences = store.all()
    finally:
        store.close()
    items = [
        _silence_dict(s, now) for s in silences
        if (expired or s.active(now)) and user.in_scope(_silence_region(s.matchers))
        and (regions is None or _silence_region(s.matchers) in regions)
    ]  # fmt: skip
    return {"items": items, "total": len(items)}


@router.post("/silences", tags=["alerts"], status_code=201)
def add_silence(request: Request, user: Decider, ctx: Ctx, body: SilenceRequest) -> dict[str, Any]:
    """Mute every alert whose labels match all matchers, from now for ``duration_minutes``."""
    from guardian_lib.matchers import parse_matchers

    try:
        matchers = parse_matchers([f"{k}={v}" for k, v in body.matchers.items()])
    except ConfigError as exc:
        raise Problem(422, "invalid-request", f"body.matchers: {exc}",
                      field="body.matchers") from None  # fmt: skip
    _check_silence_scope(request, user, matchers, body.comment)
    now = pd.Timestamp.now(tz="UTC")
    store = _silence_store(ctx.cfg)
    try:
        s = store.add(matchers, now, now + pd.Timedelta(minutes=body.duration_minutes),
                      f"api:{user.name}", body.comment)  # fmt: skip
    finally:
        store.close()
    audit(request, user, "add_silence", s.silence_id, 201, body.comment)
    return _silence_dict(s, now)


def _check_silence_scope(request: Request, user: User, matchers: dict[str, str],
                         comment: str) -> None:  # fmt: skip
    """403 (audited) unless a region-scoped user's silence is pinned to one of their regions."""
    region = _silence_region(matchers)
    if not user.in_scope(region):
        audit(request, user, "add_silence", matchers, 403, comment)
        in_region(user, region, "the silence (its exact 'region' matcher)",
                  "body.matchers.region")  # fmt: skip


@router.delete("/silences/{silence_id}", tags=["alerts"])
def expire_silence(
    request: Request, user: Decider, ctx: Ctx,
    silence_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{12}$")],
) -> dict[str, Any]:  # fmt: skip
    """End a silence now (it stays listed with ``expired=true``)."""
    now = pd.Timestamp.now(tz="UTC")
    store = _silence_store(ctx.cfg)
    try:
        hit = [s for s in store.all() if s.silence_id == silence_id]
        if not hit:
            audit(request, user, "expire_silence", silence_id, 404)
            raise Problem(404, "not-found", f"no silence {silence_id!r}",
                          field="path.silence_id")  # fmt: skip
        region = _silence_region(hit[0].matchers)
        if not user.in_scope(region):
            audit(request, user, "expire_silence", silence_id, 403)
            in_region(user, region, f"silence {silence_id}", "path.silence_id")
        s = store.expire(silence_id, now)
    finally:
        store.close()
    audit(request, user, "expire_silence", silence_id, 200)
    return _silence_dict(s, now)
