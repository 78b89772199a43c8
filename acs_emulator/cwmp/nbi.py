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
  ``POST|DELETE /devices/<id>/tags/<tag>``, ``DELETE /devices/<id>``.

Extensions: a ``Guardian-Idempotency`` response header announcing that tasks
carrying an ``idempotencyKey`` are queued at most once, an optional bearer token
(``Authorization: Bearer …``; GenieACS has no NBI authentication) and 503 with
``Retry-After`` when too many task requests wait at once.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from typing import Any

from aiohttp import web

from acs_emulator.cwmp.server import Acs
from acs_emulator.cwmp.store import StoreError

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


def _json(data: Any, status: int = 200, reason: str | None = None, **headers: str) -> web.Response:
    return web.Response(
        status=status,
        reason=reason,
        text=json.dumps(data),
        content_type="application/json",
        headers=headers or None,
    )


def nbi_app(
    acs: Acs,
    *,
    token: str | None = None,
    max_waiting: int = 2000,
    session_wait_s: float = 30.0,
    retry_after_s: int = 2,
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
        ``Retry-After`` sent with 503. [s]
    """
    waiting = 0
    store = acs.store

    @web.middleware
    async def auth_mw(request: web.Request, handler: Any) -> web.StreamResponse:
        if token is not None:
            got = request.headers.get("Authorization", "")
            if not (
                got.startswith("Bearer ")
                and hmac.compare_digest(got[7:].strip().encode(), token.encode())
            ):
                return web.Response(
                    status=401,
                    text="NBI: bearer token required",
                    headers={"WWW-Authenticate": 'Bearer realm="nbi"'},
                )
        resp = await handler(request)
        resp.headers["Guardian-Idempotency"] = "idempotencyKey"
        return resp

    async def query(request: web.Request) -> web.Response:
        coll = request.match_info["coll"]
        if coll not in ("devices", "tasks", "faults"):
            return web.Response(status=404, text="404 Not Found")
        q: dict[str, Any] = {}
        raw = request.query.get("query")
        try:
            if raw:
                q = json.loads(raw)
                if not isinstance(q, dict):
                    raise ValueError(f"expected a JSON object, got {type(q).__name__}")
            skip = int(request.query.get("skip", 0))
            limit = int(request.query["limit"]) if "limit" in request.query else None
            sort = json.loads(request.query["sort"]) if "sort" in request.query else None
            if sort is not None and not isinstance(sort, dict):
                raise ValueError(f"sort: expected a JSON object, got {type(sort).__name__}")
        except ValueError as exc:
            return web.Response(status=400, text=f"query: {exc}")
        proj_raw = request.query.get("projection")
        projection = [p.strip() for p in proj_raw.split(",") if p.strip()] if proj_raw else None
        try:
            total = len(store.find(coll, q))
            docs = store.find(coll, q, projection, skip=skip, limit=limit, sort=sort)
        except StoreError as exc:
            return web.Response(status=400, text=str(exc))
        if request.method == "HEAD":
            return web.Response(status=200, headers={"total": str(total)})
        return _json(docs, total=str(total))

    async def post_task(request: web.Request) -> web.Response:
        nonlocal waiting
        device_id = request.match_info["id"]
        body = await request.read()
        cr = "connection_request" in request.query
        if store.get_device(device_id) is None:
            return web.Response(status=404, text="No such device")
        if not body:
            if not cr:
                return web.Response(status=400, text="task: expected a JSON body")
            status = await acs.connection_request(device_id)
            return (
                web.Response(status=200)
                if status is None
                else web.Response(status=504, reason=status[:100], text=status)
            )
        try:
            task = json.loads(body)
            if not isinstance(task, dict):
                raise ValueError(f"expected a JSON object, got {type(task).__name__}")
            timeout_ms = int(request.query.get("timeout") or 4000)
        except ValueError as exc:
            return web.Response(status=400, text=f"task: {exc}")
        name = task.get("name")
        if name not in TASK_FIELDS:
            return web.Response(
                status=400, text=f"task.name: expected one of {sorted(TASK_FIELDS)}, got {name!r}"
            )
        missing = [f for f in TASK_FIELDS[name] if f not in task]
        if missing:
            return web.Response(status=400, text=f"task {name}: missing field(s) {missing}")
        if waiting >= max_waiting and cr:
            return web.Response(status=503, headers={"Retry-After": str(retry_after_s)})
        task["device"] = device_id
        task, created = store.insert_task(task)
        tid = task["_id"]
        if not created:
            known = store.task_keys.get(task.get("idempotencyKey", ""), {}).get("status")
            if known == "done":
                return _json(task)
            if known == "fault":
                return _json(task, 202, "Task faulted")
        if not cr:
            return _json(task, 202)
        waiting += 1
        try:
            done = acs.task_waiter(tid)
            if not acs.in_session(device_id):
                informed = acs.inform_waiter(device_id)
                status = await acs.connection_request(device_id)
                if status is not None:
                    return _json(task, 202, status[:100])
                try:
                    await asyncio.wait_for(informed.wait(), timeout_ms / 1000)
                except TimeoutError:
                    if store.task_status(tid) == "pending":
                        return _json(task, 202, _QUEUED)
            if store.task_status(tid) == "pending" and acs.in_session(device_id):
                ended = acs.session_end_waiter(device_id)
                waits = [asyncio.ensure_future(done.wait()), asyncio.ensure_future(ended.wait())]
                try:
                    await asyncio.wait(
                        waits, timeout=session_wait_s, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    for w in waits:
                        w.cancel()
        finally:
            waiting -= 1
        status = store.task_status(tid)
        if status == "done":
            return _json(task)
        if status == "fault":
            return _json(task, 202, "Task faulted")
        return _json(store.tasks.get(tid, task), 202, _QUEUED)

    async def delete_task(request: web.Request) -> web.Response:
        if not store.delete_task(request.match_info["id"]):
            return web.Response(status=404, text="Task not found")
        return web.Response(status=200)

    async def retry_task(request: web.Request) -> web.Response:
        tid = request.match_info["id"]
        task = store.tasks.get(tid)
        if task is None:
            return web.Response(status=404, text="Task not found")
        store.delete_fault(f"{task['device']}:task_{tid}", cascade=False)
        return web.Response(status=200)

    async def delete_fault(request: web.Request) -> web.Response:
        if not store.delete_fault(request.match_info["id"]):
            return web.Response(status=404, text="Fault not found")
        return web.Response(status=200)

    async def tag(request: web.Request) -> web.Response:
        ok = store.set_tag(
            request.match_info["id"], request.match_info["tag"], request.method == "POST"
        )
        return web.Response(status=200 if ok else 404, text="" if ok else "No such device")

    async def delete_device(request: web.Request) -> web.Response:
        ok = store.delete_device(request.match_info["id"])
        return web.Response(status=200 if ok else 404)

    app = web.Application(middlewares=[auth_mw], client_max_size=_MAX_NBI_BODY)
    r = app.router
    r.add_route("POST", "/devices/{id}/tasks", post_task)
    r.add_route("POST", "/devices/{id}/tasks/", post_task)
    r.add_route("POST", "/devices/{id}/tags/{tag}", tag)
    r.add_route("DELETE", "/devices/{id}/tags/{tag}", tag)
    r.add_route("DELETE", "/devices/{id}", delete_device)
    r.add_route("DELETE", "/tasks/{id}", delete_task)
    r.add_route("POST", "/tasks/{id}/retry", retry_task)
    r.add_route("DELETE", "/faults/{id}", delete_fault)
    for path in ("/{coll}", "/{coll}/"):
        r.add_get(path, query)  # also answers HEAD
    return app
