"""Queued tasks to RPCs within a CWMP session, and the session record itself.

After the CPE's empty POST the ACS has the turn: :class:`TaskRunnerMixin` sends the
device's queued tasks one RPC at a time (each task a generator of RPCs,
:func:`acs_emulator.cwmp.rpcs.task_steps`), feeds it the CPE's responses, records
faults on the task, and ends the session with HTTP 204 once nothing is left. Mixed
into :class:`acs_emulator.cwmp.server.Acs`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from acs_emulator.cwmp import soap
from acs_emulator.cwmp.config import AcsConfig
from acs_emulator.cwmp.files import FileStore
from acs_emulator.cwmp.rpcs import task_steps
from acs_emulator.cwmp.store import DeviceStore

__all__ = ["Session", "TaskRunnerMixin"]

log = logging.getLogger("acs_emulator.cwmp.server")


@dataclass
class Session:
    """One open CWMP session (TR-069 §3.7): its device, cookie token and task."""

    token: str
    device_id: str
    cwmp_ns: str
    peer: Any
    last_seen: float
    task: dict[str, Any] | None = None
    answered: bool = False  # the CPE has posted after its Inform
    ran_rpcs: bool = False  # an RPC was sent (values may have changed)
    steps: Generator[str, soap.CwmpMessage, None] | None = None


class TaskRunnerMixin:
    """Tasks → RPCs for :class:`~acs_emulator.cwmp.server.Acs` (see the module docstring).

    Uses the ACS's ``store``, ``config``, ``files``, ``stats``, ``_task_events`` and
    ``_end_session``.
    """

    store: DeviceStore
    config: AcsConfig
    files: FileStore
    stats: dict[str, int]
    _task_events: dict[str, asyncio.Event]

    _end_session: Callable[[Session], None]
    _xml: Callable[..., web.Response]

    def _advance(self, session: Session, msg: soap.CwmpMessage | None) -> web.Response:
        """Feed ``msg`` (an RPC response, or ``None`` for the empty POST) and reply.

        Returns the next RPC of the current task, of the next queued task, or 204.
        """
        if msg is None and session.steps is not None:
            # Empty POST while an RPC is outstanding: the CPE dropped it. End the session;
            # the task stays queued for the next one.
            log.info("CWMP %s: empty POST while an RPC was outstanding", session.device_id)
            self._end_session(session)
            return web.Response(status=204)
        while True:
            if session.steps is None:
                pending = [
                    t
                    for t in self.store.pending_tasks(session.device_id)
                    if not t.get("_inTransfer")
                ]
                if not pending:
                    self._end_session(session)
                    return web.Response(status=204)
                session.task = pending[0]
                if session.task.get("name") == "download" and not session.task.get("url"):
                    # An uploaded file: its URL on our file server, size and type.
                    found = self.files.download_args(
                        str(session.task.get("fileName", "")), self.config.file_server_url
                    )
                    for k, v in (found or {}).items():
                        session.task.setdefault(k, v)
                session.steps = task_steps(
                    self.store, session.device_id, session.task, self.config.file_server_url
                )
                step_input = None
            else:
                step_input = msg
            msg = None
            task = session.task
            assert task is not None
            try:
                if step_input is None:
                    rpc = next(session.steps)
                elif step_input.name == "Fault":
                    fault = soap.parse_fault(step_input.body)
                    self._fault(session, f"cwmp.{fault['faultCode']}", fault["faultString"], fault)
                    continue
                else:
                    rpc = session.steps.send(step_input)
            except StopIteration:
                self._finish_task(session)
                continue
            except (soap.CwmpParseError, ValueError, KeyError, TypeError) as exc:
                self._fault(session, "cwmp.invalid", f"task {task['_id']}: {exc}", {})
                continue
            self.stats["rpcs"] += 1
            session.ran_rpcs = True
            return self._xml(rpc, session.cwmp_ns, f"acs-{os.urandom(4).hex()}")

    def _fault(self, session: Session, code: str, message: str, detail: Any) -> None:
        task = session.task
        session.steps = None
        session.task = None
        if task is not None:
            self.store.fault_task(task, code, message, detail)
            self._notify_task(task["_id"])

    def _finish_task(self, session: Session) -> None:
        task = session.task
        session.steps = None
        session.task = None
        if task is None:
            return
        if task.get("_inTransfer"):
            self.store.save_task(task)
            return
        self.store.complete_task(task["_id"])
        self._notify_task(task["_id"])

    def _notify_task(self, task_id: str) -> None:
        ev = self._task_events.pop(task_id, None)
        if ev is not None:
            ev.set()

    def _on_transfer_complete(self, session: Session, msg: soap.CwmpMessage) -> None:
        key = soap.text(msg.body, "CommandKey")
        fault = soap.child(msg.body, "FaultStruct")
        code = soap.text(fault, "FaultCode", "0")
        task = self.store.tasks.get(key)
        if task is None:
            return
        task.pop("_inTransfer", None)
        if code not in ("", "0"):
            self.store.fault_task(
                task, f"cwmp.{code}", soap.text(fault, "FaultString"), {"faultCode": code}
            )
        else:
            self.store.complete_task(key)
        self._notify_task(key)
