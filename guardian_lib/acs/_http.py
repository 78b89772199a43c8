"""HTTP under the NBI client: timeouts, retries with backoff, ``Retry-After``, audit.

:class:`guardian_lib.acs.nbi.NbiClient` adds the GenieACS resources (devices, tasks,
files) on top of :class:`_NbiHttp`. The one rule this layer keeps is the one a reboot
depends on: a request whose answer was lost is re-sent only when the caller says it is
``repeatable``; otherwise :class:`AcsAmbiguousError` goes up so that the caller can
reconcile by idempotency key.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import httpx

from guardian_lib.errors import GuardianError

__all__ = [
    "AcsError",
    "AcsUnavailableError",
    "AcsAmbiguousError",
    "AcsDeviceNotFoundError",
    "AcsRequestError",
    "token_from_env",
]

audit_log = logging.getLogger("guardian_lib.acs.audit")


class AcsError(GuardianError):
    """An ACS NBI call failed (names the URL, device and what arrived)."""


class AcsUnavailableError(AcsError):
    """The ACS could not be reached or stayed overloaded through all retries."""


class AcsAmbiguousError(AcsError):
    """A state-changing request may or may not have been queued; it was not re-sent."""


class AcsDeviceNotFoundError(AcsError, KeyError):
    """The ACS does not know the device id."""


class AcsRequestError(AcsError, ValueError):
    """The ACS rejected the request (HTTP 4xx other than 404/429)."""


def token_from_env(
    var: str = "GUARDIAN_NBI_TOKEN", file_var: str = "GUARDIAN_NBI_TOKEN_FILE"
) -> str | None:
    """NBI bearer token from ``$GUARDIAN_NBI_TOKEN`` or the file named by ``$…_FILE``."""
    path = os.environ.get(file_var)
    if path:
        return Path(path).read_text().strip() or None
    return os.environ.get(var) or None


def _retry_after_s(value: str | None, default_s: float) -> float:
    if not value:
        return default_s
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return default_s


class _NbiHttp:
    """HTTP layer of :class:`guardian_lib.acs.nbi.NbiClient` (its parameters are documented there)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_s: float = 10.0,
        task_timeout_ms: int = 3000,
        retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        audit: Callable[[dict[str, Any]], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.task_timeout_ms = task_timeout_ms
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.audit = audit
        self.sleep = sleep
        self.server_dedupes = False
        tok = token if token is not None else token_from_env()
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        # Task calls get a longer read timeout (see submit_task): the ACS waits for
        # the device's session before answering.
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
        )
        self._timeout_s = timeout_s
        # Finished tasks by idempotency key (NbiClient.submit_task answers repeats from it).
        self._done: dict[str, Any] = {}

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- HTTP with retries and audit ---------------------------------------------------
    def _audit(self, record: dict[str, Any]) -> None:
        audit_log.info("acs %s", json.dumps(record, default=str))
        if self.audit is not None:
            self.audit(record)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        repeatable: bool,
        read_timeout_s: float | None = None,
        context: dict[str, Any] | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One logical call: retries, backoff, audit.

        ``repeatable`` says whether re-sending after a lost answer is harmless.

        Raises
        ------
        AcsUnavailableError
            Retries exhausted.
        AcsAmbiguousError
            The answer was lost and the call is not repeatable (caller reconciles).
        """
        url = f"{self.base_url}{path}"
        timeout = httpx.Timeout(self._timeout_s, read=read_timeout_s or self._timeout_s)
        attempt = 0
        while True:
            attempt += 1
            t0 = time.perf_counter()
            record: dict[str, Any] = {
                "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "method": method,
                "url": url,
                "params": params or {},
                "attempt": attempt,
                **(context or {}),
            }
            try:
                resp = self._http.request(
                    method,
                    path,
                    params=params,
                    json=body if content is None else None,
                    content=content,
                    headers=headers,
                    timeout=timeout,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                record.update(outcome="not_sent", error=f"{type(exc).__name__}: {exc}")
                wait = self._backoff_s(attempt)
            except httpx.TransportError as exc:  # sent, answer lost
                self._answer_lost(record, exc, t0, repeatable=repeatable)
                self.sleep(min(self._backoff_s(attempt), self.max_backoff_s))
                continue
            else:
                answered = self._answered(resp, record, t0, repeatable=repeatable)
                if answered is None:
                    return resp
                wait = answered
            record.setdefault("duration_ms", _ms_since(t0))
            self._audit(record)
            if attempt > self.retries:
                raise AcsUnavailableError(
                    f"{method} {url}: expected an answer, got {record.get('status') or ''}"
                    f"{record.get('error') or ''} after {attempt} attempts"
                )
            self.sleep(min(wait, self.max_backoff_s))

    def _backoff_s(self, attempt: int) -> float:
        """Exponential backoff before retry number ``attempt``. [s]"""
        return self.backoff_s * 2 ** (attempt - 1)

    def _answer_lost(
        self, record: dict[str, Any], exc: httpx.TransportError, t0: float, *, repeatable: bool
    ) -> None:
        """Audit a request that was sent but got no answer; raise unless it may be re-sent."""
        method, url, attempt = record["method"], record["url"], record["attempt"]
        record.update(outcome="answer_lost", error=f"{type(exc).__name__}: {exc}")
        record["duration_ms"] = _ms_since(t0)
        self._audit(record)
        if not repeatable:
            raise AcsAmbiguousError(
                f"{method} {url}: sent, but the answer was lost ({type(exc).__name__})"
            ) from exc
        if attempt > self.retries:
            raise AcsUnavailableError(
                f"{method} {url}: no answer after {attempt} attempts ({exc})"
            ) from exc

    def _answered(
        self, resp: httpx.Response, record: dict[str, Any], t0: float, *, repeatable: bool
    ) -> float | None:
        """Classify an HTTP answer: ``None`` to return it, else the wait before a retry. [s]"""
        record.update(
            status=resp.status_code,
            reason=resp.reason_phrase,
            duration_ms=_ms_since(t0),
        )
        if resp.headers.get("Guardian-Idempotency"):
            self.server_dedupes = True
        if resp.status_code >= 500 and resp.status_code != 503 and not repeatable:
            # The ACS may have queued the task before failing: let the caller
            # reconcile instead of sending it again.
            record["outcome"] = "ambiguous"
            self._audit(record)
            raise AcsAmbiguousError(
                f"{record['method']} {record['url']}: expected 2xx, got {resp.status_code} "
                f"{resp.reason_phrase} after sending"
            )
        if resp.status_code in (429, 503) or (resp.status_code >= 500 and repeatable):
            record["outcome"] = "retry"
            return _retry_after_s(
                resp.headers.get("Retry-After"), self._backoff_s(record["attempt"])
            )
        record["outcome"] = "answered"
        self._audit(record)
        return None

    @staticmethod
    def _check(resp: httpx.Response, what: str, device_id: str | None = None) -> None:
        if resp.status_code == 404:
            raise AcsDeviceNotFoundError(
                f"{what}: ACS answered 404 for device {device_id!r} ({resp.text[:120]})"
            )
        if resp.status_code >= 400:
            raise AcsRequestError(
                f"{what}: expected 2xx, got {resp.status_code} {resp.reason_phrase}: "
                f"{resp.text[:200]}"
            )


def _ms_since(t0: float) -> float:
    """Milliseconds since ``t0`` (a :func:`time.perf_counter` reading), to 0.1 ms. [ms]"""
    return round((time.perf_counter() - t0) * 1000, 1)
