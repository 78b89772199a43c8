"""httpx client of a GenieACS(-compatible) northbound interface.

The action executor uses it in execute mode: it does what it is asked (the safety
limits of docs/autopilot.md "Safety" live in the decision engine), and

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

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from guardian_lib.acs import tasks as T
from guardian_lib.acs._http import (
    AcsAmbiguousError,
    AcsDeviceNotFoundError,
    AcsError,
    AcsRequestError,
    AcsUnavailableError,
    _NbiHttp,
    token_from_env,
)

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


class NbiClient(_NbiHttp):
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

    _done: dict[str, TaskResult]

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
