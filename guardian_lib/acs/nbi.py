"""httpx client of a GenieACS(-compatible) northbound interface.

The action executor uses it in execute mode: it does what it is asked (the safety
limits of DESIGN §6 live in the decision engine), and

* bounds every call with timeouts;
* retries with exponential backoff when the request surely did not reach the ACS
  (connection refused, connect timeout) and after 503/429, honouring ``Retry-After``;
* never sends a state-changing task twice: each task carries an ``idempotencyKey``;
  when an answer is lost the client looks the key up in ``/tasks/`` and re-sends only
  reads, or when the server says it deduplicates keys (``Guardian-Idempotency``
  header, our emulator); otherwise it raises :class:`AcsAmbiguousError` rather than
  risk a second reboot;
* reports every HTTP attempt to an audit callback (a dict per call; the bearer token
  is never included) and to the ``guardian_lib.acs.audit`` logger.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx

from guardian_lib.acs import tasks as T
from guardian_lib.errors import GuardianError

__all__ = [
    "NbiClient",
    "TaskResult",
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


TaskStatus = Literal["done", "queued", "faulted"]


@dataclass
class TaskResult:
    """Outcome of one task submission.

    Attributes
    ----------
    status : {"done", "queued", "faulted"}
        ``done``: the device executed it (HTTP 200); ``queued``: the ACS holds it for
        the device's next session; ``faulted``: the device answered a CWMP fault.
    task : dict
        The task document (with ``_id`` and ``idempotencyKey``).
    reason : str
        HTTP reason phrase (GenieACS explains 202s there).
    http_status : int
        HTTP status of the final answer. [-]
    """

    status: TaskStatus
    task: dict[str, Any]
    reason: str = ""
    http_status: int = 0
    fault: dict[str, Any] | None = field(default=None)

    @property
    def task_id(self) -> str | None:
        """The ACS's id of the task."""
        return self.task.get("_id")


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


class NbiClient:
    """Client of a GenieACS-compatible NBI.

    Parameters
    ----------
    base_url : str
        e.g. ``http://127.0.0.1:7557``.
    token : str, optional
        Bearer token; default :func:`token_from_env` (none for a stock GenieACS).
    timeout_s : float, default 10
        Connect/read timeout of a plain call. [s]
    task_timeout_ms : int, default 3000
        ``timeout`` asked of the ACS when waiting for a device to run a task. [ms]
    retries : int, default 4
        Retries after a retryable failure. [-]
    backoff_s : float, default 0.5
        First backoff; doubles per retry. [s]
    max_backoff_s : float, default 30
        Cap on one wait, including a ``Retry-After``. [s]
    audit : callable, optional
        Called with one dict per HTTP attempt.
    transport : httpx.BaseTransport, optional
        For tests (e.g. ``httpx.MockTransport``).
    sleep : callable, default time.sleep
        Used for backoff (tests pass a no-op).
    """

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
        self._done: dict[str, TaskResult] = {}

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> NbiClient:
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
            wait: float | None = None
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
                wait = self.backoff_s * 2 ** (attempt - 1)
            except httpx.TransportError as exc:  # sent, answer lost
                record.update(outcome="answer_lost", error=f"{type(exc).__name__}: {exc}")
                record["duration_ms"] = round((time.perf_counter() - t0) * 1000, 1)
                self._audit(record)
                if not repeatable:
                    raise AcsAmbiguousError(
                        f"{method} {url}: sent, but the answer was lost ({type(exc).__name__})"
                    ) from exc
                wait = self.backoff_s * 2 ** (attempt - 1)
                if attempt > self.retries:
                    raise AcsUnavailableError(
                        f"{method} {url}: no answer after {attempt} attempts ({exc})"
                    ) from exc
                self.sleep(min(wait, self.max_backoff_s))
                continue
            else:
                record.update(
                    status=resp.status_code,
                    reason=resp.reason_phrase,
                    duration_ms=round((time.perf_counter() - t0) * 1000, 1),
                )
                if resp.headers.get("Guardian-Idempotency"):
                    self.server_dedupes = True
                if resp.status_code >= 500 and resp.status_code != 503 and not repeatable:
                    # The ACS may have queued the task before failing: let the caller
                    # reconcile instead of sending it again.
                    record["outcome"] = "ambiguous"
                    self._audit(record)
                    raise AcsAmbiguousError(
                        f"{method} {url}: expected 2xx, got {resp.status_code} "
                        f"{resp.reason_phrase} after sending"
                    )
                if resp.status_code in (429, 503) or (resp.status_code >= 500 and repeatable):
                    record["outcome"] = "retry"
                    wait = _retry_after_s(
                        resp.headers.get("Retry-After"), self.backoff_s * 2 ** (attempt - 1)
                    )
                else:
                    record["outcome"] = "answered"
                    self._audit(record)
                    return resp
            record.setdefault("duration_ms", round((time.perf_counter() - t0) * 1000, 1))
            self._audit(record)
            if attempt > self.retries:
                raise AcsUnavailableError(
                    f"{method} {url}: expected an answer, got {record.get('status') or ''}"
                    f"{record.get('error') or ''} after {attempt} attempts"
                )
            self.sleep(min(wait, self.max_backoff_s))

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

    # -- queries -----------------------------------------------------------------------
    def query(
        self,
        collection: str,
        query: dict[str, Any] | None = None,
        projection: list[str] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """``GET /<collection>/?query=…&projection=…`` (devices, tasks, faults)."""
        params: dict[str, Any] = {}
        if query:
            params["query"] = json.dumps(query)
        if projection:
            params["projection"] = ",".join(projection)
        if limit is not None:
            params["limit"] = str(limit)
        resp = self._request(
            "GET",
            f"/{collection}/",
            params=params,
            repeatable=True,
            context={"collection": collection},
        )
        self._check(resp, f"GET /{collection}/")
        return resp.json()

    def devices(
        self, query: dict[str, Any] | None = None, projection: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Devices matching a Mongo-style ``query`` (GenieACS syntax)."""
        return self.query("devices", query, projection)

    def device(self, device_id: str, projection: list[str] | None = None) -> dict[str, Any]:
        """One device document.

        Raises
        ------
        AcsDeviceNotFoundError
            If the ACS has no such device.
        """
        docs = self.query("devices", {"_id": device_id}, projection)
        if not docs:
            raise AcsDeviceNotFoundError(f"ACS {self.base_url}: no device {device_id!r}")
        return docs[0]

    def tasks(self, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Queued tasks."""
        return self.query("tasks", query)

    def faults(self, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Faults."""
        return self.query("faults", query)

    def delete_task(self, task_id: str) -> None:
        """Cancel a queued task."""
        resp = self._request("DELETE", f"/tasks/{quote(task_id, safe='')}", repeatable=True)
        if resp.status_code != 404:
            self._check(resp, f"DELETE /tasks/{task_id}")

    def delete_fault(self, fault_id: str) -> None:
        """Delete a fault (and its task)."""
        resp = self._request("DELETE", f"/faults/{quote(fault_id, safe='')}", repeatable=True)
        if resp.status_code != 404:
            self._check(resp, f"DELETE /faults/{fault_id}")

    def tag(self, device_id: str, tag: str, present: bool = True) -> None:
        """Add (or remove) a tag on a device."""
        path = f"/devices/{quote(device_id, safe='')}/tags/{quote(tag, safe='')}"
        resp = self._request(
            "POST" if present else "DELETE",
            path,
            repeatable=True,
            context={"device_id": device_id, "tag": tag},
        )
        self._check(resp, f"tag {tag!r}", device_id)

    # -- tasks ---------------------------------------------------------------------------
    def submit_task(
        self,
        device_id: str,
        task: dict[str, Any],
        *,
        connection_request: bool = True,
        timeout_ms: int | None = None,
        idempotency_key: str | None = None,
    ) -> TaskResult:
        """Queue a task, ask the device to connect, and wait for it (GenieACS semantics).

        Parameters
        ----------
        device_id : str
            ``OUI-ProductClass-Serial``.
        task : dict
            From :mod:`guardian_lib.acs.tasks`.
        connection_request : bool, default True
            Ask the device to open a session now.
        timeout_ms : int, optional
            How long the ACS waits for the device. [ms]
        idempotency_key : str, optional
            Same key = same action: a repeated call returns the first result and the
            ACS never receives the task twice. Default: a new UUID.

        Raises
        ------
        AcsDeviceNotFoundError, AcsRequestError, AcsUnavailableError, AcsAmbiguousError
        """
        key = idempotency_key or uuid.uuid4().hex
        if key in self._done:
            return self._done[key]
        body = dict(task, idempotencyKey=key)
        params = {"timeout": str(timeout_ms or self.task_timeout_ms)}
        if connection_request:
            params["connection_request"] = ""
        path = f"/devices/{quote(device_id, safe='')}/tasks"
        ctx = {"device_id": device_id, "task": task.get("name"), "idempotency_key": key}
        read_s = self._timeout_s + (timeout_ms or self.task_timeout_ms) / 1000 + 35.0
        repeatable = task.get("name") in T.SAFE_TO_REPEAT
        try:
            resp = self._request(
                "POST",
                path,
                params=params,
                body=body,
                repeatable=repeatable,
                read_timeout_s=read_s,
                context=ctx,
            )
        except AcsAmbiguousError:
            found = self.tasks({"idempotencyKey": key})
            if found:
                result = TaskResult("queued", found[0], "found queued after a lost answer")
                self._audit({**ctx, "outcome": "reconciled", "status": "queued"})
                return result
            if not self.server_dedupes:
                raise AcsAmbiguousError(
                    f"device {device_id}: task {task.get('name')!r} (key {key}) may have been "
                    "executed; not re-sent to avoid doing it twice"
                ) from None
            resp = self._request(
                "POST",
                path,
                params=params,
                body=body,
                repeatable=False,
                read_timeout_s=read_s,
                context=ctx,
            )
        self._check(resp, f"task {task.get('name')!r}", device_id)
        doc = resp.json() if resp.content else dict(body)
        if resp.status_code == 200:
            result = TaskResult("done", doc, resp.reason_phrase, 200)
        elif "fault" in resp.reason_phrase.lower():
            fault = self.faults({"_id": f"{device_id}:task_{doc.get('_id')}"})
            result = TaskResult(
                "faulted", doc, resp.reason_phrase, resp.status_code, fault[0] if fault else None
            )
        else:
            result = TaskResult("queued", doc, resp.reason_phrase, resp.status_code)
        self._audit({**ctx, "outcome": "task_" + result.status, "task_id": result.task_id})
        if result.status != "queued":
            self._done[key] = result
        return result

    def reboot(self, device_id: str, *, idempotency_key: str | None = None) -> TaskResult:
        """Reboot a CPE (at most once per ``idempotency_key``)."""
        return self.submit_task(device_id, T.reboot(), idempotency_key=idempotency_key)

    def refresh(self, device_id: str, object_name: str | None = None) -> TaskResult:
        """Re-read an object (default: the whole data model) from the device."""
        if object_name is None:
            object_name = T.data_model_root(
                self.device(device_id, ["_id", "Device", "InternetGatewayDevice"])
            )
        return self.submit_task(device_id, T.refresh_object(object_name))

    def get_parameter_values(self, device_id: str, names: list[str]) -> dict[str, Any]:
        """Fetch parameters from the device now and return ``{name: value}``.

        Values come from the ACS's copy after the task ran; a name the device did not
        return maps to ``None``. If the device did not run the task in time, the
        ACS's last known values are returned (check ``_timestamp`` via
        :meth:`device` when freshness matters).
        """
        result = self.submit_task(device_id, T.get_parameter_values(names))
        if result.status == "faulted":
            raise AcsError(
                f"device {device_id}: getParameterValues {names} faulted: {result.fault}"
            )
        doc = self.device(device_id, list(names))
        return {n: _value_at(doc, n) for n in names}

    def set_parameter_values(
        self, device_id: str, values: dict[str, Any], *, idempotency_key: str | None = None
    ) -> TaskResult:
        """Write parameters on the device."""
        return self.submit_task(
            device_id, T.set_parameter_values(values), idempotency_key=idempotency_key
        )

    def data_model_root(self, device_id: str) -> str:
        """``Device`` or ``InternetGatewayDevice`` for a device, from the ACS's copy."""
        doc = self.device(
            device_id,
            [
                "_id",
                "Device._object",
                "InternetGatewayDevice._object",
                "Device.DeviceInfo",
                "InternetGatewayDevice.DeviceInfo",
            ],
        )
        return T.data_model_root(doc)

    def set_wifi(
        self,
        device_id: str,
        *,
        ssid: str | None = None,
        password: str | None = None,
        channel: int | None = None,
        idempotency_key: str | None = None,
    ) -> TaskResult:
        """Change the Wi-Fi profile (SSID, passphrase, channel). The passphrase is not audited."""
        task = T.wifi_profile(
            self.data_model_root(device_id), ssid=ssid, password=password, channel=channel
        )
        return self.submit_task(device_id, task, idempotency_key=idempotency_key)

    def ping(
        self,
        device_id: str,
        host: str,
        repetitions: int = 4,
        *,
        wait_s: float = 30.0,
        poll_s: float = 0.5,
    ) -> dict[str, Any]:
        """Run IPPing diagnostics on the CPE and return its results.

        Parameters
        ----------
        wait_s : float
            How long to wait for "8 DIAGNOSTICS COMPLETE" and the results. [s]
        poll_s : float
            Polling interval of the ACS's copy. [s]
        """
        root = self.data_model_root(device_id)
        result = self.submit_task(device_id, T.ping_diagnostics(root, host, repetitions))
        if result.status == "faulted":
            raise AcsError(f"device {device_id}: ping diagnostics faulted: {result.fault}")
        paths = T.ping_result_paths(root)
        deadline = time.monotonic() + wait_s
        while True:
            doc = self.device(device_id, list(paths.values()))
            values = {k: _value_at(doc, p) for k, p in paths.items()}
            if values["state"] not in (None, "Requested", "None"):
                return values
            if time.monotonic() > deadline:
                raise AcsError(
                    f"device {device_id}: ping diagnostics not complete after {wait_s} s "
                    f"(DiagnosticsState={values['state']!r})"
                )
            self.sleep(poll_s)

    # -- files (firmware images) -------------------------------------------------------
    def upload_file(
        self,
        name: str,
        content: bytes,
        *,
        file_type: str = "1 Firmware Upgrade Image",
        oui: str = "",
        product_class: str = "",
        version: str = "",
    ) -> None:
        """``PUT /files/<name>`` with GenieACS's metadata headers (201 expected).

        Raises
        ------
        AcsRequestError
            When the ACS refuses the file (bad name, too large).
        """
        headers = {
            "fileType": file_type,
            "oui": oui,
            "productClass": product_class,
            "version": version,
        }
        resp = self._request(
            "PUT",
            f"/files/{quote(name, safe='')}",
            content=content,
            headers=headers,
            repeatable=True,  # PUT replaces: sending twice leaves the same file
            read_timeout_s=max(self._timeout_s, 60.0),
            context={"file": name, "bytes": len(content)},
        )
        self._check(resp, f"PUT /files/{name}")

    def files(self, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Uploaded files' metadata (``GET /files/``)."""
        return self.query("files", query)

    def download(
        self,
        device_id: str,
        file_name: str,
        *,
        url: str | None = None,
        idempotency_key: str | None = None,
    ) -> TaskResult:
        """Ask a CPE to download and install firmware ``file_name``."""
        return self.submit_task(
            device_id, T.download(file_name, url=url), idempotency_key=idempotency_key
        )


def _value_at(doc: dict[str, Any], name: str) -> Any:
    node: Any = doc
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node.get("_value") if isinstance(node, dict) else None
