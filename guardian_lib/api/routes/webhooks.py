"""Webhook subscriptions: ``GET/POST /webhooks``, ``DELETE /webhooks/{id}`` (admin only).

Deliveries are made by :class:`guardian_lib.api.webhooks.WebhookDispatcher`, started
beside the server by :func:`guardian_lib.api.app.create_app`.

No ``from __future__ import annotations``: FastAPI evaluates the route signatures.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from guardian_lib.api.deps import Admin, Ctx, audit
from guardian_lib.api.problems import Problem
from guardian_lib.api.webhooks import WebhookError, webhook_target_error

__all__ = ["WebhookRequest", "router"]

router = APIRouter()


class WebhookRequest(BaseModel):
    """Body of ``POST /webhooks``."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(pattern=r"^https?://", max_length=2000, description="Receiver URL.")
    events: list[Literal["decision", "incident"]] = Field(min_length=1, max_length=2)


@router.get("/webhooks", tags=["webhooks"])
def list_webhooks(user: Admin, ctx: Ctx) -> dict[str, Any]:
    """Webhook subscriptions (without their secrets)."""
    return {"items": ctx.hooks.list()}


@router.get("/webhooks/deliveries", tags=["webhooks"])
def list_deliveries(
    request: Request,
    user: Admin,
    status: Annotated[
        Literal["pending", "delivered", "dead"] | None,
        Query(description="pending (failed, waiting for its retry), delivered or dead."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Webhook deliveries, newest first, with their attempts and last error."""
    items = request.app.state.webhooks.deliveries(status, limit)
    return {"items": items, "total": len(items), "limit": limit}


@router.post("/webhooks", tags=["webhooks"], status_code=201)
def add_webhook(request: Request, user: Admin, ctx: Ctx, body: WebhookRequest) -> dict[str, Any]:
    """Subscribe a URL to decision and/or incident events; the secret is shown once.

    Loopback, link-local (cloud metadata) and other local receivers are refused (400)
    unless the API runs with ``--webhook-allow-local``; private networks are allowed.
    """
    why = webhook_target_error(body.url, ctx.cfg.webhook_allow_local)
    if why is not None:
        audit(request, user, "add_webhook", None, 400, body.url)
        raise Problem(400, "invalid-webhook", f"url: {why}", field="body.url")
    sub = ctx.hooks.add(body.url, list(body.events), owner=user.name)
    audit(request, user, "add_webhook", sub["id"], 201, body.url)
    return sub


@router.delete("/webhooks/{webhook_id}", tags=["webhooks"])
def delete_webhook(
    request: Request, user: Admin, ctx: Ctx, webhook_id: Annotated[str, PathParam(max_length=64)]
) -> dict[str, Any]:
    """Remove a subscription."""
    try:
        ctx.hooks.remove(webhook_id)
    except WebhookError:
        audit(request, user, "delete_webhook", webhook_id, 404)
        raise Problem(404, "not-found", f"no webhook {webhook_id!r}",
                      field="path.webhook_id") from None  # fmt: skip
    audit(request, user, "delete_webhook", webhook_id, 200)
    return {"id": webhook_id, "deleted": True}
