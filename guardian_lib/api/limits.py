"""Request bodies limited before they are read (ASGI middleware).

FastAPI reads a route's whole body before its dependencies check the token, so without a
limit an anonymous client could make the API read a body of any size on any ``POST``.
:class:`BodyLimit` answers 413 to a declared ``Content-Length`` over the route's limit
and 411 to a body of undeclared length (chunked), before any byte of the body is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["BodyLimit", "MAX_BODY_BYTES"]

#: Largest request body under ``/api/v1`` unless a route sets its own: the largest body
#: a route takes (a silence, a decision request, an OLT change) is a few kilobytes. [bytes]
MAX_BODY_BYTES = 65_536
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyLimit:
    """ASGI middleware: ``POST`` / ``PUT`` / ``PATCH`` under ``prefix`` limited by size.

    Parameters
    ----------
    app : ASGI application
    prefix : str
        Path prefix the limit applies to (e.g. ``/api/v1``).
    limit : int, default :data:`MAX_BODY_BYTES`
        Largest body of a path not in ``limits``. [bytes]
    limits : mapping of str → int, optional
        Paths with a limit of their own (e.g. a bulk upload). [bytes]
    require_length : iterable of str, optional
        Paths whose requests must declare ``Content-Length`` (411 otherwise): the others
        may omit it when they send no body.
    """

    def __init__(
        self,
        app: Any,
        prefix: str,
        limit: int = MAX_BODY_BYTES,
        limits: Mapping[str, int] | None = None,
        require_length: tuple[str, ...] = (),
    ) -> None:
        self.app, self.prefix, self.limit = app, prefix, int(limit)
        self.limits = dict(limits or {})
        self.require_length = frozenset(require_length)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in _BODY_METHODS
            and scope["path"].startswith(self.prefix)
        ):
            problem = self._problem(scope)
            if problem is not None:
                from starlette.requests import Request

                from guardian_lib.api.problems import problem_response

                status, detail = problem
                resp = problem_response(
                    Request(scope), status, "body-size", detail, field="header.Content-Length"
                )
                await resp(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _problem(self, scope: dict) -> tuple[int, str] | None:
        """(status, detail) of a request refused for its size; None: let it through."""
        path = scope["path"]
        limit = self.limits.get(path, self.limit)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is None:
            # No length: a chunked body (its size unknown until read) or no body at all.
            if b"transfer-encoding" in headers or path in self.require_length:
                return 411, "Content-Length is required"
            return None
        text = declared.decode("latin-1").strip()
        if not text.isdigit():
            return 411, f"Content-Length must be a number of bytes, got {text[:20]!r}"
        if int(text) > limit:
            return 413, f"the body is larger than {limit} bytes"
        return None
