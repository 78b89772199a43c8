"""The CWMP ACS: sessions, Inform, queued RPCs, faults, connection requests.

One :class:`Acs` object holds the device store, the open sessions and the waiters the
NBI uses; :meth:`Acs.cwmp_app` is the aiohttp application CPEs talk to (port 7547)
and :func:`acs_emulator.cwmp.nbi.nbi_app` the northbound one (port 7557).

A session (TR-069 Amendment 6, §3.7): the CPE POSTs an Inform (authenticated if the
policy asks), the ACS answers InformResponse and a session cookie; the CPE may send
its own requests (TransferComplete, GetRPCMethods); its empty POST hands the turn to
the ACS, which sends the device's queued tasks one RPC at a time; HTTP 204 ends the
session. Sessions are found by cookie (any ``session=`` in the Cookie header, so a
CPE echoing the whole ``Set-Cookie`` string works), else by the TCP connection.

Hostile input: credentials are checked against the DeviceId of the Inform they come
with; what an Inform may store is bounded (:data:`acs_emulator.cwmp.documents.LIMITS`,
fault 8003 + HTTP 400 beyond it); the background sweeper survives any one failure
(logged and counted in ``stats["background_errors"]``); connection requests go only
to a URL on the host the device informs from (or an allow-list), with the ACS's own
credentials for that device id.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import time
from typing import Any

from aiohttp import web

from acs_emulator.cwmp import soap
from acs_emulator.cwmp.auth import Authenticator
from acs_emulator.cwmp.automation import Automation
from acs_emulator.cwmp.config import AcsConfig
from acs_emulator.cwmp.cr import ConnectionRequester, password_lookup_from_env
from acs_emulator.cwmp.documents import LIMITS, StoreError, check_parameter, now_iso, set_values
from acs_emulator.cwmp.files import FileStore
from acs_emulator.cwmp.rpcs import root_of as _root_of
from acs_emulator.cwmp.siblings import FORWARDED, SiblingProxy
from acs_emulator.cwmp.store import DeviceStore
from acs_emulator.cwmp.task_runner import Session, TaskRunnerMixin

__all__ = ["Acs", "AcsConfig", "password_lookup_from_env", "device_id_of"]

log = logging.getLogger(__name__)

_COOKIE_RE = re.compile(r"session=([0-9a-f]{16,64})")
_XML_CT = 'text/xml; charset="utf-8"'
_XML_CT_UTF8 = "text/xml; charset=utf-8"
_INFORM_RESPONSE = soap.rpc_xml("InformResponse", {"MaxEnvelopes": 1})


@functools.lru_cache(maxsize=1 << 17)
def device_id_of(oui: str, product_class: str, serial: str) -> str:
    """GenieACS device id ``OUI-ProductClass-SerialNumber`` (URL-unsafe chars escaped).

    Examples
    --------
    >>> device_id_of("00259E", "HG8245H", "4857544301A2B3C4")
    '00259E-HG8245H-4857544301A2B3C4'
    >>> device_id_of("00259E", "EG-8145 V5", "S/1é")
    '00259E-EG%2D8145%20V5-S%2F1%C3%A9'
    """

    def esc(s: str) -> str:
        # As GenieACS: every UTF-8 byte of a character other than [A-Za-z0-9_] becomes
        # "%" + its upper-case hex (no zero padding).
        return "".join(
            c
            if (c.isascii() and c.isalnum()) or c == "_"
            else "".join(f"%{b:X}" for b in c.encode())
            for c in s
        )

    if product_class:
        return f"{esc(oui)}-{esc(product_class)}-{esc(serial)}"
    return f"{esc(oui)}-{esc(serial)}"


class Acs(TaskRunnerMixin):
    """The ACS core shared by the CWMP and NBI applications.

    Parameters
    ----------
    store : DeviceStore
        Where devices, tasks and faults live.
    config : AcsConfig, optional
        Settings.
    """

    def __init__(self, store: DeviceStore, config: AcsConfig | None = None) -> None:
        self.store = store
        self.config = config or AcsConfig()
        self.auth = Authenticator(self.config.auth)
        self.sessions: dict[str, Session] = {}
        self._by_peer: dict[Any, str] = {}
        self._by_device: dict[str, str] = {}
        self._inform_events: dict[str, asyncio.Event] = {}
        self._task_events: dict[str, asyncio.Event] = {}
        self._end_events: dict[str, asyncio.Event] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._committer: asyncio.Task[None] | None = None
        self._cr = ConnectionRequester(self.config)
        self.stats = {
            "sessions": 0,
            "informs": 0,
            "rpcs": 0,
            "errors": 0,
            "background_errors": 0,
            "refused": 0,
        }
        self.files = FileStore(store, self.config.file_dir, self.config.max_file_bytes)
        self.automation = Automation(
            store, self.config.presets, self.config.builtin_virtual_parameters
        )
        self._tokens = float(self.config.max_new_sessions_per_s)
        self._tokens_at = time.monotonic()
        if store.shared:
            store.on_admin_change = lambda _collection: self.invalidate()
        self._siblings = (
            SiblingProxy(self.config.sibling_sockets, self.config.read_timeout_s)
            if self.config.sibling_sockets
            else None
        )

    # -- applications ----------------------------------------------------------------
    def cwmp_app(self) -> web.Application:
        """aiohttp application serving CWMP on any path (POST)."""
        app = web.Application(client_max_size=self.config.max_body_bytes)
        app.router.add_route("POST", "/{tail:.*}", self.handle)
        app.on_startup.append(self._start_sweeper)
        app.on_cleanup.append(self._close)
        return app

    async def _start_sweeper(self, _app: web.Application) -> None:
        async def sweep() -> None:
            while True:
                await asyncio.sleep(min(1.0, self.config.session_timeout_s / 2))
                self.sweep_once()

        async def commit() -> None:
            while True:
                await asyncio.sleep(self.config.store_commit_interval_s)
                self.commit_once()

        self._sweeper = asyncio.create_task(sweep())
        self._committer = asyncio.create_task(commit())

    def commit_once(self) -> None:
        """Write the store's queued changes (group commit); never raises.

        With a store shared by several processes, also applies theirs.
        """
        try:
            self.store.flush()
            self.store.sync()
        except Exception:
            self.stats["background_errors"] += 1
            log.exception("ACS commit: flushing the store failed; will retry")
        self.stats["background_errors"] += self.store.write_errors
        self.store.write_errors = 0

    def sweep_once(self) -> None:
        """Expire idle sessions and write deferred documents; never raises.

        A failure is logged and counted (``stats["background_errors"]``) and the next
        sweep runs as usual: one bad item must not stop session expiry or persistence.
        """
        try:
            self._expire_sessions()
        except Exception:
            self.stats["background_errors"] += 1
            log.exception("ACS sweep: expiring sessions failed; will retry")
        self.commit_once()

    async def _close(self, _app: web.Application | None = None) -> None:
        for task in (self._sweeper, self._committer):
            if task is not None:
                task.cancel()
        self._sweeper = self._committer = None
        await self._cr.close()
        if self._siblings is not None:
            await self._siblings.close()
        self.files.close()

    # -- CWMP handler ----------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Handle one CWMP POST (Inform, CPE request, RPC response or empty POST).

        An unexpected error is logged with the peer and answered with CWMP fault 8002;
        the session concerned is dropped (its task stays queued).
        """
        try:
            return await self._handle(request)
        except Exception:
            peer = request.transport.get_extra_info("peername") if request.transport else None
            log.exception("CWMP request from %s failed", peer)
            self.stats["errors"] += 1
            session = self._find_session(request, peer)
            if session is not None:
                self._end_session(session)
            return self._fault_response(8002, "Internal error", soap.DEFAULT_CWMP_NS, None)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if (request.content_length or 0) > self.config.max_body_bytes:
            return web.Response(status=413, text="CWMP body too large")
        try:
            if request.content.is_eof():  # the whole body arrived with the headers
                body = await request.read()
            else:
                async with asyncio.timeout(self.config.read_timeout_s):
                    body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413, text="CWMP body too large")
        except TimeoutError:
            self.stats["errors"] += 1
            return web.Response(
                status=408,
                text=f"CWMP body not received within {self.config.read_timeout_s:g} s",
                headers={"Connection": "close"},
            )
        peer = request.transport.get_extra_info("peername") if request.transport else None
        session = self._find_session(request, peer)
        owner = None
        if session is None and self._siblings is not None and FORWARDED not in request.headers:
            # A session a sibling ACS process holds (the CPE changed connections)?
            # Never forwarded twice: cookies naming two siblings must not ping-pong.
            owner = self._siblings.owner(_COOKIE_RE.findall(request.headers.get("Cookie", "")))
        admitted = False
        if session is None and owner is None and body.strip():
            # A would-be new session: when saturated, refuse it before parsing anything.
            if not self._admit():
                return self._busy()
            admitted = True
        try:
            msg = soap.parse_message(body, max_bytes=self.config.max_body_bytes)
        except soap.CwmpParseError as exc:
            self.stats["errors"] += 1
            log.info("CWMP from %s rejected: %s", peer, exc)
            return self._fault_response(8003, str(exc), soap.DEFAULT_CWMP_NS, None, status=400)
        if msg.name == "Inform":
            return await self._on_inform(request, msg, peer, admitted)
        if owner is not None and self._siblings is not None:
            return await self._siblings.forward(owner, request, body)
        if session is None:
            return web.Response(status=400, text="No CWMP session: expected an Inform to start one")
        session.last_seen = time.monotonic()
        session.answered = True
        if msg.name == "":
            return self._advance(session, None)
        if msg.name in ("TransferComplete", "AutonomousTransferComplete"):
            self._on_transfer_complete(session, msg)
            return self._xml(soap.rpc_xml(f"{msg.name}Response"), session.cwmp_ns, msg.id)
        if msg.name == "GetRPCMethods":
            methods = soap.names_xml(
                ["Inform", "GetRPCMethods", "TransferComplete"], tag="MethodList"
            )
            return self._xml(
                soap.rpc_xml("GetRPCMethodsResponse", raw=methods), session.cwmp_ns, msg.id
            )
        if msg.name.endswith("Response") or msg.name == "Fault":
            if session.steps is None:
                log.info(
                    "CWMP %s from %s: no RPC outstanding, ignored", msg.name, session.device_id
                )
            return self._advance(session, msg if session.steps is not None else None)
        return self._fault_response(
            8000, f"method {msg.name!r} is not supported by this ACS", session.cwmp_ns, msg.id
        )

    def _xml(
        self,
        rpc: str,
        ns: str,
        msg_id: str | None,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        hdrs = {"Content-Type": _XML_CT_UTF8}
        if headers:
            hdrs.update(headers)
        return web.Response(
            status=status, body=soap.envelope(rpc, cwmp_ns=ns, msg_id=msg_id), headers=hdrs
        )

    def _fault_response(
        self, code: int, message: str, ns: str, msg_id: str | None, status: int = 500
    ) -> web.Response:
        return self._xml(soap.fault_xml(code, message), ns, msg_id, status=status)

    # -- sessions ------------------------------------------------------------------------
    def _find_session(self, request: web.Request, peer: Any) -> Session | None:
        tokens = _COOKIE_RE.findall(request.headers.get("Cookie", ""))
        found = [self.sessions[t] for t in tokens if t in self.sessions]
        if found:  # several tokens (stale cookies kept by the CPE): the newest session
            return max(found, key=lambda s: s.last_seen)
        if self._siblings is not None and self._siblings.owner(tokens) is not None:
            # A sibling's session on a connection this process also served for
            # another CPE (a shared pool): the connection does not name the session.
            return None
        token = self._by_peer.get(peer) if peer else None  # not for a Unix socket
        return self.sessions.get(token) if token else None

    def _foreign_session(self, request: web.Request) -> bool:
        """Whether the request's cookie names a session of a sibling ACS process."""
        prefix = self.config.session_token_prefix
        return bool(prefix) and any(
            not t.startswith(prefix) for t in _COOKIE_RE.findall(request.headers.get("Cookie", ""))
        )

    def _end_session(self, session: Session) -> None:
        doc = self.store.get_device(session.device_id) if session.ran_rpcs else None
        if doc is not None and self.automation.compute_virtual(doc, now_iso()):
            self.store.save_device(doc, defer=True)
        self.sessions.pop(session.token, None)
        if self._by_peer.get(session.peer) == session.token:
            self._by_peer.pop(session.peer, None)
        if self._by_device.get(session.device_id) == session.token:
            self._by_device.pop(session.device_id, None)
            ev = self._end_events.pop(session.device_id, None)
            if ev is not None:
                ev.set()
        session.steps = None
        session.task = None

    def _expire_sessions(self) -> None:
        limit = time.monotonic() - self.config.session_timeout_s
        for s in [s for s in self.sessions.values() if s.last_seen < limit]:
            log.info("CWMP session of %s timed out; its task stays queued", s.device_id)
            try:
                self._end_session(s)
            except Exception:
                self.stats["background_errors"] += 1
                log.exception("CWMP session of %s could not be ended cleanly", s.device_id)
                self.sessions.pop(s.token, None)

    def in_session(self, device_id: str) -> bool:
        """Whether ``device_id`` has an open CWMP session."""
        return device_id in self._by_device

    async def _on_inform(
        self, request: web.Request, msg: soap.CwmpMessage, peer: Any, admitted: bool = False
    ) -> web.StreamResponse:
        try:
            inform = soap.parse_inform(msg.body)
            self._check_inform_bounds(inform)
        except (soap.CwmpParseError, StoreError) as exc:
            self.stats["errors"] += 1
            log.info("CWMP Inform from %s rejected: %s", peer, exc)
            return self._fault_response(8003, str(exc), msg.cwmp_ns, msg.id, status=400)
        dev = inform["device"]
        device_id = device_id_of(dev["OUI"], dev["ProductClass"], dev["SerialNumber"])
        if not self.auth.check(
            request.headers.get("Authorization"),
            request.method,
            identity=device_id,
            uri=request.raw_path,
        ):
            log.info("CWMP Inform from %s (%s): authentication failed", device_id, peer)
            return web.Response(
                status=401,
                text="authentication required",
                headers={"WWW-Authenticate": self.auth.challenge(device_id)},
            )
        if device_id not in self._by_device and not admitted and not self._admit():
            return self._busy()  # a new session on a connection another one used
        self.store.sync()  # tasks queued by sibling processes (shared store)
        old = self._by_device.get(device_id)
        if old and old in self.sessions:
            prev = self.sessions[old]
            repeated = old in _COOKIE_RE.findall(request.headers.get("Cookie", ""))
            if repeated and prev.steps is None and not prev.answered:
                # The CPE repeated its Inform in the same session (our InformResponse was
                # lost): it was recorded already, answer it again.
                prev.last_seen = time.monotonic()
                return self._xml(self._inform_response(), prev.cwmp_ns, msg.id)
            self._end_session(prev)
        prefix = self.config.session_token_prefix  # names this process (``--workers``)
        token = prefix + os.urandom(16).hex()[len(prefix) :]
        session = Session(token, device_id, msg.cwmp_ns, peer, time.monotonic())
        self.sessions[token] = session
        self._by_peer[peer] = token
        self._by_device[device_id] = token
        self.stats["sessions"] += 1
        self.stats["informs"] += 1
        self._record_inform(device_id, dev, inform, peer)
        ev = self._inform_events.pop(device_id, None)
        if ev is not None:
            ev.set()
        return self._xml(
            self._inform_response(),
            msg.cwmp_ns,
            msg.id,
            headers={"Set-Cookie": f"session={token}; Path=/; HttpOnly"},
        )

    def _busy(self) -> web.Response:
        self.stats["refused"] += 1
        return web.Response(status=503, headers={"Retry-After": str(self.config.retry_after_s)})

    def _admit(self) -> bool:
        """Whether a new session may start (open-session cap and admission rate)."""
        if len(self.sessions) >= self.config.max_sessions:
            return False
        rate = self.config.max_new_sessions_per_s
        if rate <= 0:
            return True
        now = time.monotonic()
        self._tokens = min(rate, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    @staticmethod
    def _check_inform_bounds(inform: dict[str, Any]) -> None:
        """Raise :class:`StoreError` if the Inform exceeds what the store accepts."""
        if len(inform["params"]) > LIMITS.params_per_inform:
            raise StoreError(
                f"Inform ParameterList: expected at most {LIMITS.params_per_inform} "
                f"parameters, got {len(inform['params'])}"
            )
        for p in inform["params"]:
            check_parameter(p.name, p.value)
        for k, v in inform["device"].items():
            if len(v) > 256:
                raise StoreError(f"Inform DeviceId.{k}: expected at most 256 characters")

    @staticmethod
    def _inform_response() -> str:
        return _INFORM_RESPONSE

    def _record_inform(
        self, device_id: str, dev: dict[str, str], inform: dict[str, Any], peer: Any = None
    ) -> None:
        ts = now_iso()
        doc = self.store.get_device(device_id)
        if doc is None:
            doc = {
                "_id": device_id,
                "_deviceId": {f"_{k}": v for k, v in dev.items()},
                "_registered": ts,
                "_tags": [],
            }
        doc["_lastInform"] = ts
        if isinstance(peer, tuple) and peer:
            doc["_informAddress"] = str(peer[0])  # where connection requests may go
        codes = [code for code, _ in inform["events"]]
        doc["_events"] = codes
        if "1 BOOT" in codes:
            doc["_lastBoot"] = ts
        if "0 BOOTSTRAP" in codes:
            doc["_lastBootstrap"] = ts
        set_values(doc, inform["params"], ts)  # checked by _check_inform_bounds
        self.automation.compute_virtual(doc, ts)
        self.store.save_device(doc, defer=True)
        root = self.root_of(doc)
        self.automation.apply(doc, codes, root, dev["SerialNumber"])
        for code, key in inform["events"]:
            # "M Reboot" carries the Reboot's CommandKey (our task id): the reboot
            # happened even if its RebootResponse was lost, so never send it again.
            task = self.store.tasks.get(key) if code == "M Reboot" and key else None
            if task is not None and task["device"] == device_id and task["name"] == "reboot":
                self.store.complete_task(key)
                self._notify_task(key)
        if "8 DIAGNOSTICS COMPLETE" in codes:
            obj = (
                "Device.IP.Diagnostics.IPPing."
                if root == "Device"
                else "InternetGatewayDevice.IPPingDiagnostics."
            )
            self.store.insert_task(
                {
                    "name": "refreshObject",
                    "objectName": obj,
                    "device": device_id,
                    "preset": "diagnostics",
                }
            )

    def virtual_parameters(self) -> dict[str, dict[str, Any]]:
        """Virtual parameter definitions in force (see :class:`Automation`)."""
        return self.automation.virtual_parameters()

    def invalidate(self) -> None:
        """Forget compiled presets and virtual parameters (after an NBI change)."""
        self.automation.invalidate()

    @staticmethod
    def root_of(doc: dict[str, Any]) -> str:
        """Data-model root of a device document (``Device`` or ``InternetGatewayDevice``)."""
        return _root_of(doc)

    # -- NBI support -------------------------------------------------------------------
    def inform_waiter(self, device_id: str) -> asyncio.Event:
        """Event set at the next Inform of ``device_id``."""
        return self._inform_events.setdefault(device_id, asyncio.Event())

    def session_end_waiter(self, device_id: str) -> asyncio.Event:
        """Event set when the current (or next) session of ``device_id`` ends."""
        return self._end_events.setdefault(device_id, asyncio.Event())

    def task_waiter(self, task_id: str) -> asyncio.Event:
        """Event set when ``task_id`` completes or faults."""
        return self._task_events.setdefault(task_id, asyncio.Event())

    async def connection_request(self, device_id: str) -> str | None:
        """Send a connection request; ``None`` on success, else the error status text.

        See :class:`acs_emulator.cwmp.cr.ConnectionRequester` for what is trusted.
        """
        doc = self.store.get_device(device_id)
        if doc is None:
            return "No such device"
        return await self._cr.send(device_id, doc, self.root_of(doc))
