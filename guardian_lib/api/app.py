"""The operator API: FastAPI under ``/api/v1`` over a run's warehouse and operate's state.

:func:`create_app` builds the application from an :class:`ApiConfig`; ``guardian api``
serves it with uvicorn. Every route but ``GET /health`` needs a bearer token
(``guardian users token``); :data:`ENDPOINTS` lists each route with the permission it
needs and whether it is region-scoped (docs/api.md has the same table).

Two modes: ``--run RUN`` serves a warehouse read-only (no approval queue; ``execute``
answers 409), ``--site SITE --state STATE`` serves the warehouse of a site and the
approval queue of the ``guardian operate`` that runs with that state folder. The queue is
operate's SQLite state store (WAL: readers never block its writer), opened per request.

The routes live in :mod:`guardian_lib.api.routes` (one router per domain); what they
share (the :class:`~guardian_lib.api.deps.ApiContext` kept in ``app.state.ctx``, the
token and permission dependencies) in :mod:`guardian_lib.api.deps`.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request

from guardian_lib.api.analysis import AnalysisScreens
from guardian_lib.api.analysis import router as analysis_router
from guardian_lib.api.config import PREFIX, ApiConfig
from guardian_lib.api.console import router as console_router
from guardian_lib.api.data import WarehouseBusy, WarehouseReader
from guardian_lib.api.deps import ApiContext, RateLimiter, open_state, records
from guardian_lib.api.limits import BodyLimit
from guardian_lib.api.problems import install_problem_handlers, problem_response
from guardian_lib.api.routes import ROUTERS
from guardian_lib.api.routes.auth import LOGIN_FAILURES_PER_MINUTE
from guardian_lib.api.routes.contacts import MAX_BODY_BYTES as CONTACTS_MAX_BODY_BYTES
from guardian_lib.api.routes.decisions import REQUESTABLE_ACTIONS
from guardian_lib.api.routes.reads import incidents_audit_file
from guardian_lib.api.trail import ApiTrail
from guardian_lib.api.users import UserStore
from guardian_lib.api.webhooks import WebhookDispatcher, WebhookStore
from guardian_lib.errors import WarehouseError
from guardian_lib.layout import RunLayout

__all__ = ["ApiConfig", "create_app", "ENDPOINTS", "PREFIX", "REQUESTABLE_ACTIONS"]

#: (method, path, permission or None for public, region-scoped?) of every route.
ENDPOINTS: tuple[tuple[str, str, str | None, bool], ...] = (
    ("GET", "/health", None, False),
    ("POST", "/auth/login", None, False),
    ("GET", "/customers/{customer_id}/timeline", "read", True),
    ("GET", "/risk", "read", True),
    ("GET", "/incidents/active", "read", True),
    ("GET", "/metrics/kpis", "read", False),
    ("GET", "/olts", "read", True),
    ("GET", "/pons", "read", True),
    ("GET", "/onus", "read", True),
    ("GET", "/customers", "read", True),
    ("GET", "/decisions", "read", True),
    ("POST", "/decisions/{approval_id}/approve", "decide", True),
    ("POST", "/decisions/{approval_id}/reject", "decide", True),
    ("POST", "/decision/simulate", "simulate", True),
    ("POST", "/decision/execute", "decide", True),
    ("GET", "/users", "admin", False),
    ("DELETE", "/tokens/{token_id}", "admin", False),
    ("GET", "/webhooks", "admin", False),
    ("GET", "/webhooks/deliveries", "admin", False),
    ("POST", "/webhooks", "admin", False),
    ("DELETE", "/webhooks/{webhook_id}", "admin", False),
    ("GET", "/alerts", "read", True),
    ("GET", "/silences", "read", True),
    ("POST", "/silences", "decide", True),
    ("DELETE", "/silences/{silence_id}", "decide", True),
    ("POST", "/olt/changes", "decide", True),
    ("POST", "/contacts", "contacts", True),
)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the webhook dispatcher beside the server (never inside a request)."""
    stop = threading.Event()
    every_s = app.state.cfg.webhook_every_s
    if every_s > 0:
        threading.Thread(target=app.state.webhooks.run, args=(stop, every_s), daemon=True,
                         name="webhooks").start()  # fmt: skip
    yield
    stop.set()


def _dispatcher(ctx: ApiContext) -> WebhookDispatcher:
    """The webhook dispatcher over operate's queue and the open incidents."""
    cfg = ctx.cfg

    def queue_rows() -> list[dict[str, Any]] | None:
        if cfg.state is None:
            return None
        st = open_state(cfg)
        try:
            return st.approvals()
        finally:
            st.close()

    def open_incident_rows() -> list[dict[str, Any]]:
        return records(ctx.reader.open_incidents(incidents_audit_file(cfg)))

    return WebhookDispatcher(ctx.hooks, queue_rows, open_incident_rows,
                             allow_local=cfg.webhook_allow_local)  # fmt: skip


def _install_error_handlers(app: FastAPI) -> None:
    """problem+json for validation and HTTP errors, a busy (503 + Retry-After) or missing
    warehouse (503)."""
    install_problem_handlers(app)

    @app.exception_handler(WarehouseBusy)
    async def _busy(request: Request, exc: WarehouseBusy):
        return problem_response(request, 503, "busy", str(exc), headers={"Retry-After": "1"})

    @app.exception_handler(WarehouseError)
    async def _warehouse(request: Request, exc: WarehouseError):
        return problem_response(request, 503, "warehouse", str(exc))


def create_app(cfg: ApiConfig, users: UserStore | None = None) -> FastAPI:
    """The FastAPI application of one deployment.

    Parameters
    ----------
    cfg : ApiConfig
    users : UserStore, optional
        Defaults to the store of ``cfg.users`` (tests pass one with a movable clock).
    """
    users = users or UserStore(cfg.users)
    if cfg.read_only and not RunLayout(cfg.run).warehouse.exists():
        raise WarehouseError(f"{RunLayout(cfg.run).warehouse} not found: no warehouse in {cfg.run}")
    ctx = ApiContext(
        cfg=cfg,
        users=users,
        reader=WarehouseReader(cfg.run, cfg.subscribers),
        trail=ApiTrail(cfg.audit_path()),
        execute_limiter=RateLimiter(cfg.execute_per_minute),
        login_failures=RateLimiter(LOGIN_FAILURES_PER_MINUTE),
        hooks=WebhookStore(cfg.webhooks_path()),
    )
    app = FastAPI(
        lifespan=_lifespan,
        title="Network Guardian operator API",
        version="1",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
    )
    _install_error_handlers(app)
    # Every body is limited before it is read (FastAPI reads it before the token is
    # checked); POST /contacts, a bulk upload from another system, has a limit of its own.
    app.add_middleware(
        BodyLimit,
        prefix=PREFIX,
        limits={f"{PREFIX}/contacts": CONTACTS_MAX_BODY_BYTES},
        require_length=(f"{PREFIX}/contacts",),
    )
    if cfg.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=cfg.cors_origins,
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])  # fmt: skip
    app.state.ctx = ctx
    app.state.cfg, app.state.users, app.state.reader = cfg, users, ctx.reader
    app.state.trail, app.state.webhooks = ctx.trail, _dispatcher(ctx)
    for router in ROUTERS:
        app.include_router(router, prefix=PREFIX)
    app.include_router(console_router)  # the dashboard: /, /login, /console, /logout
    # the analysis screens of `guardian dashboard`, with the same session
    app.state.analysis = AnalysisScreens(
        cfg.run, audit=cfg.state / "audit.duckdb" if cfg.state is not None else None
    )
    app.include_router(analysis_router)
    return app
