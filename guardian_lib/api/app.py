"""The operator API: FastAPI under ``/api/v1`` over a run's warehouse and operate's state.

:func:`create_app` builds the application from an :class:`ApiConfig`; ``guardian api``
serves it with uvicorn. Every route but ``GET /health`` needs a bearer token
(``guardian users token``); :data:`ENDPOINTS` lists each route with the permission it
needs and whether it is region-scoped (docs/api.md has the same table).

Two modes: ``--run RUN`` serves a warehouse read-only (no approval queue; ``execute``
answers 409), ``--site SITE --state STATE`` serves the warehouse of a site and the
approval queue of the ``guardian operate`` that runs with that state folder. The queue is
operate's SQLite state store (WAL: readers never block its writer), opened per request.

No ``from __future__ import annotations`` here: FastAPI must evaluate the route
signatures, whose ``Annotated`` dependencies are local to :func:`create_app`.
"""

import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from guardian_lib.api.data import WarehouseBusy, WarehouseReader
from guardian_lib.api.problems import Problem, install_problem_handlers
from guardian_lib.api.trail import ApiTrail
from guardian_lib.api.users import AuthError, User, UserStore
from guardian_lib.errors import WarehouseError
from guardian_lib.layout import RunLayout

__all__ = ["ApiConfig", "create_app", "ENDPOINTS", "PREFIX", "REQUESTABLE_ACTIONS"]

PREFIX = "/api/v1"
#: Failed logins of one user name per minute before ``/auth/login`` answers 429. [1/min]
LOGIN_FAILURES_PER_MINUTE = 5
#: Lifetime of a token made by ``POST /auth/login`` (a dashboard session). [h]
LOGIN_TOKEN_HOURS = 8.0
#: Actions an operator may request through ``POST /decision/execute``.
REQUESTABLE_ACTIONS = ("reboot", "schedule_visit")
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
    ("POST", "/webhooks", "admin", False),
    ("DELETE", "/webhooks/{webhook_id}", "admin", False),
)
#: Sortable / filterable columns of each inventory table.
_INVENTORY_COLUMNS: dict[str, tuple[str, ...]] = {
    "olts": ("olt_id", "vendor", "model", "region", "city", "pop_id"),
    "pons": ("pon_id", "olt_id", "slot", "port", "technology", "region"),
    "onus": ("onu_id", "serial", "pon_id", "olt_id", "vendor", "model", "distance_m", "region"),
    "customers": ("customer_id", "onu_id", "cpe_id", "plan", "segment", "sla_tier", "region",
                  "city"),
}  # fmt: skip
_STATE_ALIASES = {"proposed": "pending"}


@dataclass
class ApiConfig:
    """What one ``guardian api`` serves.

    Attributes
    ----------
    run : Path
        Run folder of the warehouse.
    users : Path
        Users file.
    state : Path or None
        ``guardian operate``'s state folder (site mode); None: read-only run mode.
    audit : Path or None
        The API's audit file (default: ``<state>/api-audit.jsonl``, or beside the users
        file in run mode).
    execute_per_minute : int
        Requests to ``POST /decision/execute`` one user may make per minute. [1/min]
    reboot_cooldown_minutes : float
        Cooldown the simulate endpoint checks against operate's journal. [min]
    cors_origins : list of str
        Origins allowed by CORS; empty: no CORS headers at all.
    subscribers : Path or None
        The site's subscribers file: the inventory when the warehouse has none (operate
        stores telemetry only).
    webhook_every_s : float
        Interval of the webhook dispatcher; 0: not started (tests call it). [s]
    """

    run: Path
    users: Path
    state: Path | None = None
    audit: Path | None = None
    execute_per_minute: int = 10
    reboot_cooldown_minutes: float = 360.0
    cors_origins: list[str] = field(default_factory=list)
    subscribers: Path | None = None
    webhook_every_s: float = 5.0

    @property
    def read_only(self) -> bool:
        """True in ``--run`` mode (no operate state)."""
        return self.state is None

    def webhooks_path(self) -> Path:
        """Where webhook subscriptions are kept (0600)."""
        return (self.state or self.users.parent) / "webhooks.json"

    def audit_path(self) -> Path:
        """Where the API's audit lines go."""
        if self.audit is not None:
            return self.audit
        return (self.state or self.users.parent) / "api-audit.jsonl"


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


class LoginRequest(BaseModel):
    """Body of ``POST /auth/login``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class WebhookRequest(BaseModel):
    """Body of ``POST /webhooks``."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(pattern=r"^https?://", max_length=2000, description="Receiver URL.")
    events: list[Literal["decision", "incident"]] = Field(min_length=1, max_length=2)


class _RateLimiter:
    """At most ``per_minute`` calls per key in any 60 s window (sliding)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._calls: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def wait(self, key: str, count: bool = False) -> float | None:
        """Seconds until ``key`` may pass again, or None when it may pass now.

        Parameters
        ----------
        count : bool, default False
            Count this call when it passes.
        """
        now = time.monotonic()
        with self._lock:
            q = self._calls[key]
            while q and now - q[0] >= 60.0:
                q.popleft()
            if len(q) >= self.per_minute:
                return 60.0 - (now - q[0])
            if count:
                q.append(now)
            return None

    def allow(self, key: str) -> float | None:
        """None when allowed (and counted), else seconds until the next call may pass."""
        return self.wait(key, count=True)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (timestamps ISO 8601, NaN → null)."""
    out = []
    for row in frame.to_dict(orient="records"):
        clean = {}
        for k, v in row.items():
            if isinstance(v, np.ndarray):
                v = v.tolist()
            elif isinstance(v, pd.Timestamp):
                v = v.isoformat()
            elif isinstance(v, float) and math.isnan(v):
                v = None
            elif v is pd.NaT or (not isinstance(v, list | dict | tuple) and pd.isna(v)):
                v = None
            elif hasattr(v, "item"):
                v = v.item()
            clean[str(k)] = v
        out.append(clean)
    return out


def _page(frame: pd.DataFrame, limit: int, offset: int) -> dict[str, Any]:
    return {
        "items": _records(frame.iloc[offset : offset + limit]),
        "total": int(len(frame)),
        "limit": limit,
        "offset": offset,
    }


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
    reader = WarehouseReader(cfg.run, cfg.subscribers)
    trail = ApiTrail(cfg.audit_path())
    limiter = _RateLimiter(cfg.execute_per_minute)
    login_failures = _RateLimiter(LOGIN_FAILURES_PER_MINUTE)
    bearer = HTTPBearer(auto_error=False, description="An API token: guardian users token NAME")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        if cfg.webhook_every_s > 0:  # deliveries run beside the server, never in a request
            threading.Thread(target=app.state.webhooks.run, args=(stop, cfg.webhook_every_s),
                             daemon=True, name="webhooks").start()  # fmt: skip
        yield
        stop.set()

    app = FastAPI(
        lifespan=lifespan,
        title="Network Guardian operator API",
        version="1",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
    )
    install_problem_handlers(app)
    if cfg.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=cfg.cors_origins,
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])  # fmt: skip
    app.state.cfg, app.state.users, app.state.reader, app.state.trail = cfg, users, reader, trail

    @app.exception_handler(WarehouseBusy)
    async def _busy(request: Request, exc: WarehouseBusy):
        from guardian_lib.api.problems import problem_response

        return problem_response(request, 503, "busy", str(exc), headers={"Retry-After": "1"})

    # --- authentication and authorization --------------------------------------------------
    def current_user(
        request: Request,
        cred: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> User:
        users.reload_if_changed()
        try:
            user, token_id = users.authenticate(cred.credentials if cred else None)
        except AuthError as exc:
            raise Problem(401, "unauthenticated", str(exc), field="header.Authorization",
                          headers={"WWW-Authenticate": 'Bearer realm="guardian"'},
                          reason=exc.reason) from None  # fmt: skip
        request.state.user, request.state.token_id = user, token_id
        return user

    def needs(permission: str):
        def check(user: Annotated[User, Depends(current_user)]) -> User:
            if not user.can(permission):
                raise Problem(403, "forbidden",
                              f"role {user.role!r} does not have the {permission!r} permission",
                              permission=permission, role=user.role)  # fmt: skip
            return user

        return check

    Reader = Annotated[User, Depends(needs("read"))]
    Decider = Annotated[User, Depends(needs("decide"))]

    def in_region(user: User, region: str | None, what: str, fieldname: str) -> None:
        if not user.in_scope(region):
            raise Problem(403, "out-of-region",
                          f"{what} is in region {region!r}; user {user.name} may act on "
                          f"{list(user.regions)} only", field=fieldname,
                          region=region)  # fmt: skip

    def region_filter(user: User, region: str | None) -> list[str] | None:
        """The regions a listing may show (None: all)."""
        if region is not None:
            in_region(user, region, "the requested region", "query.region")
            return [region]
        return list(user.regions) or None

    def audit(request: Request, user: User, action: str, target: Any, status: int,
              comment: str = "") -> None:  # fmt: skip
        trail.record(user=user.name, role=user.role, token_id=request.state.token_id,
                     method=request.method, path=request.url.path, action=action,
                     target=target, status=status, comment=comment,
                     client=request.client.host if request.client else None)  # fmt: skip

    def store():
        from guardian_lib.operate.state import STATE_FILE, StateStore

        if cfg.state is None:
            raise Problem(409, "read-only",
                          "this API serves a run read-only (--run): there is no approval queue; "
                          "start it with --site SITE --state STATE")  # fmt: skip
        if not (cfg.state / STATE_FILE).exists():
            raise Problem(
                503,
                "no-operate-state",
                f"{cfg.state}: no guardian operate state here ({STATE_FILE} missing)",
            )
        return StateStore(cfg.state)

    def approval_region(row: dict[str, Any]) -> str | None:
        region = reader.region_of_onu(str(row["target"]))
        if region is None and row.get("pon_id"):
            region = reader.region_of_pon(str(row["pon_id"]))
        return region

    api = APIRouter(prefix=PREFIX)

    # --- public -------------------------------------------------------------------------
    @api.get("/health", tags=["meta"])
    def health() -> dict[str, Any]:
        """Liveness and what this API serves (no token needed; no data)."""
        return {"status": "ok", "mode": "run" if cfg.read_only else "site",
                "time": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip

    @api.post("/auth/login", tags=["meta"])
    def login(request: Request, body: LoginRequest) -> dict[str, Any]:
        """Exchange a user's password for a token valid for 8 hours (the dashboard's login).

        Unknown user and wrong password get the same 401; after 5 failures of one name
        within a minute, 429 until the minute has passed (successes are not counted).
        """
        client = request.client.host if request.client else None

        def record(status: int, role: str | None = None, token_id: str | None = None) -> None:
            trail.record(user=body.name, role=role, token_id=token_id, method="POST",
                         path=request.url.path, action="login", target=body.name,
                         status=status, comment="", client=client)  # fmt: skip

        wait = login_failures.wait(body.name)
        if wait is not None:
            record(429)
            raise Problem(429, "rate-limited", "too many failed logins; wait a minute",
                          headers={"Retry-After": str(max(1, math.ceil(wait)))})  # fmt: skip
        users.reload_if_changed()
        user = users.check_password(body.name, body.password)
        if user is None:
            login_failures.allow(body.name)
            record(401)
            raise Problem(401, "invalid-credentials", "unknown user or wrong password",
                          field="body.password")  # fmt: skip
        token, info = users.issue_token(user.name, expires_days=LOGIN_TOKEN_HOURS / 24.0)
        record(200, user.role, info.token_id)
        return {"token": token, "token_id": info.token_id, "expires_at": info.expires_at,
                "user": user.to_dict()}  # fmt: skip

    # --- reads --------------------------------------------------------------------------------
    @api.get("/risk", tags=["risk"])
    def risk(
        user: Reader,
        region: Annotated[str | None, Query(max_length=64, description="Only this region.")] = None,
        window: Annotated[Literal["2h", "6h", "24h"], Query(description="Horizon.")] = "24h",
        min: Annotated[float, Query(ge=0.0, le=1.0, description="Lowest risk shown. [-]")] = 0.5,  # noqa: A002
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """The risk queue: each ONU's newest prediction at or above ``min``, riskiest first."""
        regions = region_filter(user, region)
        queue, risk_desc, region_arr = reader.risk_queue(window)
        # rows are sorted by risk, descending: those >= min are a prefix
        n = int(np.searchsorted(-risk_desc, -min, side="right"))
        sel = queue.iloc[:n]
        if regions is not None:
            sel = sel[np.isin(region_arr[:n], regions)]
        out = _page(sel, limit, offset)
        return out | {"window": window, "min": min}

    @api.get("/customers/{customer_id}/timeline", tags=["customers"])
    def timeline(
        user: Reader,
        customer_id: Annotated[str, PathParam(max_length=128)],
        limit: Annotated[int, Query(ge=1, le=1000, description="Per kind.")] = 200,
    ) -> dict[str, Any]:
        """A customer's events, predictions and service orders, newest first."""
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
            orders = _records(hit.head(limit))
        return {
            "customer": _records(pd.DataFrame([cust]))[0],
            "events": _records(reader.events_of(ids, limit)),
            "predictions": _records(reader.predictions_of(onu_id, limit)),
            "service_orders": orders,
        }

    @api.get("/incidents/active", tags=["incidents"])
    def incidents_active(user: Reader) -> dict[str, Any]:
        """Open incidents from the autopilot's audit trail (operate's, or the run's backtest)."""
        audit_file = (cfg.state / "audit.duckdb") if cfg.state else RunLayout(cfg.run).audit
        frame = reader.open_incidents(audit_file)
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
        return {"items": _records(frame), "total": int(len(frame))}

    @api.get("/metrics/kpis", tags=["metrics"])
    def kpis(user: Reader) -> dict[str, Any]:
        """The backtest KPIs and SLA table of the run, and operate's last cycle (site mode)."""
        import json

        lay = RunLayout(cfg.run)
        out: dict[str, Any] = {"backtest": None, "sla": None, "operate_last_cycle": None}
        if lay.kpis.exists():
            out["backtest"] = json.loads(lay.kpis.read_text(encoding="utf-8"))
        if lay.sla_json.exists():
            out["sla"] = json.loads(lay.sla_json.read_text(encoding="utf-8"))
        if cfg.state is not None:
            try:
                st = store()
            except Problem:
                st = None
            if st is not None:
                try:
                    cycles = st.cycles()
                finally:
                    st.close()
                out["operate_last_cycle"] = cycles[-1] if cycles else None
        return out

    def inventory_route(table: str):
        columns = _INVENTORY_COLUMNS[table]

        def listing(
            request: Request,
            user: Reader,
            region: Annotated[str | None, Query(max_length=64)] = None,
            sort: Annotated[
                str | None,
                Query(
                    max_length=64,
                    description=(f"A column, '-' first for descending: {', '.join(columns)}"),
                ),
            ] = None,  # fmt: skip
            limit: Annotated[int, Query(ge=1, le=1000)] = 100,
            offset: Annotated[int, Query(ge=0)] = 0,
        ) -> dict[str, Any]:
            frame = reader.inventory()[table]
            absent = [c for c in columns if c not in frame.columns]
            if absent:  # a site's subscribers file has fewer columns than a warehouse
                frame = frame.assign(**dict.fromkeys(absent))
            regions = region_filter(user, region)
            if regions is not None:
                frame = frame[frame["region"].isin(regions)]
            known = {"region", "sort", "limit", "offset"}
            for name, value in request.query_params.items():
                if name in known:
                    continue
                if name not in columns:
                    raise Problem(422, "invalid-request",
                                  f"query.{name}: unknown filter; expected one of {list(columns)}",
                                  field=f"query.{name}")  # fmt: skip
                frame = frame[frame[name].astype(str) == value]
            if sort:
                name = sort.lstrip("-")
                if name not in columns:
                    raise Problem(422, "invalid-request",
                                  f"query.sort: expected one of {list(columns)} (with an "
                                  f"optional '-'), got {sort!r}", field="query.sort")  # fmt: skip
                frame = frame.sort_values([name, columns[0]],
                                          ascending=[not sort.startswith("-"), True])  # fmt: skip
            else:
                frame = frame.sort_values(columns[0])
            return _page(frame[[c for c in frame.columns if c in columns or c in ("lat", "lon")]],
                         limit, offset)  # fmt: skip

        listing.__doc__ = (f"The {table} (paginated; filter by any of {', '.join(columns)} "
                           "as query parameters).")  # fmt: skip
        return listing

    for table in _INVENTORY_COLUMNS:
        api.get(f"/{table}", tags=["inventory"], name=f"list_{table}")(inventory_route(table))

    # --- the approval queue ---------------------------------------------------------------
    @api.get("/decisions", tags=["decisions"])
    def decisions(
        user: Reader,
        state: Annotated[
            Literal["proposed", "pending", "approved", "rejected", "executed", "failed"] | None,
            Query(description="proposed (= pending), approved, rejected, executed, failed."),
        ] = "proposed",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """Actions ``guardian operate --mode approve`` proposed (oldest first)."""
        import json

        st = store()
        try:
            rows = st.approvals(_STATE_ALIASES.get(state, state) if state else None)
        finally:
            st.close()
        items = []
        for r in rows:
            r = dict(r)
            r["region"] = approval_region(r)
            if not user.in_scope(r["region"]):
                continue
            for k in ("params", "rationale", "result"):
                if isinstance(r.get(k), str):
                    try:
                        r[k] = json.loads(r[k])
                    except ValueError:
                        pass
            items.append(r)
        return {"items": items[offset : offset + limit], "total": len(items),
                "limit": limit, "offset": offset}  # fmt: skip

    def decide(request: Request, user: User, approval_id: int, verdict: str, comment: str):
        from guardian_lib.operate.state import StateError

        st = store()
        try:
            rows = [r for r in st.approvals() if r["id"] == approval_id]
            if not rows:
                raise Problem(404, "not-found", f"no proposed action with id {approval_id}",
                              field="path.approval_id")  # fmt: skip
            row = dict(rows[0])
            region = approval_region(row)
            if not user.in_scope(region):
                audit(request, user, verdict, approval_id, 403, comment)
                in_region(user, region, f"action {approval_id} ({row['action']} "
                          f"{row['target']})", "path.approval_id")  # fmt: skip
            try:
                done = st.decide(approval_id, verdict, by=f"api:{user.name}")
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

    @api.post("/decisions/{approval_id}/approve", tags=["decisions"])
    def approve(request: Request, user: Decider, approval_id: Annotated[int, PathParam(ge=1)],
                body: DecisionComment) -> dict[str, Any]:  # fmt: skip
        """Approve a proposed action: operate (approve mode) sends it at its next cycle."""
        return decide(request, user, approval_id, "approved", body.comment)

    @api.post("/decisions/{approval_id}/reject", tags=["decisions"])
    def reject(request: Request, user: Decider, approval_id: Annotated[int, PathParam(ge=1)],
               body: DecisionComment) -> dict[str, Any]:  # fmt: skip
        """Reject a proposed action: it is never sent."""
        return decide(request, user, approval_id, "rejected", body.comment)

    # --- decision requests ------------------------------------------------------------------
    def check_target(user: User, body: DecisionRequest) -> tuple[str | None, dict[str, Any]]:
        onus = reader.inventory()["onus"]
        hit = onus[onus["onu_id"] == body.onu_id]
        if hit.empty:
            raise Problem(404, "not-found", f"no ONU {body.onu_id!r}", field="body.onu_id")
        region = reader.region_of_onu(body.onu_id)
        in_region(user, region, f"ONU {body.onu_id}", "body.onu_id")
        latest = reader.latest_predictions()
        pred = latest[latest["onu_id"] == body.onu_id]
        return (None if hit.empty else str(hit.iloc[0]["pon_id"]),
                _records(pred)[0] if len(pred) else {})  # fmt: skip

    def blocked_by(body: DecisionRequest) -> str | None:
        if cfg.state is None:
            return None
        st = store()
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

    @api.post("/decision/simulate", tags=["decisions"])
    def simulate(user: Annotated[User, Depends(needs("simulate"))],
                 body: DecisionRequest) -> dict[str, Any]:  # fmt: skip
        """What ``/decision/execute`` would queue, and what would block it (nothing changes)."""
        pon_id, pred = check_target(user, body)
        reason = blocked_by(body)
        return {"mode": "simulate", "would_queue": reason is None and not cfg.read_only,
                "blocked_by": reason or ("read_only" if cfg.read_only else None),
                "action": body.action, "onu_id": body.onu_id, "pon_id": pon_id,
                "latest_prediction": pred}  # fmt: skip

    @api.post("/decision/execute", tags=["decisions"], status_code=201)
    def execute(request: Request, user: Decider, body: DecisionRequest) -> dict[str, Any]:
        """Request an action: it enters operate's approval queue as ``pending``."""
        wait = limiter.allow(user.name)
        if wait is not None:
            audit(request, user, "execute", body.onu_id, 429, body.comment)
            raise Problem(429, "rate-limited",
                          f"at most {cfg.execute_per_minute} execute requests per minute",
                          headers={"Retry-After": str(max(1, math.ceil(wait)))})  # fmt: skip
        if cfg.read_only:
            audit(request, user, "execute", body.onu_id, 409, body.comment)
            raise Problem(409, "read-only",
                          "this API serves a run read-only (--run): use /decision/simulate, or "
                          "start it with --site SITE --state STATE")  # fmt: skip
        pon_id, _ = check_target(user, body)
        reason = blocked_by(body)
        if reason is not None:
            audit(request, user, "execute", body.onu_id, 409, body.comment)
            raise Problem(409, "blocked", f"{body.action} {body.onu_id} is blocked: {reason}",
                          field="body.onu_id", rule=reason)  # fmt: skip
        st = store()
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

    # --- admin -----------------------------------------------------------------------------
    @api.get("/users", tags=["admin"])
    def list_users(user: Annotated[User, Depends(needs("admin"))]) -> dict[str, Any]:
        """Users and their tokens (no hashes)."""
        return {"items": [u.to_dict() | {"tokens": [t.to_dict() for t in users.tokens(u.name)]}
                          for u in users.users()]}  # fmt: skip

    @api.delete("/tokens/{token_id}", tags=["admin"])
    def revoke_token(request: Request, user: Annotated[User, Depends(needs("admin"))],
                     token_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{12}$")]
                     ) -> dict[str, Any]:  # fmt: skip
        """Revoke an API token (it stops working at once)."""
        from guardian_lib.api.users import UsersError

        try:
            info = users.revoke(token_id)
        except UsersError:
            audit(request, user, "revoke_token", token_id, 404)
            raise Problem(404, "not-found", f"no token {token_id!r}",
                          field="path.token_id") from None  # fmt: skip
        audit(request, user, "revoke_token", token_id, 200)
        return info.to_dict()

    # --- webhooks ---------------------------------------------------------------------------
    from guardian_lib.api.webhooks import WebhookDispatcher, WebhookError, WebhookStore

    hooks = WebhookStore(cfg.webhooks_path())

    def queue_rows() -> list[dict[str, Any]] | None:
        if cfg.state is None:
            return None
        st = store()
        try:
            return st.approvals()
        finally:
            st.close()

    def open_incident_rows() -> list[dict[str, Any]]:
        audit_file = (cfg.state / "audit.duckdb") if cfg.state else RunLayout(cfg.run).audit
        return _records(reader.open_incidents(audit_file))

    dispatcher = WebhookDispatcher(hooks, queue_rows, open_incident_rows)
    app.state.webhooks = dispatcher
    Admin = Annotated[User, Depends(needs("admin"))]

    @api.get("/webhooks", tags=["webhooks"])
    def list_webhooks(user: Admin) -> dict[str, Any]:
        """Webhook subscriptions (without their secrets)."""
        return {"items": hooks.list()}

    @api.post("/webhooks", tags=["webhooks"], status_code=201)
    def add_webhook(request: Request, user: Admin, body: WebhookRequest) -> dict[str, Any]:
        """Subscribe a URL to decision and/or incident events; the secret is shown once."""
        sub = hooks.add(body.url, list(body.events), owner=user.name)
        audit(request, user, "add_webhook", sub["id"], 201, body.url)
        return sub

    @api.delete("/webhooks/{webhook_id}", tags=["webhooks"])
    def delete_webhook(
        request: Request, user: Admin, webhook_id: Annotated[str, PathParam(max_length=64)]
    ) -> dict[str, Any]:
        """Remove a subscription."""
        try:
            hooks.remove(webhook_id)
        except WebhookError:
            audit(request, user, "delete_webhook", webhook_id, 404)
            raise Problem(404, "not-found", f"no webhook {webhook_id!r}",
                          field="path.webhook_id") from None  # fmt: skip
        audit(request, user, "delete_webhook", webhook_id, 200)
        return {"id": webhook_id, "deleted": True}

    app.include_router(api)

    @app.exception_handler(WarehouseError)
    async def _warehouse(request: Request, exc: WarehouseError):
        from guardian_lib.api.problems import problem_response

        return problem_response(request, 503, "warehouse", str(exc))

    return app
