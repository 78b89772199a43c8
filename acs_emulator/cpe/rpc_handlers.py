"""The RPCs an emulated CPE answers, and what it does once the session has ended.

:class:`RpcHandlersMixin` gives :class:`~acs_emulator.cpe.agent.CpeAgent` its RPC
table (:data:`RpcHandlersMixin.RPC_HANDLERS`): each handler reads the ACS's request
(hostile input, through :mod:`acs_emulator.cwmp.soap`), changes the data model and
returns the response RPC; what must wait for the end of the session (reboot, factory
reset, download, diagnostics) is noted in an :class:`After` and done by
``_after_session``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
import numpy as np

from acs_emulator.cpe.datamodel import CpeFault, DataModel
from acs_emulator.cwmp import soap

if TYPE_CHECKING:
    from acs_emulator.cpe.agent import Misbehaviour
    from acs_emulator.cpe.state import StateSource

__all__ = ["After", "RpcHandlersMixin"]

_UNKNOWN_TIME = "0001-01-01T00:00:00Z"


@dataclass
class After:
    """What a session's RPCs left to do once it has ended (reboot, download …)."""

    reboot: str | None = None  # command key
    factory_reset: bool = False
    download: dict[str, str] | None = None
    download_fault: tuple[int, str] | None = None  # set when fetching the file failed
    diagnostics: bool = False


class RpcHandlersMixin:
    """RPC handling of :class:`~acs_emulator.cpe.agent.CpeAgent` (see the module docstring).

    Uses the agent's ``model``, ``state``, ``rng``, ``misbehaviour``, ``device_id``,
    ``cwmp_ns``, ``pending_events``, ``wakeup`` and counters.
    """

    model: DataModel
    state: StateSource
    rng: np.random.Generator
    misbehaviour: Misbehaviour
    device_id: str
    cwmp_ns: str
    periodic_interval_s: float
    pending_events: dict[str, str]
    wakeup: asyncio.Event
    down_until: float
    downloads_verified: int
    rpcs_handled: list[str]
    _pending_requests: list[str]

    _build_model: Callable[[], DataModel]

    #: Methods this CPE answers (GetRPCMethodsResponse lists them).
    METHODS: ClassVar[tuple[str, ...]] = (
        "GetRPCMethods",
        "GetParameterValues",
        "SetParameterValues",
        "GetParameterNames",
        "AddObject",
        "DeleteObject",
        "Reboot",
        "FactoryReset",
        "Download",
    )
    #: RPC name → handler method name; a handler takes ``(body, after)`` and returns
    #: the response RPC (serialised with :mod:`acs_emulator.cwmp.soap`'s builders).
    RPC_HANDLERS: ClassVar[dict[str, str]] = {m: f"_rpc_{m}" for m in METHODS}

    def _handle_rpc(self, msg: soap.CwmpMessage, after: After) -> str:
        """Answer one ACS RPC: its response, or a CWMP fault (9000 for unknown methods)."""
        self.rpcs_handled.append(msg.name)
        try:
            if self.misbehaviour.fault_rate and self.rng.random() < self.misbehaviour.fault_rate:
                raise CpeFault(9002, "Internal error (injected)")
            handler = self.RPC_HANDLERS.get(msg.name)
            if handler is None or msg.body is None:
                raise CpeFault(9000, f"Method {msg.name!r} not supported")
            return getattr(self, handler)(msg.body, after)
        except CpeFault as fault:
            return soap.fault_xml(fault.code, fault.message, acs=False, set_faults=fault.spv)

    def _rpc_GetParameterValues(self, body: Any, after: After) -> str:
        names = [s.text or "" for s in soap.children(soap.child(body, "ParameterNames"), "string")]
        vals = self.model.values(names, allow_partial=not self.misbehaviour.no_partial_path)
        return soap.rpc_xml("GetParameterValuesResponse", raw=soap.values_xml(vals))

    def _rpc_SetParameterValues(self, body: Any, after: After) -> str:
        vals = [
            (p.name, p.value, p.type)
            for p in soap.parse_parameter_values(soap.child(body, "ParameterList"))
        ]
        self.model.set_values(vals)
        self.model.put("parameter_key", soap.text(body, "ParameterKey"))
        if any(n == self.model.path("ping_state") and v == "Requested" for n, v, _ in vals):
            after.diagnostics = True
        if any(n == self.model.path("periodic_interval") for n, _, _ in vals):
            self.periodic_interval_s = float(self.model.get("periodic_interval"))
        return soap.rpc_xml("SetParameterValuesResponse", {"Status": 0})

    def _rpc_GetParameterNames(self, body: Any, after: After) -> str:
        path = soap.text(body, "ParameterPath")
        next_level = soap.text(body, "NextLevel") in ("1", "true")
        items = list(self.model.names(path, next_level))
        return soap.rpc_xml("GetParameterNamesResponse", raw=soap.param_info_xml(items))

    def _rpc_AddObject(self, body: Any, after: After) -> str:
        n = self.model.add_object(soap.text(body, "ObjectName"))
        return soap.rpc_xml("AddObjectResponse", {"InstanceNumber": n, "Status": 0})

    def _rpc_DeleteObject(self, body: Any, after: After) -> str:
        self.model.delete_object(soap.text(body, "ObjectName"))
        return soap.rpc_xml("DeleteObjectResponse", {"Status": 0})

    def _rpc_Reboot(self, body: Any, after: After) -> str:
        after.reboot = soap.text(body, "CommandKey")
        return soap.rpc_xml("RebootResponse")

    def _rpc_FactoryReset(self, body: Any, after: After) -> str:
        after.factory_reset = True
        return soap.rpc_xml("FactoryResetResponse")

    def _rpc_Download(self, body: Any, after: After) -> str:
        after.download = {
            k: soap.text(body, k) for k in ("CommandKey", "URL", "TargetFileName", "FileSize")
        }
        return soap.rpc_xml(
            "DownloadResponse",
            {"Status": 1, "StartTime": _UNKNOWN_TIME, "CompleteTime": _UNKNOWN_TIME},
        )

    async def _fetch(
        self, http: aiohttp.ClientSession, d: dict[str, str]
    ) -> tuple[int, str] | None:
        """Download ``d["URL"]`` and check its size and SHA-256; a fault or ``None``.

        Only for a Download announcing a ``FileSize`` (a file the ACS hosts): the
        body must have exactly that many bytes, and match the ``Digest: sha-256=``
        header when the server sends one. Fault 9010 otherwise (TR-069 "Download
        failure"), 9012 when the file is larger than announced.
        """
        want = int(d["FileSize"])
        digest = hashlib.sha256()
        size = 0
        try:
            async with http.get(d["URL"]) as r:
                if r.status != 200:
                    return (9010, f"Download failure: HTTP {r.status}")
                async for chunk in r.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    if size > want:
                        return (9012, "File transfer failure: larger than FileSize")
                    digest.update(chunk)
                header = r.headers.get("Digest", "")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return (9010, f"Download failure: {type(exc).__name__}")
        if size != want:
            return (9010, f"Download failure: {size} bytes, FileSize {want}")
        for part in header.split(","):
            algo, _, value = part.strip().partition("=")
            if algo.lower() == "sha-256" and base64.b64decode(value) != digest.digest():
                return (9010, "Download failure: SHA-256 mismatch")
        self.downloads_verified += 1
        return None

    def _rpc_GetRPCMethods(self, body: Any, after: After) -> str:
        methods = soap.names_xml(list(self.METHODS), tag="MethodList")
        return soap.rpc_xml("GetRPCMethodsResponse", raw=methods)

    def _after_session(self, after: After) -> None:
        loop = asyncio.get_running_loop()
        if after.diagnostics:
            ok = bool(self.state.values(self.device_id)["pppoe_up"])
            reps = int(self.model.get("ping_reps") or 4)
            self.model.put("ping_success", reps if ok else 0)
            self.model.put("ping_failure", 0 if ok else reps)
            self.model.put("ping_avg_ms", int(self.rng.integers(3, 30)) if ok else 0)
            self.model.put("ping_state", "Complete" if ok else "Error_CannotResolveHostName")
            self.pending_events["8 DIAGNOSTICS COMPLETE"] = ""
            self.wakeup.set()
        if after.download is not None:
            d = after.download
            fname = d["TargetFileName"] or d["URL"].rstrip("/").rsplit("/", 1)[-1]
            start = datetime.now(UTC).isoformat(timespec="seconds")
            if after.download_fault is not None or (
                self.misbehaviour.bad_firmware_marker
                and self.misbehaviour.bad_firmware_marker in fname
            ):
                fault = after.download_fault or (9010, "Download failure: image rejected")
                self.pending_events["7 TRANSFER COMPLETE"] = ""
                self.pending_events["M Download"] = d["CommandKey"]
                self.wakeup.set()
            else:
                fault = (0, "")
                self.model.put("software", re.sub(r"\.(bin|img|fw)$", "", fname))
                self.pending_events["M Download"] = d["CommandKey"]
                self.pending_events["7 TRANSFER COMPLETE"] = ""
                after.reboot = after.reboot or ""
            self._pending_requests.append(self._transfer_complete(d["CommandKey"], fault, start))
        if after.factory_reset:
            self.model = self._build_model()
            self.pending_events["0 BOOTSTRAP"] = ""
            after.reboot = after.reboot or ""
        if after.reboot is not None:
            self.down_until = loop.time() + self.reboot_duration_s
            self.state.reboot(self.device_id)
            self.pending_events["1 BOOT"] = ""
            if after.download is None and not after.factory_reset:
                self.pending_events["M Reboot"] = after.reboot
            self.wakeup.set()

    def _transfer_complete(self, key: str, fault: tuple[int, str], start: str) -> str:
        end = datetime.now(UTC).isoformat(timespec="seconds")
        fault_struct = soap.elements_xml({"FaultCode": fault[0], "FaultString": fault[1]})
        return soap.envelope(
            soap.rpc_xml(
                "TransferComplete",
                raw=(
                    soap.elements_xml({"CommandKey": key})
                    + f"<FaultStruct>{fault_struct}</FaultStruct>"
                    + soap.elements_xml({"StartTime": start, "CompleteTime": end})
                ),
            ),
            cwmp_ns=self.cwmp_ns,
            msg_id=os.urandom(4).hex(),
        ).decode()
