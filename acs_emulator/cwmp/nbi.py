"""GenieACS-compatible northbound interface (NBI) of the emulated ACS.

Implements the subset operators and :mod:`guardian_lib.acs` use, with GenieACS's
status codes (checked against GenieACS's ``lib/nbi.ts``):

* ``GET|HEAD /devices/?query=<JSON>&projection=a,b&sort=<JSON>&skip=&limit=`` (also ``/tasks/``,
  ``/faults/``); a ``total`` header carries the match count;
* ``POST /devices/<id>/tasks[?connection_request][&timeout=<ms>]`` — 200 with the
  task when it completed in time; 202 when only queued (no ``connection_request``,
  connection request failed, device did not open a session within ``timeout``, or
  session ended with the task still queued) with reason ``Task queued but not
  processed``, and 202 ``Task faulted`` when the CPE answered a fault; 404 for an
  unknown device; without a body and with ``connection_request``, only the
  connection request is sent (200, or 504 with its error);
* ``DELETE /tasks/<id>``, ``POST /tasks/<id>/retry``, ``DELETE /faults/<id>``,
  ``POST|DELETE /devices/<id>/tags/<tag>``, ``DELETE /devices/<id>``;
* presets, provisions, virtual parameters, files and ``/ping``
  (:mod:`acs_emulator.cwmp.nbi_admin`).

Extensions: a ``Guardian-Idempotency`` response header announcing that tasks
carrying an ``idempotencyKey`` are queued at most once, an optional bearer token
(``Authorization: Bearer …``; GenieACS has no NBI authentication) and 503 with
``Retry-After`` when too many task requests wait at once.

Hardening (GenieACS clients are unaffected): queries are the bounded subset of
:mod:`acs_emulator.cwmp.query` (``$where``/``$text`` and unsafe ``$regex`` → 400
naming the operator, a time budget per query); a malformed ``sort``/``skip``/``limit``
→ 400; at most ``max_tasks_per_device`` queued tasks per device (429) and
``max_tasks_total`` overall (503), both with ``Retry-After`` and a body saying which
limit; secret parameter values (passwords, Wi-Fi passphrases) never leave in an
answer (:mod:`acs_emulator.cwmp.redact`); a request body must arrive within
``read_timeout_s`` (408).
"""

from __future__ import annotations

import asyncio
import hmac
import json
from typing import Any

from aiohttp import web

from acs_emulator.cwmp.documents import StoreError, check_parameter, project
from acs_emulator.cwmp.nbi_admin import PING_COMMAND, add_admin_routes
from acs_emulator.cwmp.redact import redact_document, redact_task
from acs_emulator.cwmp.server import Acs
from acs_emulator.cwmp.store import ADMIN_COLLECTIONS

__all__ = ["nbi_app", "TASK_FIELDS"]

#: Task names and the fields each one needs.
TASK_FIELDS: dict[str, tuple[str, ...]] = {
    "getParameterValues": ("parameterNames",),
    "setParameterValues": ("parameterValues",),
    "refreshObject": ("objectName",),
    "addObject": ("objectName",),
    "deleteObject": ("objectName",),
    "reboot": (),
    "factoryReset": (),
    "download": ("fileName",),
}

_QUEUED = "Task queued but not processed"
_MAX_NBI_BODY = 1024 * 1024
_MAX_TIMEOUT_MS = 120_000


def _json(data: Any, status: int = 200, reason: str | None = None, **headers: str) -> web.Response:
    return web.Response(
        status=status,
        reason=reason,
        text=json.dumps(data),
        content_type="application/json",
        headers=headers or None,
    )


def _check_task(task: Any) -> str | None:
    """Why ``task`` is not a valid NBI task (``None`` when it is)."""
    if not isinstance(task, dict):
        return f"task: expected a JSON object, got {type(task).__name__}"
    name = task.get("name")
    if name not in TASK_FIELDS:
        return f"task.name: expected one of {sorted(TASK_FIELDS)}, got {name!r}"
    missing = [f for f in TASK_FIELDS[name] if f not in task]
    if missing:
        return f"task {name}: missing field(s) {missing}"
    try:
        for n in task.get("parameterNames") or []:
            check_parameter(n)
        for v in task.get("parameterValues") or []:
            pair = (v.get("name"), v.get("value")) if isinstance(v, dict) else tuple(v)[:2]
            check_parameter(*pair)
    except (StoreError, TypeError, ValueError, AttributeError) as exc:
        return f"task {name}: {exc}"
    return None


class _Nbi:
    """The NBI's request handlers over one :class:`Acs` (see :func:`nbi_app`)."""

    def __init__(
        self,
        acs: Acs,
        *,
        token: str | None,
        max_waiting: int,
        session_wait_s: float,
        retry_after_s: int,
        max_tasks_per_device: int,
        max_tasks_total: int,
        query_budget_s: float,
        read_timeout_s: float,
    ) -> None:
        self.acs = acs
        self.store = acs.store
        self.token = token
        self.max_waiting = max_waiting
        self.session_wait_s = session_wait_s
        self.retry_after_s = retry_after_s
        self.max_tasks_per_device = max_tasks_per_device
        self.max_tasks_total = max_tasks_total
        self.query_budget_s = query_budget_s
        self.read_timeout_s = read_timeout_s
        self.waiting = 0

    @web.middleware
    async def auth_mw(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Check the bearer token (when one is set) and announce idempotency keys."""
        if self.token is not None:
            got = request.headers.get("Authorization", "")
            if not (
                got.startswith("Bearer ")
                and hmac.compare_digest(got[7:].strip().encode(), self.token.encode())
            ):
                return web.Response(
                    status=401,
                    text="NBI: bearer token required",
                    headers={"WWW-Authenticate": 'Bearer realm="nbi"'},
                )
        self.store.sync()  # what sibling ACS processes committed (shared store)
        resp = await handler(request)
        if request.method not in ("GET", "HEAD"):
            # A change is on disk before its answer leaves (the CWMP side commits in
            # groups every few tens of ms instead).
            self.acs.commit_once()
        resp.headers["Guardian-Idempotency"] = "idempotencyKey"
        return resp

    # -- queries -----------------------------------------------------------------------
    @staticmethod
    def _query_args(request: web.Request) -> tuple[dict[str, Any], int, int | None, Any]:
        q: dict[str, Any] = {}
        raw = request.query.get("query")
        if raw:
            q = json.loads(raw)
            if not isinstance(q, dict):
                raise ValueError(f"expected a JSON object, got {type(q).__name__}")
        skip = int(request.query.get("skip", 0))
        limit = int(request.query["limit"]) if "limit" in request.query else None
        if skip < 0 or (limit is not None and limit < 0):
            raise ValueError(f"skip/limit: expected non-negative integers, got {skip}/{limit}")
        sort = json.loads(request.query["sort"]) if "sort" in request.query else None
        if sort is not None and not isinstance(sort, dict):
            raise ValueError(f"sort: expected a JSON object, got {type(sort).__name__}")
        return q, skip, limit, sort

    async def query(self, request: web.Request) -> web.Response:
        """``GET|HEAD /devices|tasks|faults/?query=&projection=&sort=&skip=&limit=``."""
        coll = request.match_info["coll"]
        if coll not in ("devices", "tasks", "faults", *ADMIN_COLLECTIONS):
            return web.Response(status=404, text="404 Not Found")
        try:
            q, skip, limit, sort = self._query_args(request)
        except (ValueError, RecursionError) as exc:
            return web.Response(status=400, text=f"query: {exc}"[:500])
        proj_raw = request.query.get("projection")
        projection = [p.strip() for p in proj_raw.split(",") if p.strip()] if proj_raw else None
        try:
            docs = self.store.find(coll, q, sort=sort, budget_s=self.query_budget_s)
        except StoreError as exc:
            return web.Response(status=400, text=str(exc)[:1000])
        total = len(docs)
        if request.method == "HEAD":
            return web.Response(status=200, headers={"total": str(total)})
        docs = docs[skip : None if limit is None else skip + limit]
        redact = (
            redact_document
            if coll == "devices"
            else redact_task
            if coll in ("tasks", "faults")
            else dict
        )
        out = [project(redact(d), projection) for d in docs]
        return _json(out, total=str(total))

    # -- tasks -------------------------------------------------------------------------
    def _over_cap(self, device_id: str, task: dict[str, Any]) -> web.Response | None:
        key = task.get("idempotencyKey")
        if key and key in self.store.task_keys:
            return None  # answered from the earlier task, nothing is queued
        retry = {"Retry-After": str(self.retry_after_s)}
        n_dev = self.store.pending_count(device_id)
        if n_dev >= self.max_tasks_per_device:
            return web.Response(
                status=429,
                text=f"NBI: device {device_id} already has {n_dev} queued tasks (limit "
                f"{self.max_tasks_per_device}); wait for them or delete some",
                headers=retry,
            )
        n_all = self.store.pending_count()
        if n_all >= self.max_tasks_total:
            return web.Response(
                status=503,
                text=f"NBI: {n_all} tasks are queued in total (limit {self.max_tasks_total}); "
                "try again later",
                headers=retry,
            )
        return None

    async def post_task(self, request: web.Request) -> web.Response:
        """``POST /devices/<id>/tasks[?connection_request][&timeout=<ms>]``."""
        device_id = request.match_info["id"]
        try:
            body = await asyncio.wait_for(request.read(), self.read_timeout_s)
        except TimeoutError:
            return web.Response(status=408, text="NBI: request body not received in time")
        cr = "connection_request" in request.query
        if self.store.get_device(device_id) is None:
            return web.Response(status=404, text="No such device")
        if not body:
            if not cr:
                return web.Response(status=400, text="task: expected a JSON body")
            status = await self.acs.connection_request(device_id)
            return (
                web.Response(status=200)
                if status is None
                else web.Response(status=504, reason=status[:100], text=status)
            )
        try:
            task = json.loads(body)
            timeout_ms = min(max(int(request.query.get("timeout") or 4000), 0), _MAX_TIMEOUT_MS)
        except (ValueError, RecursionError) as exc:
            return web.Response(status=400, text=f"task: {exc}"[:500])
        problem = _check_task(task)
        if problem is not None:
            return web.Response(status=400, text=problem[:1000])
        refused = self._over_cap(device_id, task)
        if refused is not None:
            return refused
        if self.waiting >= self.max_waiting and cr:
            return web.Response(status=503, headers={"Retry-After": str(self.retry_after_s)})
        task["device"] = device_id
        task, created = self.store.insert_task(task)
        if not created:
            known = self.store.task_keys.get(task.get("idempotencyKey", ""), {}).get("status")
            if known == "done":
                return _json(redact_task(task))
            if known == "fault":
                return _json(redact_task(task), 202, "Task faulted")
        if not cr:
            return _json(redact_task(task), 202)
        # On disk before the CPE is called: a sibling ACS process may serve its Inform.
        self.acs.commit_once()
        self.waiting += 1
        try:
            cr_error = await self._run_now(device_id, task["_id"], timeout_ms)
        finally:
            self.waiting -= 1
        if cr_error is not None:
            return _json(redact_task(task), 202, cr_error[:100])
        return self._task_answer(task)

    async def _run_now(self, device_id: str, tid: str, timeout_ms: int) -> str | None:
        """Connection request, then wait for the session to run task ``tid`` (bounded).

        Returns the connection-request error, or ``None``.
        """
        if self.store.shared:
            return await self._run_now_shared(device_id, tid, timeout_ms)
        done = self.acs.task_waiter(tid)
        if not self.acs.in_session(device_id):
            informed = self.acs.inform_waiter(device_id)
            status = await self.acs.connection_request(device_id)
            if status is not None:
                return status
            try:
                await asyncio.wait_for(informed.wait(), timeout_ms / 1000)
            except TimeoutError:
                return None
        if self.store.task_status(tid) == "pending" and self.acs.in_session(device_id):
            ended = self.acs.session_end_waiter(device_id)
            waits = [asyncio.ensure_future(done.wait()), asyncio.ensure_future(ended.wait())]
            try:
                await asyncio.wait(
                    waits, timeout=self.session_wait_s, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for w in waits:
                    w.cancel()
        return None

    async def _run_now_shared(self, device_id: str, tid: str, timeout_ms: int) -> str | None:
        """:meth:`_run_now` when another ACS process may serve the session.

        The session's events are in whichever process the CPE reached, so this one
        follows the shared store: it polls the task's status every commit interval.
        """
        if not self.acs.in_session(device_id):
            status = await self.acs.connection_request(device_id)
            if status is not None:
                return status
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000 + self.session_wait_s
        step = max(self.acs.config.store_commit_interval_s, 0.01)
        while loop.time() < deadline:
            self.store.sync()
            if self.store.task_status(tid) != "pending":
                break
            await asyncio.sleep(step)
        return None

    def _task_answer(self, task: dict[str, Any]) -> web.Response:
        tid = task["_id"]
        status = self.store.task_status(tid)
        if status == "done":
            return _json(redact_task(task))
        if status == "fault":
            return _json(redact_task(task), 202, "Task faulted")
        return _json(redact_task(self.store.tasks.get(tid, task)), 202, _QUEUED)

    async def delete_task(self, request: web.Request) -> web.Response:
        """``DELETE /tasks/<id>``."""
        if not self.store.delete_task(request.match_info["id"]):
            return web.Response(status=404, text="Task not found")
        return web.Response(status=200)

    async def retry_task(self, request: web.Request) -> web.Response:
        """``POST /tasks/<id>/retry``."""
        task = self.store.tasks.get(request.match_info["id"])
        if task is None:
            return web.Response(status=404, text="Task not found")
        self.store.delete_fault(f"{task['device']}:task_{task['_id']}", cascade=False)
        return web.Response(status=200)

    # -- faults, tags, devices -----------------------------------------------------------
    async def delete_fault(self, request: web.Request) -> web.Response:
        """``DELETE /faults/<id>``."""
        if not self.store.delete_fault(request.match_info["id"]):
            return web.Response(status=404, text="Fault not found")
        return web.Response(status=200)

    async def tag(self, request: web.Request) -> web.Response:
        """``POST|DELETE /devices/<id>/tags/<tag>``."""
        ok = self.store.set_tag(
            request.match_info["id"], request.match_info["tag"], request.method == "POST"
        )
        return web.Response(status=200 if ok else 404, text="" if ok else "No such device")

    async def delete_device(self, request: web.Request) -> web.Response:
        """``DELETE /devices/<id>``."""
        ok = self.store.delete_device(request.match_info["id"])
        return web.Response(status=200 if ok else 404)


def nbi_app(
    acs: Acs,
    *,
    token: str | None = None,
    max_waiting: int = 2000,
    session_wait_s: float = 30.0,
    retry_after_s: int = 2,
    max_tasks_per_device: int = 100,
    max_tasks_total: int = 100_000,
    query_budget_s: float = 1.0,
    read_timeout_s: float = 15.0,
    ping_command: tuple[str, ...] = PING_COMMAND,
) -> web.Application:
    """Build the NBI aiohttp application.

    Parameters
    ----------
    acs : Acs
        The ACS core (same event loop as the CWMP application).
    token : str, optional
        When set, every request needs ``Authorization: Bearer <token>``.
    max_waiting : int, default 2000
        Task requests allowed to wait on devices at once; more get 503. [-]
    session_wait_s : float, default 30
        After the device opened its session, how long to wait for the task. [s]
    retry_after_s : int, default 2
        ``Retry-After`` sent with 429/503. [s]
    max_tasks_per_device : int, default 100
        Queued tasks one device may have; a new task beyond it gets 429. [-]
    max_tasks_total : int, default 100000
        Queued tasks over all devices; a new task beyond it gets 503. [-]
    query_budget_s : float, default 1
        Time budget of one query's evaluation (400 beyond it). [s]
    read_timeout_s : float, default 15
        Time a client has to send a task body (408 beyond it). [s]
    """
    nbi = _Nbi(
        acs,
        token=token,
        max_waiting=max_waiting,
        session_wait_s=session_wait_s,
        retry_after_s=retry_after_s,
        max_tasks_per_device=max_tasks_per_device,
        max_tasks_total=max_tasks_total,
        query_budget_s=query_budget_s,
        read_timeout_s=read_timeout_s,
    )
    app = web.Application(middlewares=[nbi.auth_mw], client_max_size=_MAX_NBI_BODY)
    r = app.router
    r.add_route("POST", "/devices/{id}/tasks", nbi.post_task)
    r.add_route("POST", "/devices/{id}/tasks/", nbi.post_task)
    r.add_route("POST", "/devices/{id}/tags/{tag}", nbi.tag)
    r.add_route("DELETE", "/devices/{id}/tags/{tag}", nbi.tag)
    r.add_route("DELETE", "/devices/{id}", nbi.delete_device)
    r.add_route("DELETE", "/tasks/{id}", nbi.delete_task)
    r.add_route("POST", "/tasks/{id}/retry", nbi.retry_task)
    r.add_route("DELETE", "/faults/{id}", nbi.delete_fault)
    add_admin_routes(app, acs, ping_command=ping_command)
    for path in ("/{coll}", "/{coll}/"):
        r.add_get(path, nbi.query)  # also answers HEAD
    return app
