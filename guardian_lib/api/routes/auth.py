"""Public routes (``/health``, ``/auth/login``) and user administration (``/users``,
``/tokens``).

No ``from __future__ import annotations``: FastAPI evaluates the route signatures.
"""

import math
import threading
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from guardian_lib.api.deps import Admin, ApiContext, Ctx, audit
from guardian_lib.api.problems import Problem

__all__ = ["LOGIN_FAILURES_PER_MINUTE", "LOGIN_TOKEN_HOURS", "PASSWORD_CHECKS",
           "PASSWORD_CHECK_WAIT_S", "LoginRequest", "admin_router", "meta_router",
           "password_login"]  # fmt: skip

#: Failed logins of one user name per minute before ``/auth/login`` answers 429. [1/min]
LOGIN_FAILURES_PER_MINUTE = 5
#: Lifetime of a token made by ``POST /auth/login`` (a dashboard session). [h]
LOGIN_TOKEN_HOURS = 8.0
#: Password checks running at once in this process (each argon2id check holds 64 MiB).
PASSWORD_CHECKS = threading.BoundedSemaphore(4)
#: How long a login waits for a password check before 503. [s]
PASSWORD_CHECK_WAIT_S = 10.0

meta_router = APIRouter()
admin_router = APIRouter()


class LoginRequest(BaseModel):
    """Body of ``POST /auth/login``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


@meta_router.get("/health", tags=["meta"])
def health(ctx: Ctx) -> dict[str, Any]:
    """Liveness and what this API serves (no token needed; no data).

    In site mode ``operate_state`` is ``ready`` once ``guardian operate`` has created its
    state in ``--state``, ``waiting`` before (the queue answers 503 ``no-operate-state``):
    an API started with a mistyped ``--state`` keeps saying ``waiting``.
    """
    out = {"status": "ok", "mode": "run" if ctx.cfg.read_only else "site",
           "time": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
    ready = ctx.cfg.operate_state_ready()
    if ready is not None:
        out["operate_state"] = "ready" if ready else "waiting"
    return out


def password_login(request: Request, ctx: ApiContext, name: str,
                   password: str) -> tuple[str, Any, Any]:  # fmt: skip
    """Check a password and issue an 8-hour token: ``(token, TokenInfo, User)``.

    Shared by ``POST /auth/login`` and the dashboard's login form. Every attempt is
    audited; 401 ``invalid-credentials`` (same for an unknown user), 429 after
    :data:`LOGIN_FAILURES_PER_MINUTE` failures of one name within a minute.
    """
    client = request.client.host if request.client else None

    def record(status: int, role: str | None = None, token_id: str | None = None) -> None:
        ctx.trail.record(user=name, role=role, token_id=token_id, method="POST",
                         path=request.url.path, action="login", target=name,
                         status=status, comment="", client=client)  # fmt: skip

    wait = ctx.login_failures.wait(name)
    if wait is None and client is not None:
        wait = ctx.login_client_failures.wait(client)
    if wait is not None:
        record(429)
        raise Problem(429, "rate-limited", "too many failed logins; wait a minute",
                      headers={"Retry-After": str(max(1, math.ceil(wait)))})  # fmt: skip
    ctx.users.reload_if_changed()
    # argon2id takes 64 MiB and tens of ms per check: a flood of logins must queue here
    # instead of running one check per server thread at once
    if not PASSWORD_CHECKS.acquire(timeout=PASSWORD_CHECK_WAIT_S):
        record(503)
        raise Problem(503, "busy", "too many logins at once; try again",
                      headers={"Retry-After": "1"})  # fmt: skip
    try:
        user = ctx.users.check_password(name, password)
    finally:
        PASSWORD_CHECKS.release()
    if user is None:
        ctx.login_failures.allow(name)
        if client is not None:
            ctx.login_client_failures.allow(client)
        record(401)
        raise Problem(401, "invalid-credentials", "unknown user or wrong password",
                      field="body.password")  # fmt: skip
    token, info = ctx.users.issue_token(user.name, expires_days=LOGIN_TOKEN_HOURS / 24.0)
    record(200, user.role, info.token_id)
    return token, info, user


@meta_router.post("/auth/login", tags=["meta"])
def login(request: Request, ctx: Ctx, body: LoginRequest) -> dict[str, Any]:
    """Exchange a user's password for a token valid for 8 hours (the dashboard's login).

    Unknown user and wrong password get the same 401; after 5 failures of one name
    within a minute, 429 until the minute has passed (successes are not counted).
    """
    token, info, user = password_login(request, ctx, body.name, body.password)
    return {"token": token, "token_id": info.token_id, "expires_at": info.expires_at,
            "user": user.to_dict()}  # fmt: skip


@admin_router.get("/users", tags=["admin"])
def list_users(user: Admin, ctx: Ctx) -> dict[str, Any]:
    """Users and their tokens (no hashes)."""
    users = ctx.users
    return {"items": [u.to_dict() | {"tokens": [t.to_dict() for t in users.tokens(u.name)]}
                      for u in users.users()]}  # fmt: skip


@admin_router.delete("/tokens/{token_id}", tags=["admin"])
def revoke_token(request: Request, user: Admin, ctx: Ctx,
                 token_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{12}$")]
                 ) -> dict[str, Any]:  # fmt: skip
    """Revoke an API token (it stops working at once)."""
    from guardian_lib.api.users import UsersError

    try:
        info = ctx.users.revoke(token_id)
    except UsersError:
        audit(request, user, "revoke_token", token_id, 404)
        raise Problem(404, "not-found", f"no token {token_id!r}",
                      field="path.token_id") from None  # fmt: skip
    audit(request, user, "revoke_token", token_id, 200)
    return info.to_dict()
