"""RFC 9457 problem details (``application/problem+json``) for every error the API returns.

Each body has ``type``, ``title``, ``status``, ``detail`` and ``instance`` (the request
path); a request the API could not accept also names the wrong field: ``field``
(``query.min``, ``body.comment``, ``header.Authorization``) and ``errors`` (one entry per
wrong field, with what was expected).
"""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["Problem", "PROBLEM_TYPE_BASE", "install_problem_handlers", "problem_response"]

#: Base of the ``type`` URIs (documented in docs/api.md, one anchor per kind).
PROBLEM_TYPE_BASE = "https://network-guardian.dev/problems/"
_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    422: "Invalid request",
    429: "Too many requests",
    503: "Service unavailable",
}


class Problem(Exception):
    """An error answered as problem+json.

    Parameters
    ----------
    status : int
        HTTP status.
    kind : str
        Last part of the ``type`` URI (``unauthenticated``, ``forbidden``, ``not-found``…).
    detail : str
        What went wrong, for a person.
    field : str, optional
        The wrong field (``query.region``, ``path.customer_id``, ``body.comment``).
    headers : dict, optional
        Extra response headers (``WWW-Authenticate``, ``Retry-After``).
    extra : dict, optional
        More members of the body.
    """

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail
        self.field, self.headers, self.extra = field, headers or {}, extra


def problem_response(
    request: Request,
    status: int,
    kind: str,
    detail: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A ``application/problem+json`` response."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + kind,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if field is not None:
        body["field"] = field
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers,
                        media_type="application/problem+json")  # fmt: skip


def _field(loc: tuple | list) -> str:
    parts = [str(p) for p in loc]
    return ".".join(parts) if parts else "<request>"


#: Longest rejected input echoed back in a 422. [characters]
_MAX_ECHO = 100
_SECRET_FIELD = re.compile(r"password|secret|token", re.IGNORECASE)


def _echo(field: str, value: Any) -> Any:
    """What a 422 may repeat of a rejected input: a short scalar of a field that is not a
    secret. A body sent as raw bytes (a wrong ``Content-Type``) made the JSON encoder fail
    (HTTP 500), and a refused password came back in the answer."""
    if _SECRET_FIELD.search(field):
        return None
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        return value if len(value) <= _MAX_ECHO else value[:_MAX_ECHO] + "…"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSONResponse refuses NaN and infinity
    if value is None or isinstance(value, bool | int | float):
        return value
    return None


def install_problem_handlers(app: FastAPI) -> None:
    """Turn :class:`Problem`, validation errors and HTTP errors into problem+json."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.kind, exc.detail, exc.field,
                                exc.headers, **exc.extra)  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            entry = {"field": _field(e.get("loc", ())), "message": e.get("msg", "")}
            got = _echo(entry["field"], e["input"]) if "input" in e else None
            if got is not None:
                entry["got"] = got
            errors.append(entry)
        first = errors[0] if errors else {"field": "<request>", "message": "invalid"}
        detail = f"{first['field']}: {first['message']}"
        if len(errors) > 1:
            detail += f" (and {len(errors) - 1} more)"
        return problem_response(request, 422, "invalid-request", detail, first["field"],
                                errors=errors)  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem_response(request, exc.status_code, kind, str(exc.detail),
                                headers=getattr(exc, "headers", None))  # fmt: skip
