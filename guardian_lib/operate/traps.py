"""SNMP traps in ``guardian operate``: a receiver whose events join the next cycle and
start it at once (see ``site.traps``, :class:`~guardian_lib.operate.site.TrapSettings`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

__all__ = ["OperateTraps"]


class OperateTraps:
    """The trap receiver of one site and the wake-up it gives the service loop.

    Parameters
    ----------
    settings : TrapSettings
    inventory : guardian_lib.snmp.Inventory
        Where the credentials reference is resolved, and sender address → OLT id.
    environ : mapping, optional
        Looked up first for the credentials.

    Attributes
    ----------
    receiver : guardian_lib.snmp.traps.TrapReceiver
        Started on a background thread.
    wake : threading.Event
        Set by every accepted trap.
    last_cycle_end : float
        ``time.monotonic()`` at the end of the last cycle (the service sets it). [s]
    """

    def __init__(
        self, settings: Any, inventory: Any, environ: Mapping[str, str] | None = None
    ) -> None:
        from guardian_lib.snmp.inventory import OltEntry, resolve_credentials
        from guardian_lib.snmp.traps import TrapReceiver, TrapUser

        self.settings = settings
        self.wake = threading.Event()
        self.last_cycle_end = 0.0
        entry = OltEntry(olt_id="traps", host=settings.host, version=settings.version,
                         credentials=settings.credentials)  # fmt: skip
        creds = resolve_credentials(entry, inventory.secrets_path(), environ)
        v3 = settings.version == "3"
        users = [
            TrapUser(creds.user, creds.auth_key, creds.priv_key, engine_id=eid)
            for eid in settings.engine_ids.values()
        ] if v3 else []  # fmt: skip
        self.receiver = TrapReceiver(
            settings.host, settings.port, community=None if v3 else creds.community,
            users=users, sources={o.host: o.olt_id for o in inventory.olts},
            on_event=lambda _e: self.wake.set(),
        ).start_in_thread()  # fmt: skip

    def sleep(self, wait_s: float, stop: threading.Event) -> None:
        """Wait up to ``wait_s`` [s]; return early on ``stop``, or on a trap once
        ``min_cycle_gap_s`` has passed since the last cycle ended (storm damping)."""
        end = time.monotonic() + wait_s
        while not stop.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return
            if self.wake.wait(min(left, 0.25)):
                early = self.last_cycle_end + self.settings.min_cycle_gap_s - time.monotonic()
                if early <= 0:
                    self.wake.clear()
                    return
                stop.wait(min(early, left))

    def rows(self, store: Callable[[Any], Any], clock: Any = None) -> list[dict[str, Any]]:
        """Events accepted since the last call; ``store(report)`` writes them to RAW.
        With a scaled clock (``site.clock``, the twin) their times (the host's) are moved
        onto the network's (:meth:`~guardian_lib.operate.site.ClockSettings.at`)."""
        from guardian_lib.snmp.rows import TELEMETRY_SCHEMA, empty_frame
        from guardian_lib.snmp.traps import events_frame

        rows = self.receiver.drain()
        if clock is not None:
            at = clock.at
            rows = [{**r, "ts": at(r["ts"].timestamp()),
                     "received_at": at(r["received_at"].timestamp())} for r in rows]  # fmt: skip
        if rows:
            store(SimpleNamespace(telemetry=empty_frame(TELEMETRY_SCHEMA),
                                  events=events_frame(rows)))  # fmt: skip
        return rows

    def close(self) -> None:
        """Stop the receiver."""
        self.receiver.stop_thread()
