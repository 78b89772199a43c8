"""What every router of the operator API shares: the per-application :class:`ApiContext`,
the bearer-token dependencies (:data:`Reader`, :data:`Decider`, :data:`Admin`,
:func:`needs`), region checks, the audit helper, operate's state store and JSON rows.

Routers reach the context through ``request.app.state.ctx`` (set by
:func:`guardian_lib.api.app.create_app`), so one router module serves any number of
applications (tests build many).

No ``from __future__ import annotations`` here: FastAPI evaluates the signatures of the
dependencies below.
"""

import hashlib
import hmac
import math
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import pandas as pd
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from guardian_lib.api.config import ApiConfig
from guardian_lib.api.data import WarehouseReader
from guardian_lib.api.problems import Problem
from guardian_lib.api.trail import ApiTrail
from guardian_lib.api.users import AuthError, User, UserStore
from guardian_lib.api.webhooks import WebhookStore

if TYPE_CHECKING:
    from guardian_lib.operate.state import StateStore

__all__ = [
    "CSRF_HEADER",
    "LOGIN_FAILURES_PER_CLIENT_PER_MINUTE",
    "CONTACTS_PER_MINUTE",
    "SESSION_COOKIE",
    "Admin",
    "ApiContext",
    "Ctx",
    "Decider",
    "RateLimiter",
    "Reader",
    "approval_region",
    "audit",
    "check_csrf",
    "csrf_token",
    "current_user",
    "get_context",
    "in_region",
    "needs",
    "open_state",
    "page",
    "records",
    "region_filter",
]


#: Failed logins from one client address per minute, over all names, before 429. [1/min]
LOGIN_FAILURES_PER_CLIENT_PER_MINUTE = 20
#: ``POST /contacts`` requests per user and minute. [1/min]
CONTACTS_PER_MINUTE = 120


class RateLimiter:
    """At most ``per_minute`` calls per key in any 60 s window (sliding)."""

    #: Keys kept before those idle for a minute are forgotten (a flood of distinct keys,
    #: such as made-up user names, must not grow memory without bound). [-]
    MAX_KEYS = 10_000

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._calls: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Keys currently remembered. [-]"""
        return len(self._calls)

    def wait(self, key: str, count: bool = False) -> float | None:
        """Seconds until ``key`` may pass again, or None when it may pass now.

        Parameters
        ----------
        count : bool, default False
            Count this call when it passes.
        """
        now = time.monotonic()
        with self._lock:
            if key not in self._calls:
                if not count:
                    return None
                if len(self._calls) >= self.MAX_KEYS:
                    stale = [k for k, v in self._calls.items() if not v or now - v[-1] >= 60.0]
                    for k in stale:
                        del self._calls[k]
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


@dataclass
class ApiContext:
    """The state one application's routes share.

    Attributes
    ----------
    cfg : ApiConfig
    users : UserStore
    reader : WarehouseReader
    trail : ApiTrail
        The API's audit file.
    execute_limiter : RateLimiter
        ``POST /decision/execute`` calls per user. [1/min]
    login_failures : RateLimiter
        Failed logins per user name. [1/min]
    login_client_failures : RateLimiter
        Failed logins per client address, whatever the name (password spraying). [1/min]
    hooks : WebhookStore
        Webhook subscriptions.
    contacts_limiter : RateLimiter
        ``POST /contacts`` calls per user. [1/min]
    """

    cfg: ApiConfig
    users: UserStore
    reader: WarehouseReader
    trail: ApiTrail
    execute_limiter: RateLimiter
    login_failures: RateLimiter
    hooks: WebhookStore
    login_client_failures: RateLimiter = field(
        default_factory=lambda: RateLimiter(LOGIN_FAILURES_PER_CLIENT_PER_MINUTE)
    )
    contacts_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(CONTACTS_PER_MINUTE))


def get_context(request: Request) -> ApiContext:
    """The context of the application serving ``request``."""
    return request.app.state.ctx


Ctx = Annotated[ApiContext, Depends(get_context)]


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
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


def page(frame: pd.DataFrame, limit: int, offset: int) -> dict[str, Any]:
    """One page of ``frame``'s rows with the total count."""
    return {
        "items": records(frame.iloc[offset : offset + limit]),
        "total": int(len(frame)),
        "limit": limit,
        "offset": offset,
    }


# --- authentication and authorization ------------------------------------------------------
#: The dashboard's session cookie (a login token; HttpOnly, SameSite=Strict).
SESSION_COOKIE = "guardian_session"
#: Header a cookie-authenticated mutation must carry (:func:`csrf_token` of the session).
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_bearer = HTTPBearer(auto_error=False, description="An API token: guardian users token NAME")


def current_user(
    request: Request,
    cred: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> User:
    """The user of the request's bearer token (401 problem when none or not valid)."""
    users = get_context(request).users
    users.reload_if_changed()
    session = request.cookies.get(SESSION_COOKIE) if cred is None else None
    field = "cookie." + SESSION_COOKIE if session else "header.Authorization"
    try:
        user, token_id = users.authenticate(cred.credentials if cred else session)
    except AuthError as exc:
        raise Problem(401, "unauthenticated", str(exc), field=field,
                      headers={"WWW-Authenticate": 'Bearer realm="guardian"'},
                      reason=exc.reason) from None  # fmt: skip
    if session and request.method not in SAFE_METHODS:
        check_csrf(request, session)
    request.state.user, request.state.token_id = user, token_id
    return user


def csrf_token(session: str) -> str:
    """The CSRF token of a dashboard session: HMAC-SHA256 of a fixed label keyed by the
    session token (which only the browser holding the HttpOnly cookie has). Nothing to
    store, and it survives a restart of the API."""
    return hmac.new(session.encode(), b"guardian-csrf", hashlib.sha256).hexdigest()


def check_csrf(request: Request, session: str) -> None:
    """403 ``csrf`` unless a cookie-authenticated mutation carries the session's CSRF token
    (header ``X-CSRF-Token``) and, when the browser sent one, a same-origin ``Origin``."""
    origin = request.headers.get("origin")
    if origin is not None:
        host = request.headers.get("host", "")
        if origin.split("://", 1)[-1].rstrip("/") != host:
            raise Problem(403, "csrf", f"cross-origin request from {origin[:100]!r} refused",
                          field="header.Origin")  # fmt: skip
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), csrf_token(session).encode()):
        raise Problem(403, "csrf", f"a dashboard session's {request.method} needs the "
                      f"{CSRF_HEADER} header of its page", field=f"header.{CSRF_HEADER}")  # fmt: skip


def needs(permission: str):
    """A dependency: the current user, who must have ``permission`` (else 403)."""

    def check(user: Annotated[User, Depends(current_user)]) -> User:
        if not user.can(permission):
            raise Problem(403, "forbidden",
                          f"role {user.role!r} does not have the {permission!r} permission",
                          permission=permission, role=user.role)  # fmt: skip
        return user

    return check


Reader = Annotated[User, Depends(needs("read"))]
Decider = Annotated[User, Depends(needs("decide"))]
Admin = Annotated[User, Depends(needs("admin"))]


def in_region(user: User, region: str | None, what: str, fieldname: str) -> None:
    """403 ``out-of-region`` problem unless ``user`` may act on ``region``."""
    if not user.in_scope(region):
        raise Problem(403, "out-of-region",
                      f"{what} is in region {region!r}; user {user.name} may act on "
                      f"{list(user.regions)} only", field=fieldname,
                      region=region)  # fmt: skip


def region_filter(
    user: User, region: str | None, reader: WarehouseReader | None = None
) -> list[str] | None:
    """The regions a listing may show (None: all).

    Parameters
    ----------
    user : User
    region : str, optional
        The requested region (``?region=``).
    reader : WarehouseReader, optional
        Read only when a region is requested: a region outside the inventory's
        (:meth:`WarehouseReader.known_regions`) is 422 ``invalid-request`` (a typo, not
        an empty listing), after the user's scope is checked (403 ``out-of-region``
        first: a scoped user is not shown the other regions' names). Not checked
        without a reader or when the inventory names no region.
    """
    if region is not None:
        if not user.in_scope(region):
            raise Problem(403, "out-of-region",
                          f"region {region!r} is not one of user {user.name}'s regions "
                          f"{list(user.regions)}", field="query.region",
                          region=region)  # fmt: skip
        known = reader.known_regions() if reader is not None else None
        if known is not None and region not in known:
            raise Problem(422, "invalid-request",
                          f"region {region!r} is not in this network's inventory "
                          f"(regions: {known[:20]})", field="query.region")  # fmt: skip
        return [region]
    return list(user.regions) or None


def audit(request: Request, user: User, action: str, target: Any, status: int,
          comment: str = "") -> None:  # fmt: skip
    """Append one line to the API's audit file for a mutating call."""
    get_context(request).trail.record(
        user=user.name, role=user.role, token_id=request.state.token_id,
        method=request.method, path=request.url.path, action=action, target=target,
        status=status, comment=comment, client=request.client.host if request.client else None,
    )  # fmt: skip


def open_state(cfg: ApiConfig) -> "StateStore":
    """Operate's state store (the approval queue); close it after use.

    Raises 409 ``read-only`` in run mode, 503 ``no-operate-state`` when operate has not
    created its state yet.
    """
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


def approval_region(reader: WarehouseReader, row: dict[str, Any]) -> str | None:
    """Region of a queued action: its ONU's, else its PON's."""
    region = reader.region_of_onu(str(row["target"]))
    if region is None and row.get("pon_id"):
        region = reader.region_of_pon(str(row["pon_id"]))
    return region
