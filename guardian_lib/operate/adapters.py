"""Production adapters of the closed loop: SNMP in; the ACS NBI, a ticketing system and
the audit out.

* :class:`SnmpTelemetrySource` — one poll of every OLT of the inventory per cycle (one
  event loop and SNMP engine kept across cycles); an OLT that does not answer is in the
  report's ``failed`` list and the cycle goes on with the others;
* :class:`JournalledDevices` — reboots through :class:`guardian_lib.acs.NbiClient`
  (retries with backoff inside the client); each call is journalled in the state store
  *before* it is sent, under an idempotency key the ACS also receives, so that a restart
  never sends it twice;
* :class:`NbiCpeState` — whether each CPE's PPPoE session is up, as the ACS last heard,
  and when it last informed (the evidence :mod:`guardian_lib.operate.silent` weighs);
* the field services (a ticketing webhook, a CSV drop folder) are in
  :mod:`guardian_lib.operate.field`;
* :class:`AuditNotifier` — customer notifications go to the audit trail only;
* :class:`DryRunDispatcher` — simulate mode that refuses, as the ACS adapter would, a device
  action on a device the inventory does not know (``guardian decide``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from guardian_lib.actions.dispatcher import ActionResult, Dispatcher
from guardian_lib.operate.state import StateStore
from guardian_lib.snmp.inventory import Inventory
from guardian_lib.snmp.poller import PollReport, poll_inventory
from guardian_lib.snmp.transport import new_engine

__all__ = [
    "ActionContext",
    "SnmpTelemetrySource",
    "JournalledDevices",
    "AuditNotifier",
    "DryRunDispatcher",
    "NbiCpeState",
    "PPP_STATUS_PATHS",
]

log = logging.getLogger("guardian_lib.operate")


@dataclass
class ActionContext:
    """What the executors need to know about the cycle they act in.

    Attributes
    ----------
    site_id : str
    cycle : int
        Cycle number (restarts continue the count). [-]
    ts : str
        Cycle time (ISO, UTC).
    pon_of : dict
        Device or ONU id → PON id (for the journal and the per-PON cap on restart).
    """

    site_id: str = "site"
    cycle: int = 0
    ts: str = ""
    pon_of: dict[str, str] = field(default_factory=dict)

    def key(self, action: str, target: str) -> str:
        """Idempotency key of ``action`` on ``target`` in this cycle."""
        return f"{self.site_id}:c{self.cycle}:{action}:{target}"


class SnmpTelemetrySource:
    """Polls the OLT inventory once per call, keeping the SNMP engine between cycles.

    Parameters
    ----------
    inventory : Inventory
    environ : mapping, optional
        Where SNMP credentials are looked up first (default ``os.environ``).
    """

    def __init__(self, inventory: Inventory, environ: Mapping[str, str] | None = None) -> None:
        self.inventory = inventory
        self.environ = environ
        self._loop = asyncio.new_event_loop()
        self._engine = None
        self.previous_online: dict[str, bool] | None = None

    def poll(self) -> PollReport:
        """One poll cycle over every OLT (never raises for an OLT that does not answer)."""

        async def run() -> PollReport:
            if self._engine is None:
                self._engine = new_engine()
            return await poll_inventory(
                self.inventory,
                environ=self.environ,
                previous_online=self.previous_online,
                engine=self._engine,
            )

        report = self._loop.run_until_complete(run())
        online = report.online_by_onu()
        if self.previous_online is None:
            self.previous_online = online
        else:
            self.previous_online.update(online)
        return report

    def close(self) -> None:
        """Close the event loop."""
        self._loop.close()


#: Where TR-181 and TR-098 CPEs report their PPPoE session.
PPP_STATUS_PATHS = (
    "Device.PPP.Interface.1.Status",
    "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1.ConnectionStatus",
)
_PPP_UP = {"up", "connected"}


class NbiCpeState:
    """What the ACS last heard from each CPE: whether its PPPoE session is up, when it
    last informed and its periodic Inform interval.

    One ``GET /devices/`` per cycle with a projection (no device is contacted). An NBI
    that is down gives an empty answer and a warning: the cycle goes on with the SNMP
    view alone (and no CPE is evidence that a silent OLT carries traffic).

    Parameters
    ----------
    client : NbiClient
    default_interval_s : float, optional
        Periodic Inform interval assumed for a CPE that reports none. [s]

    Attributes
    ----------
    informs : dict of str → (float or None, float or None)
        Device id → (last Inform [s, POSIX], interval [s]) of the last :meth:`read`;
        None where the NBI's value is missing or unusable
        (:func:`~guardian_lib.operate.silent.inform_time_s`,
        :func:`~guardian_lib.operate.silent.inform_interval_s`).
    """

    def __init__(self, client: Any, default_interval_s: float | None = None) -> None:
        self.client = client
        self.default_interval_s = default_interval_s
        self.last_error: str | None = None
        self.informs: dict[str, tuple[float | None, float | None]] = {}
        self.ppp: dict[str, bool] = {}  # the last read's PPPoE state (ppp_up's answer)

    def ppp_up(self) -> dict[str, bool]:
        """Device id → PPPoE session up (devices that report no status are left out);
        refreshes :attr:`informs` with the same request."""
        from guardian_lib.acs.nbi import _value_at
        from guardian_lib.operate.silent import INTERVAL_PATHS, inform_interval_s, inform_time_s

        self.informs, self.ppp = {}, {}
        try:
            docs = self.client.devices(
                projection=["_id", "_lastInform", *PPP_STATUS_PATHS, *INTERVAL_PATHS]
            )
            if not isinstance(docs, list):
                raise TypeError(f"expected a list of devices, got {type(docs).__name__}")
        except Exception as exc:  # noqa: BLE001 - the NBI may be down: SNMP view only
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.info("CPE state unavailable: %s", self.last_error)  # in the cycle's JSON line
            return {}
        self.last_error = None
        out = {}
        for d in docs:
            if not isinstance(d, dict) or not isinstance(d.get("_id"), str):
                continue
            did = d["_id"]
            for path in PPP_STATUS_PATHS:
                v = _value_at(d, path)
                if v is not None:
                    out[did] = str(v).strip().lower() in _PPP_UP
                    break
            iv = next((v for p in INTERVAL_PATHS if (v := _value_at(d, p)) is not None), None)
            self.informs[did] = (
                inform_time_s(d.get("_lastInform")),
                inform_interval_s(iv, self.default_interval_s),
            )
        self.ppp = out
        return out


class JournalledDevices:
    """A :class:`~guardian_lib.actions.DeviceClient` that journals before it sends.

    Parameters
    ----------
    client : NbiClient or None
        ``reboot(device_id, idempotency_key=...)``; None when no NBI is configured
        (every reboot then fails with a clear message).
    store : StateStore
    context : ActionContext

    Attributes
    ----------
    sent, failed, suppressed : int
        Reboots sent, failed, and not sent because their key was already journalled. [-]
    """

    def __init__(self, client: Any, store: StateStore, context: ActionContext) -> None:
        self.client = client
        self.store = store
        self.context = context
        self.sent = self.failed = self.suppressed = 0
        #: Device ids of the fleet (None: any); others are refused, never sent.
        self.known: set[str] | None = None

    def reboot(self, device_id: str) -> Any:
        """Reboot ``device_id`` at most once per cycle key.

        Raises
        ------
        ValueError
            Empty device id.
        guardian_lib.acs.AcsError, RuntimeError
            From the client, after its retries (the dispatcher records ``failed``).
        """
        if not device_id:
            raise ValueError("reboot: device_id must be a non-empty device id")
        if self.client is None:
            raise RuntimeError("reboot: the site file has no nbi: section")
        if self.known is not None and device_id not in self.known:
            from guardian_lib.actions.clients import UnknownTargetError

            raise UnknownTargetError("reboot", "device", device_id)
        ctx = self.context
        key = ctx.key("reboot", device_id)
        if not self.store.journal_begin(
            key, cycle=ctx.cycle, ts=ctx.ts, action="reboot", target=device_id,
            pon_id=ctx.pon_of.get(device_id),
        ):  # fmt: skip
            self.suppressed += 1
            from guardian_lib.operate.metrics import log_json

            log_json("duplicate_suppressed", action="reboot", target=device_id, key=key)
            return f"already sent (key {key})"
        t0 = time.perf_counter()
        try:
            result = self.client.reboot(device_id, idempotency_key=key)
        except Exception as exc:
            from guardian_lib.acs import AcsAmbiguousError

            status = "ambiguous" if isinstance(exc, AcsAmbiguousError) else "failed"
            self.store.journal_end(key, status, f"{type(exc).__name__}: {exc}")
            self.failed += 1
            raise
        status = str(getattr(result, "status", result))
        self.store.journal_end(key, "sent", status)
        self.sent += 1
        log.info("action reboot %s sent: %s (%.2f s)", device_id, status, time.perf_counter() - t0)
        return result


class AuditNotifier:
    """Customer notifications recorded in the audit trail only (no message is sent).

    Attributes
    ----------
    sent : list of tuple
        ``(onu_id, template, until_h)`` per notification accepted.
    """

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, float]] = []

    def notify(self, onu_id: str, template: str, until_h: float) -> bool:
        """Accept the notification (the autopilot audits it). [h]"""
        self.sent.append((onu_id, template, float(until_h)))
        return True


#: Actions the ACS carries out on a CPE.
DEVICE_ACTIONS = ("reboot", "change_wifi_profile")


class DryRunDispatcher(Dispatcher):
    """Simulate mode: nothing is sent; every action is ``simulated``, except a device action
    on a device outside ``known`` (an ONU whose CPE the inventory does not name), which is
    ``failed`` with the error :class:`JournalledDevices` would raise in ``execute`` mode.

    Parameters
    ----------
    known : set of str
        Device (CPE) ids of the fleet.
    """

    def __init__(self, known: set[str]) -> None:
        super().__init__("simulate")
        self.known = known

    def execute(self, decision: Any, at: Any = None) -> list[ActionResult]:
        from guardian_lib.actions.clients import UnknownTargetError

        out = super().execute(decision, at)
        if decision.action not in DEVICE_ACTIONS:
            return out
        for r in out:
            if r.target not in self.known:
                r.status = "failed"
                r.error = str(UnknownTargetError(decision.action, "device", r.target))
        return out
