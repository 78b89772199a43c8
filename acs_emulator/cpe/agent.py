"""One emulated CWMP CPE: sessions with the ACS, RPC handling, reboots, downloads.

Agents are asyncio objects; a :class:`~acs_emulator.cpe.fleet.CpeFleet` runs many in
one process over one HTTP client pool and one connection-request listener.

The ACS's answers are hostile input: a body that is not CWMP ends the session with
:class:`SessionError` (events stay pending, the agent retries with back-off), and the
agent's loop survives any one failed session, whatever it raised (logged, counted in
``sessions_failed``). Every XML the agent writes goes through the escaping builders
of :mod:`acs_emulator.cwmp.soap`; RPCs are dispatched from a table
(:data:`CpeAgent.RPC_HANDLERS`, in :mod:`acs_emulator.cpe.rpc_handlers`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import numpy as np

from acs_emulator.cpe.datamodel import INFORM_KEYS, DataModel, Flavour
from acs_emulator.cpe.rpc_handlers import After, RpcHandlersMixin
from acs_emulator.cpe.state import DeviceIdentity, StateSource, StaticStateSource
from acs_emulator.cwmp import soap
from acs_emulator.cwmp.auth import basic_authorization, digest_authorization

__all__ = ["CpeAgent", "Misbehaviour", "SessionError", "retry_wait_s"]

log = logging.getLogger(__name__)
_After = After  # its name when it lived here (older imports)


class SessionError(Exception):
    """A CWMP session could not be completed (names the device and the step).

    ``refused`` is true when the ACS answered 503 (busy): the session never started,
    so it is not counted as failed.
    """

    def __init__(
        self, message: str, retry_after_s: float | None = None, refused: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.refused = refused


def retry_wait_s(
    retry_count: int,
    rng: np.random.Generator,
    min_wait_s: float = 5.0,
    multiplier: int = 2000,
) -> float:
    """Session retry wait interval of TR-069 §3.2.1.1 (Amendment 6). [s]

    After the ``retry_count``-th consecutive failed session the CPE waits a time
    drawn uniformly from ``[m·(k/1000)^(n-1), m·(k/1000)^n]``, with
    ``m = CWMPRetryMinimumWaitInterval`` (default 5 s), ``k =
    CWMPRetryIntervalMultiplier`` (default 2000) and ``n = min(retry_count, 10)``:
    5–10 s, 10–20 s, … up to 2560–5120 s from the tenth retry on. The random draw is
    what spreads a fleet that failed at the same moment (a boot storm).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> 5.0 <= retry_wait_s(1, rng) <= 10.0, 2560.0 <= retry_wait_s(12, rng) <= 5120.0
    (True, True)
    """
    n = min(max(retry_count, 1), 10)
    k = multiplier / 1000.0
    low = min_wait_s * k ** (n - 1)
    return float(rng.uniform(low, low * k))


@dataclass
class Misbehaviour:
    """Ways a field CPE deviates from the standard (all off by default).

    Parameters
    ----------
    slow_response_s : float
        Delay before answering each ACS RPC. [s]
    fault_rate : float
        Probability of answering an RPC with fault 9002. [-]
    drop_session_rate : float
        Probability of vanishing after receiving an RPC (no answer, no 204). [-]
    echo_full_set_cookie : bool
        Send the whole ``Set-Cookie`` string back (attributes included) and keep it
        into the next session.
    basic_before_challenge : bool
        Send Basic credentials with the first request, unchallenged.
    no_soapaction : bool
        Omit the ``SOAPAction`` header.
    untyped_values : bool
        Inform values without ``xsi:type``.
    wrong_array_size : bool
        ``arrayType`` sizes that do not match the lists.
    no_partial_path : bool
        Answer a partial-path GetParameterValues with fault 9005.
    bad_firmware_marker : str
        A download whose file name contains this fails with fault 9010.
    """

    slow_response_s: float = 0.0
    fault_rate: float = 0.0
    drop_session_rate: float = 0.0
    echo_full_set_cookie: bool = False
    basic_before_challenge: bool = False
    no_soapaction: bool = False
    untyped_values: bool = False
    wrong_array_size: bool = False
    no_partial_path: bool = False
    bad_firmware_marker: str = "bad"


@dataclass
class CpeAgent(RpcHandlersMixin):
    """An emulated CPE.

    Parameters
    ----------
    identity : DeviceIdentity
        OUI, product class, serial (device id ``OUI-ProductClass-Serial``).
    acs_url : str
        ACS URL (``ManagementServer.URL``).
    state : StateSource, optional
        Live values; :class:`StaticStateSource` by default.
    flavour : {"tr181", "tr098"}, default "tr181"
        Data model.
    periodic_interval_s : float, default 300
        ``PeriodicInformInterval``. [s]
    cr_url : str
        ``ConnectionRequestURL`` (set by the fleet).
    acs_password : str, optional
        Password for ACS Basic/Digest (username = device id).
    reboot_duration_s : float, default 2
        Time the device is down during a reboot. [s]
    cwmp_ns : str
        CWMP namespace the CPE speaks (1-0 by default, as most field CPEs).
    misbehaviour : Misbehaviour
        Deviations from the standard.
    bootstrap : bool, default True
        First Inform carries "0 BOOTSTRAP" (a factory-new device); ``False`` for a
        device the ACS already knows (only "1 BOOT").
    periodic_phase : bool, default False
        Draw the first periodic Inform uniformly within one interval of the start
        (from ``seed``). A fleet started together otherwise informs in step, every CPE
        in the same instant of each interval; a real fleet's phases are spread (boot
        times, ``PeriodicInformTime``), which the ACS-side evidence of a silent OLT
        relies on (``guardian_lib.operate.silent``).
    seed : int, default 0
        Seed of the misbehaviour draws.
    """

    identity: DeviceIdentity
    acs_url: str
    state: StateSource = field(default_factory=StaticStateSource)
    flavour: Flavour = "tr181"
    periodic_interval_s: float = 300.0
    cr_url: str = ""
    acs_password: str | None = None
    reboot_duration_s: float = 2.0
    cwmp_ns: str = soap.DEFAULT_CWMP_NS
    misbehaviour: Misbehaviour = field(default_factory=Misbehaviour)
    bootstrap: bool = True
    periodic_phase: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        self.device_id = self.identity.device_id
        self.rng = np.random.default_rng(
            [self.seed, len(self.device_id)] + list(self.device_id.encode()[-8:])
        )
        self.model = self._build_model()
        self.pending_events: dict[str, str] = {"1 BOOT": ""}
        if self.bootstrap:
            self.pending_events = {"0 BOOTSTRAP": "", "1 BOOT": ""}
        self.cookie: str | None = None
        self.down_until = 0.0
        self.wakeup = asyncio.Event()
        self.sessions_ok = 0
        self.sessions_failed = 0
        self.sessions_refused = 0  # 503 answers (the session did not start)
        self.downloads_verified = 0  # files fetched with the announced size and hash
        self.retry_count = 0  # consecutive failed attempts (the Inform's RetryCount)
        self.rpcs_handled: list[str] = []
        self._pending_requests: list[str] = []
        self._last_set_cookie: str | None = None

    # -- data model ------------------------------------------------------------------
    def _build_model(self) -> DataModel:
        m = DataModel(self.flavour)
        ident = self.identity
        live = self.state.values
        did = self.device_id

        def rx() -> str:
            v = live(did)["rx_dbm"]
            return "" if v is None or math.isnan(v) else str(round(v * 1000))

        m.set("manufacturer", ident.manufacturer)
        m.set("oui", ident.oui)
        m.set("product_class", ident.product_class)
        m.set("serial", ident.serial)
        m.set("software", ident.firmware)
        m.set("hardware", "HW1.0")
        m.set("uptime", 0, "xsd:unsignedInt", live=lambda: str(live(did)["uptime_s"]))
        m.set("provisioning", "", writable=True)
        m.set("ms_url", self.acs_url, writable=True)
        m.set("cr_url", self.cr_url)
        m.set("cr_user", did, writable=True)
        m.set("cr_password", "", writable=True, live=lambda: "")
        m.set("periodic_enable", True, "xsd:boolean", writable=True)
        m.set("periodic_interval", int(self.periodic_interval_s), "xsd:unsignedInt", True)
        m.set("parameter_key", "")
        m.set("rx", 0, "xsd:int", live=rx)
        m.set("optical_status", "", live=lambda: "Up" if live(did)["online"] else "Down")
        if self.flavour == "tr181":
            ppp = lambda: "Up" if live(did)["pppoe_up"] else "Down"  # noqa: E731
        else:
            ppp = lambda: "Connected" if live(did)["pppoe_up"] else "Disconnected"  # noqa: E731
        m.set("ppp_status", "", live=ppp)
        m.set("ppp_user", f"{ident.serial.lower()}@isp", writable=True)
        m.set("ppp_password", "", writable=True, live=lambda: "")
        m.set("ext_ip", f"100.64.{int(self.rng.integers(0, 255))}.{int(self.rng.integers(1, 254))}")
        m.set("ssid", f"NET_{ident.serial[-4:]}", writable=True)
        m.set("channel", ident.wifi_channel, "xsd:unsignedInt", True)
        m.set("wifi_key", "", writable=True, live=lambda: "")
        m.set("ping_state", "None", writable=True)
        m.set("ping_host", "", writable=True)
        m.set("ping_reps", 4, "xsd:unsignedInt", True)
        m.set("ping_success", 0, "xsd:unsignedInt")
        m.set("ping_failure", 0, "xsd:unsignedInt")
        m.set("ping_avg_ms", 0, "xsd:unsignedInt")
        return m

    def set_cr_url(self, url: str) -> None:
        """Set ``ConnectionRequestURL`` (before the first session)."""
        self.cr_url = url
        self.model.put("cr_url", url)

    @property
    def online(self) -> bool:
        """Up (not rebooting) and online in the state source."""
        loop = asyncio.get_running_loop()
        return loop.time() >= self.down_until and bool(self.state.values(self.device_id)["online"])

    # -- session -------------------------------------------------------------------------
    def _inform_xml(self) -> str:
        n_ev = len(self.pending_events) + (1 if self.misbehaviour.wrong_array_size else 0)
        events = soap.events_xml(list(self.pending_events.items()), declared_size=n_ev)
        params = [
            (self.model.path(k),) + self.model.values([self.model.path(k)])[0][1:]
            for k in INFORM_KEYS
        ]
        plist = soap.values_xml(params)
        if self.misbehaviour.untyped_values:
            plist = re.sub(r' xsi:type="[^"]*"', "", plist)
        if self.misbehaviour.wrong_array_size:
            plist = re.sub(r"\[\d+\]", "[99]", plist, count=1)
        ident = self.identity
        now = datetime.now(UTC).isoformat(timespec="seconds")
        device = soap.elements_xml(
            {
                "Manufacturer": ident.manufacturer,
                "OUI": ident.oui,
                "ProductClass": ident.product_class,
                "SerialNumber": ident.serial,
            }
        )
        return soap.rpc_xml(
            "Inform",
            raw=(
                f"<DeviceId>{device}</DeviceId>{events}"
                + soap.elements_xml(
                    {"MaxEnvelopes": 1, "CurrentTime": now, "RetryCount": self.retry_count}
                )
                + plist
            ),
        )

    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": 'text/xml; charset="utf-8"'}
        if not self.misbehaviour.no_soapaction:
            h["SOAPAction"] = ""
        if self.cookie:
            h["Cookie"] = self.cookie
        return h

    async def run_session(self, http: aiohttp.ClientSession, timeout_s: float = 30.0) -> bool:
        """Run one CWMP session with the pending events.

        Returns
        -------
        completed : bool
            ``True`` when the session ended with 204 (events delivered), ``False`` when
            the CPE dropped it on purpose (misbehaviour).

        Raises
        ------
        SessionError
            On HTTP errors, timeouts or an unexpected answer (events stay pending).
        """
        try:
            return await asyncio.wait_for(self._session(http), timeout_s)
        except TimeoutError as exc:
            self.sessions_failed += 1
            raise SessionError(f"{self.device_id}: CWMP session timed out") from exc
        except (aiohttp.ClientError, OSError) as exc:
            self.sessions_failed += 1
            raise SessionError(f"{self.device_id}: {type(exc).__name__}: {exc}") from exc
        except soap.CwmpParseError as exc:
            self.sessions_failed += 1
            raise SessionError(
                f"{self.device_id}: the ACS answered a non-CWMP body: {exc}"
            ) from exc
        except SessionError as exc:
            if not exc.refused:
                self.sessions_failed += 1
            raise

    async def _post(
        self, http: aiohttp.ClientSession, body: bytes, auth: str | None = None
    ) -> tuple[int, bytes, Any]:
        headers = self._headers()
        if auth:
            headers["Authorization"] = auth
        async with http.post(self.acs_url, data=body, headers=headers) as resp:
            data = await resp.read()
            set_cookie = resp.headers.get("Set-Cookie")
            if set_cookie:
                if self.misbehaviour.echo_full_set_cookie:
                    # The whole string, followed by the one kept from the last session.
                    prev, self._last_set_cookie = self._last_set_cookie, set_cookie
                    self.cookie = f"{set_cookie}; {prev}" if prev else set_cookie
                else:
                    self.cookie = set_cookie.split(";", 1)[0]
            return resp.status, data, resp.headers

    async def _session(self, http: aiohttp.ClientSession) -> bool:
        mb = self.misbehaviour
        if not mb.echo_full_set_cookie:
            self.cookie = None
        inform = soap.envelope(self._inform_xml(), cwmp_ns=self.cwmp_ns, msg_id="1")
        auth = None
        if mb.basic_before_challenge and self.acs_password is not None:
            auth = basic_authorization(self.device_id, self.acs_password)
        status, data, headers = await self._post(http, inform, auth)
        if status == 401 and self.acs_password is not None:
            challenge = headers.get("WWW-Authenticate", "")
            path = aiohttp.helpers.URL(self.acs_url).raw_path_qs
            auth = (
                digest_authorization(challenge, "POST", path, self.device_id, self.acs_password)
                if challenge.lower().startswith("digest")
                else basic_authorization(self.device_id, self.acs_password)
            )
            status, data, headers = await self._post(http, inform, auth)
        if status == 503:
            try:
                retry = float(headers.get("Retry-After", "") or 0)
            except ValueError:  # an HTTP date or garbage: use the back-off alone
                retry = 0.0
            self.sessions_refused += 1
            raise SessionError(
                f"{self.device_id}: ACS busy (503)", retry_after_s=retry, refused=True
            )
        if status != 200:
            raise SessionError(f"{self.device_id}: Inform answered HTTP {status}")
        msg = soap.parse_message(data)
        if msg.name != "InformResponse":
            raise SessionError(f"{self.device_id}: expected InformResponse, got {msg.name!r}")
        self.pending_events.clear()
        after = After()
        for req in list(self._pending_requests):
            status, data, _ = await self._post(http, req.encode())
            if status != 200:
                raise SessionError(f"{self.device_id}: TransferComplete answered HTTP {status}")
            self._pending_requests.remove(req)
        status, data, _ = await self._post(http, b"")
        while status == 200 and data.strip():
            msg = soap.parse_message(data)
            if mb.drop_session_rate and self.rng.random() < mb.drop_session_rate:
                self.rpcs_handled.append(f"dropped:{msg.name}")
                return False
            if mb.slow_response_s:
                await asyncio.sleep(mb.slow_response_s)
            reply = self._handle_rpc(msg, after)
            status, data, _ = await self._post(
                http, soap.envelope(reply, cwmp_ns=self.cwmp_ns, msg_id=msg.id)
            )
        if status not in (200, 204):
            raise SessionError(f"{self.device_id}: session ended with HTTP {status}")
        self.sessions_ok += 1
        if after.download is not None and int(after.download.get("FileSize") or 0) > 0:
            after.download_fault = await self._fetch(http, after.download)
        self._after_session(after)
        return True

    # -- life ----------------------------------------------------------------------------
    def request_connection(self) -> None:
        """A connection request arrived: inform with "6 CONNECTION REQUEST"."""
        self.pending_events.setdefault("6 CONNECTION REQUEST", "")
        self.wakeup.set()

    async def run(
        self,
        http: aiohttp.ClientSession,
        *,
        stop: asyncio.Event | None = None,
        first_delay_s: float = 0.0,
        retry_base_s: float = 5.0,
        on_session: Callable[[bool], None] | None = None,
    ) -> None:
        """Inform at start, periodically and on connection requests, until ``stop``.

        Parameters
        ----------
        http : aiohttp.ClientSession
            Client pool.
        stop : asyncio.Event, optional
            Set to end the loop.
        first_delay_s : float
            Delay before the first Inform (spreads a fleet's boot storm). [s]
        retry_base_s : float
            ``CWMPRetryMinimumWaitInterval``: a failed or refused (503) session is
            retried after :func:`retry_wait_s` (5–10 s, then doubling, random within
            each step), or after the ACS's ``Retry-After`` if that is longer. [s]
        on_session : callable, optional
            Called with ``True``/``False`` after each session attempt.
        """
        loop = asyncio.get_running_loop()
        stop = stop or asyncio.Event()
        await _sleep_or(stop, first_delay_s)
        phase = float(self.rng.random()) if self.periodic_phase else 1.0
        next_periodic = loop.time() + phase * self.periodic_interval_s
        while not stop.is_set():
            wait_down = self.down_until - loop.time()
            if wait_down > 0:
                await _sleep_or(stop, wait_down)
                continue
            if self.pending_events and self.online:
                try:
                    ok = await self.run_session(http)  # False: dropped on purpose
                    self.retry_count = 0
                except Exception as exc:  # any one failed session: log, count, go on
                    self.retry_count += 1
                    retry_after = 0.0
                    refused = isinstance(exc, SessionError) and exc.refused
                    if isinstance(exc, SessionError):
                        log.debug("%s", exc)
                        retry_after = exc.retry_after_s or 0.0
                    else:
                        self.sessions_failed += 1
                        log.exception("%s: CWMP session failed unexpectedly", self.device_id)
                    wait = max(retry_after, retry_wait_s(self.retry_count, self.rng, retry_base_s))
                    if on_session and not refused:  # a 503 is not a failed session
                        on_session(False)
                    await _sleep_or(stop, wait)
                    continue
                if on_session:
                    on_session(ok)
                continue
            self.wakeup.clear()
            timeout = max(0.0, next_periodic - loop.time())
            try:
                await asyncio.wait_for(_first(self.wakeup, stop), timeout)
            except TimeoutError:
                self.pending_events.setdefault("2 PERIODIC", "")
                next_periodic = loop.time() + self.periodic_interval_s


async def _first(a: asyncio.Event, b: asyncio.Event) -> None:
    ta, tb = asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())
    try:
        await asyncio.wait({ta, tb}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ta.cancel()
        tb.cancel()


async def _sleep_or(stop: asyncio.Event, seconds: float) -> None:
    if seconds <= 0:
        return
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
