"""One object for a service loop: rules → dispatcher → outbox → receivers, every cycle.

``guardian operate`` (or any loop) builds an :class:`AlertPipeline` from an alerting
file and a state folder and calls :meth:`AlertPipeline.cycle` with the observations of the
cycle; notifications are written to the outbox *before* any delivery is tried, so a crash
loses nothing and a restart resends only what was not delivered. The rule timers
(pending ``for:``) and the aggregation groups are saved in the outbox file after every
cycle and restored on start: a restart neither restarts a ``for:`` nor re-notifies a
firing group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from guardian_lib.alerts.config import AlertingConfig
from guardian_lib.alerts.dispatch import Dispatcher
from guardian_lib.alerts.outbox import DeliveryReport, Outbox
from guardian_lib.alerts.receivers import build_receivers
from guardian_lib.alerts.rules import RuleEngine
from guardian_lib.alerts.silences import SilenceStore

__all__ = ["AlertPipeline", "CycleReport", "OUTBOX_FILE", "SILENCES_FILE"]

#: Files of the pipeline in its state folder.
OUTBOX_FILE = "alerts_outbox.sqlite"
SILENCES_FILE = "silences.sqlite"


@dataclass(frozen=True)
class CycleReport:
    """What one cycle did."""

    alerts: int
    notifications: int
    queued: int
    delivery: DeliveryReport

    def to_dict(self) -> dict[str, int]:
        """Flat figures for a cycle log."""
        d = self.delivery
        return {"alerts": self.alerts, "notifications": self.notifications,
                "queued": self.queued, "delivered": d.delivered, "delivery_failed": d.failed,
                "dead": d.dead}  # fmt: skip


class AlertPipeline:
    """Rules, Alertmanager semantics and durable delivery for a service loop.

    Parameters
    ----------
    config : AlertingConfig
    state : path
        Folder of the outbox and silence files.
    receivers : mapping, optional
        Receiver name → object with ``send(key, payload)``; default built from the config
        (secrets read from the environment or 0600 files).
    """

    def __init__(
        self,
        config: AlertingConfig,
        state: str | Path,
        receivers: Mapping[str, Any] | None = None,
        clock=None,
    ) -> None:
        state = Path(state)
        self.config = config
        self.engine = RuleEngine(config)
        self.silences = SilenceStore(state / SILENCES_FILE)
        self.dispatcher = Dispatcher(config, self.silences)
        self.outbox = Outbox(state / OUTBOX_FILE, clock=clock)
        base = config.path.parent if config.path else None
        self.receivers = dict(receivers) if receivers is not None else build_receivers(config, base)
        # Rule timers and aggregation groups of the last cycle (a restart goes on from them).
        self.engine.load_state_dict(self.outbox.get_state("rules") or [])
        self.dispatcher.load_state_dict(self.outbox.get_state("groups") or {})

    def cycle(
        self, now: pd.Timestamp, observations: Mapping[str, Iterable[Mapping[str, Any]]]
    ) -> CycleReport:
        """Evaluate, dispatch, queue, then deliver what is due (never raises on a receiver)."""
        self.silences.reload()  # silences may have been added by the CLI meanwhile
        alerts = self.engine.evaluate(now, observations)
        notes = self.dispatcher.step(now, alerts)
        queued = sum(
            self.outbox.enqueue(n.key, n.receiver, n.to_dict())
            for n in notes
            if n.receiver != "null"
        )
        # After the enqueue: a crash in between resends (same keys), never loses.
        self.outbox.put_state(
            {"rules": self.engine.state_dict(), "groups": self.dispatcher.state_dict()}
        )
        return CycleReport(len(alerts), len(notes), queued, self.outbox.deliver(self.receivers))

    def close(self) -> None:
        """Close the files and HTTP clients."""
        for rx in self.receivers.values():
            if hasattr(rx, "close"):
                rx.close()
        self.outbox.close()
        self.silences.close()
